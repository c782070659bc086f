package wal

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage/vfs"
)

func TestSaveAndReopen(t *testing.T) {
	fs := vfs.NewMem()
	w := mustOpen(t, fs, Options{})
	if w.FirstIndex() != 1 || w.LastIndex() != 0 || !w.HardState().IsEmpty() {
		t.Fatalf("new log: first %d last %d hs %+v", w.FirstIndex(), w.LastIndex(), w.HardState())
	}
	must(t, w.Bootstrap(raft.NewMembership(1, 2, 3)))
	must(t, w.Save(raft.HardState{Term: 1, Vote: 1}, ents(1, 4, 1)))
	must(t, w.Save(raft.HardState{}, ents(4, 6, 1)))
	must(t, w.Save(raft.HardState{Term: 1, Vote: 1, Commit: 5}, nil))
	want := stateOf(t, w)
	must(t, w.Close())
	got := stateOf(t, mustOpen(t, fs, Options{}))
	if got != want {
		t.Fatalf("after reopen:\n got %v\nwant %v", got, want)
	}
	if !strings.Contains(got.Entries, "5/1:e5.t1") || got.Membership != "voters=[1 2 3]" {
		t.Fatalf("unexpected state %v", got)
	}
}

// §5.3: a conflicting entry and all that follow it are replaced.
func TestSaveTruncatesConflictingSuffix(t *testing.T) {
	fs := vfs.NewMem()
	w := mustOpen(t, fs, Options{})
	must(t, w.Save(raft.HardState{Term: 1}, ents(1, 6, 1)))
	must(t, w.Save(raft.HardState{Term: 2}, ents(3, 5, 2)))
	want := "1/1:e1.t1 2/1:e2.t1 3/2:e3.t2 4/2:e4.t2 "
	if got := stateOf(t, w).Entries; got != want {
		t.Fatalf("entries %q, want %q", got, want)
	}
	w.Close()
	if got := stateOf(t, mustOpen(t, fs, Options{})).Entries; got != want {
		t.Fatalf("after reopen: entries %q, want %q", got, want)
	}
}

func TestSaveRejectsGaps(t *testing.T) {
	w := mustOpen(t, vfs.NewMem(), Options{})
	must(t, w.Save(raft.HardState{}, ents(1, 3, 1)))
	if err := w.Save(raft.HardState{}, ents(4, 5, 1)); !errors.Is(err, ErrGap) {
		t.Fatalf("gap after last: %v, want ErrGap", err)
	}
	bad := append(ents(3, 4, 1), ents(5, 6, 1)...)
	if err := w.Save(raft.HardState{}, bad); !errors.Is(err, ErrGap) {
		t.Fatalf("gap inside batch: %v, want ErrGap", err)
	}
	if w.LastIndex() != 2 {
		t.Fatalf("a rejected save changed the log: last %d", w.LastIndex())
	}
}

func TestSegmentsRollAndCompactionDeletesThem(t *testing.T) {
	fs := vfs.NewMem()
	w := mustOpen(t, fs, Options{SegmentSize: 256})
	for i := uint64(1); i <= 40; i += 4 {
		must(t, w.Save(raft.HardState{Term: 1, Commit: i - 1}, ents(i, i+4, 1)))
	}
	if n := len(segments(t, fs)); n < 5 {
		t.Fatalf("%d segments for 40 entries of 256-byte segments", n)
	}
	before := len(segments(t, fs))
	must(t, w.Compact(30))
	after := segments(t, fs)
	if len(after) >= before || len(after) == 0 {
		t.Fatalf("compaction kept %d of %d segments", len(after), before)
	}
	want := stateOf(t, w)
	if want.First != 31 || want.BaseTerm != 1 {
		t.Fatalf("after Compact(30): %v", want)
	}
	w.Close()
	if got := stateOf(t, mustOpen(t, fs, Options{SegmentSize: 256})); got != want {
		t.Fatalf("after reopen:\n got %v\nwant %v", got, want)
	}
	if _, err := w.Term(29); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("Term(29) = %v, want ErrCompacted", err)
	}
}

