package inspect

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/raftex/raftex/raft"
)

// observer is node.Observer, copied here because inspect must not import
// node; it pins that Metrics keeps the exact signatures.
type observer interface {
	ObserveFsync(d time.Duration, entries int, bytes int)
	ObserveApply(d time.Duration, entries int)
	ObserveProposal(ok bool)
	ObserveSnapshot(installed bool, d time.Duration, bytes int64)
}

var _ observer = (*Metrics)(nil)

func newTestMetrics(t *testing.T, id uint64) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	return NewMetrics(reg, id), reg
}

func TestMetricsLeaderChanges(t *testing.T) {
	m, _ := newTestMetrics(t, 1)
	m.ObserveEvent(raft.Event{Kind: raft.EventLeaderChanged, Node: 1, Term: 1, Peer: 2})
	m.ObserveEvent(raft.Event{Kind: raft.EventLeaderChanged, Node: 1, Term: 2}) // lost: not a change to a leader
	m.ObserveEvent(raft.Event{Kind: raft.EventLeaderChanged, Node: 1, Term: 2, Peer: 3})
	m.ObserveEvent(raft.Event{Kind: raft.EventLeaderChanged, Node: 2, Term: 2, Peer: 3}) // another node's
	if got := testutil.ToFloat64(m.leaderChanges); got != 2 {
		t.Errorf("leader changes = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.term); got != 2 {
		t.Errorf("term = %v, want 2", got)
	}
}

func TestMetricsElectionAndRole(t *testing.T) {
	m, reg := newTestMetrics(t, 2)
	for _, e := range []raft.Event{
		{Kind: raft.EventNodeStarted, Node: 2, Role: raft.Follower, Index: 3},
		{Kind: raft.EventElectionTimeout, Node: 2, Term: 1, Role: raft.Follower},
		{Kind: raft.EventRoleChanged, Node: 2, Term: 1, Role: raft.Candidate, PrevRole: raft.Follower},
		{Kind: raft.EventElectionWon, Node: 2, Term: 1, Role: raft.Candidate, Count: 2},
		{Kind: raft.EventRoleChanged, Node: 2, Term: 1, Role: raft.Leader, PrevRole: raft.Candidate},
	} {
		m.ObserveEvent(e)
	}
	want := `
# HELP raftex_elections_started_total Elections the node started (election timeouts).
# TYPE raftex_elections_started_total counter
raftex_elections_started_total{node="n2"} 1
# HELP raftex_elections_won_total Elections the node won.
# TYPE raftex_elections_won_total counter
raftex_elections_won_total{node="n2"} 1
# HELP raftex_role 1 for the node's current role, 0 for the others.
# TYPE raftex_role gauge
raftex_role{node="n2",role="candidate"} 0
raftex_role{node="n2",role="follower"} 0
raftex_role{node="n2",role="leader"} 1
raftex_role{node="n2",role="precandidate"} 0
# HELP raftex_term The node's current term.
# TYPE raftex_term gauge
raftex_term{node="n2"} 1
# HELP raftex_applied_index The highest log index applied to the state machine.
# TYPE raftex_applied_index gauge
raftex_applied_index{node="n2"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"raftex_elections_started_total", "raftex_elections_won_total", "raftex_role", "raftex_term", "raftex_applied_index"); err != nil {
		t.Error(err)
	}
}

// TestMetricsElectionTimeoutTerm: the timeout names the term it will
// campaign for; the node's term only moves when it does.
func TestMetricsElectionTimeoutTerm(t *testing.T) {
	m, _ := newTestMetrics(t, 1)
	m.ObserveEvent(raft.Event{Kind: raft.EventElectionTimeout, Node: 1, Term: 5})
	if got := testutil.ToFloat64(m.term); got != 0 {
		t.Errorf("term = %v after a timeout, want 0", got)
	}
}

func TestMetricsIndexes(t *testing.T) {
	m, _ := newTestMetrics(t, 1)
	for i := uint64(1); i <= 3; i++ {
		m.ObserveEvent(raft.Event{Kind: raft.EventCommitAdvanced, Node: 1, Term: 1, PrevIndex: 5 * (i - 1), Index: 5 * i})
		if got := testutil.ToFloat64(m.commitIndex); got != float64(5*i) {
			t.Errorf("commit = %v, want %d", got, 5*i)
		}
	}
	m.ObserveEvent(raft.Event{Kind: raft.EventApplied, Node: 1, Term: 1, Index: 12, Count: 2})
	if got := testutil.ToFloat64(m.appliedIndex); got != 12 {
		t.Errorf("applied = %v, want 12", got)
	}
}

func TestMetricsMessagesAndSnapshots(t *testing.T) {
	m, _ := newTestMetrics(t, 1)
	send := func(k raft.EventKind, mt raft.MessageType) {
		m.ObserveEvent(raft.Event{Kind: k, Node: 1, Term: 1, Peer: 2, MsgType: mt})
	}
	send(raft.EventMessageSent, raft.MsgApp)
	send(raft.EventMessageSent, raft.MsgApp)
	send(raft.EventMessageSent, raft.MsgHeartbeat)
	send(raft.EventMessageReceived, raft.MsgAppResp)
	for k, want := range map[string]float64{"AppendEntries": 2, "Heartbeat": 1} {
		if got := testutil.ToFloat64(m.msgsSent.WithLabelValues(k)); got != want {
			t.Errorf("sent %s = %v, want %v", k, got, want)
		}
	}
	if got := testutil.ToFloat64(m.msgsReceived.WithLabelValues("AppendEntriesReply")); got != 1 {
		t.Errorf("received AppendEntriesReply = %v", got)
	}
	for _, k := range []raft.EventKind{raft.EventSnapshotTaken, raft.EventSnapshotSent, raft.EventSnapshotSent,
		raft.EventSnapshotRestored, raft.EventSnapshotInstalled} {
		m.ObserveEvent(raft.Event{Kind: k, Node: 1, Index: 100})
	}
	for op, want := range map[string]float64{"taken": 1, "sent": 2, "restored": 1, "installed": 1} {
		if got := testutil.ToFloat64(m.snapshots.WithLabelValues(op)); got != want {
			t.Errorf("snapshots %s = %v, want %v", op, got, want)
		}
	}
}

func TestMetricsStatus(t *testing.T) {
	m, reg := newTestMetrics(t, 1)
	m.ObserveStatus(StatusSample{Commit: 10, Applied: 9, LastIndex: 12, Peers: map[uint64]PeerSample{
		2: {Match: 12, Next: 13, State: "replicate"},
		3: {Match: 4, Next: 5, State: "probe"},
	}})
	want := `
# HELP raftex_last_index The index of the last entry in the node's log.
# TYPE raftex_last_index gauge
raftex_last_index{node="n1"} 12
# HELP raftex_peer_match_index Leader only: the highest log index known to be replicated on the peer.
# TYPE raftex_peer_match_index gauge
raftex_peer_match_index{node="n1",peer="n2"} 12
raftex_peer_match_index{node="n1",peer="n3"} 4
# HELP raftex_peer_next_index Leader only: the index of the next entry to send to the peer.
# TYPE raftex_peer_next_index gauge
raftex_peer_next_index{node="n1",peer="n2"} 13
raftex_peer_next_index{node="n1",peer="n3"} 5
# HELP raftex_peer_replication_lag Leader only: entries the peer lacks (leader's last index - match index).
# TYPE raftex_peer_replication_lag gauge
raftex_peer_replication_lag{node="n1",peer="n2"} 0
raftex_peer_replication_lag{node="n1",peer="n3"} 8
# HELP raftex_peer_state Leader only: 1 for the peer's replication state (probe, replicate, snapshot).
# TYPE raftex_peer_state gauge
raftex_peer_state{node="n1",peer="n2",state="replicate"} 1
raftex_peer_state{node="n1",peer="n3",state="probe"} 1
`
	names := []string{"raftex_last_index", "raftex_peer_match_index", "raftex_peer_next_index", "raftex_peer_replication_lag", "raftex_peer_state"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(m.commitIndex); got != 10 {
		t.Errorf("commit = %v", got)
	}
	// No longer leader: the peers disappear.
	m.ObserveStatus(StatusSample{Commit: 11, Applied: 11, LastIndex: 12})
	if n, err := testutil.GatherAndCount(reg, names[1:]...); err != nil || n != 0 {
		t.Errorf("%d peer series left (%v)", n, err)
	}
}

func TestMetricsTotals(t *testing.T) {
	m, reg := newTestMetrics(t, 1)
	m.ObserveTransport(1000, 2000, 3)
	m.ObserveTransport(1500, 2500, 4) // totals, not deltas
	m.ObserveDroppedEvents(7)
	want := `
# HELP raftex_events_dropped_total Events lost because a subscriber was too slow.
# TYPE raftex_events_dropped_total counter
raftex_events_dropped_total{node="n1"} 7
# HELP raftex_transport_dropped_messages_total Messages the transport dropped (full queues, unreachable peers).
# TYPE raftex_transport_dropped_messages_total counter
raftex_transport_dropped_messages_total{node="n1"} 4
# HELP raftex_transport_received_bytes_total Bytes the transport received.
# TYPE raftex_transport_received_bytes_total counter
raftex_transport_received_bytes_total{node="n1"} 2500
# HELP raftex_transport_sent_bytes_total Bytes the transport sent.
# TYPE raftex_transport_sent_bytes_total counter
raftex_transport_sent_bytes_total{node="n1"} 1500
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "raftex_events_dropped_total",
		"raftex_transport_dropped_messages_total", "raftex_transport_received_bytes_total", "raftex_transport_sent_bytes_total"); err != nil {
		t.Error(err)
	}
}

