package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage/snap"
	"github.com/raftex/raftex/storage/vfs"
	"github.com/raftex/raftex/storage/wal"
)

const dir = "/node"

var members = raft.NewMembership(1, 2, 3)

func ents(lo, hi, t uint64) []raft.Entry {
	var out []raft.Entry
	for i := lo; i < hi; i++ {
		out = append(out, raft.Entry{Index: i, Term: t, Data: fmt.Appendf(nil, "e%d.t%d", i, t)})
	}
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustOpen(t testing.TB, fs vfs.FS, opts Options) *Store {
	t.Helper()
	s, err := Open(fs, dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// snapshot writes and commits a snapshot whose body names it.
func snapshot(t testing.TB, s *Store, meta raft.SnapshotMeta) {
	t.Helper()
	w, err := s.CreateSnapshot(meta)
	must(t, err)
	fmt.Fprintf(w, "state at %d", meta.Index)
	must(t, w.Commit())
}

func body(t testing.TB, s *Store, index uint64) string {
	t.Helper()
	_, rc, size, err := s.OpenSnapshot(index)
	must(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	must(t, err)
	if int64(len(b)) != size {
		t.Fatalf("body of %d bytes, size said %d", len(b), size)
	}
	return string(b)
}

// view is everything raft.Storage shows, in a comparable form.
func view(t testing.TB, st raft.Storage) string {
	t.Helper()
	hs, m, err := st.InitialState()
	must(t, err)
	first, _ := st.FirstIndex()
	last, _ := st.LastIndex()
	sn, _ := st.Snapshot()
	var b strings.Builder
	fmt.Fprintf(&b, "hs=%+v m=%v first=%d last=%d snap=%d/%d/%v\n", hs, m, first, last, sn.Meta.Index, sn.Meta.Term, sn.Meta.Membership)
	for i := first - 2; i <= last+1 && i < first+200; i++ {
		tm, err := st.Term(i)
		fmt.Fprintf(&b, "term(%d)=%d,%v ", i, tm, err)
	}
	for _, maxBytes := range []uint64{0, 29, 30, 58, 59, 60, 61, 87, 90, 1 << 30} {
		for lo := first - 1; lo <= last+1 && lo < first+10; lo++ {
			for hi := lo; hi <= last+2 && hi < lo+10; hi++ {
				got, err := st.Entries(lo, hi, maxBytes)
				fmt.Fprintf(&b, "\n[%d,%d)/%d=%v:", lo, hi, maxBytes, errors.Is(err, raft.ErrCompacted) || errors.Is(err, raft.ErrUnavailable))
				for _, e := range got {
					fmt.Fprintf(&b, "%d/%d:%s ", e.Index, e.Term, e.Data)
				}
			}
		}
	}
	return b.String()
}

// The Store shows through raft.Storage exactly what MemoryStorage shows
// after the same writes, and still does after a restart.
func TestBehavesLikeMemoryStorage(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, Options{SegmentSize: 512})
	must(t, s.Bootstrap(members))
	ms := raft.NewMemoryStorage(members)
	check := func(step string) {
		t.Helper()
		want := view(t, ms)
		if got := view(t, s); got != want {
			t.Fatalf("%s: store differs from MemoryStorage:\n got %s\nwant %s", step, got, want)
		}
		must(t, s.Close())
		s = mustOpen(t, fs, Options{SegmentSize: 512})
		if got := view(t, s); got != want {
			t.Fatalf("%s, after restart: store differs from MemoryStorage:\n got %s\nwant %s", step, got, want)
		}
	}
	check("empty")
	save := func(hs raft.HardState, es []raft.Entry) {
		t.Helper()
		must(t, s.Save(hs, es))
		must(t, ms.Append(es))
		if !hs.IsEmpty() {
			ms.SetHardState(hs)
		}
	}
	save(raft.HardState{Term: 1, Vote: 1}, ents(1, 11, 1))
	check("append")
	save(raft.HardState{Term: 2, Vote: 2, Commit: 4}, ents(6, 9, 2))
	check("truncate suffix (§5.3)")
	save(raft.HardState{}, ents(9, 30, 2))
	check("append more")
	// A local snapshot at 20, then compaction to it (§7).
	m2 := raft.NewMembership(1, 2, 3, 4)
	snapshot(t, s, raft.SnapshotMeta{Index: 20, Term: 2, Membership: m2})
	must(t, s.Compact(20))
	_, err := ms.CreateSnapshot(20, m2, nil)
	must(t, err)
	check("snapshot and compact")
	save(raft.HardState{Term: 2, Vote: 2, Commit: 25}, ents(15, 32, 2)) // partly below the compaction point
	check("append across the compaction point")
	// A snapshot from the leader replaces the whole log (§7).
	m3 := raft.NewMembership(2, 3, 4)
	snapshot(t, s, raft.SnapshotMeta{Index: 50, Term: 5, Membership: m3})
	must(t, s.ApplySnapshot(raft.SnapshotMeta{Index: 50, Term: 5, Membership: m3}))
	must(t, ms.ApplySnapshot(raft.Snapshot{Meta: raft.SnapshotMeta{Index: 50, Term: 5, Membership: m3}}))
	check("apply snapshot")
	save(raft.HardState{Term: 5, Vote: 3, Commit: 50}, ents(51, 55, 5))
	check("append after snapshot")
	if err := s.ApplySnapshot(raft.SnapshotMeta{Index: 20, Term: 2}); !errors.Is(err, raft.ErrSnapshotOutOfDate) {
		t.Fatalf("ApplySnapshot of an older snapshot: %v", err)
	}
	if _, err := s.CreateSnapshot(raft.SnapshotMeta{Index: 10, Term: 2, Membership: members}); !errors.Is(err, raft.ErrSnapshotOutOfDate) {
		t.Fatalf("CreateSnapshot below the installed snapshot: %v", err)
	}
}

// A body a deposed leader sent (stored, never installed because the core
// ignored the stale message) must not block the current leader's older
// snapshot: the core installs that one, so its body must be storable
// (simulator seed 401856).
func TestOlderSnapshotAfterAnUninstalledNewerOne(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, Options{})
	must(t, s.Bootstrap(members))
	must(t, s.Save(raft.HardState{Term: 1, Vote: 1, Commit: 5}, ents(1, 11, 1)))
	snapshot(t, s, raft.SnapshotMeta{Index: 665, Term: 3, Membership: members}) // from a deposed leader
	snapshot(t, s, raft.SnapshotMeta{Index: 664, Term: 4, Membership: members}) // from the current one
	must(t, s.ApplySnapshot(raft.SnapshotMeta{Index: 664, Term: 4, Membership: members}))
	if first, _ := s.FirstIndex(); first != 665 {
		t.Fatalf("FirstIndex after installing 664 = %d", first)
	}
	must(t, s.Close())
	s = mustOpen(t, fs, Options{})
	if last, _ := s.LastIndex(); last != 664 {
		t.Fatalf("after restart LastIndex = %d, want the installed 664", last)
	}
	if _, err := s.CreateSnapshot(raft.SnapshotMeta{Index: 600, Term: 4, Membership: members}); !errors.Is(err, raft.ErrSnapshotOutOfDate) {
		t.Fatalf("CreateSnapshot below the installed one: %v", err)
	}
}

func TestBootstrapAndHasState(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, Options{})
	if s.HasState() {
		t.Fatal("a new directory has state")
	}
	if err := s.Bootstrap(raft.Membership{}); err == nil {
		t.Fatal("bootstrap with no voters succeeded")
	}
	must(t, s.Bootstrap(members))
	if !s.HasState() {
		t.Fatal("no state after Bootstrap")
	}
	if err := s.Bootstrap(members); !errors.Is(err, ErrHasState) {
		t.Fatalf("second Bootstrap: %v", err)
	}
	s.Close()
	s = mustOpen(t, fs, Options{})
	if _, m, _ := s.InitialState(); !m.Equal(members) || !s.HasState() {
		t.Fatalf("after restart: membership %v, HasState %v", m, s.HasState())
	}
	if err := s.Save(raft.HardState{Term: 1}, nil); err != nil {
		t.Fatal(err)
	}
	must(t, s.Close())
	if err := s.Save(raft.HardState{Term: 2}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Save after Close: %v", err)
	}
}

func TestSnapshotBodyAndRetention(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, Options{KeepSnapshots: 2})
	must(t, s.Bootstrap(members))
	must(t, s.Save(raft.HardState{Term: 1, Commit: 40}, ents(1, 41, 1)))
	for _, i := range []uint64{10, 20, 30, 40} {
		snapshot(t, s, raft.SnapshotMeta{Index: i, Term: 1, Membership: members})
	}
	names, _ := fs.List(dir + "/snap")
	if len(names) != 2 || names[0] != snap.Name(30, 1) || names[1] != snap.Name(40, 1) {
		t.Fatalf("kept %v, want the two newest", names)
	}
	if got := body(t, s, 40); got != "state at 40" {
		t.Fatalf("body %q", got)
	}
	if _, _, _, err := s.OpenSnapshot(10); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("OpenSnapshot of a deleted snapshot: %v", err)
	}
	if sn, _ := s.Snapshot(); sn.Meta.Index != 40 || sn.Data != nil {
		t.Fatalf("Snapshot() = %+v", sn)
	}
	if err := s.Compact(41); err == nil {
		t.Fatal("compaction past the snapshot succeeded")
	}
	// A damaged body is reported when read to its end.
	img := fs.CrashClone(rand.New(rand.NewPCG(0, 0)))
	data, _ := img.ReadFile(dir + "/snap/" + snap.Name(40, 1))
	data[len(data)-25] ^= 0x10
	must(t, img.WriteFile(dir+"/snap/"+snap.Name(40, 1), data))
	_, rc, _, err := snap.ReadOnly(img, dir+"/snap").Open(snap.Name(40, 1))
	must(t, err)
	if _, err := io.ReadAll(rc); !errors.Is(err, snap.ErrCorrupt) {
		t.Fatalf("reading a damaged body: %v", err)
	}
}

