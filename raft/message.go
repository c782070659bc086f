package raft

import "fmt"

// MessageType names a Raft RPC or its reply. The numeric values are part of
// the wire format (package transport encodes them) and must never change.
type MessageType uint8

const (
	// MsgApp is AppendEntries (§5.3): Index and LogTerm name the entry
	// preceding Entries, Commit is the leader's commit index.
	MsgApp MessageType = 1
	// MsgAppResp answers MsgApp. On success Index is the follower's last
	// index matching the leader. On Reject, Index echoes the rejected
	// MsgApp's Index and the conflict hint is RejectHint (first index of the
	// conflicting term, or the follower's last index + 1) and LogTerm (the
	// conflicting term, 0 when the follower's log is too short).
	MsgAppResp MessageType = 2
	// MsgVote is RequestVote (§5.2): Index and LogTerm describe the
	// candidate's last entry (§5.4.1). Context is contextTransfer when the
	// election was asked for by leadership transfer (thesis §3.10).
	MsgVote     MessageType = 3
	MsgVoteResp MessageType = 4
	// MsgPreVote asks whether a vote would be granted for Term without
	// anyone changing term (thesis §9.6). Its Term is the candidate's term
	// plus one.
	MsgPreVote     MessageType = 5
	MsgPreVoteResp MessageType = 6
	// MsgHeartbeat is an empty AppendEntries that carries only the commit
	// index the follower is known to have (§5.2) and a ReadRound.
	MsgHeartbeat     MessageType = 7
	MsgHeartbeatResp MessageType = 8
	// MsgSnap is InstallSnapshot (§7). Snapshot.Meta is always set;
	// Snapshot.Data may travel out of band (see Snapshot).
	MsgSnap MessageType = 9
	// MsgReadIndex asks the leader for a read index on behalf of a
	// follower (thesis §6.4); Context identifies the request. It carries
	// no term (see MsgProp).
	MsgReadIndex MessageType = 10
	// MsgReadIndexResp returns the read index in Index; Reject means the
	// receiver could not serve it (it is not, or not yet, a ready leader).
	MsgReadIndexResp MessageType = 11
	// MsgTimeoutNow tells the transfer target to campaign at once
	// (thesis §3.10).
	MsgTimeoutNow MessageType = 12
	// MsgProp carries proposals a follower forwards to the leader (§8:
	// any server takes a client's request and hands it to the leader).
	// Entries hold the commands (only Data matters); Context identifies
	// the request. Like a local request it carries no term (Term 0).
	MsgProp MessageType = 13
	// MsgPropResp answers MsgProp, Context echoing its. Unless Reject, the
	// leader appended the Entries as consecutive entries from Index, all
	// of term LogTerm. With Reject nothing was appended, and RejectHint
	// says why (propRejectNotLeader, propRejectDropped).
	MsgPropResp MessageType = 14
)

// Reasons of a rejected MsgProp, in RejectHint. Part of the wire format.
const (
	propRejectNotLeader = 1
	propRejectDropped   = 2
)

var msgNames = map[MessageType]string{
	MsgApp: "AppendEntries", MsgAppResp: "AppendEntriesReply",
	MsgVote: "RequestVote", MsgVoteResp: "RequestVoteReply",
	MsgPreVote: "PreVote", MsgPreVoteResp: "PreVoteReply",
	MsgHeartbeat: "Heartbeat", MsgHeartbeatResp: "HeartbeatReply",
	MsgSnap: "InstallSnapshot", MsgReadIndex: "ReadIndex",
	MsgReadIndexResp: "ReadIndexReply", MsgTimeoutNow: "TimeoutNow",
	MsgProp: "Propose", MsgPropResp: "ProposeReply",
}

// String returns the name the paper uses (RequestVote, AppendEntries, ...).
func (t MessageType) String() string {
	if s, ok := msgNames[t]; ok {
		return s
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// Valid reports whether t is a known message type.
func (t MessageType) Valid() bool { _, ok := msgNames[t]; return ok }

// IsResponse reports whether t answers another message.
func (t MessageType) IsResponse() bool {
	switch t {
	case MsgAppResp, MsgVoteResp, MsgPreVoteResp, MsgHeartbeatResp, MsgReadIndexResp, MsgPropResp:
		return true
	}
	return false
}

// termless reports whether t is a request a follower hands on to the
// leader (MsgProp, MsgReadIndex): like a local request, it carries no
// term (Term 0) and changes no one's, so it may leave before the sender's
// own term is durable without speaking of it (§5.1), and any leader
// serves it whatever the sender's term.
func (t MessageType) termless() bool { return t == MsgProp || t == MsgReadIndex }

// IsHeartbeat reports whether t is a heartbeat or its reply (the inspector
// hides them by default).
func (t MessageType) IsHeartbeat() bool { return t == MsgHeartbeat || t == MsgHeartbeatResp }

// Message is every RPC and reply exchanged by cores. Which fields matter
// depends on Type; see each MessageType.
type Message struct {
	Type MessageType
	From uint64
	To   uint64
	Term uint64

	LogTerm uint64
	Index   uint64
	Entries []Entry
	Commit  uint64

	Reject     bool
	RejectHint uint64

	// ReadRound numbers heartbeat rounds: a reply to round r confirms the
	// sender was leader when round r began (thesis §6.4).
	ReadRound uint64

	Snapshot *Snapshot
	Context  []byte
}

func (m Message) String() string {
	s := fmt.Sprintf("%s %d→%d term=%d", m.Type, m.From, m.To, m.Term)
	switch m.Type {
	case MsgApp:
		s += fmt.Sprintf(" prev=%d/%d entries=%d commit=%d", m.Index, m.LogTerm, len(m.Entries), m.Commit)
	case MsgAppResp:
		s += fmt.Sprintf(" index=%d", m.Index)
		if m.Reject {
			s += fmt.Sprintf(" reject hint=%d/%d", m.RejectHint, m.LogTerm)
		}
	case MsgVote, MsgPreVote:
		s += fmt.Sprintf(" last=%d/%d", m.Index, m.LogTerm)
	case MsgVoteResp, MsgPreVoteResp:
		s += fmt.Sprintf(" granted=%t", !m.Reject)
	case MsgHeartbeat:
		s += fmt.Sprintf(" commit=%d round=%d", m.Commit, m.ReadRound)
	case MsgHeartbeatResp:
		s += fmt.Sprintf(" round=%d", m.ReadRound)
	case MsgSnap:
		if m.Snapshot != nil {
			s += fmt.Sprintf(" snap=%d/%d", m.Snapshot.Meta.Index, m.Snapshot.Meta.Term)
		}
	case MsgReadIndexResp:
		s += fmt.Sprintf(" index=%d reject=%t", m.Index, m.Reject)
	case MsgProp:
		s += fmt.Sprintf(" entries=%d", len(m.Entries))
	case MsgPropResp:
		if m.Reject {
			s += fmt.Sprintf(" reject=%d", m.RejectHint)
		} else {
			s += fmt.Sprintf(" index=%d/%d", m.Index, m.LogTerm)
		}
	}
	return s
}

// contextTransfer marks a vote requested by leadership transfer, which
// followers grant even while they still hear from a leader (thesis §3.10).
var contextTransfer = []byte("transfer")
