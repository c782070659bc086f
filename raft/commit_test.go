package raft

import (
	"errors"
	"fmt"
	"testing"
)

// Commitment (§5.3, §5.4.2), the new leader's no-op (§8), the leader's
// write in parallel with replication (thesis §10.2.1), the disk-stall
// step-down, and the proposal path.

// §5.3: the leader commits the highest index stored on a majority: the
// median of the match indexes (the leader's own counts once durable).
func TestCommit_5_3_CommitIndexIsTheMajorityOfMatchIndexes(t *testing.T) {
	n := newTestNode(t, 1, storeWith([]uint64{1, 2, 3, 4, 5}, HardState{}))
	n.becomeLeaderAt(1)
	for i := range 4 {
		n.Propose([]byte{byte(i)})
	}
	n.ready() // the leader's log, 1..5, is durable
	n.step(appResp(2, 1, 1, 5))
	expectEq(t, "commit with matches 5 5 0 0 0", n.log.committed, 0)
	n.step(appResp(3, 1, 1, 3))
	expectEq(t, "commit with matches 5 5 3 0 0", n.log.committed, 3)
	n.step(appResp(4, 1, 1, 4))
	expectEq(t, "commit with matches 5 5 3 4 0", n.log.committed, 4)
}

// §5.4.2: entries of earlier terms are never committed by counting
// replicas; they commit when an entry of the current term (the no-op)
// does.
func TestCommit_5_4_2_OlderTermEntryIsNotCommittedByCounting(t *testing.T) {
	n := newTestNode(t, 1, storeWith(voters3, HardState{Term: 2}, 1, 2))
	n.becomeLeaderAt(3) // log 1 2 3: entry 3 is its no-op
	n.step(appResp(2, 1, 3, 2))
	expectEq(t, "commit with entry 2 (term 2) on a majority", n.log.committed, 0)
	n.step(appResp(2, 1, 3, 3))
	expectEq(t, "commit with entry 3 (term 3) on a majority", n.log.committed, 3)
}

// §8: a new leader appends an empty entry of its term at once, so entries
// of earlier terms commit without waiting for a client.
func TestCommit_8_NewLeaderAppendsANoop(t *testing.T) {
	c := newCluster(t, 3, noPreVote)
	c.campaign(1)
	for _, id := range c.ids {
		applied := c.applied[id]
		if len(applied) != 1 || applied[0].Type != EntryNoop || applied[0].Term != 1 {
			t.Fatalf("node %d applied %+v, want the no-op of term 1", id, applied)
		}
	}
}

// Figure 3: the commit index never decreases, whatever a delayed message
// says.
func TestCommit_5_3_CommitIndexNeverDecreases(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1, Commit: 3}, 1, 1, 1))
	n.step(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 1, Commit: 1})
	n.step(app(1, 2, 1, 3, 1, 2))
	expectEq(t, "commit", n.log.committed, 3)
}

// Followers learn the commit index from AppendEntries and heartbeats; a
// heartbeat never tells a follower to commit past what it is known to hold.
func TestCommit_5_3_FollowersLearnTheCommitIndex(t *testing.T) {
	c := newCluster(t, 3, noPreVote)
	c.campaign(1)
	c.isolate(3)
	c.propose(1, "a")
	c.settle()
	expectEq(t, "leader's commit", c.nodes[1].log.committed, 2)
	// The leader's commit moved, so it sent an AppendEntries carrying it.
	expectEq(t, "2's commit", c.nodes[2].log.committed, 2)
	c.heal()
	c.flush()
	c.nodes[1].bcastHeartbeat(0)
	hb := c.take(func(m Message) bool { return m.Type == MsgHeartbeat && m.To == 3 })
	expectEq(t, "commit in the heartbeat to 3, which lacks entry 2", hb[0].Commit, 1)
	c.tick(5) // the next heartbeat's reply tells the leader 3 lags
	expectEq(t, "3's commit once repaired", c.nodes[3].log.committed, 2)

	// A follower that holds the entries learns the commit from a heartbeat.
	f := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}, 1, 1))
	f.step(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 1, Commit: 2})
	expectEq(t, "commit from a heartbeat", f.log.committed, 2)
	expectEq(t, "3's applied data", fmt.Sprint(c.appliedData(3)), "[a]")
}

