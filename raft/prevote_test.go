package raft

import "testing"

// PreVote (thesis §9.6), CheckQuorum (thesis §6.2) and the leader lease
// that keeps followers from voting while they hear from a leader (thesis
// §4.2.3).

func withPreVote(c *Config)     { c.PreVote, c.CheckQuorum = true, false }
func withCheckQuorum(c *Config) { c.PreVote, c.CheckQuorum = false, true }

// Thesis §9.6: a pre-candidate asks for votes for term+1 without raising
// its own term or voting; nothing needs persisting.
func TestPreVote_9_6_PreCandidateKeepsItsTermAndVote(t *testing.T) {
	n := newTestNode(t, 1, storeWith(voters3, HardState{Term: 2, Vote: 3}, 1, 2), withPreVote)
	n.Campaign()
	rd := n.ready()
	expectEq(t, "role", n.role, PreCandidate)
	expectEq(t, "term", n.term, 2)
	expectEq(t, "vote", n.vote, 3)
	expectEq(t, "hard state to persist", rd.HardState, HardState{})
	expectMsgs(t, renderMsgs(rd.MessagesAfterPersist),
		"PreVote 1→2 term=3 last=2/2",
		"PreVote 1→3 term=3 last=2/2")
}

// Thesis §9.6: a voter grants a pre-vote, answering in the asked term,
// without changing its own term or vote.
func TestPreVote_9_6_VoterGrantsWithoutChangingState(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 2, Vote: 3}, 1, 2), withPreVote)
	n.step(Message{Type: MsgPreVote, From: 1, To: 2, Term: 3, Index: 2, LogTerm: 2})
	rd := n.ready()
	expectEq(t, "term", n.term, 2)
	expectEq(t, "vote", n.vote, 3)
	expectEq(t, "hard state to persist", rd.HardState, HardState{})
	expectMsgs(t, renderMsgs(rd.MessagesAfterPersist), "PreVoteReply 2→1 term=3 granted=true")
}

// Thesis §9.6: with a majority of pre-votes the node holds a real
// election in term+1.
func TestPreVote_9_6_WonPreVoteStartsTheElection(t *testing.T) {
	n := newTestNode(t, 1, storeWith(voters3, HardState{Term: 2}, 1, 2), withPreVote)
	n.Campaign()
	n.ready()
	n.step(Message{Type: MsgPreVoteResp, From: 2, To: 1, Term: 3})
	expectEq(t, "role", n.role, Candidate)
	expectEq(t, "term", n.term, 3)
	rd := n.ready()
	expectEq(t, "hard state", rd.HardState, HardState{Term: 3, Vote: 1})
	expectMsgs(t, renderMsgs(rd.MessagesAfterPersist),
		"RequestVote 1→2 term=3 last=2/2",
		"RequestVote 1→3 term=3 last=2/2")
}

// Thesis §9.6: a rejection carrying a higher term makes the pre-candidate
// a follower of that term.
func TestPreVote_9_6_RejectionWithHigherTermMakesFollower(t *testing.T) {
	n := newTestNode(t, 1, storeWith(voters3, HardState{Term: 2}), withPreVote)
	n.Campaign()
	n.ready()
	n.step(Message{Type: MsgPreVoteResp, From: 2, To: 1, Term: 7, Reject: true})
	expectEq(t, "role", n.role, Follower)
	expectEq(t, "term", n.term, 7)
}

// Thesis §9.6: a node cut off from the cluster keeps pre-campaigning but
// its term never grows, so it does not disrupt the leader when it
// returns.
func TestPreVote_9_6_PartitionedNodeTermDoesNotGrow(t *testing.T) {
	c := newCluster(t, 3) // PreVote and CheckQuorum, the defaults
	c.tick(40)
	l := c.leader()
	if l == None {
		t.Fatal("no leader")
	}
	term := c.nodes[l].term
	cut := others(c, l)[0]
	c.isolate(cut)
	c.tick(200)
	expectEq(t, "term of the isolated node", c.nodes[cut].term, term)
	elections := 0
	for _, e := range c.events[cut] {
		if e.Kind == EventElectionTimeout {
			elections++
		}
	}
	if elections < 5 {
		t.Fatalf("the isolated node timed out %d times in 200 ticks", elections)
	}
	c.heal()
	c.tick(10)
	expectEq(t, "leader", c.leader(), l)
	expectEq(t, "leader's term", c.nodes[l].term, term)
	expectEq(t, "rejoined node's role", c.nodes[cut].role, Follower)
}

