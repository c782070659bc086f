package raft

import (
	"errors"
	"fmt"
	"testing"
)

// Forwarded proposals (§8): a follower hands its clients' commands to the
// leader in MsgProp and learns where they were appended.

func propResults(rs []ProposalResult) string {
	s := ""
	for _, r := range rs {
		if r.Err != nil {
			s += fmt.Sprintf("%s:%v ", r.RequestCtx, r.Err)
		} else {
			s += fmt.Sprintf("%s@%d/%d ", r.RequestCtx, r.Index, r.Term)
		}
	}
	return s
}

// §8: a follower forwards at once (the request speaks of no state of its
// own, so it need not wait for a write), all proposals in one message.
func TestForward_8_FollowerSendsProposalsToTheLeader(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}))
	n.step(Message{Type: MsgHeartbeat, From: 1, Term: 1})
	n.ready()
	if err := n.ForwardProposal([]byte("c1"), []byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	expectMsgs(t, renderMsgs(n.TakeMessages()), "Propose 2→1 term=0 entries=2")
}

func TestForward_8_WithoutLeaderIsRefused(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}))
	expectEq(t, "error", n.ForwardProposal([]byte("c1"), []byte("a")), ErrNoLeader)
}

// The leader appends a MsgProp's proposals as consecutive entries of its
// term and answers with the first index.
func TestForward_8_LeaderAppendsAndAnswersWhere(t *testing.T) {
	n := leaderWithFollowers(t)
	n.step(Message{Type: MsgProp, From: 2, Term: 1, Context: []byte("c1"), Entries: []Entry{{Data: []byte("a")}, {Data: []byte("b")}}})
	rd := n.ready()
	expectMsgs(t, renderMsgs(append(rd.Messages, rd.MessagesAfterPersist...)),
		"ProposeReply 1→2 term=1 index=2/1",
		"AppendEntries 1→2 term=1 prev=1/1 entries=2 commit=1",
		"AppendEntries 1→3 term=1 prev=1/1 entries=2 commit=1")
	expectEq(t, "log", logTermsOf(n.Raft), "1 1 1")
	ents, err := n.log.slice(2, 4, ^uint64(0))
	if err != nil {
		t.Fatal(err)
	}
	expectEq(t, "data", fmt.Sprintf("%s %s", ents[0].Data, ents[1].Data), "a b")
}

// §6.3: a MsgProp delivered twice (the network may duplicate a message)
// is appended once; the copy is answered where the first went. Appended
// twice, a command could apply twice: seeds 1007146 and 4004790 of the
// simulator (-faults=all,member=2) had a copy answer "session expired"
// after the client's session was evicted between the two, and the client
// ran the write again in a new session.
func TestForward_6_3_DuplicatedProposalIsAppendedOnce(t *testing.T) {
	n := leaderWithFollowers(t)
	prop := Message{Type: MsgProp, From: 2, Term: 1, Context: []byte("c1"), Entries: []Entry{{Data: []byte("a")}}}
	n.step(prop)
	n.ready()
	n.step(prop)
	rd := n.ready()
	expectMsgs(t, renderMsgs(filterMsgs(append(rd.Messages, rd.MessagesAfterPersist...), MsgPropResp)), "ProposeReply 1→2 term=1 index=2/1")
	expectEq(t, "log", logTermsOf(n.Raft), "1 1")
	// Another batch of the same sender, or the same context from another
	// sender, is a new proposal.
	n.step(Message{Type: MsgProp, From: 2, Term: 1, Context: []byte("c2"), Entries: []Entry{{Data: []byte("a")}}})
	n.step(Message{Type: MsgProp, From: 3, Term: 1, Context: []byte("c1"), Entries: []Entry{{Data: []byte("a")}}})
	rd = n.ready()
	expectMsgs(t, renderMsgs(filterMsgs(append(rd.Messages, rd.MessagesAfterPersist...), MsgPropResp)),
		"ProposeReply 1→2 term=1 index=3/1", "ProposeReply 1→3 term=1 index=4/1")
}

// A leader that cannot take the proposals (a transfer in progress, or
// MaxUncommittedBytes) appends none of them and says so: the follower may
// try again, nothing was applied.
func TestForward_8_LeaderRefusesAllOrNothing(t *testing.T) {
	n := leaderWithFollowers(t, func(c *Config) { c.MaxUncommittedBytes = 2 * (entryOverhead + 1) })
	if _, _, err := n.Propose([]byte("x")); err != nil {
		t.Fatal(err)
	}
	n.step(Message{Type: MsgProp, From: 2, Term: 1, Context: []byte("c1"), Entries: []Entry{{Data: []byte("a")}, {Data: []byte("b")}}})
	rd := n.ready()
	expectMsgs(t, renderMsgs(filterMsgs(append(rd.Messages, rd.MessagesAfterPersist...), MsgPropResp)), "ProposeReply 1→2 term=1 reject=2")
	expectEq(t, "last index", n.log.lastIndex(), 2)
}