// Entries rewritten in a later segment keep the older ones from being
// needed; entries only in an older segment keep it alive.
func TestCompactionKeepsSegmentsWithLiveEntries(t *testing.T) {
	fs := vfs.NewMem()
	w := mustOpen(t, fs, Options{SegmentSize: 200})
	must(t, w.Save(raft.HardState{Term: 1}, ents(1, 11, 1)))
	must(t, w.Save(raft.HardState{Term: 2}, ents(5, 6, 2))) // new segment, truncates to 5
	must(t, w.Save(raft.HardState{Term: 2}, ents(6, 8, 2)))
	must(t, w.Compact(3))
	// Entry 4 lives only in the first segment.
	want := stateOf(t, w)
	w.Close()
	if got := stateOf(t, mustOpen(t, fs, Options{SegmentSize: 200})); got != want {
		t.Fatalf("after reopen:\n got %v\nwant %v", got, want)
	}
	w = mustOpen(t, fs, Options{SegmentSize: 200})
	must(t, w.Compact(4))
	if segs := segments(t, fs); segs[0] == segmentName(1, 1) {
		t.Fatalf("segments after all live entries moved on: %v", segs)
	}
	want = stateOf(t, w)
	w.Close()
	if got := stateOf(t, mustOpen(t, fs, Options{SegmentSize: 200})); got != want {
		t.Fatalf("after reopen:\n got %v\nwant %v", got, want)
	}
}

// §7: a snapshot that is not a prefix of the log replaces all of it.
func TestReset(t *testing.T) {
	fs := vfs.NewMem()
	w := mustOpen(t, fs, Options{SegmentSize: 128})
	must(t, w.Save(raft.HardState{Term: 1}, ents(1, 20, 1)))
	must(t, w.Reset(10, 3))
	if w.FirstIndex() != 11 || w.LastIndex() != 10 {
		t.Fatalf("after Reset(10, 3): first %d last %d", w.FirstIndex(), w.LastIndex())
	}
	if tm, err := w.Term(10); err != nil || tm != 3 {
		t.Fatalf("Term(10) = %d, %v; want 3", tm, err)
	}
	must(t, w.Save(raft.HardState{Term: 3, Commit: 12}, ents(11, 13, 3)))
	// Nothing before the reset is live: only the last segment is kept.
	if segs := segments(t, fs); len(segs) != 1 {
		t.Fatalf("segments after reset: %v", segs)
	}
	want := stateOf(t, w)
	w.Close()
	if got := stateOf(t, mustOpen(t, fs, Options{SegmentSize: 128})); got != want {
		t.Fatalf("after reopen:\n got %v\nwant %v", got, want)
	}
}

func TestEntriesLimitsAndErrors(t *testing.T) {
	w := mustOpen(t, vfs.NewMem(), Options{})
	must(t, w.Save(raft.HardState{}, ents(1, 10, 1)))
	must(t, w.Compact(3))
	if _, err := w.Entries(3, 5, 1<<20); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("Entries below first: %v", err)
	}
	if _, err := w.Entries(4, 11, 1<<20); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Entries past last: %v", err)
	}
	got, err := w.Entries(4, 10, 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("maxBytes 0: %d entries, %v; want exactly one", len(got), err)
	}
	// Each entry is 6 bytes of data plus 24 of overhead: 60 fits two.
	if got, _ := w.Entries(4, 10, 60); len(got) != 2 {
		t.Fatalf("maxBytes 60: %d entries, want 2", len(got))
	}
}

func TestWritesAfterFailureAreRefused(t *testing.T) {
	m := vfs.NewMem()
	var fail bool
	fs := vfs.WithInjector(m, vfs.InjectorFunc(func(o vfs.Op) error {
		if fail && o.Kind == vfs.OpSync {
			return vfs.ErrInjected
		}
		return nil
	}))
	w := mustOpen(t, fs, Options{})
	must(t, w.Save(raft.HardState{Term: 1}, ents(1, 3, 1)))
	fail = true
	if err := w.Save(raft.HardState{}, ents(3, 4, 1)); !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("Save with failing fsync: %v", err)
	}
	fail = false
	if err := w.Save(raft.HardState{}, ents(3, 4, 1)); !errors.Is(err, ErrFailed) {
		t.Fatalf("Save after a failed fsync: %v, want ErrFailed", err)
	}
	if w.LastIndex() != 2 {
		t.Fatalf("an unsynced write became visible: last %d", w.LastIndex())
	}
	must(t, w.Close())
	if err := w.Save(raft.HardState{}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Save after Close: %v", err)
	}
}

