package node

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage"
)

// ApplyTask is one Ready's worth of work for the state machine: restore a
// snapshot first if there is one (Ready rule 2), then apply entries. A
// task with a snapshot holds its body open: a driver that drops a task
// unapplied calls Discard.
type ApplyTask struct {
	Snapshot *raft.Snapshot
	body     snapshotBody
	Entries  []raft.Entry
}

// snapshotBody is an installed snapshot's body, opened when the install
// became durable.
type snapshotBody struct {
	r    io.ReadCloser
	size int64
}

// Discard releases what an unapplied task holds.
func (t ApplyTask) Discard() {
	if t.body.r != nil {
		t.body.r.Close()
	}
}

// Emitter publishes an event of the runtime.
type Emitter func(raft.Event)

// Applier owns the FSM: it applies committed entries in log order,
// restores snapshots, resolves the proposals and reads waiting for them,
// and says when a snapshot is due. It has no goroutine of its own: package
// node runs it on its apply goroutine, the simulator inline. One goroutine
// calls its methods.
type Applier struct {
	cfg   *Config
	store *storage.Store
	fsm   FSM
	props *registry
	waits *indexWaiters
	emit  Emitter
	log   *slog.Logger

	membership   raft.Membership
	appliedIndex uint64
	appliedTerm  uint64
	lastSnap     uint64
	bytesSince   uint64
}

