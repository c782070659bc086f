package raft

import (
	"errors"
	"fmt"
	"testing"
)

// Leadership transfer (thesis §3.10).

// Thesis §3.10: a target already up to date is told to campaign at once
// (TimeoutNow); it skips PreVote, its voters ignore their leases, and it
// wins the next term.
func TestTransfer_3_10_UpToDateTargetCampaignsAtOnce(t *testing.T) {
	c := newCluster(t, 3) // PreVote and CheckQuorum: voters are in lease
	c.tick(40)
	l := c.leader()
	to := others(c, l)[0]
	term := c.nodes[l].term
	if err := c.nodes[l].TransferLeadership(to); err != nil {
		t.Fatal(err)
	}
	c.flush()
	expectEq(t, "queued", c.queued(), fmt.Sprintf("TimeoutNow %d→%d term=%d\n", l, to, term))
	c.settle()
	expectEq(t, "leader", c.leader(), to)
	expectEq(t, "term", c.nodes[to].term, term+1)
	expectEq(t, "old leader's role", c.nodes[l].role, Follower)
	var started bool
	for _, e := range c.events[l] {
		started = started || (e.Kind == EventLeadershipTransfer && e.Peer == to)
	}
	expectEq(t, "leadership_transfer event", started, true)
}

// Thesis §3.10: a lagging target is first brought up to date, then told
// to campaign.
func TestTransfer_3_10_LaggingTargetIsCaughtUpFirst(t *testing.T) {
	c := newCluster(t, 3, noPreVote)
	c.campaign(1)
	c.isolate(3)
	c.propose(1, "a")
	c.settle()
	c.heal()
	if err := c.nodes[1].TransferLeadership(3); err != nil {
		t.Fatal(err)
	}
	c.flush()
	expectEq(t, "first", c.queued(), "AppendEntries 1→3 term=1 prev=2/1 entries=0 commit=2\n")
	c.settle()
	expectEq(t, "leader", c.leader(), 3)
	expectEq(t, "3's log", c.logTerms(3), "1 1 2")
}

// Thesis §3.10: while a transfer is in progress the leader takes no
// proposals; it gives up after an election timeout and takes them again.
func TestTransfer_3_10_ProposalsDroppedUntilTheTransferEndsOrTimesOut(t *testing.T) {
	n := leaderWithFollowers(t)
	n.ReportUnreachable(3)
	n.prs[3].Match = 0 // 3 is behind: the transfer waits for it
	if err := n.TransferLeadership(3); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.Propose([]byte("x")); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("Propose during a transfer: %v", err)
	}
	if err := n.TransferLeadership(3); err != nil {
		t.Fatalf("asking again for the same transfer: %v", err)
	}
	n.tickN(15)
	expectEq(t, "transfer target after an election timeout", n.leadTransferee, None)
	if _, _, err := n.Propose([]byte("x")); err != nil {
		t.Fatalf("Propose after the transfer was abandoned: %v", err)
	}
}

// A transfer needs a leader and a voting target other than itself.
func TestTransfer_3_10_InvalidRequests(t *testing.T) {
	n := leaderWithFollowers(t)
	for _, to := range []uint64{1, 9} {
		if err := n.TransferLeadership(to); !errors.Is(err, ErrTransferTarget) {
			t.Errorf("TransferLeadership(%d): %v", to, err)
		}
	}
	f := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}))
	if err := f.TransferLeadership(3); !errors.Is(err, ErrNotLeader) {
		t.Errorf("TransferLeadership on a follower: %v", err)
	}
}

// Thesis §3.10: with no target named, the leader picks the voter whose log
// is the most up to date.
func TestTransfer_3_10_NoTargetPicksTheMostUpToDateVoter(t *testing.T) {
	n := leaderWithFollowers(t)
	n.prs[2].Match, n.prs[3].Match = 0, 1
	if err := n.TransferLeadership(None); err != nil {
		t.Fatal(err)
	}
	expectEq(t, "target", n.leadTransferee, 3)
	single := newTestNode(t, 1, storeWith([]uint64{1}, HardState{}))
	single.becomeLeaderAt(1)
	if err := single.TransferLeadership(None); !errors.Is(err, ErrTransferTarget) {
		t.Errorf("transfer with no other voter: %v", err)
	}
}