func TestLeftoverTmpSegmentIsRemoved(t *testing.T) {
	fs := vfs.NewMem()
	w := mustOpen(t, fs, Options{})
	must(t, w.Save(raft.HardState{Term: 1}, ents(1, 3, 1)))
	w.Close()
	must(t, fs.WriteFile(dir+"/"+segmentName(2, 3)+".tmp", []byte("half a header")))
	w = mustOpen(t, fs, Options{})
	if w.LastIndex() != 2 {
		t.Fatalf("last %d", w.LastIndex())
	}
	names, _ := fs.List(dir)
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			t.Fatalf("leftover %s not removed", n)
		}
	}
}

func TestMissingMiddleSegmentIsCorruption(t *testing.T) {
	fs := vfs.NewMem()
	w := mustOpen(t, fs, Options{SegmentSize: 100})
	for i := uint64(1); i < 10; i++ {
		must(t, w.Save(raft.HardState{Term: 1}, ents(i, i+1, 1)))
	}
	w.Close()
	segs := segments(t, fs)
	must(t, fs.Remove(dir+"/"+segs[1]))
	_, err := Open(fs, dir, Options{})
	var ce *CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Open with a missing segment: %v", err)
	}
}

func TestDump(t *testing.T) {
	fs := vfs.NewMem()
	w := mustOpen(t, fs, Options{SegmentSize: 150})
	must(t, w.Bootstrap(raft.NewMembership(1, 2)))
	must(t, w.Save(raft.HardState{Term: 2, Vote: 1, Commit: 1}, ents(1, 3, 2)))
	must(t, w.Save(raft.HardState{}, ents(3, 5, 2)))
	w.Close()
	segs := segments(t, fs)
	lastSeg := segs[len(segs)-1]
	torn := image(t, fs, lastSeg, func(b []byte) []byte { return b[:len(b)-3] })
	var out bytes.Buffer
	must(t, Dump(torn, dir, &out))
	for _, want := range []string{
		"segment " + segs[0], "header", "membership", "voters=[1 2]",
		"entry      index=1 term=2 type=normal len=5", "hardstate  term=2 vote=1 commit=1",
		"(uncommitted)", "TORN tail", "log: first index 1, last index 2",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dump lacks %q:\n%s", want, out.String())
		}
	}
	corrupt := image(t, fs, segs[0], func(b []byte) []byte { b[40] ^= 1; return b })
	out.Reset()
	must(t, Dump(corrupt, dir, &out))
	if !strings.Contains(out.String(), "CORRUPT") || !strings.Contains(out.String(), "Open would refuse") {
		t.Errorf("dump of a corrupt log:\n%s", out.String())
	}
}

// Found by the property test: a truncation (§5.3) that rewrites entries
// below the first index of its segment lets older segments go; the
// rewritten entries must then survive recovery from the newer segment
// alone.
func TestTruncationBelowTheSegmentsFirstIndex(t *testing.T) {
	fs := vfs.NewMem()
	opts := Options{SegmentSize: 150}
	w := mustOpen(t, fs, opts)
	must(t, w.Save(raft.HardState{}, ents(1, 3, 1)))
	must(t, w.Save(raft.HardState{}, ents(3, 4, 1))) // in a second segment
	must(t, w.Save(raft.HardState{}, ents(1, 2, 2))) // replaces 1..3
	want := stateOf(t, w)
	w.Close()
	w = mustOpen(t, fs, opts) // may delete the first segment
	if segs := segments(t, fs); len(segs) != 1 {
		t.Fatalf("segments %v: the first holds no live entry and should go", segs)
	}
	w.Close()
	if got := stateOf(t, mustOpen(t, fs, opts)); got != want {
		t.Fatalf("after reopen:\n got %v\nwant %v", got, want)
	}
}