// Thesis §10.2.1: the leader's AppendEntries are in Ready.Messages, to be
// sent while its own write of the same entries is in flight; a
// follower's reply waits for its write (MessagesAfterPersist).
func TestCommit_10_2_1_LeaderSendsBeforeItsOwnWriteIsDurable(t *testing.T) {
	n := leaderWithFollowers(t)
	n.Propose([]byte("a"))
	rd := n.Ready()
	expectEq(t, "entries to persist", len(rd.Entries), 1)
	expectMsgs(t, renderMsgs(rd.Messages),
		"AppendEntries 1→2 term=1 prev=1/1 entries=1 commit=1",
		"AppendEntries 1→3 term=1 prev=1/1 entries=1 commit=1")
	expectMsgs(t, renderMsgs(rd.MessagesAfterPersist))
}

// Thesis §10.2.1: the leader counts itself toward commit only once its
// write is durable (Advance); a majority of followers is enough without it.
func TestCommit_10_2_1_LeaderCountsItselfOnlyAfterAdvance(t *testing.T) {
	n := leaderWithFollowers(t)
	n.Propose([]byte("a"))
	rd := n.Ready() // writing entry 2, not yet durable
	n.step(appResp(2, 1, 1, 2))
	expectEq(t, "commit with 2 and the leader's unfinished write", n.log.committed, 1)
	if err := n.st.Append(rd.Entries); err != nil {
		t.Fatal(err)
	}
	n.Advance(rd)
	expectEq(t, "commit once the leader's write is durable", n.log.committed, 2)

	n.Propose([]byte("b"))
	n.Ready() // the leader's write of entry 3 stalls
	n.step(appResp(2, 1, 1, 3), appResp(3, 1, 1, 3))
	expectEq(t, "commit with both followers", n.log.committed, 3)
}

// Thesis §10.2.1: while the leader's write is in flight, TakeMessages
// hands out its heartbeats and the AppendEntries of entries proposed
// since, so a slow disk delays neither; a follower's replies never come
// out before its write is durable.
func TestCommit_10_2_1_TakeMessagesWhileTheWriteIsInFlight(t *testing.T) {
	n := leaderWithFollowers(t)
	n.Propose([]byte("a"))
	rd := n.Ready() // entry 2 being written
	n.Propose([]byte("b"))
	for range 5 {
		n.Tick() // one heartbeat interval
	}
	expectMsgs(t, renderMsgs(n.TakeMessages()),
		"Heartbeat 1→2 term=1 commit=1 round=1",
		"Heartbeat 1→3 term=1 commit=1 round=1",
		"AppendEntries 1→2 term=1 prev=2/1 entries=1 commit=1",
		"AppendEntries 1→3 term=1 prev=2/1 entries=1 commit=1")
	expectMsgs(t, renderMsgs(n.TakeMessages()))
	if err := n.st.Append(rd.Entries); err != nil {
		t.Fatal(err)
	}
	n.Advance(rd)
	rd = n.Ready()
	expectEq(t, "entries of the next write", len(rd.Entries), 1)
	expectMsgs(t, renderMsgs(rd.Messages))

	f := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}, 1, 1))
	f.step(Message{Type: MsgApp, From: 1, To: 2, Term: 1, Index: 1, LogTerm: 1, Entries: []Entry{{Term: 1, Index: 2}}})
	expectMsgs(t, renderMsgs(f.TakeMessages()))
}

// A leader whose Ready with entries is not advanced for an election
// timeout has a stalled disk: it cannot make progress, so it steps down
// and lets a healthy node lead.
func TestStall_10_2_1_LeaderStepsDownWhenItsDiskStalls(t *testing.T) {
	n := leaderWithFollowers(t)
	n.Propose([]byte("a"))
	rd := n.Ready()
	for range 14 {
		n.Tick()
		n.step(Message{Type: MsgHeartbeatResp, From: 2, To: 1, Term: 1})
	}
	expectEq(t, "role after 14 ticks of a stalled write", n.role, Leader)
	n.Tick()
	expectEq(t, "role after 15", n.role, Follower)
	n.Advance(rd)
	var reason string
	for _, e := range n.Ready().Events {
		if e.Kind == EventStepDown {
			reason = e.Reason
		}
	}
	expectEq(t, "reason", reason, "disk stall: no fsync for an election timeout")
}

