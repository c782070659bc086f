package raft

import (
	"slices"
	"strings"
	"testing"
)

// Leader election (§5.2), the election restriction (§5.4.1) and the
// durability of votes (§5.1), rule by rule. Each test is a transcript:
// given a core in some state, these messages in, expect these messages out
// and this state.

var voters3 = []uint64{1, 2, 3}

func vote(from, to, term, lastIndex, lastTerm uint64) Message {
	return Message{Type: MsgVote, From: from, To: to, Term: term, Index: lastIndex, LogTerm: lastTerm}
}

func grant(from, to, term uint64) Message {
	return Message{Type: MsgVoteResp, From: from, To: to, Term: term}
}

// §5.2: election timeouts are drawn from [ElectionTick, 2*ElectionTick),
// anew at every reset, and a follower campaigns when its timeout elapses.
func TestElection_5_2_RandomizedTimeoutInElectionTickTo2ElectionTick(t *testing.T) {
	n := newTestNode(t, 1, storeWith(voters3, HardState{}), noPreVote)
	seen := map[int]bool{}
	for range 200 {
		n.resetTimers()
		to := n.randomizedElectionTimeout
		if to < 15 || to >= 30 {
			t.Fatalf("timeout %d outside [15, 30)", to)
		}
		seen[to] = true
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct timeouts in 200 draws", len(seen))
	}

	n.becomeFollower(0, None)
	to := n.randomizedElectionTimeout
	n.tickN(to - 1)
	expectEq(t, "role one tick before the timeout", n.role, Follower)
	n.Tick()
	expectEq(t, "role at the timeout", n.role, Candidate)
}

// §5.2: a candidate increments its term, votes for itself and sends
// RequestVote, with its last entry (§5.4.1), to every other voter — after
// persisting term and vote (§5.1).
func TestElection_5_2_CandidateVotesForItselfAndRequestsVotes(t *testing.T) {
	n := newTestNode(t, 1, storeWith(voters3, HardState{Term: 2}, 1, 2), noPreVote)
	n.Campaign()
	rd := n.ready()
	expectEq(t, "role", n.role, Candidate)
	expectEq(t, "hard state", rd.HardState, HardState{Term: 3, Vote: 1})
	expectMsgs(t, renderMsgs(rd.Messages))
	expectMsgs(t, renderMsgs(rd.MessagesAfterPersist),
		"RequestVote 1→2 term=3 last=2/2",
		"RequestVote 1→3 term=3 last=2/2")
}

// §5.2: votes from a majority win; the new leader appends its no-op and
// replicates it (§8).
func TestElection_5_2_MajorityOfVotesWins(t *testing.T) {
	n := newTestNode(t, 1, storeWith([]uint64{1, 2, 3, 4, 5}, HardState{}), noPreVote)
	n.Campaign()
	n.ready()
	n.step(grant(2, 1, 1))
	expectEq(t, "role with 2 of 5 votes", n.role, Candidate)
	n.step(grant(3, 1, 1))
	expectEq(t, "role with 3 of 5 votes", n.role, Leader)
	expectMsgs(t, n.sent(),
		"AppendEntries 1→2 term=1 prev=0/0 entries=1 commit=0",
		"AppendEntries 1→3 term=1 prev=0/0 entries=1 commit=0",
		"AppendEntries 1→4 term=1 prev=0/0 entries=1 commit=0",
		"AppendEntries 1→5 term=1 prev=0/0 entries=1 commit=0")
	ents, _ := n.st.Entries(1, 2, 1<<20)
	expectEq(t, "entry 1", ents[0].Type, EntryNoop)
}

// §5.2: with a majority against it, a candidate returns to follower and
// waits for its next timeout.
func TestElection_5_2_MajorityOfRejectionsLoses(t *testing.T) {
	n := newTestNode(t, 1, storeWith(voters3, HardState{}), noPreVote)
	n.Campaign()
	n.ready()
	n.step(Message{Type: MsgVoteResp, From: 2, To: 1, Term: 1, Reject: true})
	expectEq(t, "role with one rejection", n.role, Candidate)
	n.step(Message{Type: MsgVoteResp, From: 3, To: 1, Term: 1, Reject: true})
	expectEq(t, "role", n.role, Follower)
	expectEq(t, "term", n.term, 1)
}

