package raft

import (
	"fmt"
	"strings"
	"testing"
)

// The Ready contract, Step's input checks, Status, and the value types'
// methods.

func TestReady_ContractIsEnforced(t *testing.T) {
	n := newTestNode(t, 1, storeWith(voters3, HardState{}), noPreVote)
	n.Campaign()
	expectEq(t, "HasReady", n.HasReady(), true)
	rd := n.Ready()
	expectEq(t, "HasReady while a Ready is outstanding", n.HasReady(), false)
	expectPanic(t, "Ready before Advance", func() { n.Ready() })
	n.Advance(rd)
	expectPanic(t, "Advance without Ready", func() { n.Advance(rd) })
	expectEq(t, "HasReady after Advance", n.HasReady(), false)
	var empty Ready
	expectEq(t, "empty Ready", empty.IsEmpty(), true)
	expectEq(t, "Ready", rd.IsEmpty(), false)
}

func expectPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	f()
}

func TestStep_RejectsMalformedMessages(t *testing.T) {
	n := newTestNode(t, 1, storeWith(voters3, HardState{}))
	for _, m := range []Message{
		{Type: MsgApp, From: None},
		{Type: MsgApp, From: 1},
		{Type: MessageType(99), From: 2},
	} {
		if err := n.Step(m); err == nil {
			t.Errorf("Step(%v) accepted", m)
		}
	}
}

func TestStatus_ReportsTheCoreState(t *testing.T) {
	n := leaderWithFollowers(t)
	s := n.Status()
	pr := s.Progress[2]
	expectEq(t, "status", fmt.Sprintf("%s term=%d lead=%d commit=%d last=%d %s; 2: %s",
		s.Role, s.Term, s.Leader, s.Commit, s.LastIndex, s.Membership, &pr),
		"leader term=1 lead=1 commit=1 last=1 voters=[1 2 3]; 2: match=1 next=2 replicate")
	f := newTestNode(t, 2, storeWith(voters3, HardState{}))
	if f.Status().Progress != nil {
		t.Error("a follower reports progress")
	}
	expectEq(t, "id", f.ID(), 2)
}

// Term, Role and Leader agree with Status on every node, before and after
// the leader crashes and the others elect one of them (§5.2): they are
// Status's fields without its copies.
func TestStatus_AccessorsMatchStatus(t *testing.T) {
	c := newCluster(t, 3)
	c.campaign(1)
	agree := func(when string) {
		t.Helper()
		for _, id := range c.ids {
			if r := c.nodes[id]; r != nil {
				s := r.Status()
				expectEq(t, fmt.Sprintf("%s: node %d", when, id),
					fmt.Sprintf("%s term=%d lead=%d", r.Role(), r.Term(), r.Leader()),
					fmt.Sprintf("%s term=%d lead=%d", s.Role, s.Term, s.Leader))
			}
		}
	}
	agree("node 1 leads")
	expectEq(t, "node 1", fmt.Sprintf("%s term=%d lead=%d", c.nodes[1].Role(), c.nodes[1].Term(), c.nodes[1].Leader()), "leader term=1 lead=1")
	expectEq(t, "node 3", fmt.Sprintf("%s term=%d lead=%d", c.nodes[3].Role(), c.nodes[3].Term(), c.nodes[3].Leader()), "follower term=1 lead=1")
	c.crash(1)
	c.tick(3 * DefaultConfig(1, nil).ElectionTick)
	lead := c.leader()
	if lead != 2 && lead != 3 {
		t.Fatalf("no new leader among 2 and 3: %d", lead)
	}
	agree("after the crash")
	other := 5 - lead
	expectEq(t, "the old follower", c.nodes[other].Leader(), lead)
	if c.nodes[lead].Term() < 2 || c.nodes[lead].Role() != Leader {
		t.Errorf("node %d: %s in term %d, want leader in term 2 or later", lead, c.nodes[lead].Role(), c.nodes[lead].Term())
	}
}

func TestTypes_Names(t *testing.T) {
	expectEq(t, "roles", Follower.String()+" "+PreCandidate.String()+" "+Candidate.String()+" "+Leader.String()+" "+Role(9).String(),
		"follower precandidate candidate leader role(9)")
	expectEq(t, "entry types", EntryNormal.String()+" "+EntryNoop.String()+" "+EntryType(7).String(), "normal noop entrytype(7)")
	expectEq(t, "progress states", StateProbe.String()+" "+StateReplicate.String()+" "+StateSnapshot.String()+" "+ProgressState(5).String(),
		"probe replicate snapshot state(5)")
	expectEq(t, "unknown message type", MessageType(99).String(), "MessageType(99)")
	for _, typ := range []MessageType{MsgAppResp, MsgVoteResp, MsgPreVoteResp, MsgHeartbeatResp, MsgReadIndexResp} {
		expectEq(t, typ.String()+" is a response", typ.IsResponse(), true)
	}
	expectEq(t, "MsgApp is a response", MsgApp.IsResponse(), false)
	expectEq(t, "heartbeat", MsgHeartbeat.IsHeartbeat() && MsgHeartbeatResp.IsHeartbeat() && !MsgApp.IsHeartbeat(), true)
	msgs := []Message{
		{Type: MsgSnap, From: 1, To: 2, Term: 3},
		{Type: MsgReadIndexResp, From: 1, To: 2, Term: 3, Index: 4},
		{Type: MsgHeartbeatResp, From: 2, To: 1, Term: 3, ReadRound: 5},
		{Type: MsgReadIndex, From: 2, To: 1, Term: 3},
	}
	expectEq(t, "messages", renderMsgs(msgs), strings.Join([]string{
		"InstallSnapshot 1→2 term=3",
		"ReadIndexReply 1→2 term=3 index=4 reject=false",
		"HeartbeatReply 2→1 term=3 round=5",
		"ReadIndex 2→1 term=3",
	}, "\n")+"\n")
}

func TestTypes_Membership(t *testing.T) {
	m := Membership{Voters: []uint64{1, 2}, Learners: []uint64{3}}
	must(t, m.Validate())
	expectEq(t, "string", m.String(), "voters=[1 2] learners=[3]")
	expectEq(t, "members", len(m.Members()), 3)
	expectEq(t, "contains learner", m.Contains(3), true)
	expectEq(t, "learner", m.IsLearner(3), true)
	expectEq(t, "quorum", m.Quorum(), 2)
	expectEq(t, "clone", m.Clone().Equal(m), true)
	for _, tc := range []struct {
		m    Membership
		want string
	}{
		{Membership{Voters: []uint64{0}}, "raft: membership voters contain the reserved id 0"},
		{Membership{Voters: []uint64{2, 1}}, "raft: membership voters [2 1] are not sorted and unique"},
		{Membership{Voters: []uint64{1}, Learners: []uint64{0}}, "raft: membership learners contain the reserved id 0"},
		{Membership{Voters: []uint64{1}, Learners: []uint64{1}}, "raft: node 1 is both voter and learner"},
	} {
		err := tc.m.Validate()
		if err == nil || err.Error() != tc.want {
			t.Errorf("Validate(%v) = %v, want %q", tc.m, err, tc.want)
		}
	}
	expectEq(t, "empty hard state", HardState{}.IsEmpty(), true)
}

// A learner receives the log but never campaigns or counts toward a quorum.
func TestTypes_LearnerNeverCampaigns(t *testing.T) {
	st := NewMemoryStorage(Membership{Voters: []uint64{1, 2}, Learners: []uint64{3}})
	n := newTestNode(t, 3, st, noPreVote)
	n.tickN(100)
	n.Campaign()
	expectEq(t, "role", n.role, Follower)
}