// A Ready with nothing to persist is not a disk write: holding it does not
// count as a stall.
func TestStall_10_2_1_ReadyWithoutWritesIsNotAStall(t *testing.T) {
	n := leaderWithFollowers(t)
	n.step(Message{Type: MsgHeartbeatResp, From: 2, To: 1, Term: 1})
	rd := n.Ready()
	if rd.MustSync() {
		t.Fatalf("Ready %+v must sync", rd)
	}
	for range 30 {
		n.Tick()
		n.step(Message{Type: MsgHeartbeatResp, From: 2, To: 1, Term: 1})
	}
	expectEq(t, "role", n.role, Leader)
}

// Proposals go to the leader only; a follower names the leader it knows
// (§8: clients are redirected).
func TestPropose_8_FollowerRedirectsToTheLeader(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}))
	_, _, err := n.Propose([]byte("x"))
	expectEq(t, "error without a leader", err.Error(), "raft: not leader (no leader known)")
	n.step(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 1})
	_, _, err = n.Propose([]byte("x"))
	var nl *NotLeaderError
	if !errors.As(err, &nl) || nl.Leader != 1 || !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Propose on a follower: %v", err)
	}
	expectEq(t, "error", err.Error(), "raft: not leader (leader is 1)")
}

// Propose returns the entry's index and term; the entry is committed when
// CommittedEntries carries that index with that term.
func TestPropose_5_3_ReturnsIndexAndTerm(t *testing.T) {
	c := newCluster(t, 3, noPreVote)
	c.campaign(1)
	i, term := c.propose(1, "a")
	expectEq(t, "index", i, 2)
	expectEq(t, "term", term, 1)
	c.settle()
	c.tick(5)
	e := c.applied[3][1]
	expectEq(t, "applied entry", fmt.Sprintf("%d/%d %s", e.Index, e.Term, e.Data), "2/1 a")
}

// MaxUncommittedBytes bounds what a leader holds uncommitted; beyond it
// proposals are dropped until entries commit and are handed out to apply.
func TestPropose_MaxUncommittedBytesDropsProposals(t *testing.T) {
	n := leaderWithFollowers(t, func(c *Config) { c.MaxUncommittedBytes = 3 * (entryOverhead + 10) })
	for i := range 3 {
		if _, _, err := n.Propose(make([]byte, 10)); err != nil {
			t.Fatalf("proposal %d: %v", i, err)
		}
	}
	if _, _, err := n.Propose(make([]byte, 10)); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("proposal past the limit: %v", err)
	}
	n.ready()
	n.step(appResp(2, 1, 1, 4))
	expectEq(t, "commit", n.log.committed, 4)
	n.ready() // the committed entries are handed out to apply
	if _, _, err := n.Propose(make([]byte, 10)); err != nil {
		t.Fatalf("proposal after the commit: %v", err)
	}
}

// Figure 2, all servers: committed entries are applied in log order, each
// once. They are handed out once durable here: entries that arrive with
// their commit are applied from the Ready after the one that writes them.
func TestApply_5_3_CommittedEntriesAreAppliedInOrderOnce(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}))
	n.step(app(1, 2, 1, 0, 0, 2, 1, 1, 1))
	rd := n.ready()
	expectEq(t, "applied while being written", len(rd.CommittedEntries), 0)
	rd = n.ready()
	expectEq(t, "applied once durable", fmt.Sprint(len(rd.CommittedEntries), rd.CommittedEntries[0].Index), "2 1")
	expectEq(t, "applied index", n.log.applied, 2)
	n.step(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 1, Commit: 3})
	rd = n.ready()
	expectEq(t, "applied next", fmt.Sprint(len(rd.CommittedEntries), rd.CommittedEntries[0].Index), "1 3")
	n.step(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 1, Commit: 3})
	expectEq(t, "applied again", len(n.ready().CommittedEntries), 0)
}

