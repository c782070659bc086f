package node

import (
	"fmt"
	"sync"
	"time"

	"github.com/raftex/raftex/raft"
)

// applyTask is one Ready's worth of work for the state machine: restore a
// snapshot first if there is one (Ready rule 2), then apply entries.
type applyTask struct {
	snapshot *raft.Snapshot
	entries  []raft.Entry
}

// applier owns the FSM. Its goroutine applies committed entries in log
// order, resolves the proposals waiting for them, and takes snapshots when
// enough has been applied since the last one.
type applier struct {
	n *Node

	mu    sync.Mutex
	tasks []applyTask
	wake  chan struct{}

	// Owned by the apply goroutine.
	spare        []applyTask // the queue's other buffer: the two swap
	appliedIndex uint64
	appliedTerm  uint64
	lastSnap     uint64
	bytesSince   uint64
	snapshotting chan struct{} // non-nil while a snapshot is being written
}

func newApplier(n *Node, applied uint64) *applier {
	a := &applier{n: n, wake: make(chan struct{}, 1), appliedIndex: applied, lastSnap: applied}
	if applied > 0 {
		if t, err := n.store.Term(applied); err == nil {
			a.appliedTerm = t
		}
	}
	n.applyWait.trigger(applied)
	return a
}

// enqueue hands work to the apply goroutine; it never blocks the core.
func (a *applier) enqueue(t applyTask) {
	a.mu.Lock()
	a.tasks = append(a.tasks, t)
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *applier) run() {
	defer a.n.wg.Done()
	defer func() {
		if a.snapshotting != nil {
			<-a.snapshotting
		}
	}()
	for {
		select {
		case <-a.wake:
		case <-a.n.coreDone:
			// Committed entries not applied yet are durable; a restart
			// replays them.
			return
		}
		a.mu.Lock()
		tasks := a.tasks
		a.tasks = a.spare
		a.mu.Unlock()
		for _, t := range tasks {
			if err := a.apply(t); err != nil {
				a.n.fail(err)
				return
			}
		}
		clear(tasks) // let applied entries go
		a.spare = tasks[:0]
		a.maybeSnapshot()
	}
}

func (a *applier) apply(t applyTask) error {
	if t.snapshot != nil {
		if err := a.restore(t.snapshot.Meta); err != nil {
			return err
		}
	}
	if len(t.entries) == 0 {
		return nil
	}
	start := time.Now()
	for _, e := range t.entries {
		if e.Index <= a.appliedIndex {
			continue // covered by a snapshot restored meanwhile
		}
		var result any
		if e.Type == raft.EntryNormal {
			result = a.n.fsm.Apply(e)
			a.bytesSince += uint64(len(e.Data))
		}
		a.n.proposals.resolve(e.Index, e.Term, result)
		a.appliedIndex, a.appliedTerm = e.Index, e.Term
	}
	if a.n.cfg.Observer != nil {
		a.n.cfg.Observer.ObserveApply(time.Since(start), len(t.entries))
	}
	a.n.applyWait.trigger(a.appliedIndex)
	a.n.wakeCoreApplied()
	a.n.publish(raft.Event{Kind: raft.EventApplied, Node: a.n.cfg.ID, Term: a.n.term.Load(),
		Role: a.n.Role(), Index: a.appliedIndex, Count: len(t.entries)})
	return nil
}

// wakeCoreApplied tells the core goroutine the FSM applied more, without
// ever blocking: one pending wake-up covers any number of applies.
func (n *Node) wakeCoreApplied() {
	select {
	case n.appliedc <- struct{}{}:
	default:
	}
}

// restore replaces the FSM with the snapshot the leader sent (§7).
func (a *applier) restore(meta raft.SnapshotMeta) error {
	start := time.Now()
	_, body, size, err := a.n.store.OpenSnapshot(meta.Index)
	if err != nil {
		return fmt.Errorf("opening received snapshot %d: %w", meta.Index, err)
	}
	defer body.Close()
	if err := a.n.fsm.Restore(body); err != nil {
		return fmt.Errorf("restoring received snapshot %d: %w", meta.Index, err)
	}
	// Proposals this node made that the snapshot covers have an unknown
	// outcome here.
	a.n.proposals.failUpTo(meta.Index, ErrLeadershipLost)
	a.appliedIndex, a.appliedTerm = meta.Index, meta.Term
	a.lastSnap, a.bytesSince = meta.Index, 0
	a.n.applyWait.trigger(meta.Index)
	a.n.wakeCoreApplied()
	if a.n.cfg.Observer != nil {
		a.n.cfg.Observer.ObserveSnapshot(true, time.Since(start), size)
	}
	a.n.publish(raft.Event{Kind: raft.EventSnapshotInstalled, Node: a.n.cfg.ID, Term: a.n.term.Load(),
		Role: a.n.Role(), Index: meta.Index, Peer: a.n.lead.Load()})
	return nil
}

