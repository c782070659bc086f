package raft

import (
	"slices"
	"strings"
	"testing"
)

// Typed events: every role and term change, vote, message, commit advance
// and snapshot leaves an Event in the Ready, for the inspector.

func kinds(evs []Event, keep func(Event) bool) string {
	var out []string
	for _, e := range evs {
		if keep == nil || keep(e) {
			out = append(out, e.String())
		}
	}
	return strings.Join(out, "\n")
}

func notMessages(e Event) bool {
	return e.Kind != EventMessageSent && e.Kind != EventMessageReceived
}

// A follower's election timeout, won election and first commit, as events.
func TestEvents_ElectionAsEvents(t *testing.T) {
	c := newCluster(t, 3, noPreVote)
	to := c.nodes[1].randomizedElectionTimeout
	for range to {
		c.nodes[1].Tick()
	}
	c.settle()
	expectEq(t, "node 1's events", kinds(c.events[1], notMessages), strings.Join([]string{
		"election_timeout node=1 term=1 role=follower",
		"term_changed node=1 term=1 role=follower peer=1",
		"role_changed node=1 term=1 role=candidate from=follower",
		"election_won node=1 term=1 role=candidate",
		"leader_changed node=1 term=1 role=candidate peer=1",
		"role_changed node=1 term=1 role=leader from=candidate",
		"commit_advanced node=1 term=1 role=leader 0→1",
	}, "\n"))
	expectEq(t, "node 2's events", kinds(c.events[2], notMessages), strings.Join([]string{
		"term_changed node=2 term=1 role=follower peer=1",
		"vote_granted node=2 term=1 role=follower peer=1",
		"leader_changed node=2 term=1 role=follower peer=1",
		"commit_advanced node=2 term=1 role=follower 0→1",
	}, "\n"))
	var won Event
	for _, e := range c.events[1] {
		if e.Kind == EventElectionWon {
			won = e
		}
	}
	expectEq(t, "votes counted", won.Count, 2)
}

// Messages sent and received are events too, with their type, peer, index
// and number of entries.
func TestEvents_MessagesAsEvents(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}))
	n.step(app(1, 2, 1, 0, 0, 0, 1, 1))
	rd := n.ready()
	expectEq(t, "events", kinds(rd.Events, nil), strings.Join([]string{
		"message_received node=2 term=1 role=follower AppendEntries peer=1",
		"leader_changed node=2 term=1 role=follower peer=1",
		"message_sent node=2 term=1 role=follower AppendEntriesReply peer=1",
	}, "\n"))
	expectEq(t, "entries in the received event", rd.Events[0].Count, 2)
	expectEq(t, "index in the sent event", rd.Events[2].Index, 2)
}

// Refused votes say why.
func TestEvents_VoteRejectedCarriesTheReason(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}, 1, 1), noPreVote)
	n.step(vote(1, 2, 2, 1, 1))
	rd := n.ready()
	i := slices.IndexFunc(rd.Events, func(e Event) bool { return e.Kind == EventVoteRejected })
	expectEq(t, "reason", rd.Events[i].Reason, "candidate log not up to date (§5.4.1)")
	expectEq(t, "string", rd.Events[i].String(), "vote_rejected node=2 term=2 role=follower peer=1")
}

// Snapshot events name the peer and the snapshot's index.
func TestEvents_SnapshotSent(t *testing.T) {
	n := leaderNeedingSnapshot(t)
	rd := n.ready()
	i := slices.IndexFunc(rd.Events, func(e Event) bool { return e.Kind == EventSnapshotSent })
	expectEq(t, "event", rd.Events[i].String(), "snapshot_sent node=1 term=1 role=leader peer=2 index=3")
}

func TestEvents_KindNames(t *testing.T) {
	for k := EventRoleChanged; k <= EventNodeStopped; k++ {
		if s := k.String(); strings.HasPrefix(s, "event(") || s == "" {
			t.Errorf("kind %d has no name", k)
		}
	}
	expectEq(t, "unknown kind", EventKind(200).String(), "event(200)")
	expectEq(t, "step down", Event{Kind: EventStepDown, Node: 1, Term: 2, Role: Follower, Reason: "x"}.String(),
		"step_down node=1 term=2 role=follower reason=x")
}