// A corrupt newest snapshot is skipped when an older one and the log
// still cover the state; otherwise Open refuses.
func TestCorruptSnapshot(t *testing.T) {
	build := func() *vfs.MemFS {
		fs := vfs.NewMem()
		s := mustOpen(t, fs, Options{})
		must(t, s.Bootstrap(members))
		must(t, s.Save(raft.HardState{Term: 1, Commit: 30}, ents(1, 31, 1)))
		snapshot(t, s, raft.SnapshotMeta{Index: 10, Term: 1, Membership: members})
		must(t, s.Compact(5))
		snapshot(t, s, raft.SnapshotMeta{Index: 20, Term: 1, Membership: members})
		must(t, s.Close())
		return fs
	}
	damage := func(fs *vfs.MemFS) {
		name := dir + "/snap/" + snap.Name(20, 1)
		data, _ := fs.ReadFile(name)
		data[len(data)/2] ^= 1
		must(t, fs.WriteFile(name, data))
	}
	fs := build()
	damage(fs)
	s := mustOpen(t, fs, Options{})
	if sn, _ := s.Snapshot(); sn.Meta.Index != 10 {
		t.Fatalf("after skipping the corrupt snapshot, newest is %d, want 10", sn.Meta.Index)
	}
	names, _ := fs.List(dir + "/snap")
	if !strings.Contains(strings.Join(names, " "), snap.Name(20, 1)+".broken") {
		t.Fatalf("corrupt snapshot not kept aside: %v", names)
	}
	s.Close()

	fs = build()
	s = mustOpen(t, fs, Options{})
	must(t, s.Compact(15)) // now only the snapshot at 20 covers the log
	s.Close()
	damage(fs)
	if _, err := Open(fs, dir, Options{}); !errors.Is(err, ErrUncovered) {
		t.Fatalf("Open with the only covering snapshot corrupt: %v, want ErrUncovered", err)
	}
}