func newApplier(cfg *Config, store *storage.Store, fsm FSM, props *registry, waits *indexWaiters,
	membership raft.Membership, applied uint64, emit Emitter) *Applier {
	a := &Applier{
		cfg: cfg, store: store, fsm: fsm, props: props, waits: waits, emit: emit,
		log: cfg.Logger, membership: membership, appliedIndex: applied, lastSnap: applied,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if applied > 0 {
		if t, err := store.Term(applied); err == nil {
			a.appliedTerm = t
		}
	}
	return a
}

// Applied returns the index of the last entry applied.
func (a *Applier) Applied() uint64 { return a.appliedIndex }

// Apply does t: restore its snapshot, then apply its entries (§5.3, §7),
// resolving the proposals and reads that waited for them. An error is
// fatal: the state machine may be half restored.
func (a *Applier) Apply(t ApplyTask) error {
	if t.Snapshot != nil {
		if err := a.restore(t.Snapshot.Meta, t.body); err != nil {
			return err
		}
	}
	if len(t.Entries) == 0 {
		return nil
	}
	start := time.Now()
	n := 0
	for _, e := range t.Entries {
		if e.Index != a.appliedIndex+1 {
			// Entries apply once each, in log order (§5.3): a gap or a
			// repeat is a broken contract, and applying on would leave
			// this state machine unlike the others.
			return fmt.Errorf("node: entry %d handed to apply after %d: %w", e.Index, a.appliedIndex, ErrApplyOrder)
		}
		var result any
		switch e.Type {
		case raft.EntryNormal:
			result = a.fsm.Apply(e)
			a.bytesSince += uint64(len(e.Data))
		case raft.EntryConfChange:
			// The configuration at the applied index is the one a
			// snapshot records (§7); the core ignores an entry that is
			// not a legal step, and so does this.
			if m, err := a.membership.AfterEntry(e); err == nil {
				a.membership = m
			}
		}
		a.props.resolve(e.Index, e.Term, result)
		a.appliedIndex, a.appliedTerm = e.Index, e.Term
		n++
	}
	if obs := a.cfg.Observer; obs != nil {
		obs.ObserveApply(time.Since(start), n)
	}
	a.waits.trigger(a.appliedIndex)
	a.emit(raft.Event{Kind: raft.EventApplied, Node: a.cfg.ID, Index: a.appliedIndex, Count: n})
	return nil
}

// restore replaces the FSM with the snapshot the leader sent (§7).
func (a *Applier) restore(meta raft.SnapshotMeta, body snapshotBody) error {
	start := time.Now()
	if body.r == nil {
		return fmt.Errorf("node: the installed snapshot %d has no body", meta.Index)
	}
	defer body.r.Close()
	size := body.size
	if err := a.fsm.Restore(body.r); err != nil {
		return fmt.Errorf("node: restoring received snapshot %d: %w", meta.Index, err)
	}
	// Proposals this node made that the snapshot covers have an unknown
	// outcome here.
	a.props.skipTo(meta.Index)
	a.appliedIndex, a.appliedTerm = meta.Index, meta.Term
	a.lastSnap, a.bytesSince = meta.Index, 0
	a.membership = meta.Membership.Clone()
	a.waits.trigger(meta.Index)
	if obs := a.cfg.Observer; obs != nil {
		obs.ObserveSnapshot(true, time.Since(start), size)
	}
	a.emit(raft.Event{Kind: raft.EventSnapshotInstalled, Node: a.cfg.ID, Index: meta.Index})
	return nil
}

// SnapshotDue returns a point-in-time view of the FSM and its metadata
// once SnapshotEntries entries or SnapshotBytes bytes were applied since
// the last snapshot (§7); the caller writes it with WriteSnapshot, on any
// goroutine, while applying goes on.
func (a *Applier) SnapshotDue() (raft.SnapshotMeta, FSMSnapshot, bool) {
	due := (a.cfg.SnapshotEntries > 0 && a.appliedIndex-a.lastSnap >= a.cfg.SnapshotEntries) ||
		(a.cfg.SnapshotBytes > 0 && a.bytesSince >= a.cfg.SnapshotBytes)
	if !due || a.membership.IsEmpty() {
		// A joining server that has not yet applied a configuration
		// entry does not know the configuration a snapshot must record.
		return raft.SnapshotMeta{}, nil, false
	}
	view, err := a.fsm.Snapshot()
	if err != nil {
		a.log.Error("state machine snapshot failed", "index", a.appliedIndex, "err", err)
		return raft.SnapshotMeta{}, nil, false
	}
	meta := raft.SnapshotMeta{Index: a.appliedIndex, Term: a.appliedTerm, Membership: a.membership.Clone()}
	a.lastSnap, a.bytesSince = a.appliedIndex, 0
	return meta, view, true
}

// WriteSnapshot streams view to a snapshot file at meta, then compacts the
// log behind it, keeping SnapshotTrailing entries for slow followers (§7).
// When a newer snapshot arrived from the leader meanwhile there is nothing
// to do. It may run on any goroutine (storage.Store is safe for
// concurrent use); it releases view.
func (a *Applier) WriteSnapshot(meta raft.SnapshotMeta, view FSMSnapshot) error {
	defer view.Release()
	start := time.Now()
	w, err := a.store.CreateSnapshot(meta)
	if errors.Is(err, raft.ErrSnapshotOutOfDate) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("node: creating snapshot %d: %w", meta.Index, err)
	}
	size, err := view.WriteTo(w)
	if err != nil {
		w.Abort()
		return fmt.Errorf("node: writing snapshot %d: %w", meta.Index, err)
	}
	if err := w.Commit(); err != nil {
		return fmt.Errorf("node: committing snapshot %d: %w", meta.Index, err)
	}
	compactTo := uint64(0)
	if meta.Index > a.cfg.SnapshotTrailing {
		compactTo = meta.Index - a.cfg.SnapshotTrailing
		if err := a.store.Compact(compactTo); err != nil {
			return fmt.Errorf("node: compacting the log to %d: %w", compactTo, err)
		}
	}
	if obs := a.cfg.Observer; obs != nil {
		obs.ObserveSnapshot(false, time.Since(start), size)
	}
	a.emit(raft.Event{Kind: raft.EventSnapshotTaken, Node: a.cfg.ID, Index: meta.Index, PrevIndex: compactTo})
	return nil
}
