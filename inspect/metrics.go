package inspect

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftex/raftex/raft"
)

// Metrics exports one node's events and measurements to Prometheus. Every
// metric is named raftex_* and carries the constant label node="n<id>", so
// the metrics of several nodes can share one registry (one Metrics each).
//
// It implements node.Observer (ObserveFsync, ObserveApply, ObserveProposal,
// ObserveSnapshot); feed it the node's events with ObserveEvent, status
// samples with ObserveStatus and transport totals with ObserveTransport. All
// methods are safe for concurrent use.
type Metrics struct {
	node uint64

	term          prometheus.Gauge
	role          *prometheus.GaugeVec
	leaderChanges prometheus.Counter
	electionsRun  prometheus.Counter
	electionsWon  prometheus.Counter
	stepDowns     prometheus.Counter
	commitIndex   prometheus.Gauge
	appliedIndex  prometheus.Gauge
	lastIndex     prometheus.Gauge
	msgsSent      *prometheus.CounterVec
	msgsReceived  *prometheus.CounterVec
	// sentByType and receivedByType hold msgsSent's and msgsReceived's
	// series of every known message type, resolved once: an event per
	// message is too frequent to hash label values for each.
	sentByType, receivedByType [256]prometheus.Counter
	// roleMu guards roleShown: the role the role gauges show, plus one
	// (0: none), so that the gauges are set only when the role changes.
	roleMu    sync.Mutex
	roleShown raft.Role
	snapshots *prometheus.CounterVec

	fsyncSeconds   prometheus.Histogram
	fsyncEntries   prometheus.Histogram
	fsyncBytes     prometheus.Counter
	applySeconds   prometheus.Histogram
	appliedEntries prometheus.Counter
	proposals      *prometheus.CounterVec
	snapSeconds    *prometheus.HistogramVec
	snapBytes      *prometheus.HistogramVec

	peers *peerCollector

	bytesSent, bytesReceived, msgsDropped, eventsDropped atomic.Uint64
}

var (
	roles        = []raft.Role{raft.Follower, raft.PreCandidate, raft.Candidate, raft.Leader}
	snapshotOps  = []string{"taken", "installed", "sent", "restored"}
	secondsBkts  = prometheus.ExponentialBuckets(100e-6, 2, 16) // 100µs … 3.3s
	entriesBkts  = prometheus.ExponentialBuckets(1, 2, 12)      // 1 … 2048
	snapSizeBkts = prometheus.ExponentialBuckets(1<<10, 4, 10)  // 1KiB … 256MiB
)