// Issue 10 item 4: a slow state machine holds committed entries back in
// the log, not in memory. The core hands out committed entries while
// those not yet reported applied (AppliedTo) stay under MaxApplyingBytes,
// and hands out more as the state machine reports progress.
func TestApply_MaxApplyingBytesHoldsCommittedEntriesBack(t *testing.T) {
	const size = entryOverhead + 3 // entries carry "i/t"
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}), func(c *Config) { c.MaxApplyingBytes = 2*size + 1 })
	n.step(app(1, 2, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1))
	n.ready() // the entries are durable
	n.step(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 1, Commit: 6})
	first := n.Ready()
	expectEq(t, "handed out first", len(first.CommittedEntries), 2)
	n.Advance(first)
	second := n.Ready()
	expectEq(t, "handed out while below the cap", len(second.CommittedEntries), 1)
	n.Advance(second)
	expectEq(t, "has more while none is applied", n.HasReady(), false)
	n.AppliedTo(2)
	expectEq(t, "has more once the first batch is applied", n.HasReady(), true)
	third := n.Ready()
	expectEq(t, "handed out after AppliedTo(2)", fmt.Sprint(len(third.CommittedEntries), third.CommittedEntries[0].Index), "1 4")
	n.Advance(third)
	n.AppliedTo(9) // past what was handed out: counts as 4
	expectEq(t, "applied", n.Status().Applied, 4)
	expectEq(t, "handed out last", fmt.Sprint(len(n.Ready().CommittedEntries)), "2")
}

// Issue 10 item 4: on the leader a state machine that falls behind stops
// proposals (through MaxUncommittedBytes, which counts until entries are
// handed out), while heartbeats go on.
func TestApply_SlowStateMachineStopsProposalsNotHeartbeats(t *testing.T) {
	n := leaderWithFollowers(t, func(c *Config) {
		c.MaxApplyingBytes = entryOverhead + 10
		c.MaxUncommittedBytes = 3 * (entryOverhead + 10)
	})
	applied := n.Status().Applied
	for i := range 2 {
		if _, _, err := n.Propose(make([]byte, 10)); err != nil {
			t.Fatalf("proposal %d: %v", i, err)
		}
	}
	n.Ready() // handed out: nothing reported applied from here on
	n.Advance(Ready{})
	n.step(appResp(2, 1, 1, 3))
	for range 4 {
		rd := n.Ready()
		n.Advance(rd)
	}
	if _, _, err := n.Propose(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.Propose(make([]byte, 10)); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("proposal while the state machine lags: %v", err)
	}
	n.tickN(n.cfg.HeartbeatTick)
	heartbeats := 0
	for _, m := range n.Ready().Messages {
		if m.Type == MsgHeartbeat {
			heartbeats++
		}
	}
	expectEq(t, "heartbeats while the state machine lags", heartbeats, 2)
	expectEq(t, "applied", n.Status().Applied, applied)
}

// Ready rule 1: committed entries are handed out only once durable here,
// so a leader under load applies one batch while its next is written:
// the Ready that writes b carries a, committed, to apply at once.
func TestApply_DurableCommittedEntriesApplyWhileTheNextIsWritten(t *testing.T) {
	n := leaderWithFollowers(t)
	if _, _, err := n.Propose([]byte("a")); err != nil {
		t.Fatal(err)
	}
	n.ready() // a is durable
	n.step(appResp(2, 1, 1, 2))
	if _, _, err := n.Propose([]byte("b")); err != nil {
		t.Fatal(err)
	}
	rd := n.Ready()
	expectEq(t, "entries being written", fmt.Sprint(len(rd.Entries), rd.Entries[0].Index), "1 3")
	expectEq(t, "committed entries to apply at once", fmt.Sprint(len(rd.CommittedEntries), rd.CommittedEntries[0].Index), "1 2")
	expectEq(t, "must sync", rd.MustSync(), true)
}
