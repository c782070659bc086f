package wal

import (
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage/vfs"
	"pgregory.net/rapid"
)

// model is what has been synced, kept the simplest way.
type model struct {
	hs             raft.HardState
	base, baseTerm uint64
	ents           []raft.Entry
}

func (m *model) last() uint64 { return m.base + uint64(len(m.ents)) }

func (m *model) state() state {
	return state{HS: m.hs, Membership: raft.Membership{}.String(), First: m.base + 1, BaseTerm: m.baseTerm, Entries: entsString(m.ents)}
}

func (m *model) save(hs raft.HardState, es []raft.Entry) {
	for _, e := range es {
		if e.Index > m.base {
			m.ents = append(m.ents[:e.Index-m.base-1:e.Index-m.base-1], e)
		}
	}
	if !hs.IsEmpty() {
		m.hs = hs
	}
}

// disk is a MemFS whose mutations can be made to fail from a chosen one
// on: the process dies there.
type disk struct {
	mem    *vfs.MemFS
	count  atomic.Int64
	failAt atomic.Int64 // 0: never
}

func (d *disk) fs() vfs.FS {
	return vfs.WithInjector(d.mem, vfs.InjectorFunc(func(o vfs.Op) error {
		if o.Kind&vfs.OpMutate == 0 {
			return nil
		}
		if at := d.failAt.Load(); d.count.Add(1) >= at && at > 0 {
			return vfs.ErrInjected
		}
		return nil
	}))
}

// Random sequences of append, suffix truncation, compaction, reset,
// crashes (dropping or tearing unsynced data, also in the middle of a
// write) and reopening always leave the log equal to a model of what was
// synced.
func TestPropertyMatchesModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		opts := Options{SegmentSize: int64(rapid.IntRange(150, 600).Draw(rt, "segmentSize"))}
		d := &disk{mem: vfs.NewMem()}
		w, err := Open(d.fs(), dir, opts)
		if err != nil {
			rt.Fatal(err)
		}
		m := &model{}
		term := uint64(1)
		reopen := func(mem *vfs.MemFS) {
			w.Close()
			d = &disk{mem: mem}
			if w, err = Open(d.fs(), dir, opts); err != nil {
				rt.Fatalf("reopen: %v", err)
			}
		}
		// randomWrite draws a write and returns it with its effect on a
		// model.
		randomWrite := func(rt *rapid.T) (func(*WAL) error, func(*model)) {
			switch rapid.IntRange(0, 5).Draw(rt, "write") {
			case 0, 1, 2:
				lo := rapid.Uint64Range(m.base, m.last()+1).Draw(rt, "from")
				lo = max(lo, 1)
				n := rapid.Uint64Range(0, 6).Draw(rt, "n")
				if rapid.Bool().Draw(rt, "newTerm") {
					term++
				}
				es := ents(lo, lo+n, term)
				hs := raft.HardState{}
				if rapid.Bool().Draw(rt, "hs") {
					hs = raft.HardState{Term: term, Vote: rapid.Uint64Range(0, 3).Draw(rt, "vote"), Commit: m.base}
				}
				return func(w *WAL) error { return w.Save(hs, es) }, func(m *model) { m.save(hs, es) }
			case 3, 4:
				idx := rapid.Uint64Range(m.base, m.last()).Draw(rt, "compact")
				return func(w *WAL) error { return w.Compact(idx) }, func(m *model) {
					if idx > m.base {
						m.baseTerm = m.ents[idx-m.base-1].Term
						m.ents = m.ents[idx-m.base:]
						m.base = idx
					}
				}
			default:
				term++
				idx := rapid.Uint64Range(m.base, m.last()+5).Draw(rt, "reset")
				tm := term
				return func(w *WAL) error { return w.Reset(idx, tm) }, func(m *model) {
					m.base, m.baseTerm, m.ents = idx, tm, nil
				}
			}
		}
		rt.Repeat(map[string]func(*rapid.T){
			"write": func(rt *rapid.T) {
				op, effect := randomWrite(rt)
				if err := op(w); err != nil {
					rt.Fatal(err)
				}
				effect(m)
			},
			"crash": func(rt *rapid.T) {
				seed := rapid.Uint64().Draw(rt, "seed")
				reopen(d.mem.CrashClone(rand.New(rand.NewPCG(seed, 0))))
			},
			"crash during a write": func(rt *rapid.T) {
				op, effect := randomWrite(rt)
				after := *m
				after.ents = append([]raft.Entry(nil), m.ents...)
				effect(&after)
				d.failAt.Store(d.count.Load() + int64(rapid.IntRange(1, 8).Draw(rt, "mutation")))
				err := op(w)
				if err != nil && !errors.Is(err, vfs.ErrInjected) {
					rt.Fatal(err)
				}
				seed := rapid.Uint64().Draw(rt, "seed")
				reopen(d.mem.CrashClone(rand.New(rand.NewPCG(seed, 1))))
				switch got := stateOf(rt, w); got {
				case m.state():
				case after.state():
					*m = after
				default:
					rt.Fatalf("after a crash during a write:\n got %v\nwant before %v\n  or after %v", got, m.state(), after.state())
				}
			},
			"reopen": func(rt *rapid.T) { reopen(d.mem) },
			"": func(rt *rapid.T) {
				if got, want := stateOf(rt, w), m.state(); got != want {
					rt.Fatalf("log differs from the model:\n got %v\nwant %v", got, want)
				}
			},
		})
	})
}
