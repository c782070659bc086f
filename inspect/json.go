package inspect

import (
	"time"

	"github.com/raftex/raftex/raft"
)

// JSONEvent is the stable JSON form of an event, as served by SSEHandler:
//
//	{"kind":"role_changed","category":"state","node":2,"term":1,
//	 "role":"candidate","prev_role":"follower",
//	 "text":"term=1 | follower → candidate","time":"2025-01-02T15:04:05.123Z"}
//
// kind, category, node, term, role, text and time are always present; the
// other fields are omitted when zero (peer 0 means none, as in raft.None).
// role is the node's role right after the event, as the console tags it: an
// election win and the node's own leader_changed say "leader", though the
// core reports them a moment before its role changes.
// Field names and kind, role and msg_type values never change meaning;
// new fields may be added.
type JSONEvent struct {
	Kind      string `json:"kind"`                // raft.EventKind.String(): "role_changed", ...
	Category  string `json:"category"`            // "state", "rpc", "commit" or "snapshot"
	Node      uint64 `json:"node"`                // the node that observed the event
	Term      uint64 `json:"term"`                // its term after the event
	Role      string `json:"role"`                // its role after the event (see below)
	PrevRole  string `json:"prev_role,omitempty"` // role_changed only
	Peer      uint64 `json:"peer,omitempty"`
	MsgType   string `json:"msg_type,omitempty"` // paper name: "RequestVote", ...
	Index     uint64 `json:"index,omitempty"`
	PrevIndex uint64 `json:"prev_index,omitempty"`
	Count     int    `json:"count,omitempty"`
	Reject    bool   `json:"reject,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// Text is the console line without its node and role prefix.
	Text string `json:"text"`
	// Time is when the event was observed (the stream's clock: events carry
	// none); it marshals as RFC 3339 with nanoseconds.
	Time time.Time `json:"time"`
}

// NewJSONEvent returns the JSON form of e observed at t.
func NewJSONEvent(e raft.Event, t time.Time) JSONEvent {
	j := JSONEvent{
		Kind: e.Kind.String(), Category: CategoryOf(e.Kind).String(),
		Node: e.Node, Term: e.Term, Role: shownRole(e).String(),
		Peer: e.Peer, Index: e.Index, PrevIndex: e.PrevIndex, Count: e.Count,
		Reject: e.Reject, Reason: e.Reason,
		Text: describe(e, NodeName), Time: t,
	}
	if e.Kind == raft.EventRoleChanged {
		j.PrevRole = e.PrevRole.String()
	}
	if e.MsgType != 0 {
		j.MsgType = e.MsgType.String()
	}
	return j
}
