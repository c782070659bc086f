package raft

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// Linearizable reads without the log (thesis §6.4, ReadIndex) and under
// the leader's lease (thesis §6.4.1).

func hbResp(from, to, term, round uint64) Message {
	return Message{Type: MsgHeartbeatResp, From: from, To: to, Term: term, ReadRound: round}
}

func readStates(rs []ReadState) string {
	s := ""
	for _, r := range rs {
		s += fmt.Sprintf("%s@%d ", r.RequestCtx, r.Index)
	}
	return s
}

// Thesis §6.4: the leader records its commit index as the read index,
// confirms its leadership with one heartbeat round, and every read that
// arrived before the round's heartbeats left is served by it.
func TestRead_6_4_OneHeartbeatRoundServesEveryQueuedRead(t *testing.T) {
	n := leaderWithFollowers(t)
	n.ReadIndex([]byte("a"))
	n.ReadIndex([]byte("b"))
	expectMsgs(t, n.sent(),
		"Heartbeat 1→2 term=1 commit=1 round=1",
		"Heartbeat 1→3 term=1 commit=1 round=1")
	n.ReadIndex([]byte("c")) // after the round left: it needs the next
	expectMsgs(t, n.sent(),
		"Heartbeat 1→2 term=1 commit=1 round=2",
		"Heartbeat 1→3 term=1 commit=1 round=2")
	n.step(hbResp(3, 1, 1, 1))
	expectEq(t, "reads served by round 1", readStates(n.ready().ReadStates), "a@1 b@1 ")
	n.step(hbResp(2, 1, 1, 2))
	expectEq(t, "reads served by round 2", readStates(n.ready().ReadStates), "c@1 ")
}

// Thesis §6.4: the read index is the commit index when the read arrived,
// even if the commit index moves before the round is confirmed.
func TestRead_6_4_ReadIndexIsTheCommitIndexAtArrival(t *testing.T) {
	n := leaderWithFollowers(t)
	n.Propose([]byte("x"))
	n.ReadIndex([]byte("a"))
	n.ready()
	n.step(appResp(2, 1, 1, 2)) // commit moves to 2
	n.step(hbResp(2, 1, 1, 1))
	expectEq(t, "reads", readStates(n.ready().ReadStates), "a@1 ")
}

// Thesis §6.4: a new leader serves no read until an entry of its term (its
// no-op) commits: only then does it know the cluster's commit index.
func TestRead_6_4_NoReadBeforeTheNewLeadersNoopCommits(t *testing.T) {
	n := newTestNode(t, 1, storeWith(voters3, HardState{Term: 1, Commit: 1}, 1, 1))
	n.becomeLeaderAt(2) // no-op at 3
	n.ReadIndex([]byte("a"))
	expectMsgs(t, n.sent())
	n.step(appResp(2, 1, 2, 3)) // the no-op commits; the read joins a round
	expectEq(t, "commit", n.log.committed, 3)
	rd := n.ready()
	expectEq(t, "reads before the round", readStates(rd.ReadStates), "")
	n.step(hbResp(2, 1, 2, 1))
	expectEq(t, "reads", readStates(n.ready().ReadStates), "a@3 ")
}

// Thesis §6.4: a follower asks the leader for a read index and serves the
// read once it has applied through it.
func TestRead_6_4_FollowerReadsThroughTheLeader(t *testing.T) {
	c := newCluster(t, 3, noPreVote)
	c.campaign(1)
	c.propose(1, "x")
	c.settle()
	if err := c.nodes[2].ReadIndex([]byte("r")); err != nil {
		t.Fatal(err)
	}
	c.flush()
	expectEq(t, "request (termless, like a local one)", c.queued(), "ReadIndex 2→1 term=0\n")
	c.settle()
	c.tick(5)
	expectEq(t, "2's reads", readStates(c.reads[2]), "r@2 ")
	expectEq(t, "2 applied through the read index", c.smIndex[2] >= 2, true)
}

// A read asked of a node that knows no leader fails at once; a follower or
// candidate asked by another node refuses.
func TestRead_6_4_NoLeaderNoRead(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}), noPreVote)
	if err := n.ReadIndex([]byte("r")); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("ReadIndex without a leader: %v", err)
	}
	n.step(Message{Type: MsgReadIndex, From: 3, To: 2, Term: 1, Context: []byte("r")})
	n.Campaign()
	n.step(Message{Type: MsgReadIndex, From: 3, To: 2, Term: 2, Context: []byte("s")})
	rd := n.ready()
	var refusals []string
	for _, m := range rd.MessagesAfterPersist {
		if m.Type == MsgReadIndexResp {
			refusals = append(refusals, m.String())
		}
	}
	expectEq(t, "refusals", fmt.Sprint(refusals), "[ReadIndexReply 2→3 term=1 index=0 reject=true ReadIndexReply 2→3 term=2 index=0 reject=true]")
}

// Thesis §6.4: rounds that no majority confirms within an election timeout
// are dropped (the leader has likely lost its majority; callers retry).
func TestRead_6_4_UnconfirmedRoundsExpire(t *testing.T) {
	n := leaderWithFollowers(t, withPreVote)
	n.ReadIndex([]byte("a"))
	n.ready()
	n.tickN(31) // expiry is checked every election timeout
	if len(n.reads.rounds) > 0 && n.reads.rounds[0].seq == 1 {
		t.Fatalf("round 1 of tick 0 is still open at tick 31")
	}
	n.step(hbResp(2, 1, 1, 1))
	expectEq(t, "reads", readStates(n.ready().ReadStates), "")
}