// §5.2: each server votes for at most one candidate in a term, first come
// first served; it repeats its vote to the same candidate.
func TestElection_5_2_OneVotePerTermFirstComeFirstServed(t *testing.T) {
	n := newTestNode(t, 3, storeWith(voters3, HardState{}), noPreVote)
	n.step(vote(1, 3, 1, 0, 0))
	n.step(vote(2, 3, 1, 0, 0))
	n.step(vote(1, 3, 1, 0, 0)) // a retransmission
	rd := n.ready()
	expectEq(t, "hard state", rd.HardState, HardState{Term: 1, Vote: 1})
	expectMsgs(t, renderMsgs(rd.MessagesAfterPersist),
		"RequestVoteReply 3→1 term=1 granted=true",
		"RequestVoteReply 3→2 term=1 granted=false",
		"RequestVoteReply 3→1 term=1 granted=true")
}

// §5.2: a candidate that receives AppendEntries from a leader of its own
// term recognizes it and returns to follower.
func TestElection_5_2_CandidateAcceptsLeaderOfItsTerm(t *testing.T) {
	n := newTestNode(t, 1, storeWith(voters3, HardState{}), noPreVote)
	n.Campaign()
	n.ready()
	n.step(Message{Type: MsgApp, From: 2, To: 1, Term: 1})
	expectEq(t, "role", n.role, Follower)
	expectEq(t, "leader", n.lead, 2)
	expectMsgs(t, n.sent(), "AppendEntriesReply 1→2 term=1 index=0")
}

// §5.2: a split vote ends in a new election in a new term, with a fresh
// randomized timeout.
func TestElection_5_2_SplitVoteRestartsWithFreshTimeout(t *testing.T) {
	n := newTestNode(t, 1, storeWith([]uint64{1, 2, 3, 4}, HardState{}), noPreVote)
	n.Campaign()
	n.ready()
	n.step(grant(2, 1, 1))
	n.step(Message{Type: MsgVoteResp, From: 3, To: 1, Term: 1, Reject: true})
	expectEq(t, "role after a 2-2 split", n.role, Candidate)
	first := n.randomizedElectionTimeout
	n.tickN(first)
	expectEq(t, "role", n.role, Candidate)
	expectEq(t, "term", n.term, 2)
	expectEq(t, "ticks elapsed in the new election", n.electionElapsed, 0)
	draws := []int{first}
	for range 5 {
		n.tickN(n.randomizedElectionTimeout)
		draws = append(draws, n.randomizedElectionTimeout)
	}
	slices.Sort(draws)
	if draws = slices.Compact(draws); len(draws) < 2 {
		t.Fatalf("every election drew the same timeout %v", draws)
	}
}

// §5.1: a message with a higher term makes any node adopt the term and
// become a follower; AppendEntries also names the leader.
func TestElection_5_1_HigherTermMakesFollower(t *testing.T) {
	for _, typ := range []MessageType{MsgApp, MsgHeartbeat, MsgVoteResp, MsgAppResp} {
		n := newTestNode(t, 1, storeWith(voters3, HardState{}), noPreVote)
		n.becomeLeaderAt(2)
		n.step(Message{Type: typ, From: 2, To: 1, Term: 5})
		expectEq(t, typ.String()+": role", n.role, Follower)
		expectEq(t, typ.String()+": term", n.term, 5)
		wantLead := None
		if typ == MsgApp || typ == MsgHeartbeat {
			wantLead = 2
		}
		expectEq(t, typ.String()+": leader", n.lead, wantLead)
	}
}