func TestMetricsObserver(t *testing.T) {
	m, _ := newTestMetrics(t, 1)
	m.ObserveFsync(2*time.Millisecond, 10, 4096)
	m.ObserveFsync(3*time.Millisecond, 1, 100)
	m.ObserveApply(time.Millisecond, 10)
	m.ObserveProposal(true)
	m.ObserveProposal(true)
	m.ObserveProposal(false)
	m.ObserveSnapshot(false, time.Second, 1<<20)
	m.ObserveSnapshot(true, 2*time.Second, 1<<20)
	for name, c := range map[string]prometheus.Collector{
		"fsync durations": m.fsyncSeconds, "fsync batches": m.fsyncEntries,
		"apply durations": m.applySeconds, "snapshot durations": m.snapSeconds, "snapshot sizes": m.snapBytes,
	} {
		if n := testutil.CollectAndCount(c); n == 0 {
			t.Errorf("%s: no series", name)
		}
	}
	for name, tc := range map[string]struct {
		c    prometheus.Collector
		want float64
	}{
		"fsync bytes":      {m.fsyncBytes, 4196},
		"applied entries":  {m.appliedEntries, 10},
		"proposals ok":     {m.proposals.WithLabelValues("ok"), 2},
		"proposals failed": {m.proposals.WithLabelValues("failed"), 1},
	} {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("%s = %v, want %v", name, got, tc.want)
		}
	}
	want := `
# HELP raftex_fsync_batch_entries Log entries made durable by one fsync.
# TYPE raftex_fsync_batch_entries histogram
raftex_fsync_batch_entries_bucket{node="n1",le="1"} 1
raftex_fsync_batch_entries_bucket{node="n1",le="2"} 1
raftex_fsync_batch_entries_bucket{node="n1",le="4"} 1
raftex_fsync_batch_entries_bucket{node="n1",le="8"} 1
raftex_fsync_batch_entries_bucket{node="n1",le="16"} 2
raftex_fsync_batch_entries_bucket{node="n1",le="32"} 2
raftex_fsync_batch_entries_bucket{node="n1",le="64"} 2
raftex_fsync_batch_entries_bucket{node="n1",le="128"} 2
raftex_fsync_batch_entries_bucket{node="n1",le="256"} 2
raftex_fsync_batch_entries_bucket{node="n1",le="512"} 2
raftex_fsync_batch_entries_bucket{node="n1",le="1024"} 2
raftex_fsync_batch_entries_bucket{node="n1",le="2048"} 2
raftex_fsync_batch_entries_bucket{node="n1",le="+Inf"} 2
raftex_fsync_batch_entries_sum{node="n1"} 11
raftex_fsync_batch_entries_count{node="n1"} 2
`
	if err := testutil.CollectAndCompare(m.fsyncEntries, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestMetricsSeveralNodes: one registry holds every node's metrics, told
// apart by the node label; a second Metrics for the same node panics.
func TestMetricsSeveralNodes(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	a, b := NewMetrics(reg, 1), NewMetrics(reg, 2)
	a.ObserveEvent(raft.Event{Kind: raft.EventCommitAdvanced, Node: 1, Index: 4})
	b.ObserveEvent(raft.Event{Kind: raft.EventCommitAdvanced, Node: 1, Index: 4})
	if got := testutil.ToFloat64(b.commitIndex); got != 0 {
		t.Errorf("n2 took n1's event: commit %v", got)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering n1 twice did not panic")
		}
	}()
	NewMetrics(reg, 1)
}
