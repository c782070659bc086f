package node

import (
	"strings"
	"testing"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage"
	"github.com/raftex/raftex/storage/vfs"
)

// A snapshot older than the one our log starts from is not stored, but its
// message must still reach the core, which answers with its commit index;
// refusing it made the leader resend it forever (simulator seed 102077).
func TestReceiveSnapshotOlderThanOursStillReachesTheCore(t *testing.T) {
	store, err := storage.Open(vfs.NewMem(), "/n", storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	members := raft.NewMembership(1, 2, 3)
	if err := store.Bootstrap(members); err != nil {
		t.Fatal(err)
	}
	ents := make([]raft.Entry, 0, 400)
	for i := uint64(1); i <= 400; i++ {
		ents = append(ents, raft.Entry{Index: i, Term: 1})
	}
	if err := store.Save(raft.HardState{Term: 1, Commit: 400}, ents); err != nil {
		t.Fatal(err)
	}
	w, err := store.CreateSnapshot(raft.SnapshotMeta{Index: 372, Term: 1, Membership: members})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("state at 372"))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := store.Compact(372); err != nil {
		t.Fatal(err)
	}

	n := &Node{store: store, inbox: make(chan raft.Message, 1)}
	m := raft.Message{Type: raft.MsgSnap, From: 1, To: 2, Term: 1,
		Snapshot: &raft.Snapshot{Meta: raft.SnapshotMeta{Index: 350, Term: 1, Membership: members}}}
	if err := (handler{n}).ReceiveSnapshot(m, strings.NewReader("state at 350")); err != nil {
		t.Fatalf("ReceiveSnapshot of an older snapshot: %v", err)
	}
	select {
	case got := <-n.inbox:
		if got.Snapshot.Meta.Index != 350 {
			t.Fatalf("delivered %v", got)
		}
	default:
		t.Fatal("the InstallSnapshot message never reached the core")
	}
	if snap, _ := store.Snapshot(); snap.Meta.Index != 372 {
		t.Fatalf("newest snapshot = %d, want ours at 372", snap.Meta.Index)
	}
}