// maybeSnapshot takes a snapshot once SnapshotEntries entries or
// SnapshotBytes bytes were applied since the last one (§7), and compacts
// the log behind it, keeping SnapshotTrailing entries for slow followers.
func (a *applier) maybeSnapshot() {
	if a.snapshotting != nil {
		select {
		case <-a.snapshotting:
			a.snapshotting = nil
		default:
			return
		}
	}
	cfg := a.n.cfg
	due := (cfg.SnapshotEntries > 0 && a.appliedIndex-a.lastSnap >= cfg.SnapshotEntries) ||
		(cfg.SnapshotBytes > 0 && a.bytesSince >= cfg.SnapshotBytes)
	if !due {
		return
	}
	view, err := a.n.fsm.Snapshot()
	if err != nil {
		a.n.log.Error("state machine snapshot failed", "err", err)
		return
	}
	meta := raft.SnapshotMeta{Index: a.appliedIndex, Term: a.appliedTerm, Membership: a.n.membership.Clone()}
	a.lastSnap, a.bytesSince = a.appliedIndex, 0
	done := make(chan struct{})
	a.snapshotting = done
	go func() {
		defer close(done)
		a.n.writeSnapshot(meta, view)
	}()
}

// writeSnapshot runs on the snapshot goroutine: it streams the FSM view to
// a snapshot file, then compacts the log.
func (n *Node) writeSnapshot(meta raft.SnapshotMeta, view FSMSnapshot) {
	defer view.Release()
	start := time.Now()
	w, err := n.store.CreateSnapshot(meta)
	if err != nil {
		n.log.Error("creating snapshot file failed", "index", meta.Index, "err", err)
		return
	}
	size, err := view.WriteTo(w)
	if err != nil {
		w.Abort()
		n.log.Error("writing snapshot failed", "index", meta.Index, "err", err)
		return
	}
	if err := w.Commit(); err != nil {
		n.log.Error("committing snapshot failed", "index", meta.Index, "err", err)
		return
	}
	compactTo := uint64(0)
	if meta.Index > n.cfg.SnapshotTrailing {
		compactTo = meta.Index - n.cfg.SnapshotTrailing
	}
	if compactTo > 0 {
		if err := n.store.Compact(compactTo); err != nil {
			n.log.Error("compacting log failed", "index", compactTo, "err", err)
		}
	}
	if n.cfg.Observer != nil {
		n.cfg.Observer.ObserveSnapshot(false, time.Since(start), size)
	}
	n.publish(raft.Event{Kind: raft.EventSnapshotTaken, Node: n.cfg.ID, Term: n.term.Load(),
		Role: n.Role(), Index: meta.Index, PrevIndex: compactTo})
}

// proposal is a Propose call waiting for its entry to be applied.
type proposal struct {
	data []byte
	done chan proposalResult
}

type proposalResult struct {
	value any
	err   error
}

// registry maps log indexes to the proposals waiting for them. The core
// goroutine adds, the apply goroutine resolves.
type registry struct {
	mu sync.Mutex
	m  map[uint64]pendingProposal
}

type pendingProposal struct {
	term uint64
	done chan proposalResult
}

func newRegistry() *registry { return &registry{m: map[uint64]pendingProposal{}} }

func (g *registry) add(index, term uint64, done chan proposalResult) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if old, ok := g.m[index]; ok {
		// An older proposal at this index was overwritten by a new leader.
		old.done <- proposalResult{err: ErrLeadershipLost}
	}
	g.m[index] = pendingProposal{term: term, done: done}
}

// resolve completes the proposal at index: with the FSM's result if the
// applied entry is the one proposed (same term), else with
// ErrLeadershipLost: another leader's entry took its place.
func (g *registry) resolve(index, term uint64, result any) {
	g.mu.Lock()
	p, ok := g.m[index]
	delete(g.m, index)
	g.mu.Unlock()
	if !ok {
		return
	}
	if p.term == term {
		p.done <- proposalResult{value: result}
	} else {
		p.done <- proposalResult{err: ErrLeadershipLost}
	}
}

func (g *registry) failUpTo(index uint64, err error) {
	g.failIf(func(i uint64) bool { return i <= index }, err)
}

func (g *registry) failAfter(index uint64, err error) {
	g.failIf(func(i uint64) bool { return i > index }, err)
}

func (g *registry) failAll(err error) { g.failIf(func(uint64) bool { return true }, err) }

func (g *registry) failIf(pred func(index uint64) bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, p := range g.m {
		if pred(i) {
			p.done <- proposalResult{err: err}
			delete(g.m, i)
		}
	}
}

// indexWaiters lets goroutines wait until the FSM applied an index.
type indexWaiters struct {
	mu      sync.Mutex
	index   uint64
	waiters map[uint64][]chan struct{}
}

func newIndexWaiters() *indexWaiters {
	return &indexWaiters{waiters: map[uint64][]chan struct{}{}}
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// wait returns a channel closed once index is applied.
func (w *indexWaiters) wait(index uint64) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if index <= w.index {
		return closedChan
	}
	c := make(chan struct{})
	w.waiters[index] = append(w.waiters[index], c)
	return c
}

func (w *indexWaiters) trigger(index uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if index <= w.index {
		return
	}
	w.index = index
	for i, cs := range w.waiters {
		if i <= index {
			for _, c := range cs {
				close(c)
			}
			delete(w.waiters, i)
		}
	}
}

func (w *indexWaiters) applied() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.index
}