// A single-voter cluster needs no round.
func TestRead_6_4_SingleVoterServesAtOnce(t *testing.T) {
	n := newTestNode(t, 1, storeWith([]uint64{1}, HardState{}))
	n.Campaign()
	n.ready()
	n.ready()
	n.ReadIndex([]byte("a"))
	expectEq(t, "reads", readStates(n.ready().ReadStates), "a@1 ")
}

// leaseLeader: leader 1 of three with LeaseRead, past its start-up lease,
// its followers caught up.
func leaseLeader(t *testing.T) *testNode {
	t.Helper()
	n := leaderWithFollowers(t, func(c *Config) { c.LeaseRead, c.CheckQuorum = true, true })
	n.tickN(5) // a heartbeat round, confirmed by 2
	n.step(hbResp(2, 1, 1, n.reads.seq))
	n.ready()
	return n
}

// Thesis §6.4.1: with LeaseRead, once a round that started at time t is
// confirmed, the leader answers ReadLease without a round until
// t + (ElectionTick − LeaseDriftTicks) × TickInterval: no other leader can
// be elected before then.
func TestRead_6_4_1_LeaseServesReadsWithoutARound(t *testing.T) {
	n := leaseLeader(t)
	n.ReadLease([]byte("a"))
	rd := n.ready()
	expectEq(t, "reads", readStates(rd.ReadStates), "a@1 ")
	expectMsgs(t, renderMsgs(rd.Messages))
	n.tickN(17 - 5) // the round began at 50 ms: the lease lasts until 50+(15-2)×10 ms
	n.ReadLease([]byte("b"))
	expectEq(t, "reads just before the lease runs out", readStates(n.ready().ReadStates), "b@1 ")
	n.tickN(1)
	n.ReadLease([]byte("c"))
	expectEq(t, "reads when the lease ran out", readStates(n.ready().ReadStates), "")
}

// Without LeaseRead the leader keeps no lease: ReadLease takes a round.
func TestRead_6_4_1_WithoutLeaseReadEveryReadTakesARound(t *testing.T) {
	n := leaderWithFollowers(t)
	n.tickN(5)
	n.step(hbResp(2, 1, 1, n.reads.seq))
	n.ready()
	n.ReadLease([]byte("a"))
	rd := n.ready()
	expectEq(t, "reads", readStates(rd.ReadStates), "")
	expectEq(t, "heartbeats", len(rd.Messages), 2)
}

// Thesis §6.4.1, §3.10: found by the property test
// (TestRegress_LeaseBrokenByTransfer). Once it sends TimeoutNow the
// leader's lease no longer holds; reads take a round until its term ends.
func TestRead_6_4_1_TransferRevokesTheLease(t *testing.T) {
	n := leaseLeader(t)
	if err := n.TransferLeadership(2); err != nil {
		t.Fatal(err)
	}
	expectMsgs(t, n.sent(), "TimeoutNow 1→2 term=1")
	n.ReadLease([]byte("a"))
	expectEq(t, "reads served from the lease", readStates(n.ready().ReadStates), "")
}

// Thesis §6.4.1, issue 10 bug 1: the lease is time on the leader's clock,
// not ticks. A leader whose goroutine stalled (GC pause, VM pause) resumes
// with its ticks barely moved; meanwhile the others may have elected a new
// leader and committed writes. Its lease ended on the clock, so ReadLease
// takes a heartbeat round instead of answering a stale read.
func TestRead_6_4_1_StalledLeaderLeaseEndsOnTheClock(t *testing.T) {
	n := leaseLeader(t)
	n.ReadLease([]byte("a"))
	expectEq(t, "reads within the lease", readStates(n.ready().ReadStates), "a@1 ")
	n.clock.now += 2 * time.Second // stalled: the clock ran, no tick came
	n.ReadLease([]byte("b"))
	rd := n.ready()
	expectEq(t, "reads after the stall", readStates(rd.ReadStates), "")
	expectEq(t, "heartbeats of the round it takes", len(rd.Messages), 2)
}

// Ticks only measure liveness: many ticks in little time (a ticker that
// delivers a backlog) do not end the lease early, and do not extend it.
func TestRead_6_4_1_LeaseIgnoresTickCount(t *testing.T) {
	n := leaseLeader(t)
	for range n.cfg.ElectionTick - 1 { // past the lease in ticks, short of CheckQuorum
		n.Tick() // no time passes
	}
	n.ReadLease([]byte("a"))
	expectEq(t, "reads after ticks in no time", readStates(n.ready().ReadStates), "a@1 ")
}

// MaxPendingReads bounds what a leader holds for reads: its own requests
// beyond it fail with ErrReadDropped, a follower's are dropped (they time
// out there), and a confirmed round makes room again.
func TestRead_6_4_PendingReadsAreBounded(t *testing.T) {
	n := leaderWithFollowers(t, func(c *Config) { c.MaxPendingReads = 2 })
	expectEq(t, "first read", n.ReadIndex([]byte("a")), nil)
	n.step(Message{Type: MsgReadIndex, From: 2, Term: 1, Context: []byte("f")})
	expectEq(t, "read past the bound", n.ReadIndex([]byte("b")), ErrReadDropped)
	n.step(Message{Type: MsgReadIndex, From: 3, Term: 1, Context: []byte("g")})
	rd := n.ready()
	expectEq(t, "heartbeats of the round", len(rd.Messages), 2)
	n.step(hbResp(2, 1, 1, n.reads.seq))
	rd = n.ready()
	expectEq(t, "reads served", readStates(rd.ReadStates), "a@1 ")
	expectMsgs(t, renderMsgs(rd.Messages), "ReadIndexReply 1→2 term=1 index=1 reject=false")
	expectEq(t, "read after the round", n.ReadIndex([]byte("c")), nil)
}