// NewMetrics creates the metrics of node id and registers them with reg.
// It panics if they are already registered (for example a second Metrics
// for the same id), as prometheus.MustRegister does.
func NewMetrics(reg prometheus.Registerer, id uint64) *Metrics {
	f := metricFactory{prometheus.Labels{"node": NodeName(id)}}
	m := &Metrics{
		node:          id,
		term:          f.gauge("term", "The node's current term."),
		role:          f.gaugeVec("role", "1 for the node's current role, 0 for the others.", "role"),
		leaderChanges: f.counter("leader_changes_total", "Times the node learned of a new leader."),
		electionsRun:  f.counter("elections_started_total", "Elections the node started (election timeouts)."),
		electionsWon:  f.counter("elections_won_total", "Elections the node won."),
		stepDowns:     f.counter("step_downs_total", "Times the node stopped leading (check quorum, disk stall, a higher term)."),
		commitIndex:   f.gauge("commit_index", "The highest log index known to be committed."),
		appliedIndex:  f.gauge("applied_index", "The highest log index applied to the state machine."),
		lastIndex:     f.gauge("last_index", "The index of the last entry in the node's log."),
		msgsSent:      f.counterVec("messages_sent_total", "Raft messages sent, by type.", "type"),
		msgsReceived:  f.counterVec("messages_received_total", "Raft messages received, by type.", "type"),
		snapshots:     f.counterVec("snapshots_total", "Snapshots taken, installed, sent to followers and restored from a leader.", "op"),

		fsyncSeconds:   f.histogram("fsync_duration_seconds", "Time to make one Ready batch durable.", secondsBkts),
		fsyncEntries:   f.histogram("fsync_batch_entries", "Log entries made durable by one fsync.", entriesBkts),
		fsyncBytes:     f.counter("fsync_bytes_total", "Bytes made durable."),
		applySeconds:   f.histogram("apply_duration_seconds", "Time to apply one batch of entries to the state machine.", secondsBkts),
		appliedEntries: f.counter("applied_entries_total", "Entries applied to the state machine."),
		proposals:      f.counterVec("proposals_total", "Proposals finished, by result (ok, failed).", "result"),
		snapSeconds:    f.histogramVec("snapshot_duration_seconds", "Time to take or install a snapshot.", secondsBkts, "op"),
		snapBytes:      f.histogramVec("snapshot_size_bytes", "Size of snapshots taken or installed.", snapSizeBkts, "op"),

		peers: newPeerCollector(f.labels),
	}
	for _, r := range roles {
		m.role.WithLabelValues(r.String())
	}
	for _, op := range snapshotOps {
		m.snapshots.WithLabelValues(op)
	}
	for t := range 256 {
		if mt := raft.MessageType(t); mt.Valid() {
			m.sentByType[t] = m.msgsSent.WithLabelValues(mt.String())
			m.receivedByType[t] = m.msgsReceived.WithLabelValues(mt.String())
		}
	}
	m.proposals.WithLabelValues("ok")
	m.proposals.WithLabelValues("failed")
	reg.MustRegister(m.term, m.role, m.leaderChanges, m.electionsRun, m.electionsWon,
		m.stepDowns, m.commitIndex, m.appliedIndex, m.lastIndex, m.msgsSent,
		m.msgsReceived, m.snapshots, m.fsyncSeconds, m.fsyncEntries, m.fsyncBytes,
		m.applySeconds, m.appliedEntries, m.proposals, m.snapSeconds, m.snapBytes, m.peers,
		f.counterFunc("transport_sent_bytes_total", "Bytes the transport sent.", &m.bytesSent),
		f.counterFunc("transport_received_bytes_total", "Bytes the transport received.", &m.bytesReceived),
		f.counterFunc("transport_dropped_messages_total", "Messages the transport dropped (full queues, unreachable peers).", &m.msgsDropped),
		f.counterFunc("events_dropped_total", "Events lost because a subscriber was too slow.", &m.eventsDropped),
	)
	return m
}

// ObserveEvent updates the metrics an event moves. Events of other nodes
// are ignored, so one merged stream can feed every node's Metrics. The term
// and role gauges follow the latest event (an election timeout's term is the
// one it campaigns for, so it does not move the term gauge).
func (m *Metrics) ObserveEvent(e raft.Event) {
	if e.Node != m.node {
		return
	}
	if e.Kind == raft.EventNodeStopped {
		m.ObserveStopped()
		return
	}
	m.setRole(e.Role)
	if e.Kind != raft.EventElectionTimeout {
		m.term.Set(float64(e.Term))
	}
	switch e.Kind {
	case raft.EventLeaderChanged:
		if e.Peer != raft.None {
			m.leaderChanges.Inc()
		}
	case raft.EventElectionTimeout:
		m.electionsRun.Inc()
	case raft.EventElectionWon:
		m.electionsWon.Inc()
	case raft.EventRoleChanged:
		// Every way of losing the lead (CheckQuorum, a disk stall, a
		// higher term, a finished transfer) ends in this role change; the
		// step_down event comes only with the first two.
		if e.PrevRole == raft.Leader && e.Role != raft.Leader {
			m.stepDowns.Inc()
		}
	case raft.EventCommitAdvanced:
		m.commitIndex.Set(float64(e.Index))
	case raft.EventApplied, raft.EventNodeStarted:
		m.appliedIndex.Set(float64(e.Index))
	case raft.EventMessageSent:
		m.countMessage(m.msgsSent, &m.sentByType, e.MsgType)
	case raft.EventMessageReceived:
		m.countMessage(m.msgsReceived, &m.receivedByType, e.MsgType)
	case raft.EventSnapshotTaken:
		m.snapshots.WithLabelValues("taken").Inc()
	case raft.EventSnapshotInstalled:
		m.snapshots.WithLabelValues("installed").Inc()
	case raft.EventSnapshotSent:
		m.snapshots.WithLabelValues("sent").Inc()
	case raft.EventSnapshotRestored:
		m.snapshots.WithLabelValues("restored").Inc()
	}
}

