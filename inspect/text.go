package inspect

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/raftex/raftex/raft"
)

// NodeName is the default rendering of a node id: "n1" for 1.
func NodeName(id uint64) string { return "n" + strconv.FormatUint(id, 10) }

// describe renders what e says, without the node and role prefix, in the
// seed demo's words ("→ SEND RequestVote to n1", "✅ COMMIT index 1→5").
func describe(e raft.Event, name func(uint64) string) string {
	switch e.Kind {
	case raft.EventRoleChanged:
		return fmt.Sprintf("term=%d | %s → %s", e.Term, e.PrevRole, e.Role)
	case raft.EventNodeStarted:
		s := fmt.Sprintf("term=%d | init → %s", e.Term, e.Role)
		if e.Index > 0 {
			s += fmt.Sprintf(" (applied through %d)", e.Index)
		}
		return s
	case raft.EventNodeStopped:
		return "⏹ node stopped"
	case raft.EventTermChanged:
		return describeTerm(e, name)
	case raft.EventElectionTimeout:
		cause := "election timeout fired"
		if e.Reason != "" {
			cause = e.Reason
		}
		return fmt.Sprintf("⏰ %s, starting election for term %d", cause, e.Term)
	case raft.EventVoteGranted:
		return fmt.Sprintf("🗳 GRANTED %s to %s", e.MsgType, name(e.Peer))
	case raft.EventVoteRejected:
		return fmt.Sprintf("✗ REJECTED %s from %s: %s", e.MsgType, name(e.Peer), e.Reason)
	case raft.EventElectionWon:
		return fmt.Sprintf("👑 WON election! term=%d, votes=%d", e.Term, e.Count)
	case raft.EventLeaderChanged:
		if e.Peer == raft.None {
			return fmt.Sprintf("🧭 no known leader in term %d", e.Term)
		}
		return fmt.Sprintf("🧭 leader is %s (term %d)", name(e.Peer), e.Term)
	case raft.EventMessageSent:
		verb := "→ SEND"
		if e.MsgType.IsResponse() {
			verb = "→ REPLY"
		}
		return fmt.Sprintf("%s %s to %s%s", verb, e.MsgType, name(e.Peer), messageDetail(e))
	case raft.EventMessageReceived:
		return fmt.Sprintf("← RECV %s from %s%s", e.MsgType, name(e.Peer), messageDetail(e))
	case raft.EventCommitAdvanced:
		return fmt.Sprintf("✅ COMMIT index %d→%d", e.PrevIndex, e.Index)
	case raft.EventApplied:
		return fmt.Sprintf("📥 APPLIED through index %d (%s)", e.Index, plural(e.Count, "entry", "entries"))
	case raft.EventSnapshotTaken:
		return fmt.Sprintf("📸 SNAPSHOT taken at index %d, log compacted through %d", e.Index, e.PrevIndex)
	case raft.EventSnapshotSent:
		return fmt.Sprintf("📦 SNAPSHOT sent to %s at index %d", name(e.Peer), e.Index)
	case raft.EventSnapshotRestored:
		return fmt.Sprintf("📦 SNAPSHOT restored from %s at index %d", name(e.Peer), e.Index)
	case raft.EventSnapshotInstalled:
		if e.Peer == raft.None {
			return fmt.Sprintf("📦 SNAPSHOT installed at index %d", e.Index)
		}
		return fmt.Sprintf("📦 SNAPSHOT installed from %s at index %d", name(e.Peer), e.Index)
	case raft.EventStepDown:
		return "⬇ STEP DOWN: " + e.Reason
	case raft.EventLeadershipTransfer:
		return "🔀 TRANSFER leadership to " + name(e.Peer)
	case raft.EventLeadershipTransferAborted:
		return fmt.Sprintf("🔀 TRANSFER to %s aborted%s", name(e.Peer), because(e.Reason))
	case raft.EventMemberAdded, raft.EventMemberPromoted, raft.EventMemberRemoved, raft.EventConfChanged:
		return describeConf(e, name)
	}
	return e.String()
}

// describeConf narrates a configuration change (thesis §4.1: in force on
// each server once in its log, before it commits): "⚙ CONFIG n4 added as
// learner at index 12".
func describeConf(e raft.Event, name func(uint64) string) string {
	var what string
	switch e.Kind {
	case raft.EventMemberAdded:
		as := e.Reason
		if as == "" {
			as = "learner"
		}
		what = name(e.Peer) + " added as " + as
	case raft.EventMemberPromoted:
		what = name(e.Peer) + " promoted to voter"
	case raft.EventMemberRemoved:
		what = name(e.Peer) + " removed"
	default:
		what = e.Reason
		if what == "" {
			what = "configuration changed"
		}
	}
	if e.Index != 0 {
		what += fmt.Sprintf(" at index %d", e.Index)
	}
	return "⚙ CONFIG " + what
}

// because is ": reason", or "" without one.
func because(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + reason
}

func describeTerm(e raft.Event, name func(uint64) string) string {
	switch e.Peer {
	case e.Node:
		return fmt.Sprintf("term=%d | new term to campaign", e.Term)
	case raft.None:
		return fmt.Sprintf("term=%d | saw a higher term", e.Term)
	}
	return fmt.Sprintf("term=%d | higher term from %s", e.Term, name(e.Peer))
}

// messageDetail is the parenthesised summary of a message's fields.
func messageDetail(e raft.Event) string {
	switch e.MsgType {
	case raft.MsgApp:
		if e.Count == 0 {
			return " (no entries)"
		}
		return " (" + plural(e.Count, "entry", "entries") + ")"
	case raft.MsgVoteResp, raft.MsgPreVoteResp:
		if e.Reject {
			return " (rejected)"
		}
		return " (granted)"
	case raft.MsgAppResp, raft.MsgReadIndexResp:
		if e.Reject {
			return " (reject)"
		}
		return fmt.Sprintf(" (index %d)", e.Index)
	}
	return ""
}

// failed reports whether e reports a refusal or a loss of leadership, which
// the console shows in red.
func failed(e raft.Event) bool {
	switch e.Kind {
	case raft.EventStepDown, raft.EventVoteRejected, raft.EventNodeStopped, raft.EventLeadershipTransferAborted:
		return true
	case raft.EventMessageSent, raft.EventMessageReceived:
		return e.Reject
	}
	return false
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// roleTag is the bracketed role of a console line.
func roleTag(e raft.Event) string { return strings.ToUpper(shownRole(e).String()) }

// shownRole is the role an event is shown with, on the console and in its
// JSON form: the node's role right after the event. The core reports an
// election win, and the node learning that it leads, just before the role
// change they cause, so both show as leader.
func shownRole(e raft.Event) raft.Role {
	if e.Kind == raft.EventElectionWon || (e.Kind == raft.EventLeaderChanged && e.Peer != raft.None && e.Peer == e.Node) {
		return raft.Leader
	}
	return e.Role
}
