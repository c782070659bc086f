package inspect

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/raftex/raftex/raft"
)

// The counters fed by events, each checked against what the real core
// did (docs/observability.md says what each counts). The runtime's
// counters (fsync, apply, proposals, snapshots taken and installed,
// transport, dropped events) are checked in package raftex, on real nodes.

// meteredCores runs n real cores, each node's events going to its own
// Metrics and to seen (every event, in order).
func meteredCores(t *testing.T, n int) (*cores, map[uint64]*Metrics, *[]raft.Event) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	ms := map[uint64]*Metrics{}
	for id := uint64(1); id <= uint64(n); id++ {
		ms[id] = NewMetrics(reg, id)
	}
	var seen []raft.Event
	c := newCores(t, n, func(e raft.Event) {
		seen = append(seen, e)
		ms[e.Node].ObserveEvent(e)
	})
	return c, ms, &seen
}

// count counts the events of node id for which match holds.
func count(seen []raft.Event, id uint64, match func(raft.Event) bool) float64 {
	n := 0.0
	for _, e := range seen {
		if e.Node == id && match(e) {
			n++
		}
	}
	return n
}

func wantCounter(t *testing.T, what string, c prometheus.Collector, want float64) {
	t.Helper()
	if got := testutil.ToFloat64(c); got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// raftex_leader_changes_total: times the node learned of a new leader,
// itself included, and not when it lost one.
func TestCounterLeaderChanges(t *testing.T) {
	c, ms, _ := meteredCores(t, 3)
	c.elect(1)
	c.cut[1] = true
	c.tick(60, 1)
	second := c.leader()
	if second == 0 || second == 1 {
		t.Fatalf("no new leader: %d", second)
	}
	other := uint64(5 - second) // the third node: 2 or 3
	wantCounter(t, "leader changes of the new leader", ms[second].leaderChanges, 2)
	wantCounter(t, "leader changes of the other follower", ms[other].leaderChanges, 2)
	wantCounter(t, "leader changes of the cut-off old leader", ms[1].leaderChanges, 1)
}

// raftex_elections_started_total: every election timeout; with PreVote
// each starts a pre-vote campaign, so it equals the campaigns the node ran.
func TestCounterElectionsStarted(t *testing.T) {
	c, ms, seen := meteredCores(t, 3)
	c.elect(1)
	c.cut[3] = true
	c.tick(200)
	campaigns := count(*seen, 3, func(e raft.Event) bool {
		return e.Kind == raft.EventRoleChanged && e.Role == raft.PreCandidate
	})
	if campaigns < 5 {
		t.Fatalf("n3 campaigned %v times in 200 ticks", campaigns)
	}
	wantCounter(t, "n3's elections started", ms[3].electionsRun, campaigns)
	wantCounter(t, "n1's elections started (it was made to campaign, no timeout)", ms[1].electionsRun, 0)
}

// raftex_elections_won_total: the elections the node won, so the times it
// became leader.
func TestCounterElectionsWon(t *testing.T) {
	c, ms, seen := meteredCores(t, 3)
	c.elect(1)
	c.makeLead(2)
	c.makeLead(1)
	for id, want := range map[uint64]float64{1: 2, 2: 1, 3: 0} {
		became := count(*seen, id, func(e raft.Event) bool { return e.Kind == raft.EventRoleChanged && e.Role == raft.Leader })
		if became != want {
			t.Fatalf("n%d became leader %v times, want %v", id, became, want)
		}
		wantCounter(t, NodeName(id)+"'s elections won", ms[id].electionsWon, want)
	}
}

// raftex_step_downs_total: every time the node stopped leading, whatever
// the cause: CheckQuorum, a higher term, a leadership transfer.
func TestCounterStepDowns(t *testing.T) {
	c, ms, _ := meteredCores(t, 3)
	c.elect(1)
	// CheckQuorum: the followers are cut off.
	c.cut[2], c.cut[3] = true, true
	c.tick(40, 0)
	wantCounter(t, "step-downs after CheckQuorum", ms[1].stepDowns, 1)
	c.cut = map[uint64]bool{}
	c.makeLead(1)
	// A higher term: n1 is cut off (and does not tick), the others elect.
	c.cut[1] = true
	c.tick(60, 1)
	delete(c.cut, 1)
	c.tick(10, 1)
	if c.nodes[1].Status().Role == raft.Leader {
		t.Fatal("n1 still leads after the higher term")
	}
	wantCounter(t, "step-downs after a higher term", ms[1].stepDowns, 2)
	// A leadership transfer (thesis §3.10).
	c.makeLead(1)
	c.makeLead(3)
	wantCounter(t, "step-downs after a transfer", ms[1].stepDowns, 3)
}

// raftex_messages_sent_total and raftex_messages_received_total, by type:
// on a network that loses nothing, every message sent is received once.
func TestCounterMessagesSentAndReceived(t *testing.T) {
	c, ms, _ := meteredCores(t, 3)
	c.tick(100)
	lead := c.leader()
	for i := range 5 {
		if _, _, err := c.nodes[lead].Propose([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	c.tick(20)
	types := []raft.MessageType{raft.MsgPreVote, raft.MsgPreVoteResp, raft.MsgVote, raft.MsgVoteResp,
		raft.MsgApp, raft.MsgAppResp, raft.MsgHeartbeat, raft.MsgHeartbeatResp}
	for _, mt := range types {
		var sent, received float64
		for _, m := range ms {
			sent += testutil.ToFloat64(m.msgsSent.WithLabelValues(mt.String()))
			received += testutil.ToFloat64(m.msgsReceived.WithLabelValues(mt.String()))
		}
		if sent == 0 || sent != received {
			t.Errorf("%s: %v sent, %v received; want as many, and some", mt, sent, received)
		}
	}
}
