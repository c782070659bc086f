package raft

import "fmt"

// EventKind names something that happened inside a core. The inspector
// renders each kind as a console line, a metric and a dashboard entry.
type EventKind uint8

const (
	// EventRoleChanged: the node moved from PrevRole to Role (§5.2).
	EventRoleChanged EventKind = iota + 1
	// EventTermChanged: the node's term rose to Term; Peer is the node
	// whose message carried it, or the node itself when it campaigned.
	EventTermChanged
	// EventElectionTimeout: no leader was heard for an election timeout
	// and the node starts an election for Term (PreVote: Term is the term
	// it asks about).
	EventElectionTimeout
	// EventVoteGranted / EventVoteRejected: the node answered a
	// (pre-)vote request from Peer for Term. MsgType tells which.
	EventVoteGranted
	EventVoteRejected
	// EventElectionWon: the candidate won Term with Count votes.
	EventElectionWon
	// EventLeaderChanged: the node learned that Peer leads Term (None:
	// no known leader).
	EventLeaderChanged
	// EventMessageSent / EventMessageReceived: a message of MsgType went
	// to / came from Peer. Count is its number of entries, Index its
	// Index field, Reject its Reject field.
	EventMessageSent
	EventMessageReceived
	// EventCommitAdvanced: the commit index moved from PrevIndex to Index
	// (§5.3).
	EventCommitAdvanced
	// EventSnapshotSent: the leader sent a snapshot at Index to Peer
	// because Peer needs compacted entries (§7).
	EventSnapshotSent
	// EventSnapshotRestored: the node accepted a leader's snapshot at
	// Index; its log now starts after it (§7).
	EventSnapshotRestored
	// EventStepDown: the leader stopped leading; Reason says why.
	EventStepDown
	// EventLeadershipTransfer: the leader began handing leadership to Peer
	// (thesis §3.10).
	EventLeadershipTransfer

	// The kinds below are emitted by the runtime (package node), not the
	// core; they share the type so one stream shows everything.

	// EventApplied: the state machine applied entries through Index;
	// Count entries in this batch.
	EventApplied
	// EventSnapshotTaken: the node saved a snapshot of its state machine
	// at Index and compacted its log up to PrevIndex.
	EventSnapshotTaken
	// EventSnapshotInstalled: the node restored its state machine from the
	// snapshot at Index received from Peer.
	EventSnapshotInstalled
	// EventNodeStarted / EventNodeStopped: the runtime started or stopped.
	EventNodeStarted
	EventNodeStopped

	// Core kinds added with membership changes (thesis §4, §3.10).

	// EventMemberAdded: the configuration entry at Index, now in this
	// node's log, added Peer; Reason is "learner", "learner (promoted
	// once caught up)" or "voter".
	EventMemberAdded
	// EventMemberPromoted: the configuration entry at Index made the
	// learner Peer a voter (thesis §4.2.1).
	EventMemberPromoted
	// EventMemberRemoved: the configuration entry at Index removed Peer
	// (thesis §4.2.2).
	EventMemberRemoved
	// EventConfChanged: the configuration in force changed to the one of
	// the entry at Index; Reason says how ("joint consensus entered",
	// "joint consensus left", "rolled back: entry truncated", ...), and
	// for an entry that was ignored, why.
	EventConfChanged
	// EventLeadershipTransferAborted: the leader gave up handing
	// leadership to Peer (thesis §3.10); Reason says why.
	EventLeadershipTransferAborted
)

var eventKindNames = [...]string{
	EventRoleChanged: "role_changed", EventTermChanged: "term_changed",
	EventElectionTimeout: "election_timeout", EventVoteGranted: "vote_granted",
	EventVoteRejected: "vote_rejected", EventElectionWon: "election_won",
	EventLeaderChanged: "leader_changed", EventMessageSent: "message_sent",
	EventMessageReceived: "message_received", EventCommitAdvanced: "commit_advanced",
	EventSnapshotSent: "snapshot_sent", EventSnapshotRestored: "snapshot_restored",
	EventStepDown: "step_down", EventLeadershipTransfer: "leadership_transfer",
	EventApplied: "applied", EventSnapshotTaken: "snapshot_taken",
	EventSnapshotInstalled: "snapshot_installed", EventNodeStarted: "node_started",
	EventNodeStopped: "node_stopped", EventMemberAdded: "member_added",
	EventMemberPromoted: "member_promoted", EventMemberRemoved: "member_removed",
	EventConfChanged: "conf_changed", EventLeadershipTransferAborted: "leadership_transfer_aborted",
}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is one typed observation from a core. Node, Term and Role are
// always set (the node's state right after the event); the other fields
// are set as each EventKind documents.
type Event struct {
	Kind EventKind
	Node uint64
	Term uint64
	Role Role

	PrevRole  Role
	Peer      uint64
	MsgType   MessageType
	Reject    bool
	Index     uint64
	PrevIndex uint64
	Count     int
	Reason    string
}

func (e Event) String() string {
	s := fmt.Sprintf("%s node=%d term=%d role=%s", e.Kind, e.Node, e.Term, e.Role)
	switch e.Kind {
	case EventRoleChanged:
		s += fmt.Sprintf(" from=%s", e.PrevRole)
	case EventMessageSent, EventMessageReceived:
		s += fmt.Sprintf(" %s peer=%d", e.MsgType, e.Peer)
	case EventCommitAdvanced:
		s += fmt.Sprintf(" %d→%d", e.PrevIndex, e.Index)
	case EventStepDown:
		s += " reason=" + e.Reason
	case EventMemberAdded, EventMemberPromoted, EventMemberRemoved, EventConfChanged, EventLeadershipTransferAborted:
		if e.Peer != None {
			s += fmt.Sprintf(" peer=%d", e.Peer)
		}
		if e.Index != 0 {
			s += fmt.Sprintf(" index=%d", e.Index)
		}
		if e.Reason != "" {
			s += " reason=" + e.Reason
		}
	default:
		if e.Peer != None {
			s += fmt.Sprintf(" peer=%d", e.Peer)
		}
		if e.Index != 0 {
			s += fmt.Sprintf(" index=%d", e.Index)
		}
	}
	return s
}
