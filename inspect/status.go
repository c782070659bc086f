package inspect

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// StatusSample is a snapshot of a node's log indexes and, on a leader, of
// its followers' replication progress, as plain data for Metrics.
type StatusSample struct {
	Commit, Applied, LastIndex uint64
	// Peers is the leader's progress per member id; empty on followers.
	Peers map[uint64]PeerSample
}

// PeerSample is the leader's view of one member (Figure 2 matchIndex and
// nextIndex) and its replication state ("probe", "replicate", "snapshot").
type PeerSample struct {
	Match, Next uint64
	State       string
}

// peerCollector exports the latest sample's peers. Holding the sample and
// building the metrics at scrape time keeps a scrape from seeing half of a
// sample, and drops peers that left.
type peerCollector struct {
	match, next, lag, state *prometheus.Desc

	mu   sync.Mutex
	last StatusSample
}

func newPeerCollector(labels prometheus.Labels) *peerCollector {
	return &peerCollector{
		match: prometheus.NewDesc("raftex_peer_match_index",
			"Leader only: the highest log index known to be replicated on the peer.", []string{"peer"}, labels),
		next: prometheus.NewDesc("raftex_peer_next_index",
			"Leader only: the index of the next entry to send to the peer.", []string{"peer"}, labels),
		lag: prometheus.NewDesc("raftex_peer_replication_lag",
			"Leader only: entries the peer lacks (leader's last index - match index).", []string{"peer"}, labels),
		state: prometheus.NewDesc("raftex_peer_state",
			"Leader only: 1 for the peer's replication state (probe, replicate, snapshot).", []string{"peer", "state"}, labels),
	}
}

func (c *peerCollector) set(s StatusSample) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = s
}

// Describe implements prometheus.Collector.
func (c *peerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.match
	ch <- c.next
	ch <- c.lag
	ch <- c.state
}

// Collect implements prometheus.Collector.
func (c *peerCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, p := range c.last.Peers {
		peer := NodeName(id)
		var lag uint64
		if c.last.LastIndex > p.Match {
			lag = c.last.LastIndex - p.Match
		}
		ch <- prometheus.MustNewConstMetric(c.match, prometheus.GaugeValue, float64(p.Match), peer)
		ch <- prometheus.MustNewConstMetric(c.next, prometheus.GaugeValue, float64(p.Next), peer)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(lag), peer)
		if p.State != "" {
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, 1, peer, p.State)
		}
	}
}
