package observe

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/raftex/raftex/internal/e2etest"
)

// metrics is one scrape of a node's /metrics, parsed.
type metrics map[string]*dto.MetricFamily

func scrape(p *e2etest.Node) (metrics, error) {
	r, err := p.Get("/metrics")
	if err != nil {
		return nil, err
	}
	if err := r.Want(http.StatusOK); err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(r.Body))
	if err != nil {
		return nil, fmt.Errorf("parsing /metrics: %w", err)
	}
	return metrics(mfs), nil
}

// value returns the value of the series name{labels} (pairs of label
// name and value; the node label is not needed): a gauge's or counter's
// value, a histogram's sample count. A series that does not exist is 0,
// as Prometheus reads an absent counter.
func (m metrics) value(name string, labels ...string) float64 {
	mf := m[name]
	if mf == nil {
		return 0
	}
	for _, s := range mf.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			return s.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return s.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			return float64(s.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

func hasLabels(s *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range s.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// role returns the role whose raftex_role series is 1, or a description
// of what is wrong when not exactly one is.
func (m metrics) role() string {
	var on []string
	for _, r := range []string{"follower", "precandidate", "candidate", "leader"} {
		if m.value("raftex_role", "role", r) == 1 {
			on = append(on, r)
		}
	}
	if len(on) != 1 {
		return fmt.Sprintf("roles set to 1: %v", on)
	}
	return on[0]
}

// nodeLabel checks that every raftex_* series of a scrape carries the
// node's own constant label.
func (m metrics) nodeLabel(id string) error {
	for name, mf := range m {
		if !strings.HasPrefix(name, "raftex_") {
			continue
		}
		for _, s := range mf.GetMetric() {
			if !hasLabels(s, []string{"node", id}) {
				return fmt.Errorf("%s has labels %v, want node=%q", name, s.GetLabel(), id)
			}
		}
	}
	return nil
}

// view is who leads and in which term while a poll scraped: every node
// scraped agreed on it both before and after the scrapes.
type view struct {
	lead *e2etest.Node
	term uint64
}

// check is one expectation on one node's scrape, under the leader and
// term of the moment: ok and what was seen.
type check func(v view, p *e2etest.Node, m metrics) (bool, string)

// waitMetrics scrapes every node of nodes until every check holds on
// every one of them, and returns the scrapes and the view they hold
// under. Most of the metrics follow events, but the index gauges are
// sampled from the node's status once a second, so every expectation is
// polled against a deadline. Who leads is read at each poll, before and
// after the scrapes: an election (a loaded machine) only delays the
// checks until the nodes agree again and the metrics follow.
func waitMetrics(t *testing.T, what string, nodes []*e2etest.Node, checks ...check) (map[*e2etest.Node]metrics, view) {
	t.Helper()
	var last map[*e2etest.Node]metrics
	var v view
	settle.Until(t, what, func() error {
		lead, term, err := e2etest.AgreedLeader(nodes...)
		if err != nil {
			return err
		}
		v = view{lead, term}
		last = map[*e2etest.Node]metrics{}
		for _, p := range nodes {
			m, err := scrape(p)
			if err != nil {
				return fmt.Errorf("%s: %v", p.Name, err)
			}
			for _, chk := range checks {
				if ok, saw := chk(v, p, m); !ok {
					return fmt.Errorf("%s (%s leads term %d): %s", p.Name, lead.Name, term, saw)
				}
			}
			last[p] = m
		}
		lead2, term2, err := e2etest.AgreedLeader(nodes...)
		if err != nil {
			return err
		}
		if lead2 != lead || term2 != term {
			return fmt.Errorf("the lead moved during the scrapes: %s in term %d, then %s in term %d", lead.Name, term, lead2.Name, term2)
		}
		return nil
	})
	return last, v
}

// atLeast checks name{labels} >= want(p).
func atLeast(want func(p *e2etest.Node) float64, name string, labels ...string) check {
	return func(_ view, p *e2etest.Node, m metrics) (bool, string) {
		got, w := m.value(name, labels...), want(p)
		return got >= w, fmt.Sprintf("%s%v = %v, want >= %v", name, labels, got, w)
	}
}

// above checks name{labels} > base[p]'s value of the same series.
func above(base map[*e2etest.Node]metrics, name string, labels ...string) check {
	return func(_ view, p *e2etest.Node, m metrics) (bool, string) {
		got, was := m.value(name, labels...), base[p].value(name, labels...)
		return got > was, fmt.Sprintf("%s%v = %v, want > %v (before)", name, labels, got, was)
	}
}

// positive checks name{labels} > 0.
func positive(name string, labels ...string) check {
	return func(_ view, p *e2etest.Node, m metrics) (bool, string) {
		got := m.value(name, labels...)
		return got > 0, fmt.Sprintf("%s%v = %v, want > 0", name, labels, got)
	}
}

// roleIs checks that the role gauge says leader on the node that leads
// and follower on the others.
func roleIs() check {
	return func(v view, p *e2etest.Node, m metrics) (bool, string) {
		want := "follower"
		if p == v.lead {
			want = "leader"
		}
		got := m.role()
		return got == want, fmt.Sprintf("raftex_role says %s, want %s", got, want)
	}
}

// termIs checks that raftex_term is the term every node's status says.
func termIs() check {
	return func(v view, p *e2etest.Node, m metrics) (bool, string) {
		got := m.value("raftex_term")
		return got == float64(v.term), fmt.Sprintf("raftex_term = %v, want %d", got, v.term)
	}
}

// onLeader applies chk to the node that leads and passes on the others.
func onLeader(chk check) check {
	return func(v view, p *e2etest.Node, m metrics) (bool, string) {
		if p != v.lead {
			return true, ""
		}
		return chk(v, p, m)
	}
}

// onFollowers applies chk to the nodes that do not lead.
func onFollowers(chk check) check {
	return func(v view, p *e2etest.Node, m metrics) (bool, string) {
		if p == v.lead {
			return true, ""
		}
		return chk(v, p, m)
	}
}

// only applies chk to target and passes on the others.
func only(target *e2etest.Node, chk check) check {
	return func(v view, p *e2etest.Node, m metrics) (bool, string) {
		if p != target {
			return true, ""
		}
		return chk(v, p, m)
	}
}

// forEachPeer applies chk(peer) for every node of nodes other than the
// one checked.
func forEachPeer(nodes []*e2etest.Node, chk func(peer *e2etest.Node) check) check {
	return func(v view, p *e2etest.Node, m metrics) (bool, string) {
		for _, peer := range nodes {
			if peer == p {
				continue
			}
			if ok, saw := chk(peer)(v, p, m); !ok {
				return false, saw
			}
		}
		return true, ""
	}
}

// noPeerSeries checks that a node exports no raftex_peer_match_index
// series (a follower's: they are the leader's view of its followers, and
// a node that lost the lead clears them at its next status sample).
func noPeerSeries() check {
	return func(_ view, p *e2etest.Node, m metrics) (bool, string) {
		n := len(m["raftex_peer_match_index"].GetMetric())
		return n == 0, fmt.Sprintf("a follower, but exports %d raftex_peer_match_index series", n)
	}
}

func const64(v uint64) func(*e2etest.Node) float64 {
	return func(*e2etest.Node) float64 { return float64(v) }
}

// TestMetrics scrapes /metrics of a 3-node cluster of real processes and
// checks that the values move the way docs/observability.md says: roles
// and terms agree with /v1/status, messages are counted by type, fsyncs
// are timed, the commit index rises with writes, and killing the leader
// raises the term and the leader-change counter on every live node.
//
// Who leads is read from /v1/status at every poll: an unrelated election
// on a loaded machine moves what the gauges must say, not whether they
// agree with the status.
func TestMetrics(t *testing.T) {
	c := startCluster(t, 3)

	// A settled cluster: every gauge agrees with /v1/status, and each role
	// has sent and received the messages of its part.
	base, v := waitMetrics(t, "metrics of a settled cluster", c.Nodes,
		func(_ view, p *e2etest.Node, m metrics) (bool, string) {
			err := m.nodeLabel(p.Name)
			return err == nil, fmt.Sprint(err)
		},
		termIs(),
		roleIs(),
		positive("raftex_fsync_duration_seconds"),
		positive("raftex_fsync_batch_entries"),
		onLeader(positive("raftex_messages_sent_total", "type", "Heartbeat")),
		onLeader(positive("raftex_messages_sent_total", "type", "AppendEntries")),
		onLeader(positive("raftex_messages_received_total", "type", "HeartbeatReply")),
		onLeader(positive("raftex_elections_won_total")),
		onLeader(forEachPeer(c.Nodes, func(peer *e2etest.Node) check {
			return positive("raftex_peer_match_index", "peer", peer.Name)
		})),
		onLeader(forEachPeer(c.Nodes, func(peer *e2etest.Node) check {
			return positive("raftex_peer_state", "peer", peer.Name, "state", "replicate")
		})),
		onFollowers(positive("raftex_messages_sent_total", "type", "HeartbeatReply")),
		onFollowers(positive("raftex_messages_sent_total", "type", "AppendEntriesReply")),
		onFollowers(noPeerSeries()),
	)
	t.Logf("%s leads term %d", v.lead.Name, v.term)

	// Writes raise the commit and applied indexes on every node to the
	// index of the last write, make the leader fsync them, and the
	// follower that took them (and handed them to the leader) count them.
	follower := c.Others(v.lead)[0]
	var rev uint64
	const writes = 10
	for i := range writes {
		rev = put(t, c, follower, url.PathEscape(fmt.Sprintf("metrics/key-%d", i)), fmt.Sprintf("value %d", i))
	}
	t.Logf("%d writes through %s, the last at index %d", writes, follower.Name, rev)
	for _, p := range c.Nodes {
		if got := base[p].value("raftex_commit_index"); got >= float64(rev) {
			t.Fatalf("%s: commit index %v before the writes, already >= the last write's index %d", p.Name, got, rev)
		}
	}
	okBefore := base[follower].value("raftex_proposals_total", "result", "ok")
	afterWritesChecks := []check{
		atLeast(const64(rev), "raftex_commit_index"),
		atLeast(const64(rev), "raftex_applied_index"),
		atLeast(const64(rev), "raftex_last_index"),
		above(base, "raftex_fsync_duration_seconds"),
		above(base, "raftex_fsync_bytes_total"),
		above(base, "raftex_apply_duration_seconds"),
		atLeast(func(p *e2etest.Node) float64 {
			return base[p].value("raftex_applied_entries_total") + writes
		}, "raftex_applied_entries_total"),
		only(follower, atLeast(const64(uint64(okBefore)+writes), "raftex_proposals_total", "result", "ok")),
		onLeader(forEachPeer(c.Nodes, func(peer *e2etest.Node) check {
			return atLeast(const64(rev), "raftex_peer_match_index", "peer", peer.Name)
		})),
		termIs(),
		roleIs(),
	}

	// Kill the leader: the survivors elect a new one in a higher term,
	// and each of them counts the leader change. The scrapes to compare
	// with are taken under the leader that is killed: if an election
	// moved the lead after them, they are taken again.
	var afterWrites map[*e2etest.Node]metrics
	var lead *e2etest.Node
	var term uint64
	for attempt := 1; ; attempt++ {
		afterWrites, v = waitMetrics(t, "commit and applied index reach the last write", c.Nodes, afterWritesChecks...)
		lead, term = c.LeaderTerm(c.Nodes...)
		if lead == v.lead && term == v.term {
			break
		}
		if attempt == stepAttempts {
			t.Fatalf("an election intervened after each of %d scrapes (%s in term %d, then %s in term %d)",
				stepAttempts, v.lead.Name, v.term, lead.Name, term)
		}
		t.Logf("an election intervened after the scrapes (%s in term %d, then %s in term %d); scraping again",
			v.lead.Name, v.term, lead.Name, term)
	}

	var all []metrics
	for _, m := range afterWrites {
		all = append(all, m)
	}
	checkMetricsDocumented(t, all...)

	t.Logf("killing %s, leader of term %d", lead.Name, term)
	c.Kill(lead)
	survivors := c.Others(lead)
	afterKill, v := waitMetrics(t, "metrics after the leader was killed", survivors,
		func(v view, _ *e2etest.Node, _ metrics) (bool, string) {
			return v.term > term, fmt.Sprintf("the survivors' leader %s is in term %d, not above the killed leader's %d", v.lead.Name, v.term, term)
		},
		above(afterWrites, "raftex_leader_changes_total"),
		termIs(),
		roleIs(),
		onLeader(above(afterWrites, "raftex_elections_started_total")),
		onLeader(above(afterWrites, "raftex_elections_won_total")),
		onLeader(above(afterWrites, "raftex_messages_sent_total", "type", "RequestVote")),
		onLeader(above(afterWrites, "raftex_messages_received_total", "type", "RequestVoteReply")),
		// The other survivor's vote elected it: two of three.
		onFollowers(above(afterWrites, "raftex_messages_received_total", "type", "RequestVote")),
		onFollowers(above(afterWrites, "raftex_messages_sent_total", "type", "RequestVoteReply")),
	)
	t.Logf("%s leads term %d", v.lead.Name, v.term)
	for _, p := range survivors {
		t.Logf("%s: raftex_leader_changes_total %v -> %v", p.Name,
			afterWrites[p].value("raftex_leader_changes_total"), afterKill[p].value("raftex_leader_changes_total"))
	}

	// Writes go on under the new leader, and the commit index follows.
	voter := c.Others(v.lead)[0]
	if voter == lead {
		voter = c.Others(v.lead)[1]
	}
	rev2 := put(t, c, voter, url.PathEscape("metrics/after-failover"), "still here")
	if rev2 <= rev {
		t.Fatalf("write after the failover at index %d, not above %d", rev2, rev)
	}
	waitMetrics(t, "commit index reaches the write after the failover", survivors,
		atLeast(const64(rev2), "raftex_commit_index"),
		atLeast(const64(rev2), "raftex_applied_index"),
	)
}