// crashPoints runs setup, then op with the disk dying at its nth mutating
// operation for n = 1, 2, ... until op succeeds; check gets the disks a
// power cut could leave then.
func crashPoints(t *testing.T, setup func(fs vfs.FS) *Store, op func(s *Store) error, check func(n int, fs *vfs.MemFS)) {
	t.Helper()
	for n := 1; ; n++ {
		m := vfs.NewMem()
		var armed atomic.Bool
		var count atomic.Int64
		fs := vfs.WithInjector(m, vfs.InjectorFunc(func(o vfs.Op) error {
			if armed.Load() && o.Kind&vfs.OpMutate != 0 && count.Add(1) >= int64(n) {
				return vfs.ErrInjected
			}
			return nil
		}))
		s := setup(fs)
		armed.Store(true)
		err := op(s)
		if err != nil && !errors.Is(err, vfs.ErrInjected) {
			t.Fatalf("crash point %d: %v", n, err)
		}
		for seed := range uint64(8) {
			check(n, m.CrashClone(rand.New(rand.NewPCG(uint64(n), seed))))
		}
		if err == nil {
			return
		}
	}
}

// A crash at each step of writing a snapshot (before the fsync, before the
// rename, before the directory fsync, during retention and compaction)
// leaves the old snapshot or the new one, never neither.
func TestSnapshotCrashAtEveryStep(t *testing.T) {
	setup := func(fs vfs.FS) *Store {
		s := mustOpen(t, fs, Options{KeepSnapshots: 1, SegmentSize: 256})
		must(t, s.Bootstrap(members))
		must(t, s.Save(raft.HardState{Term: 1, Vote: 1, Commit: 30}, ents(1, 31, 1)))
		snapshot(t, s, raft.SnapshotMeta{Index: 10, Term: 1, Membership: members})
		must(t, s.Compact(10))
		return s
	}
	m2 := raft.NewMembership(1, 2)
	cases := map[string]struct {
		op        func(s *Store) error
		newIndex  uint64
		wantFirst []uint64 // FirstIndex after the old, after the new
	}{
		"local snapshot and compaction": {
			op: func(s *Store) error {
				w, err := s.CreateSnapshot(raft.SnapshotMeta{Index: 25, Term: 1, Membership: m2})
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "state at 25")
				if err := w.Commit(); err != nil {
					return err
				}
				return s.Compact(25)
			},
			newIndex: 25,
		},
		"snapshot from the leader": {
			op: func(s *Store) error {
				meta := raft.SnapshotMeta{Index: 100, Term: 3, Membership: m2}
				w, err := s.CreateSnapshot(meta)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "state at 100")
				if err := w.Commit(); err != nil {
					return err
				}
				return s.ApplySnapshot(meta)
			},
			newIndex: 100,
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			seen := map[uint64]bool{}
			crashPoints(t, setup, c.op, func(n int, fs *vfs.MemFS) {
				s, err := Open(fs, dir, Options{KeepSnapshots: 1, SegmentSize: 256})
				if err != nil {
					t.Fatalf("crash at mutation %d: Open: %v", n, err)
				}
				sn, _ := s.Snapshot()
				idx := sn.Meta.Index
				if idx != 10 && idx != c.newIndex {
					t.Fatalf("crash at mutation %d: snapshot at %d, want 10 or %d", n, idx, c.newIndex)
				}
				if got := body(t, s, idx); got != fmt.Sprintf("state at %d", idx) {
					t.Fatalf("crash at mutation %d: body %q", n, got)
				}
				// The log continues from the snapshot it has.
				first, _ := s.FirstIndex()
				if first > idx+1 {
					t.Fatalf("crash at mutation %d: log starts at %d after a snapshot at %d", n, first, idx)
				}
				if tm, err := s.Term(idx); err != nil || (idx == 10 && tm != 1) {
					t.Fatalf("crash at mutation %d: Term(%d) = %d, %v", n, idx, tm, err)
				}
				hs, _, _ := s.InitialState()
				if hs.Term != 1 || hs.Vote != 1 {
					t.Fatalf("crash at mutation %d: hard state %+v lost", n, hs)
				}
				seen[idx] = true
				s.Close()
			})
			if !seen[10] || !seen[c.newIndex] {
				t.Fatalf("crash images held snapshots %v: want both old and new seen", seen)
			}
		})
	}
}

