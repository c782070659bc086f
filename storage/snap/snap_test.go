package snap

import (
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage/vfs"
)

var meta = raft.SnapshotMeta{Index: 42, Term: 7, Membership: raft.Membership{Voters: []uint64{1, 2, 3}, Learners: []uint64{9}}}

func write(t *testing.T, d *Dir, m raft.SnapshotMeta, body string) error {
	t.Helper()
	w, err := d.Create(m)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, body); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

func TestRoundTrip(t *testing.T) {
	fs := vfs.NewMem()
	d, err := OpenDir(fs, "/s", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := write(t, d, meta, "the state"); err != nil {
		t.Fatal(err)
	}
	got, size, err := d.Verify(Name(42, 7))
	if err != nil || size != 9 || got.Index != 42 || got.Term != 7 || !got.Membership.Equal(meta.Membership) {
		t.Fatalf("Verify = %+v, %d, %v", got, size, err)
	}
	_, rc, _, err := d.Open(Name(42, 7))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != "the state" {
		t.Fatalf("body %q, %v", b, err)
	}
	// The whole configuration survives: joint consensus, staging learners
	// and the members' peer addresses (thesis §4).
	full := raft.SnapshotMeta{Index: 43, Term: 7, Membership: raft.Membership{
		Voters: []uint64{1, 4}, Learners: []uint64{5}, Outgoing: []uint64{1, 2, 3}, Staging: []uint64{5},
		Contexts: map[uint64][]byte{4: []byte("h4:7000"), 5: []byte("h5:7000")}}}
	if err := write(t, d, full, "more"); err != nil {
		t.Fatal(err)
	}
	if got, _, err := d.Verify(Name(43, 7)); err != nil || !got.Membership.Equal(full.Membership) {
		t.Fatalf("Verify of a full configuration = %v, %v", got.Membership, err)
	}
	if err := d.Remove(Name(43, 7)); err != nil {
		t.Fatal(err)
	}
	w, _ := d.Create(raft.SnapshotMeta{Index: 50, Term: 7})
	io.WriteString(w, "dropped")
	w.Abort()
	names, _ := fs.List("/s")
	if len(names) != 1 {
		t.Fatalf("after Abort: %v", names)
	}
}

// Any single damaged byte of a snapshot file is detected.
func TestEveryByteDamageIsDetected(t *testing.T) {
	fs := vfs.NewMem()
	d, _ := OpenDir(fs, "/s", false)
	if err := write(t, d, meta, strings.Repeat("body", 20)); err != nil {
		t.Fatal(err)
	}
	name := Name(42, 7)
	data, _ := fs.ReadFile("/s/" + name)
	for off := range data {
		for _, mask := range []byte{1, 0x80, 0xff} {
			img := vfs.NewMem()
			img.MkdirAll("/s")
			bad := append([]byte(nil), data...)
			bad[off] ^= mask
			img.WriteFile("/s/"+name, bad)
			if _, _, err := ReadOnly(img, "/s").Verify(name); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("byte %d ^ %#x: Verify = %v, want ErrCorrupt", off, mask, err)
			}
		}
	}
	for cut := range len(data) {
		img := vfs.NewMem()
		img.MkdirAll("/s")
		img.WriteFile("/s/"+name, data[:cut])
		if _, _, err := ReadOnly(img, "/s").Verify(name); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut at %d: Verify = %v, want ErrCorrupt", cut, err)
		}
	}
}

// A crash at any step of writing a snapshot (before its fsync, before the
// rename, before the directory fsync) leaves the old snapshot or the new
// one, whole, and never a torn one under a snapshot's name.
func TestCrashWhileWriting(t *testing.T) {
	old := raft.SnapshotMeta{Index: 10, Term: 1, Membership: meta.Membership}
	for n := 1; ; n++ {
		m := vfs.NewMem()
		var count atomic.Int64
		var armed atomic.Bool
		fs := vfs.WithInjector(m, vfs.InjectorFunc(func(o vfs.Op) error {
			if armed.Load() && o.Kind&vfs.OpMutate != 0 && count.Add(1) >= int64(n) {
				return vfs.ErrInjected
			}
			return nil
		}))
		d, _ := OpenDir(fs, "/s", false)
		if err := write(t, d, old, "old state"); err != nil {
			t.Fatal(err)
		}
		armed.Store(true)
		err := write(t, d, meta, "new state")
		for seed := range uint64(8) {
			c := m.CrashClone(rand.New(rand.NewPCG(uint64(n), seed)))
			cd, err := OpenDir(c, "/s", false)
			if err != nil {
				t.Fatal(err)
			}
			names, _ := cd.Names()
			if len(names) == 0 {
				t.Fatalf("crash at mutation %d: no snapshot left", n)
			}
			for _, name := range names {
				if _, _, err := cd.Verify(name); err != nil {
					t.Fatalf("crash at mutation %d: %s: %v", n, name, err)
				}
			}
		}
		if err == nil {
			if n < 4 {
				t.Fatalf("writing took only %d mutations", n)
			}
			return
		}
	}
}
