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

// check is one expectation on one node's scrape: ok and what was seen.
type check func(p *e2etest.Node, m metrics) (bool, string)

// waitMetrics scrapes every node of nodes until every check holds on
// every one of them. Most of the metrics follow events, but the index
// gauges are sampled from the node's status once a second, so every
// expectation is polled against a deadline.
func waitMetrics(t *testing.T, what string, nodes []*e2etest.Node, checks ...check) map[*e2etest.Node]metrics {
	t.Helper()
	var last map[*e2etest.Node]metrics
	settle.Until(t, what, func() error {
		last = map[*e2etest.Node]metrics{}
		for _, p := range nodes {
			m, err := scrape(p)
			if err != nil {
				return fmt.Errorf("%s: %v", p.Name, err)
			}
			for _, chk := range checks {
				if ok, saw := chk(p, m); !ok {
					return fmt.Errorf("%s: %s", p.Name, saw)
				}
			}
			last[p] = m
		}
		return nil
	})
	return last
}

// atLeast checks name{labels} >= want(p).
func atLeast(want func(p *e2etest.Node) float64, name string, labels ...string) check {
	return func(p *e2etest.Node, m metrics) (bool, string) {
		got, w := m.value(name, labels...), want(p)
		return got >= w, fmt.Sprintf("%s%v = %v, want >= %v", name, labels, got, w)
	}
}

// above checks name{labels} > base[p]'s value of the same series.
func above(base map[*e2etest.Node]metrics, name string, labels ...string) check {
	return func(p *e2etest.Node, m metrics) (bool, string) {
		got, was := m.value(name, labels...), base[p].value(name, labels...)
		return got > was, fmt.Sprintf("%s%v = %v, want > %v (before)", name, labels, got, was)
	}
}

// positive checks name{labels} > 0.
func positive(name string, labels ...string) check {
	return func(p *e2etest.Node, m metrics) (bool, string) {
		got := m.value(name, labels...)
		return got > 0, fmt.Sprintf("%s%v = %v, want > 0", name, labels, got)
	}
}

// roleIs checks that the role gauge says exactly want(p).
func roleIs(want func(p *e2etest.Node) string) check {
	return func(p *e2etest.Node, m metrics) (bool, string) {
		got := m.role()
		return got == want(p), fmt.Sprintf("raftex_role says %s, want %s", got, want(p))
	}
}

// termIs checks raftex_term == term.
func termIs(term uint64) check {
	return func(p *e2etest.Node, m metrics) (bool, string) {
		got := m.value("raftex_term")
		return got == float64(term), fmt.Sprintf("raftex_term = %v, want %d", got, term)
	}
}

