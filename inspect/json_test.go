package inspect

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/raftex/raftex/raft"
)

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 890000000, time.UTC)

func TestJSONEvent(t *testing.T) {
	for _, tc := range []struct {
		e    raft.Event
		want string
	}{{
		raft.Event{Kind: raft.EventRoleChanged, Node: 2, Term: 1, Role: raft.Candidate, PrevRole: raft.Follower},
		`{"kind":"role_changed","category":"state","node":2,"term":1,"role":"candidate","prev_role":"follower",` +
			`"text":"term=1 | follower → candidate","time":"2025-03-04T05:06:07.89Z"}`,
	}, {
		// prev_role is only for role_changed, even when it is a leader's zero value
		raft.Event{Kind: raft.EventMessageReceived, Node: 2, Term: 3, Role: raft.Leader, Peer: 3, MsgType: raft.MsgAppResp, Index: 9, Reject: true},
		`{"kind":"message_received","category":"rpc","node":2,"term":3,"role":"leader","peer":3,"msg_type":"AppendEntriesReply",` +
			`"index":9,"reject":true,"text":"← RECV AppendEntriesReply from n3 (reject)","time":"2025-03-04T05:06:07.89Z"}`,
	}, {
		raft.Event{Kind: raft.EventCommitAdvanced, Node: 1, Term: 1, PrevIndex: 1, Index: 5},
		`{"kind":"commit_advanced","category":"commit","node":1,"term":1,"role":"follower","index":5,"prev_index":1,` +
			`"text":"✅ COMMIT index 1→5","time":"2025-03-04T05:06:07.89Z"}`,
	}, {
		raft.Event{Kind: raft.EventStepDown, Node: 1, Term: 4, Role: raft.Follower, Reason: "disk stall"},
		`{"kind":"step_down","category":"state","node":1,"term":4,"role":"follower","reason":"disk stall",` +
			`"text":"⬇ STEP DOWN: disk stall","time":"2025-03-04T05:06:07.89Z"}`,
	}, {
		// The core reports the win, and the node's own leadership, just
		// before the role change: both say leader, as on the console.
		raft.Event{Kind: raft.EventElectionWon, Node: 2, Term: 1, Role: raft.Candidate, Count: 2},
		`{"kind":"election_won","category":"state","node":2,"term":1,"role":"leader","count":2,` +
			`"text":"👑 WON election! term=1, votes=2","time":"2025-03-04T05:06:07.89Z"}`,
	}, {
		raft.Event{Kind: raft.EventLeaderChanged, Node: 2, Term: 1, Role: raft.Candidate, Peer: 2},
		`{"kind":"leader_changed","category":"state","node":2,"term":1,"role":"leader","peer":2,` +
			`"text":"🧭 leader is n2 (term 1)","time":"2025-03-04T05:06:07.89Z"}`,
	}, {
		// Another node's leadership changes nothing about this node's role.
		raft.Event{Kind: raft.EventLeaderChanged, Node: 1, Term: 1, Role: raft.Follower, Peer: 2},
		`{"kind":"leader_changed","category":"state","node":1,"term":1,"role":"follower","peer":2,` +
			`"text":"🧭 leader is n2 (term 1)","time":"2025-03-04T05:06:07.89Z"}`,
	}} {
		b, err := json.Marshal(NewJSONEvent(tc.e, t0))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%v\n got %s\nwant %s", tc.e, b, tc.want)
		}
	}
}

// TestJSONEventRoundTrip: every kind decodes back to the same fields.
func TestJSONEventRoundTrip(t *testing.T) {
	for _, e := range everyKind {
		j := NewJSONEvent(e, t0)
		b, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		var back JSONEvent
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back != j {
			t.Errorf("round trip of %v: %+v != %+v", e, back, j)
		}
		if back.Kind != e.Kind.String() || back.Category == "" || back.Text == "" {
			t.Errorf("%v: incomplete %s", e, b)
		}
	}
}