// countMessage counts one message of type t in vec, through the series
// resolved at start when t is a known type.
func (m *Metrics) countMessage(vec *prometheus.CounterVec, byType *[256]prometheus.Counter, t raft.MessageType) {
	if c := byType[t]; c != nil {
		c.Inc()
		return
	}
	vec.WithLabelValues(t.String()).Inc()
}

// ObserveStopped records that the node stopped (by Stop, or by itself on a
// storage failure): it has no role any more, so every raftex_role series
// is 0 and nothing presents it as leader.
func (m *Metrics) ObserveStopped() {
	m.roleMu.Lock()
	defer m.roleMu.Unlock()
	m.roleShown = 0
	for _, r := range roles {
		m.role.WithLabelValues(r.String()).Set(0)
	}
}

func (m *Metrics) setRole(cur raft.Role) {
	m.roleMu.Lock()
	defer m.roleMu.Unlock()
	if m.roleShown == cur+1 {
		return
	}
	m.roleShown = cur + 1
	for _, r := range roles {
		v := 0.0
		if r == cur {
			v = 1
		}
		m.role.WithLabelValues(r.String()).Set(v)
	}
}

// ObserveStatus records a status sample: the log indexes and, on a
// leader, its followers' progress (a sample without peers clears them).
func (m *Metrics) ObserveStatus(s StatusSample) {
	m.commitIndex.Set(float64(s.Commit))
	m.appliedIndex.Set(float64(s.Applied))
	m.lastIndex.Set(float64(s.LastIndex))
	m.peers.set(s)
}

// ObserveTransport records the transport's running totals (as in
// transport.Stats); the counters report the latest totals.
func (m *Metrics) ObserveTransport(bytesSent, bytesReceived, dropped uint64) {
	m.bytesSent.Store(bytesSent)
	m.bytesReceived.Store(bytesReceived)
	m.msgsDropped.Store(dropped)
}

// ObserveDroppedEvents records the running total of events lost by slow
// subscribers.
func (m *Metrics) ObserveDroppedEvents(n uint64) { m.eventsDropped.Store(n) }

// ObserveFsync implements node.Observer.
func (m *Metrics) ObserveFsync(d time.Duration, entries int, bytes int) {
	m.fsyncSeconds.Observe(d.Seconds())
	m.fsyncEntries.Observe(float64(entries))
	m.fsyncBytes.Add(float64(bytes))
}

// ObserveApply implements node.Observer.
func (m *Metrics) ObserveApply(d time.Duration, entries int) {
	m.applySeconds.Observe(d.Seconds())
	m.appliedEntries.Add(float64(entries))
}

// ObserveProposal implements node.Observer.
func (m *Metrics) ObserveProposal(ok bool) {
	result := "failed"
	if ok {
		result = "ok"
	}
	m.proposals.WithLabelValues(result).Inc()
}

// ObserveSnapshot implements node.Observer.
func (m *Metrics) ObserveSnapshot(installed bool, d time.Duration, bytes int64) {
	op := "taken"
	if installed {
		op = "installed"
	}
	m.snapSeconds.WithLabelValues(op).Observe(d.Seconds())
	m.snapBytes.WithLabelValues(op).Observe(float64(bytes))
}
