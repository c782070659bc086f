package wal

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage/vfs"
)

// tornLog writes a few batches, then a last batch of several entries and a
// hard state spanning several 512-byte sectors. It returns the disk, the
// state before and after the last batch and where it starts and ends in
// the last segment.
func tornLog(t *testing.T) (fs *vfs.MemFS, seg string, before, after state, start, end int) {
	fs = vfs.NewMem()
	w := mustOpen(t, fs, Options{})
	must(t, w.Bootstrap(raft.NewMembership(1, 2, 3)))
	must(t, w.Save(raft.HardState{Term: 1, Vote: 1}, ents(1, 4, 1)))
	must(t, w.Save(raft.HardState{Term: 1, Vote: 1, Commit: 3}, ents(4, 6, 1)))
	before = stateOf(t, w)
	seg = segments(t, fs)[0]
	data, _ := fs.ReadFile(dir + "/" + seg)
	start = len(data)
	last := ents(4, 12, 2) // replaces 4 and 5 (§5.3), then appends
	for i := range last {
		last[i].Data = bytes.Repeat([]byte{byte('a' + i)}, 200)
	}
	must(t, w.Save(raft.HardState{Term: 2, Vote: 3, Commit: 5}, last))
	after = stateOf(t, w)
	data, _ = fs.ReadFile(dir + "/" + seg)
	end = len(data)
	must(t, w.Close())
	if end-start < 3*512 {
		t.Fatalf("last batch is only %d bytes", end-start)
	}
	return fs, seg, before, after, start, end
}

func expectRecovery(t *testing.T, fs *vfs.MemFS, want state, torn bool, what string) {
	t.Helper()
	w, err := Open(fs, dir, Options{})
	if err != nil {
		t.Fatalf("%s: Open: %v", what, err)
	}
	if got := stateOf(t, w); got != want {
		t.Fatalf("%s: recovered\n %v\nwant\n %v", what, got, want)
	}
	if rep := w.Repaired(); (rep != nil) != torn {
		t.Fatalf("%s: Repaired() = %+v, want a repair: %v", what, rep, torn)
	}
	w.Close()
	// The repair is durable and idempotent: a second open finds a clean
	// log with the same state.
	w2 := mustOpen(t, fs, Options{})
	if got := stateOf(t, w2); got != want || w2.Repaired() != nil {
		t.Fatalf("%s: second open: %v, repaired %+v", what, got, w2.Repaired())
	}
}

// A crash mid-write leaves the file cut anywhere in the last batch:
// recovery yields exactly the batches before it, or all of it when the
// cut is at its end (acknowledgement follows fsync, so nothing
// acknowledged is lost).
func TestTornTailEveryOffset(t *testing.T) {
	fs, seg, before, after, start, end := tornLog(t)
	for cut := start; cut <= end; cut++ {
		img := image(t, fs, seg, func(b []byte) []byte { return b[:cut] })
		want, torn := before, cut > start && cut < end
		if cut == end {
			want = after
		}
		expectRecovery(t, img, want, torn, fmt.Sprintf("cut at %d of [%d, %d]", cut, start, end))
		if torn {
			broken, err := img.ReadFile(dir + "/" + seg + ".broken")
			if err != nil || len(broken) != cut {
				t.Fatalf("cut at %d: .broken copy has %d bytes (%v), want %d", cut, len(broken), err, cut)
			}
		}
	}
}

// Likewise when the last 512-byte sector written never reached the disk
// (zeros where the file grew), and when any one sector of the last batch
// is zero while the rest landed (writes reordered by the disk).
func TestTornTailZeroedSector(t *testing.T) {
	fs, seg, before, _, start, end := tornLog(t)
	for cut := start + 1; cut <= end; cut++ {
		img := image(t, fs, seg, func(b []byte) []byte {
			b = b[:cut]
			clear(b[max(start, (cut-1)/512*512):])
			return b
		})
		expectRecovery(t, img, before, true, fmt.Sprintf("cut at %d, last sector zeroed", cut))
	}
	for s := start / 512; s*512 < end; s++ {
		img := image(t, fs, seg, func(b []byte) []byte {
			clear(b[max(start, s*512):min(end, (s+1)*512)])
			return b
		})
		expectRecovery(t, img, before, true, fmt.Sprintf("sector %d zeroed", s))
	}
}