// only applies chk to the node of id and passes on the others.
func only(target *e2etest.Node, chk check) check {
	return func(p *e2etest.Node, m metrics) (bool, string) {
		if p != target {
			return true, ""
		}
		return chk(p, m)
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
func TestMetrics(t *testing.T) {
	c := startCluster(t, 3)
	lead, term := c.LeaderTerm(c.Nodes...)
	t.Logf("%s leads term %d", lead.Name, term)
	roleOf := func(leader *e2etest.Node) func(*e2etest.Node) string {
		return func(p *e2etest.Node) string {
			if p == leader {
				return "leader"
			}
			return "follower"
		}
	}

	// A settled cluster: every gauge agrees with /v1/status, and each role
	// has sent and received the messages of its part.
	base := waitMetrics(t, "metrics of a settled cluster", c.Nodes,
		func(p *e2etest.Node, m metrics) (bool, string) {
			err := m.nodeLabel(p.Name)
			return err == nil, fmt.Sprint(err)
		},
		termIs(term),
		roleIs(roleOf(lead)),
		positive("raftex_fsync_duration_seconds"),
		positive("raftex_fsync_batch_entries"),
		only(lead, positive("raftex_messages_sent_total", "type", "Heartbeat")),
		only(lead, positive("raftex_messages_sent_total", "type", "AppendEntries")),
		only(lead, positive("raftex_messages_received_total", "type", "HeartbeatReply")),
		only(lead, positive("raftex_elections_won_total")),
		only(lead, positive("raftex_peer_match_index", "peer", c.Others(lead)[0].Name)),
		only(lead, positive("raftex_peer_state", "peer", c.Others(lead)[0].Name, "state", "replicate")),
		func(p *e2etest.Node, m metrics) (bool, string) {
			if p == lead {
				return true, ""
			}
			return positive("raftex_messages_sent_total", "type", "HeartbeatReply")(p, m)
		},
		func(p *e2etest.Node, m metrics) (bool, string) {
			if p == lead {
				return true, ""
			}
			return positive("raftex_messages_sent_total", "type", "AppendEntriesReply")(p, m)
		},
	)
	for _, p := range c.Nodes {
		if n := len(base[p]["raftex_peer_match_index"].GetMetric()); p != lead && n != 0 {
			t.Errorf("%s is a follower but exports %d raftex_peer_match_index series", p.Name, n)
		}
	}

	// Writes raise the commit and applied indexes on every node to the
	// index of the last write, make the leader fsync them, and the
	// follower that took them (and handed them to the leader) count them.
	follower := c.Others(lead)[0]
	var rev uint64
	const writes = 10
	for i := range writes {
		rev = follower.Put(t, url.PathEscape(fmt.Sprintf("metrics/key-%d", i)), fmt.Sprintf("value %d", i))
	}
	t.Logf("%d writes through %s, the last at index %d", writes, follower.Name, rev)
	for _, p := range c.Nodes {
		if got := base[p].value("raftex_commit_index"); got >= float64(rev) {
			t.Fatalf("%s: commit index %v before the writes, already >= the last write's index %d", p.Name, got, rev)
		}
	}
	okBefore := base[follower].value("raftex_proposals_total", "result", "ok")
	afterWrites := waitMetrics(t, "commit and applied index reach the last write", c.Nodes,
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
		only(lead, atLeast(const64(rev), "raftex_peer_match_index", "peer", follower.Name)),
		termIs(term),
	)

	var all []metrics
	for _, m := range afterWrites {
		all = append(all, m)
	}
	checkMetricsDocumented(t, all...)

	// Kill the leader: the survivors elect a new one in a higher term,
	// and each of them counts the leader change.
	t.Logf("killing %s", lead.Name)
	c.Kill(lead)
	survivors := c.Others(lead)
	newLead, newTerm := c.LeaderTerm(survivors...)
	t.Logf("%s leads term %d", newLead.Name, newTerm)
	if newTerm <= term {
		t.Fatalf("new leader %s in term %d, not above the old term %d", newLead.Name, newTerm, term)
	}
	voter := c.Others(newLead)[0]
	if voter == lead {
		voter = c.Others(newLead)[1]
	}
	afterKill := waitMetrics(t, "metrics after the leader was killed", survivors,
		above(afterWrites, "raftex_leader_changes_total"),
		termIs(newTerm),
		roleIs(roleOf(newLead)),
		only(newLead, above(afterWrites, "raftex_elections_started_total")),
		only(newLead, above(afterWrites, "raftex_elections_won_total")),
		only(newLead, above(afterWrites, "raftex_messages_sent_total", "type", "RequestVote")),
		only(newLead, above(afterWrites, "raftex_messages_received_total", "type", "RequestVoteReply")),
		only(voter, above(afterWrites, "raftex_messages_received_total", "type", "RequestVote")),
		only(voter, above(afterWrites, "raftex_messages_sent_total", "type", "RequestVoteReply")),
	)
	for _, p := range survivors {
		t.Logf("%s: raftex_leader_changes_total %v -> %v", p.Name,
			afterWrites[p].value("raftex_leader_changes_total"), afterKill[p].value("raftex_leader_changes_total"))
	}

	// Writes go on under the new leader, and the commit index follows.
	rev2 := voter.Put(t, url.PathEscape("metrics/after-failover"), "still here")
	if rev2 <= rev {
		t.Fatalf("write after the failover at index %d, not above %d", rev2, rev)
	}
	waitMetrics(t, "commit index reaches the write after the failover", survivors,
		atLeast(const64(rev2), "raftex_commit_index"),
		atLeast(const64(rev2), "raftex_applied_index"),
	)
}