// The core's goroutine reads while the storage goroutine writes (run with
// -race).
func TestConcurrentReadsAndWrites(t *testing.T) {
	s := mustOpen(t, vfs.NewMem(), Options{SegmentSize: 4096})
	must(t, s.Bootstrap(members))
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			first, _ := s.FirstIndex()
			last, _ := s.LastIndex()
			if last >= first {
				if _, err := s.Entries(first, last+1, 1<<20); err != nil && !errors.Is(err, raft.ErrCompacted) {
					t.Error(err)
					return
				}
			}
			s.Snapshot()
			s.InitialState()
		}
	}()
	for i := uint64(1); i <= 300; i += 3 {
		must(t, s.Save(raft.HardState{Term: 1, Commit: i - 1}, ents(i, i+3, 1)))
		if i%60 == 1 && i > 1 {
			snapshot(t, s, raft.SnapshotMeta{Index: i - 1, Term: 1, Membership: members})
			must(t, s.Compact(i-1))
		}
	}
	close(done)
	wg.Wait()
}

func TestDump(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, Options{})
	must(t, s.Bootstrap(members))
	must(t, s.Save(raft.HardState{Term: 1, Vote: 1, Commit: 2}, ents(1, 4, 1)))
	snapshot(t, s, raft.SnapshotMeta{Index: 2, Term: 1, Membership: members})
	s.Close()
	var out bytes.Buffer
	must(t, Dump(fs, dir, &out))
	for _, want := range []string{"== log /node/wal", "entry      index=3 term=1", "== snapshots /node/snap",
		snap.Name(2, 1) + " index=2 term=1 membership=voters=[1 2 3] body=10 bytes checksum ok"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dump lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCorruptLogRefusesToStart(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs, Options{})
	must(t, s.Save(raft.HardState{Term: 1}, ents(1, 4, 1)))
	must(t, s.Save(raft.HardState{Term: 1}, ents(4, 6, 1)))
	s.Close()
	names, _ := fs.List(dir + "/wal")
	data, _ := fs.ReadFile(dir + "/wal/" + names[0])
	data[120] ^= 4
	must(t, fs.WriteFile(dir+"/wal/"+names[0], data))
	_, err := Open(fs, dir, Options{})
	var ce *wal.CorruptError
	if !errors.Is(err, wal.ErrCorrupt) || !errors.As(err, &ce) || ce.Offset == 0 || !strings.Contains(err.Error(), names[0]) {
		t.Fatalf("Open of a corrupt log: %v", err)
	}
}

