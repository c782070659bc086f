package observe

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metrics is one scrape of a node's /metrics, parsed.
type metrics map[string]*dto.MetricFamily

func (c *cluster) scrape(p *proc) (metrics, error) {
	resp, err := c.http.Get(p.url("/metrics"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
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
type check func(p *proc, m metrics) (bool, string)

// waitMetrics scrapes every node of nodes until every check holds on
// every one of them. Most of the metrics follow events, but the index
// gauges are sampled from the node's status once a second, so every
// expectation is polled against a deadline.
func (c *cluster) waitMetrics(what string, nodes []*proc, checks ...check) map[*proc]metrics {
	c.t.Helper()
	var last map[*proc]metrics
	waitFor(c.t, settleDeadline, what, func() (bool, string) {
		last = map[*proc]metrics{}
		for _, p := range nodes {
			m, err := c.scrape(p)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", p.id, err)
			}
			for _, chk := range checks {
				if ok, saw := chk(p, m); !ok {
					return false, fmt.Sprintf("%s: %s", p.id, saw)
				}
			}
			last[p] = m
		}
		return true, ""
	})
	return last
}

// atLeast checks name{labels} >= want(p).
func atLeast(want func(p *proc) float64, name string, labels ...string) check {
	return func(p *proc, m metrics) (bool, string) {
		got, w := m.value(name, labels...), want(p)
		return got >= w, fmt.Sprintf("%s%v = %v, want >= %v", name, labels, got, w)
	}
}

// above checks name{labels} > base[p]'s value of the same series.
func above(base map[*proc]metrics, name string, labels ...string) check {
	return func(p *proc, m metrics) (bool, string) {
		got, was := m.value(name, labels...), base[p].value(name, labels...)
		return got > was, fmt.Sprintf("%s%v = %v, want > %v (before)", name, labels, got, was)
	}
}

// positive checks name{labels} > 0.
func positive(name string, labels ...string) check {
	return func(p *proc, m metrics) (bool, string) {
		got := m.value(name, labels...)
		return got > 0, fmt.Sprintf("%s%v = %v, want > 0", name, labels, got)
	}
}

// roleIs checks that the role gauge says exactly want(p).
func roleIs(want func(p *proc) string) check {
	return func(p *proc, m metrics) (bool, string) {
		got := m.role()
		return got == want(p), fmt.Sprintf("raftex_role says %s, want %s", got, want(p))
	}
}

// termIs checks raftex_term == term.
func termIs(term uint64) check {
	return func(p *proc, m metrics) (bool, string) {
		got := m.value("raftex_term")
		return got == float64(term), fmt.Sprintf("raftex_term = %v, want %d", got, term)
	}
}

// only applies chk to the node of id and passes on the others.
func only(target *proc, chk check) check {
	return func(p *proc, m metrics) (bool, string) {
		if p != target {
			return true, ""
		}
		return chk(p, m)
	}
}

func const64(v uint64) func(*proc) float64 { return func(*proc) float64 { return float64(v) } }

// TestMetrics scrapes /metrics of a 3-node cluster of real processes and
// checks that the values move the way docs/observability.md says: roles
// and terms agree with /v1/status, messages are counted by type, fsyncs
// are timed, the commit index rises with writes, and killing the leader
// raises the term and the leader-change counter on every live node.
func TestMetrics(t *testing.T) {
	c := startCluster(t, 3)
	lead, term := c.waitLeader(c.nodes)
	t.Logf("%s leads term %d", lead.id, term)
	roleOf := func(leader *proc) func(*proc) string {
		return func(p *proc) string {
			if p == leader {
				return "leader"
			}
			return "follower"
		}
	}

	// A settled cluster: every gauge agrees with /v1/status, and each role
	// has sent and received the messages of its part.
	base := c.waitMetrics("metrics of a settled cluster", c.nodes,
		func(p *proc, m metrics) (bool, string) {
			err := m.nodeLabel(p.id)
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
		only(lead, positive("raftex_peer_match_index", "peer", c.others(lead)[0].id)),
		only(lead, positive("raftex_peer_state", "peer", c.others(lead)[0].id, "state", "replicate")),
		func(p *proc, m metrics) (bool, string) {
			if p == lead {
				return true, ""
			}
			return positive("raftex_messages_sent_total", "type", "HeartbeatReply")(p, m)
		},
		func(p *proc, m metrics) (bool, string) {
			if p == lead {
				return true, ""
			}
			return positive("raftex_messages_sent_total", "type", "AppendEntriesReply")(p, m)
		},
	)
	for _, p := range c.nodes {
		if n := len(base[p]["raftex_peer_match_index"].GetMetric()); p != lead && n != 0 {
			t.Errorf("%s is a follower but exports %d raftex_peer_match_index series", p.id, n)
		}
	}

	// Writes raise the commit and applied indexes on every node to the
	// index of the last write, and make the leader fsync and count them.
	follower := c.others(lead)[0]
	var rev uint64
	const writes = 10
	for i := range writes {
		rev = c.put(follower, fmt.Sprintf("metrics/key-%d", i), fmt.Sprintf("value %d", i))
	}
	t.Logf("%d writes through %s, the last at index %d", writes, follower.id, rev)
	for _, p := range c.nodes {
		if got := base[p].value("raftex_commit_index"); got >= float64(rev) {
			t.Fatalf("%s: commit index %v before the writes, already >= the last write's index %d", p.id, got, rev)
		}
	}
	okBefore := base[lead].value("raftex_proposals_total", "result", "ok")
	afterWrites := c.waitMetrics("commit and applied index reach the last write", c.nodes,
		atLeast(const64(rev), "raftex_commit_index"),
		atLeast(const64(rev), "raftex_applied_index"),
		atLeast(const64(rev), "raftex_last_index"),
		above(base, "raftex_fsync_duration_seconds"),
		above(base, "raftex_fsync_bytes_total"),
		above(base, "raftex_apply_duration_seconds"),
		atLeast(func(p *proc) float64 {
			return base[p].value("raftex_applied_entries_total") + writes
		}, "raftex_applied_entries_total"),
		only(lead, atLeast(const64(uint64(okBefore)+writes), "raftex_proposals_total", "result", "ok")),
		only(lead, atLeast(const64(rev), "raftex_peer_match_index", "peer", follower.id)),
		termIs(term),
	)

	var all []metrics
	for _, m := range afterWrites {
		all = append(all, m)
	}
	checkMetricsDocumented(t, all...)

	// Kill the leader: the survivors elect a new one in a higher term,
	// and each of them counts the leader change.
	t.Logf("killing %s", lead.id)
	c.kill(lead)
	survivors := c.others(lead)
	newLead, newTerm := c.waitLeader(survivors)
	t.Logf("%s leads term %d", newLead.id, newTerm)
	if newTerm <= term {
		t.Fatalf("new leader %s in term %d, not above the old term %d", newLead.id, newTerm, term)
	}
	voter := c.others(newLead)[0]
	if voter == lead {
		voter = c.others(newLead)[1]
	}
	afterKill := c.waitMetrics("metrics after the leader was killed", survivors,
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
		t.Logf("%s: raftex_leader_changes_total %v -> %v", p.id,
			afterWrites[p].value("raftex_leader_changes_total"), afterKill[p].value("raftex_leader_changes_total"))
	}

	// Writes go on under the new leader, and the commit index follows.
	rev2 := c.put(voter, "metrics/after-failover", "still here")
	if rev2 <= rev {
		t.Fatalf("write after the failover at index %d, not above %d", rev2, rev)
	}
	c.waitMetrics("commit index reaches the write after the failover", survivors,
		atLeast(const64(rev2), "raftex_commit_index"),
		atLeast(const64(rev2), "raftex_applied_index"),
	)
}