// §5.1: a request with a stale term is rejected. A stale RequestVote gets
// no vote; a stale AppendEntries is answered with the current term so a
// deposed leader learns it (needed with PreVote and CheckQuorum, whose
// nodes never send it a higher term otherwise).
func TestElection_5_1_StaleTermIsRejected(t *testing.T) {
	n := newTestNode(t, 1, storeWith(voters3, HardState{Term: 5}))
	n.step(vote(2, 1, 4, 9, 4))
	n.step(Message{Type: MsgApp, From: 2, To: 1, Term: 4, Index: 0})
	n.step(Message{Type: MsgPreVote, From: 3, To: 1, Term: 4})
	expectEq(t, "term", n.term, 5)
	expectMsgs(t, n.sent(),
		"AppendEntriesReply 1→2 term=5 index=0",
		"PreVoteReply 1→3 term=5 granted=false")
}

// §5.4.1: a vote is granted only if the candidate's log is at least as
// up-to-date: a later last term, or the same last term and a last index
// at least as large.
func TestVote_5_4_1_CandidateLogMustBeAtLeastAsUpToDate(t *testing.T) {
	// The voter's log ends at index 3, term 2.
	for _, tc := range []struct {
		lastIndex, lastTerm uint64
		granted             bool
	}{
		{3, 2, true},  // identical
		{4, 2, true},  // same term, longer
		{1, 3, true},  // later term, shorter
		{2, 2, false}, // same term, shorter
		{9, 1, false}, // longer, earlier term
	} {
		n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 2}, 1, 1, 2), noPreVote)
		n.step(vote(1, 2, 3, tc.lastIndex, tc.lastTerm))
		rd := n.ready()
		got := !rd.MessagesAfterPersist[0].Reject
		if got != tc.granted {
			t.Errorf("candidate log ending %d/%d: granted=%t, want %t", tc.lastIndex, tc.lastTerm, got, tc.granted)
		}
		expectEq(t, "term", n.term, 3) // the term is adopted either way
	}
}

// §5.1: the vote is persisted before the reply leaves: the reply is in
// MessagesAfterPersist and HardState.Vote is in the same Ready.
func TestVote_5_1_VoteIsPersistedBeforeTheReply(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{}), noPreVote)
	n.step(vote(1, 2, 1, 0, 0))
	rd := n.Ready()
	expectEq(t, "hard state", rd.HardState, HardState{Term: 1, Vote: 1})
	expectMsgs(t, renderMsgs(rd.Messages))
	expectMsgs(t, renderMsgs(rd.MessagesAfterPersist), "RequestVoteReply 2→1 term=1 granted=true")
}

// voteCrashScenario: in a 3-node cluster, 1 and 2 campaign in term 1. Node
// 3 grants 1's request, then crashes after taking its Ready but before
// persisting it; restarted, it is asked by 2. Durability before speech
// (§5.1) is what keeps 1 and 2 from both winning term 1.
func voteCrashScenario(t tb) *cluster {
	c := newCluster(t, 3, noPreVote)
	c.nodes[1].Campaign()
	c.nodes[2].Campaign()
	c.flush()
	reqs := c.take(isType(MsgVote))
	for _, m := range reqs {
		if m.From == 1 && m.To == 3 {
			c.deliverMsg(m)
		}
	}
	c.takeReady(3) // sends what may be sent before persisting
	c.restart(3)   // crash before persisting: the vote for 1 is lost
	for _, m := range reqs {
		if m.From == 2 && m.To == 3 {
			c.deliverMsg(m)
		}
	}
	c.settle()
	return c
}

func TestVote_5_1_CrashBeforePersistingForgetsAnUnsentVote(t *testing.T) {
	c := voteCrashScenario(t)
	expectEq(t, "leader", c.leader(), 2)
	expectEq(t, "role of 1, which heard from leader 2", c.nodes[1].role, Follower)
	expectEq(t, "node 3's persisted vote", c.stores[3].HardState(), HardState{Term: 1, Vote: 2, Commit: 1})
}