// Thesis §3.10: an abandoned transfer says so (the runtime answers its
// caller with it) and proposals resume; proposals refused meanwhile say
// why (ErrTransferring, an ErrProposalDropped).
func TestTransfer_3_10_AbortIsAnnounced(t *testing.T) {
	n := leaderWithFollowers(t)
	n.ReportUnreachable(3)
	n.prs[3].Match = 0
	must(t, n.TransferLeadership(3))
	if _, _, err := n.Propose([]byte("x")); !errors.Is(err, ErrTransferring) || !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("Propose during a transfer: %v", err)
	}
	n.tickN(15)
	rd := n.ready()
	if !hasEvent(rd.Events, EventLeadershipTransferAborted, 3, "election timeout") {
		t.Errorf("no abort event: %v", rd.Events)
	}
	if _, _, err := n.Propose([]byte("x")); err != nil {
		t.Fatalf("Propose after the abort: %v", err)
	}
}

// Thesis §3.10: a leader that loses leadership during a transfer drops it,
// so that, elected again, it takes proposals (hashicorp/raft #696: a
// transfer flag left set made a re-elected leader refuse them forever).
func TestTransfer_3_10_LostLeadershipEndsTheTransfer(t *testing.T) {
	c := stableLeader(t, 3)
	c.isolate(3) // the transfer cannot finish
	c.propose(1, "x")
	c.settle()
	if err := c.nodes[1].TransferLeadership(3); err != nil {
		t.Fatal(err)
	}
	c.settle()
	must(t, c.nodes[1].Step(Message{Type: MsgHeartbeat, From: 2, To: 1, Term: c.nodes[1].term + 1}))
	c.settle()
	expectEq(t, "1 follows", c.nodes[1].role, Follower)
	c.nodes[2].becomeFollower(c.nodes[2].term, None) // 2 was never leader
	for i := 0; i < 100 && c.leader() != 1; i++ {
		c.nodes[1].Campaign()
		c.tick(1)
	}
	expectEq(t, "leader again", c.leader(), 1)
	if _, _, err := c.nodes[1].Propose([]byte("y")); err != nil {
		t.Fatalf("re-elected leader refuses proposals: %v", err)
	}
}

// Thesis §3.10 with §4.3: a transfer to a voter that C_new drops is
// aborted when C_new is appended.
func TestTransfer_3_10_TargetLeavingTheConfigurationAborts(t *testing.T) {
	c := stableLeader(t, 3)
	c.addNode(4)
	c.addNode(5)
	c.conf(1, ConfChange{Type: AddLearner, ID: 4}, ConfChange{Type: AddLearner, ID: 5})
	c.settle()
	c.isolate(3)
	c.cut[[2]uint64{2, 1}] = true // C_old,new does not commit yet
	c.conf(1, ConfChange{Type: AddVoter, ID: 4}, ConfChange{Type: AddVoter, ID: 5},
		ConfChange{Type: RemoveMember, ID: 2}, ConfChange{Type: RemoveMember, ID: 3})
	c.settle()
	c.drop = isType(MsgTimeoutNow) // 2 never takes over
	if err := c.nodes[1].TransferLeadership(2); err != nil {
		t.Fatal(err)
	}
	delete(c.cut, [2]uint64{2, 1})
	c.tick(2)
	expectEq(t, "C_new", c.nodes[1].membership.String(), "voters=[1 4 5]")
	expectEq(t, "transfer", c.nodes[1].leadTransferee, None)
	if !hasEvent(c.events[1], EventLeadershipTransferAborted, 2, "no longer a voter") {
		t.Errorf("no abort: %v", c.events[1])
	}
	c.propose(1, "after")
}