// corruptionLog is a small log over several segments, with a truncation
// (§5.3), a compaction (§7) and a last batch that is the tail.
func corruptionLog(t *testing.T) (*vfs.MemFS, []string, int) {
	fs := vfs.NewMem()
	opts := Options{SegmentSize: 160}
	w := mustOpen(t, fs, opts)
	must(t, w.Bootstrap(raft.NewMembership(1, 2, 3)))
	must(t, w.Save(raft.HardState{Term: 1, Vote: 1}, ents(1, 4, 1)))
	must(t, w.Save(raft.HardState{Term: 2, Vote: 2, Commit: 2}, ents(3, 5, 2)))
	must(t, w.Compact(1))
	must(t, w.Save(raft.HardState{}, ents(5, 6, 2)))
	segs := segments(t, fs)
	data, _ := fs.ReadFile(dir + "/" + segs[len(segs)-1])
	tail := len(data)
	// Reopened with large segments, so the last batch joins the last one.
	must(t, w.Close())
	w = mustOpen(t, fs, Options{})
	must(t, w.Save(raft.HardState{Term: 2, Vote: 2, Commit: 6}, ents(6, 8, 2)))
	w.Close()
	if len(segs) < 3 || len(segments(t, fs)) != len(segs) {
		t.Fatalf("%d segments before the last batch, %v after", len(segs), segments(t, fs))
	}
	return fs, segs, tail
}

// Flipping any single bit of any record before the tail is detected at
// open, every time, and Open changes nothing.
func TestEveryBitFlipBeforeTheTailIsDetected(t *testing.T) {
	fs, segs, tail := corruptionLog(t)
	flips := 0
	for i, seg := range segs {
		data, _ := fs.ReadFile(dir + "/" + seg)
		limit := len(data)
		if i == len(segs)-1 {
			limit = tail
		}
		for off := range limit {
			for bit := range 8 {
				img := image(t, fs, seg, func(b []byte) []byte { b[off] ^= 1 << bit; return b })
				_, err := Open(img, dir, Options{SegmentSize: 160})
				var ce *CorruptError
				if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: bit %d of byte %d flipped: Open = %v, want a *CorruptError", seg, bit, off, err)
				}
				if ce.File != dir+"/"+seg {
					t.Fatalf("%s byte %d: error names %s", seg, off, ce.File)
				}
				got, _ := img.ReadFile(dir + "/" + seg)
				if data[off]^(1<<bit) != got[off] || len(got) != len(data) {
					t.Fatalf("%s byte %d: Open changed the corrupt file", seg, off)
				}
				flips++
			}
		}
	}
	t.Logf("%d single-bit flips detected", flips)
}

// A bit flip in the last batch cannot be told from a torn write: the
// batch is dropped (and saved as .broken), never half applied.
func TestBitFlipInTheTailDropsTheBatch(t *testing.T) {
	fs, segs, tail := corruptionLog(t)
	seg := segs[len(segs)-1]
	base := image(t, fs, seg, func(b []byte) []byte { return b[:tail] })
	w := mustOpen(t, base, Options{SegmentSize: 160})
	before := stateOf(t, w)
	data, _ := fs.ReadFile(dir + "/" + seg)
	for off := tail; off < len(data); off++ {
		for bit := range 8 {
			img := image(t, fs, seg, func(b []byte) []byte { b[off] ^= 1 << bit; return b })
			expectRecovery(t, img, before, true, fmt.Sprintf("tail byte %d bit %d", off, bit))
		}
	}
}

// A crash at any point of any write leaves a log that opens to the state
// before the write or after it.
func TestCrashAtEveryStep(t *testing.T) {
	opts := Options{SegmentSize: 200}
	setup := func(fs vfs.FS) *WAL {
		w := mustOpen(t, fs, opts)
		must(t, w.Bootstrap(raft.NewMembership(1)))
		must(t, w.Save(raft.HardState{Term: 1, Vote: 1}, ents(1, 6, 1)))
		must(t, w.Save(raft.HardState{Term: 1, Vote: 1, Commit: 3}, ents(6, 9, 1)))
		return w
	}
	ops := map[string]func(w *WAL) error{
		"append (rolls a segment)": func(w *WAL) error {
			return w.Save(raft.HardState{Term: 1, Vote: 1, Commit: 8}, ents(9, 12, 1))
		},
		"truncate suffix": func(w *WAL) error { return w.Save(raft.HardState{Term: 2}, ents(5, 7, 2)) },
		"compact":         func(w *WAL) error { return w.Compact(8) },
		"reset":           func(w *WAL) error { return w.Reset(20, 4) },
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			ref := setup(vfs.NewMem())
			before := stateOf(t, ref)
			must(t, op(ref))
			after := stateOf(t, ref)
			if before == after {
				t.Fatal("the op changes nothing: the test could not fail")
			}
			crashPoints(t, setup, op, func(n int, fs *vfs.MemFS) {
				w, err := Open(fs, dir, opts)
				if err != nil {
					t.Fatalf("crash at mutation %d: Open: %v", n, err)
				}
				if got := stateOf(t, w); got != before && got != after {
					t.Fatalf("crash at mutation %d: recovered\n %v\nwant before\n %v\nor after\n %v", n, got, before, after)
				}
				// The recovered log takes writes again.
				must(t, w.Save(raft.HardState{Term: 9}, nil))
			})
		})
	}
}