// A node that does not lead answers a MsgProp with a rejection, so the
// sender learns at once instead of waiting for a timeout.
func TestForward_8_NonLeaderRejects(t *testing.T) {
	n := newTestNode(t, 3, storeWith(voters3, HardState{Term: 1}))
	n.step(Message{Type: MsgProp, From: 2, Term: 1, Context: []byte("c1"), Entries: []Entry{{Data: []byte("a")}}})
	expectMsgs(t, n.sent(), "ProposeReply 3→2 term=1 reject=1")
}

// §5.1: a forwarded proposal carries no term (like etcd's MsgProp): it
// may leave before the sender's term is durable without speaking of that
// term, and the leader takes it whatever the sender's term; its answer
// carries the leader's.
func TestForward_5_1_ProposalsCarryNoTerm(t *testing.T) {
	f := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}))
	f.step(Message{Type: MsgHeartbeat, From: 1, Term: 3})
	if err := f.ForwardProposal([]byte("c1"), []byte("a")); err != nil {
		t.Fatal(err)
	}
	rd := f.Ready()
	expectEq(t, "hard state being written", rd.HardState.Term, 3)
	expectMsgs(t, renderMsgs(rd.Messages), "Propose 2→1 term=0 entries=1")
	n := leaderWithFollowers(t)
	n.step(Message{Type: MsgProp, From: 2, Context: []byte("c1"), Entries: []Entry{{Data: []byte("a")}}})
	rd = n.ready()
	expectMsgs(t, renderMsgs(filterMsgs(append(rd.Messages, rd.MessagesAfterPersist...), MsgPropResp)), "ProposeReply 1→2 term=1 index=2/1")
}

// The follower turns the answers into ProposalResults; an answer of an
// earlier term still tells where the entries went.
func TestForward_8_FollowerLearnsTheResult(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 2}))
	n.step(
		Message{Type: MsgPropResp, From: 1, Term: 2, Context: []byte("ok"), Index: 5, LogTerm: 2},
		Message{Type: MsgPropResp, From: 1, Term: 1, Context: []byte("old"), Index: 4, LogTerm: 1},
		Message{Type: MsgPropResp, From: 1, Term: 2, Context: []byte("full"), Reject: true, RejectHint: propRejectDropped},
		Message{Type: MsgPropResp, From: 3, Term: 2, Context: []byte("lost"), Reject: true, RejectHint: propRejectNotLeader},
	)
	rd := n.ready()
	expectEq(t, "results", propResults(rd.ProposalResults),
		"ok@5/2 old@4/1 full:raft: proposal dropped lost:raft: not leader (no leader known) ")
	if !errors.Is(rd.ProposalResults[3].Err, ErrNotLeader) {
		t.Fatalf("rejected by a non-leader: %v", rd.ProposalResults[3].Err)
	}
}

// On the leader, ForwardProposal appends at once and answers in the next
// Ready.
func TestForward_8_OnTheLeaderAnswersInTheNextReady(t *testing.T) {
	n := leaderWithFollowers(t)
	if err := n.ForwardProposal([]byte("c"), []byte("a")); err != nil {
		t.Fatal(err)
	}
	expectEq(t, "results", propResults(n.ready().ProposalResults), "c@2/1 ")
}

// End to end: a follower's proposals are committed and applied at the
// index the leader answered, on every node.
func TestForward_8_ForwardedProposalsCommitEverywhere(t *testing.T) {
	c := newCluster(t, 3, noPreVote)
	c.campaign(1)
	if err := c.nodes[3].ForwardProposal([]byte("c"), []byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	c.settle()
	expectEq(t, "results", propResults(c.results[3]), "c@2/1 ")
	for _, id := range c.ids {
		expectEq(t, fmt.Sprintf("applied on %d", id), fmt.Sprint(c.appliedData(id)), "[a b]")
	}
}

func filterMsgs(ms []Message, t MessageType) []Message {
	var out []Message
	for _, m := range ms {
		if m.Type == t {
			out = append(out, m)
		}
	}
	return out
}