// Thesis §9.6: a pre-candidate whose log is behind cannot win; its
// pre-vote changes no one's term and the leader carries on.
func TestPreVote_9_6_PreCandidateThatCannotWinDoesNotDisrupt(t *testing.T) {
	c := newCluster(t, 3, withPreVote)
	c.campaign(1) // pre-vote, vote, then leader of term 1
	c.isolate(3)
	c.propose(1, "a")
	c.settle() // 3 misses entry 2
	c.heal()
	c.nodes[3].Campaign()
	c.settle()
	expectEq(t, "leader", c.leader(), 1)
	for _, id := range c.ids {
		expectEq(t, "term", c.nodes[id].term, 1)
	}
	rejected := 0
	for _, id := range []uint64{1, 2} {
		for _, e := range c.events[id] {
			if e.Kind == EventVoteRejected && e.MsgType == MsgPreVote && e.Peer == 3 {
				rejected++
			}
		}
	}
	expectEq(t, "pre-votes refused to node 3", rejected, 2)
}

// Thesis §6.2: a leader that has not heard from a majority for a whole
// election timeout steps down, so clients look for the real leader.
func TestCheckQuorum_6_2_LeaderWithoutMajorityStepsDown(t *testing.T) {
	c := newCluster(t, 3, withCheckQuorum)
	c.campaign(1) // the followers answer in the first election timeout
	c.isolate(1)
	c.tick(15)
	expectEq(t, "role after a timeout in which it heard a majority", c.nodes[1].role, Leader)
	c.tick(15)
	expectEq(t, "role after a timeout in which it heard no one", c.nodes[1].role, Follower)
	var reason string
	for _, e := range c.events[1] {
		if e.Kind == EventStepDown {
			reason = e.Reason
		}
	}
	expectEq(t, "step-down reason", reason, "check quorum: no majority heard within an election timeout")
}

// Thesis §6.2: a new leader counts as active only the members it has heard
// from since it was elected (at first, itself): cut off before any
// follower answers, it steps down after one election timeout. It used to
// count every member as active, and lasted two.
func TestCheckQuorum_6_2_NewLeaderCountsOnlyMembersItHeardFrom(t *testing.T) {
	c := newCluster(t, 3, withCheckQuorum)
	c.nodes[1].Campaign()
	c.deliver() // RequestVote
	for _, m := range c.take(isType(MsgVoteResp)) {
		if m.From == 2 {
			c.deliverMsg(m) // 2's vote makes 1 leader; 3's is lost
		}
	}
	expectEq(t, "role", c.nodes[1].role, Leader)
	c.isolate(1) // before its AppendEntries are answered
	c.tick(15)
	expectEq(t, "role after one election timeout", c.nodes[1].role, Follower)
}

// Thesis §6.2: hearing from a majority (itself and one of two followers)
// keeps the leader in office.
func TestCheckQuorum_6_2_LeaderWithMajorityStays(t *testing.T) {
	c := newCluster(t, 3, withCheckQuorum)
	c.campaign(1)
	c.isolate(3)
	c.tick(100)
	expectEq(t, "role", c.nodes[1].role, Leader)
	expectEq(t, "term", c.nodes[1].term, 1)
}

// Thesis §4.2.3: a follower that heard from a leader within the minimum
// election timeout ignores RequestVote: it neither adopts the term nor
// answers. Once the timeout passes without the leader, it votes again.
func TestLease_4_2_3_FollowerInLeaseIgnoresRequestVote(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}), withCheckQuorum)
	n.step(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 1})
	n.ready()
	n.tickN(14)
	n.step(vote(3, 2, 2, 0, 0))
	expectEq(t, "term", n.term, 1)
	expectMsgs(t, n.sent())
	n.Tick() // an election timeout since the heartbeat
	n.step(vote(3, 2, 2, 0, 0))
	expectEq(t, "term", n.term, 2)
	expectMsgs(t, n.sent(), "RequestVoteReply 2→3 term=2 granted=true")
}

// Thesis §4.2.3, §3.10: a vote requested by leadership transfer is granted
// even in lease: the leader itself asked for the election.
func TestLease_4_2_3_LeadershipTransferBypassesTheLease(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}), withCheckQuorum)
	n.step(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 1})
	n.ready()
	m := vote(3, 2, 2, 0, 0)
	m.Context = contextTransfer
	n.step(m)
	expectEq(t, "term", n.term, 2)
	expectMsgs(t, n.sent(), "RequestVoteReply 2→3 term=2 granted=true")
}
