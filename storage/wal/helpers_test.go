package wal

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage/vfs"
)

const dir = "/data/wal"

// state is everything a WAL promises to recover, in a comparable form.
type state struct {
	HS         raft.HardState
	Membership string
	First      uint64
	BaseTerm   uint64
	Entries    string
}

func (s state) String() string {
	return fmt.Sprintf("hs=%+v m=%s first=%d baseTerm=%d ents=[%s]", s.HS, s.Membership, s.First, s.BaseTerm, s.Entries)
}

// fataler is what both *testing.T and *rapid.T offer.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

func stateOf(t fataler, w *WAL) state {
	t.Helper()
	first, last := w.FirstIndex(), w.LastIndex()
	bt, err := w.Term(first - 1)
	if err != nil {
		t.Fatalf("Term(first-1=%d): %v", first-1, err)
	}
	ents, err := w.Entries(first, last+1, 1<<62)
	if err != nil {
		t.Fatalf("Entries(%d, %d): %v", first, last+1, err)
	}
	return state{HS: w.HardState(), Membership: w.Membership().String(), First: first, BaseTerm: bt, Entries: entsString(ents)}
}

func entsString(ents []raft.Entry) string {
	var b strings.Builder
	for _, e := range ents {
		fmt.Fprintf(&b, "%d/%d:%s ", e.Index, e.Term, e.Data)
	}
	return b.String()
}

// ents makes entries [lo, hi) of term t with recognizable data.
func ents(lo, hi, t uint64) []raft.Entry {
	var out []raft.Entry
	for i := lo; i < hi; i++ {
		out = append(out, raft.Entry{Index: i, Term: t, Data: fmt.Appendf(nil, "e%d.t%d", i, t)})
	}
	return out
}

func mustOpen(t testing.TB, fs vfs.FS, opts Options) *WAL {
	t.Helper()
	w, err := Open(fs, dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return w
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// segments returns the segment file names, sorted.
func segments(t testing.TB, fs vfs.FS) []string {
	t.Helper()
	names, err := fs.List(dir)
	must(t, err)
	var segs []string
	for _, n := range names {
		if _, _, ok := parseSegmentName(n); ok {
			segs = append(segs, n)
		}
	}
	return segs
}

// image copies every file of m into a fresh MemFS, content replaced by
// edit for the file named name (when edit is not nil).
func image(t testing.TB, m *vfs.MemFS, name string, edit func([]byte) []byte) *vfs.MemFS {
	t.Helper()
	c := vfs.NewMem()
	must(t, c.MkdirAll(dir))
	names, err := m.List(dir)
	must(t, err)
	for _, n := range names {
		data, err := m.ReadFile(path.Join(dir, n))
		must(t, err)
		if n == name && edit != nil {
			data = edit(slices.Clone(data))
		}
		must(t, c.WriteFile(path.Join(dir, n), data))
	}
	return c
}

// crashPoints runs setup, then op with the disk dying at its nth mutating
// operation, for n = 1, 2, ... until op succeeds untouched; after each,
// check gets the disks a power cut could leave (several seeds).
func crashPoints(t *testing.T, setup func(fs vfs.FS) *WAL, op func(w *WAL) error, check func(n int, fs *vfs.MemFS)) {
	t.Helper()
	for n := 1; ; n++ {
		m := vfs.NewMem()
		var armed atomic.Bool
		var count atomic.Int64
		fs := vfs.WithInjector(m, vfs.InjectorFunc(func(o vfs.Op) error {
			if !armed.Load() || o.Kind&vfs.OpMutate == 0 {
				return nil
			}
			if count.Add(1) >= int64(n) {
				return vfs.ErrInjected
			}
			return nil
		}))
		w := setup(fs)
		armed.Store(true)
		err := op(w)
		if err != nil && !errors.Is(err, vfs.ErrInjected) {
			t.Fatalf("crash point %d: op failed with %v, want an injected error", n, err)
		}
		for seed := range uint64(8) {
			check(n, m.CrashClone(rand.New(rand.NewPCG(uint64(n), seed))))
		}
		if err == nil {
			if n < 2 {
				t.Fatal("op did no I/O")
			}
			return
		}
	}
}
