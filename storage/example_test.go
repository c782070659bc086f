package storage_test

import (
	"fmt"
	"io"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage"
	"github.com/raftex/raftex/storage/vfs"
)

// A node's storage goroutine persists each Ready, takes snapshots and
// compacts; after a restart the store holds exactly what was acknowledged.
func Example() {
	fs := vfs.NewMem() // vfs.OS() on a real disk
	s, err := storage.Open(fs, "/var/lib/raftex/node1", storage.Options{})
	if err != nil {
		panic(err)
	}
	if !s.HasState() {
		s.Bootstrap(raft.NewMembership(1, 2, 3))
	}
	// Ready: entries and hard state, one fsync.
	s.Save(raft.HardState{Term: 1, Vote: 1, Commit: 2}, []raft.Entry{
		{Index: 1, Term: 1, Type: raft.EntryNoop},
		{Index: 2, Term: 1, Data: []byte("x=1")},
	})
	// A snapshot of the state machine at index 2, then compaction (§7).
	w, _ := s.CreateSnapshot(raft.SnapshotMeta{Index: 2, Term: 1, Membership: raft.NewMembership(1, 2, 3)})
	io.WriteString(w, `{"x":1}`)
	w.Commit()
	s.Compact(2)
	s.Close()

	s, _ = storage.Open(fs, "/var/lib/raftex/node1", storage.Options{})
	hs, m, _ := s.InitialState()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	_, body, _, _ := s.OpenSnapshot(2)
	b, _ := io.ReadAll(body)
	body.Close()
	fmt.Printf("hs=%+v %v first=%d last=%d snapshot=%s\n", hs, m, first, last, b)
	// Output: hs={Term:1 Vote:1 Commit:2} voters=[1 2 3] first=3 last=2 snapshot={"x":1}
}