// Figure 2, followers: the election timer restarts when the follower
// grants a vote or hears AppendEntries from the current leader; only a
// full timeout without either makes it a candidate.
func TestElection_5_2_VoteOrLeaderMessageRestartsTheElectionTimer(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}), noPreVote)
	to := n.randomizedElectionTimeout
	n.tickN(to - 1)
	n.step(vote(1, 2, 1, 0, 0)) // granted, in the same term
	n.tickN(to - 1)
	expectEq(t, "role after granting a vote", n.role, Follower)
	n.step(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 1})
	n.tickN(to - 1)
	expectEq(t, "role after hearing from the leader", n.role, Follower)
	n.tickN(1)
	expectEq(t, "role after a silent timeout", n.role, Candidate)
}

// Figure 2, leaders: during idle periods the leader sends heartbeats every
// HeartbeatTick, which keep followers from campaigning (§5.2).
func TestElection_5_2_IdleLeaderSendsHeartbeats(t *testing.T) {
	n := leaderWithFollowers(t)
	n.tickN(4)
	expectMsgs(t, n.sent())
	n.Tick()
	expectMsgs(t, n.sent(),
		"Heartbeat 1→2 term=1 commit=1 round=1",
		"Heartbeat 1→3 term=1 commit=1 round=1")
	c := newCluster(t, 3, noPreVote)
	c.campaign(1)
	c.tick(200)
	expectEq(t, "leader after 200 idle ticks", c.leader(), 1)
	expectEq(t, "term", c.nodes[2].term, 1)
}

// singleVoterCrashScenario: a single voter with a learner wins its
// election at once (it polls only itself), proposes x, hands its Ready
// out (sending what may leave before the write) and crashes before the
// write. Restarted in the old term, it wins the same term again and
// proposes y at the same index. Durability before speech (§5.1) keeps x
// from ever reaching the learner: otherwise two different entries would
// share index 2 and term 1 (Log Matching, Figure 3).
func singleVoterCrashScenario(t tb) *cluster {
	m := Membership{Voters: []uint64{1}, Learners: []uint64{2}}
	c := newClusterWithStores(t, []uint64{1, 2}, func(uint64) *MemoryStorage { return NewMemoryStorage(m) }, noPreVote)
	c.nodes[1].Campaign()
	c.propose(1, "x")
	c.takeReady(1)
	c.restart(1) // crash before the write: term 1 and x are lost
	c.deliver()
	c.nodes[1].Campaign()
	c.propose(1, "y")
	c.settle()
	return c
}

// §5.1, issue 10 bug 3: no message of a new term leaves before that term
// and the vote are durable, for every configuration: the single voter's
// AppendEntries to its learner wait for its write like a vote reply.
func TestElection_5_1_SingleVoterSpeaksOnlyOnceItsTermIsDurable(t *testing.T) {
	st := NewMemoryStorage(Membership{Voters: []uint64{1}, Learners: []uint64{2}})
	n := newTestNode(t, 1, st, noPreVote)
	n.Campaign()
	expectEq(t, "role", n.role, Leader)
	rd := n.Ready()
	expectEq(t, "hard state", rd.HardState, HardState{Term: 1, Vote: 1})
	expectMsgs(t, renderMsgs(rd.Messages))
	expectMsgs(t, renderMsgs(rd.MessagesAfterPersist), "AppendEntries 1→2 term=1 prev=0/0 entries=1 commit=0")
	expectEq(t, "messages while the term is being written", len(n.TakeMessages()), 0)
	if err := st.Append(rd.Entries); err != nil {
		t.Fatal(err)
	}
	st.SetHardState(rd.HardState)
	n.Advance(rd)
	// Durable now: the leader's messages leave before its writes again
	// (thesis §10.2.1).
	n.step(appResp(2, 1, 1, 1))
	if _, _, err := n.Propose([]byte("x")); err != nil {
		t.Fatal(err)
	}
	expectMsgs(t, renderMsgs(n.Ready().Messages),
		"AppendEntries 1→2 term=1 prev=1/1 entries=0 commit=1", // the commit of the no-op
		"AppendEntries 1→2 term=1 prev=1/1 entries=1 commit=1")

	c := singleVoterCrashScenario(t)
	c.tick(3)
	expectEq(t, "learner applied", strings.Join(c.appliedData(2), ","), "y")
}
