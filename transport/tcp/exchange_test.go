package tcp_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/raftex/raftex/raft"
)

// TestExchange: three nodes send each other every kind of message; each
// arrives whole, in order per sender, and the stats count it.
func TestExchange(t *testing.T) {
	leakCheck(t)
	nodes := cluster(t, 3)
	want := map[uint64][]raft.Message{} // by receiver
	for _, from := range nodes {
		for _, to := range nodes {
			if from == to {
				continue
			}
			msgs := []raft.Message{
				{Type: raft.MsgVote, From: from.id, To: to.id, Term: 2, Index: 5, LogTerm: 1, Context: []byte("transfer")},
				{Type: raft.MsgApp, From: from.id, To: to.id, Term: 2, Index: 5, LogTerm: 1, Commit: 5, Entries: []raft.Entry{
					{Term: 2, Index: 6, Data: bytes.Repeat([]byte("x"), 1000)}, {Term: 2, Index: 7, Type: raft.EntryNoop},
				}},
				{Type: raft.MsgAppResp, From: from.id, To: to.id, Term: 2, Index: 5, Reject: true, RejectHint: 3, LogTerm: 1},
				heartbeat(from.id, to.id, 9),
			}
			from.tr.Send(msgs)
			want[to.id] = append(want[to.id], msgs...)
		}
	}
	for _, n := range nodes {
		n.h.Wait(t, "every message", func() bool { return len(n.h.Messages()) == len(want[n.id]) })
		for _, from := range nodes {
			if got, want := fromOnly(n.h.Messages(), from.id), fromOnly(want[n.id], from.id); !reflect.DeepEqual(got, want) {
				t.Errorf("node %d got from %d:\n%swant:\n%s", n.id, from.id, describe(got), describe(want))
			}
		}
	}
	for _, n := range nodes {
		if err := n.tr.Stop(); err != nil { // its goroutines are done counting
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		st := n.tr.Stats()
		for _, typ := range []raft.MessageType{raft.MsgVote, raft.MsgApp, raft.MsgAppResp, raft.MsgHeartbeat} {
			if st.MessagesSent[typ] != 2 || st.MessagesReceived[typ] != 2 {
				t.Errorf("node %d: %s sent %d, received %d; want 2 and 2", n.id, typ, st.MessagesSent[typ], st.MessagesReceived[typ])
			}
		}
		if st.BytesSent == 0 || st.BytesReceived == 0 || st.Dropped != 0 {
			t.Errorf("node %d stats: %+v", n.id, st)
		}
	}
}

func fromOnly(ms []raft.Message, id uint64) []raft.Message {
	var out []raft.Message
	for _, m := range ms {
		if m.From == id {
			out = append(out, m)
		}
	}
	return out
}

// TestBatchesCoalesce: many messages queued at once arrive whole and in
// order (the sender writes them in batches).
func TestBatchesCoalesce(t *testing.T) {
	leakCheck(t)
	nodes := cluster(t, 2)
	const n = 3000
	var msgs []raft.Message
	for i := range n {
		msgs = append(msgs, heartbeat(1, 2, uint64(i)))
	}
	nodes[0].tr.Send(msgs)
	nodes[1].h.Wait(t, "every heartbeat", func() bool { return len(nodes[1].h.Messages()) == n })
	for i, m := range nodes[1].h.Messages() {
		if m.ReadRound != uint64(i) {
			t.Fatalf("message %d has round %d: out of order", i, m.ReadRound)
		}
	}
}

// TestOversizedMessageDropped: a message past MaxFrameSize is dropped by
// the sender, counted, and the stream goes on.
func TestOversizedMessageDropped(t *testing.T) {
	leakCheck(t)
	a, b := newNode(t, config(1, "c")), newNode(t, config(2, "c"))
	a.tr.AddPeer(2, b.tr.Addr())
	b.tr.AddPeer(1, a.tr.Addr())
	a.start(t, nil)
	b.start(t, nil)
	big := raft.Message{Type: raft.MsgApp, From: 1, To: 2, Entries: []raft.Entry{{Data: make([]byte, 17<<20)}}}
	a.tr.Send([]raft.Message{big, heartbeat(1, 2, 1)})
	b.h.Wait(t, "the heartbeat", func() bool { return len(b.h.Messages()) == 1 })
	if got := b.h.Messages()[0]; got.Type != raft.MsgHeartbeat {
		t.Fatalf("got %v, want the heartbeat only", got)
	}
	if st := a.tr.Stats(); st.Dropped != 1 {
		t.Fatalf("dropped %d, want 1", st.Dropped)
	}
	if a.logs.count("level=WARN", "exceeds the maximum frame size") != 1 {
		t.Fatalf("no warning logged")
	}
}