// A crash right after the first Open keeps the directories it made (the
// data directory's tree down to wal/ and snap/: each new directory's
// parent is synced), and so the bootstrap synced inside them.
func TestOpenMakesItsDirectoriesDurable(t *testing.T) {
	for seed := range uint64(30) {
		fs := vfs.NewMem()
		s, err := Open(fs, "/var/lib/raftex/n1/raft", Options{})
		must(t, err)
		must(t, s.Bootstrap(raft.NewMembership(1, 2, 3)))
		crashed := fs.CrashClone(rand.New(rand.NewPCG(seed, 9)))
		s.Close()
		for _, d := range []string{"/var/lib/raftex/n1/raft/wal", "/var/lib/raftex/n1/raft/snap"} {
			if _, err := crashed.List(d); err != nil {
				t.Fatalf("seed %d: a crash right after Open lost %s: %v", seed, d, err)
			}
		}
		again, err := Open(crashed, "/var/lib/raftex/n1/raft", Options{})
		must(t, err)
		if !again.HasState() {
			t.Fatalf("seed %d: the bootstrap did not survive the crash", seed)
		}
		again.Close()
	}
}

// Open reports what it recovered, for the node's startup log.
func TestOpenReportsWhatItRecovered(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open(fs, "d", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Recovered(); r.Entries != 0 || r.LastIndex != 0 {
		t.Fatalf("an empty store recovered %+v", r)
	}
	var ents []raft.Entry
	for i := uint64(1); i <= 7; i++ {
		ents = append(ents, raft.Entry{Index: i, Term: 2, Data: []byte("x")})
	}
	if err := s.Save(raft.HardState{Term: 2, Commit: 7}, ents); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(fs, "d", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := s.Recovered()
	if r.Entries != 7 || r.FirstIndex != 1 || r.LastIndex != 7 || r.Term != 2 || r.SnapshotIndex != 0 || r.Duration <= 0 {
		t.Fatalf("recovered %+v, want 7 entries 1..7 of term 2", r)
	}
}
