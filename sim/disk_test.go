package sim

import (
	"math/rand/v2"
	"testing"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage"
	"github.com/raftex/raftex/storage/vfs"
)

// TestDiskHeldWriteIsNotDurable: a WAL batch written while the disk holds
// its fsync is lost (or torn) by a crash before flush, and survives one
// after flush. Over many crash clones both outcomes occur, and the store
// always recovers.
func TestDiskHeldWriteIsNotDurable(t *testing.T) {
	open := func(d *disk) *storage.Store {
		st, err := storage.Open(d, "/data", storage.Options{SegmentSize: 4 << 10})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	d := newDisk(vfs.NewMem())
	st := open(d)
	if err := st.Bootstrap(raft.NewMembership(1)); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(raft.HardState{Term: 1, Vote: 1}, []raft.Entry{{Term: 1, Index: 1}}); err != nil {
		t.Fatal(err)
	}
	d.hold()
	if err := st.Save(raft.HardState{Term: 2, Vote: 1, Commit: 1}, []raft.Entry{{Term: 2, Index: 2, Data: make([]byte, 100)}}); err != nil {
		t.Fatal(err)
	}
	d.release()
	rng := rand.New(rand.NewPCG(1, 1))
	lost, kept := 0, 0
	for range 200 {
		last, _ := open(d.crash(rng)).LastIndex()
		switch last {
		case 1:
			lost++
		case 2:
			kept++
		default:
			t.Fatalf("recovered last index %d", last)
		}
	}
	if lost == 0 || kept == 0 {
		t.Fatalf("before the fsync completed, crashes lost the write %d times and kept it %d times; want both", lost, kept)
	}
	d.flush()
	for range 50 {
		if last, _ := open(d.crash(rng)).LastIndex(); last != 2 {
			t.Fatalf("after the fsync completed, a crash left last index %d", last)
		}
	}
}
