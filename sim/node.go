package sim

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage"
)

// nodeState is whether a node runs.
type nodeState uint8

const (
	up nodeState = iota
	// paused: the process is stopped; inputs wait in its backlog.
	paused
	// down: the machine lost power; inputs are lost.
	down
)

// node is one simulated server: the real core, the real storage over its
// own crashable disk, and the real key-value state machine, driven by the
// Ready contract (see raft.Ready) one step at a time. It plays the part of
// package node's goroutines, without goroutines.
type node struct {
	s  *sim
	id uint64
	// inc counts restarts; events scheduled for an earlier incarnation
	// are void.
	inc   int
	state nodeState

	disk  *disk
	store *storage.Store
	core  *raft.Raft
	kv    *kv.Store

	// applied is the last index the state machine reflects, appliedTerm
	// its term; lastSnap the index of the last snapshot taken or restored.
	applied, appliedTerm, lastSnap uint64
	// inflight is the Ready whose durable write is in progress: the core
	// hands out no other until it is advanced.
	inflight *raft.Ready
	// backlog holds what arrived while paused, run in order on resume.
	backlog []func()
	// lazy is a hard state whose only change was the commit index, kept
	// for the next write.
	lazy raft.HardState

	server

	// rate is the speed of the node's clock: it ticks every
	// tickInterval/rate of virtual time.
	rate float64
	// slowUntil and slowLatency make fsyncs slow until then.
	slowUntil   time.Duration
	slowLatency time.Duration
	// crashArmed: crash while the next write is in flight (crashAny), or
	// the next one that changes the term or vote (crashVote).
	crashArmed crashMode
}

type crashMode uint8

const (
	crashNone crashMode = iota
	crashAny
	crashVote
)

func newNode(s *sim, id uint64, d *disk) *node {
	return &node{s: s, id: id, disk: d, rate: 1}
}

// start boots the node from its disk: open and recover the store
// (bootstrapping a new one), restore the state machine from the newest
// snapshot, and start the core from what the store holds.
func (n *node) start() error {
	opts := storage.Options{SegmentSize: n.s.p.segmentSize}
	if n.s.tr.on() {
		// What recovery repaired (a torn tail cut, a snapshot skipped)
		// goes into the trace.
		opts.Logger = slog.New(slog.NewTextHandler(traceLines{n}, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		}))
	}
	st, err := storage.Open(n.disk, "/data", opts)
	if err != nil {
		return fmt.Errorf("recovery failed: %w", err)
	}
	if !st.HasState() {
		if err := st.Bootstrap(n.s.membership); err != nil {
			return err
		}
	}
	n.store, n.kv = st, kv.New(kv.Config{})
	n.applied, n.appliedTerm, n.lastSnap = 0, 0, 0
	snap, err := st.Snapshot()
	if err != nil {
		return err
	}
	if !snap.IsEmpty() {
		if err := n.restoreKV(snap.Meta); err != nil {
			return err
		}
	}
	cfg := raft.DefaultConfig(n.id, st)
	cfg.Applied = n.applied
	cfg.Rand = rand.New(rand.NewPCG(n.s.opts.Seed, streamNode+n.id<<16+uint64(n.inc)))
	cfg.HeartbeatTick, cfg.ElectionTick = heartbeatTick, electionTick
	cfg.MaxSizePerMsg = n.s.p.maxSizePerMsg
	cfg.MaxInflightMsgs = n.s.p.maxInflight
	core, err := raft.New(cfg)
	if err != nil {
		return err
	}
	n.core, n.state = core, up
	n.server.reset()
	if err := n.s.chk.started(n); err != nil {
		return err
	}
	n.scheduleTick(time.Duration(n.s.net.rng.Int64N(int64(tickInterval))))
	return nil
}

// scheduleTick schedules the next tick of this incarnation's clock.
func (n *node) scheduleTick(d time.Duration) {
	inc := n.inc
	n.s.after(d, func() {
		if n.inc != inc {
			return
		}
		n.scheduleTick(time.Duration(float64(tickInterval) / n.rate))
		if n.state == up {
			n.core.Tick()
			n.process()
		}
	})
}

// input runs fn on the node and handles the Ready it causes: at once if
// the node runs, on resume if it is paused, never if it is down.
func (n *node) input(fn func()) {
	switch n.state {
	case down:
		return
	case paused:
		n.backlog = append(n.backlog, fn)
		return
	}
	fn()
	n.process()
}

// process pushes Readys through the contract until the core has nothing
// more or a durable write is in flight (raft.Ready, rules 1–5). While one
// is, the leader's messages still leave as they are produced
// (TakeMessages, thesis §10.2.1).
func (n *node) process() {
	if n.state == up && n.inflight != nil {
		for _, m := range n.core.TakeMessages() {
			n.s.net.send(m)
		}
		return
	}
	for n.state == up && n.inflight == nil && n.core.HasReady() {
		rd := n.core.Ready()
		n.s.chk.ready(n, &rd)
		if n.s.failed() {
			return
		}
		n.s.tr.add(trReady, n.id, rd.HardState.Term, rd.HardState.Vote, rd.HardState.Commit, uint64(len(rd.Entries)), uint64(len(rd.CommittedEntries)))
		if n.s.tr.on() {
			n.traceReady(&rd)
		}
		// Rule 1: the leader's messages leave before the write.
		for _, m := range rd.Messages {
			n.s.net.send(m)
		}
		n.confirmReads(rd.ReadStates)
		if !rd.MustSync() {
			// A hard state that changed only its commit index is not worth
			// an fsync: it rides with the next write, as in package node.
			if !rd.HardState.IsEmpty() {
				n.lazy = rd.HardState
			}
			n.finish(rd)
			continue
		}
		if rd.HardState.IsEmpty() {
			rd.HardState = n.lazy
		}
		n.lazy = raft.HardState{}
		n.persist(rd)
	}
}

// persist starts the durable write of rd (rule 2). The WAL batch is
// written now with its fsync held back by the disk until the simulated
// latency has passed; a snapshot install is written whole when the
// latency has passed (a crash before then loses it entirely).
func (n *node) persist(rd raft.Ready) {
	n.inflight = &rd
	if rd.Snapshot == nil {
		n.disk.hold()
		err := n.store.Save(rd.HardState, rd.Entries)
		n.disk.release()
		if err != nil {
			n.s.fail("Storage", fmt.Sprintf("node %d: save: %v", n.id, err))
			return
		}
	}
	lat := n.fsyncLatency()
	inc := n.inc
	n.s.after(lat, func() {
		if n.inc == inc {
			n.input(n.persisted)
		}
	})
	if n.crashArmed == crashAny || (n.crashArmed == crashVote && n.changesVote(rd.HardState)) {
		n.crashArmed = crashNone
		n.s.faults.crashAt(n, time.Duration(n.s.faults.rng.Int64N(int64(lat))))
	}
}

func (n *node) changesVote(hs raft.HardState) bool {
	d := n.s.chk.nodes[n.id-1].durable
	return !hs.IsEmpty() && (hs.Term != d.Term || hs.Vote != d.Vote)
}

func (n *node) fsyncLatency() time.Duration {
	rng := n.s.faults.rng
	if n.s.now < n.slowUntil {
		return n.slowLatency/2 + time.Duration(rng.Int64N(int64(n.slowLatency)))
	}
	p := n.s.p
	return p.fsyncMin + time.Duration(rng.Int64N(int64(p.fsyncMax-p.fsyncMin)+1))
}

// persisted completes the write in flight: the fsync returned.
func (n *node) persisted() {
	rd := *n.inflight
	n.inflight = nil
	if rd.Snapshot != nil {
		if err := n.store.ApplySnapshot(rd.Snapshot.Meta); err != nil {
			n.s.fail("Storage", fmt.Sprintf("node %d: apply snapshot %d: %v", n.id, rd.Snapshot.Meta.Index, err))
			return
		}
		if err := n.store.Save(rd.HardState, rd.Entries); err != nil {
			n.s.fail("Storage", fmt.Sprintf("node %d: save: %v", n.id, err))
			return
		}
	} else {
		n.disk.flush()
	}
	n.s.chk.persisted(n, rd.HardState)
	n.s.tr.add(trPersist, n.id, rd.HardState.Term, rd.HardState.Vote)
	n.finish(rd)
}

// finish does what follows the durable write (rules 3–5): send the
// replies that speak of it, apply, serve reads, advance.
func (n *node) finish(rd raft.Ready) {
	for _, m := range rd.MessagesAfterPersist {
		n.s.net.send(m)
	}
	if rd.Snapshot != nil {
		n.s.stats.Snapshots++
		if err := n.restoreKV(rd.Snapshot.Meta); err != nil {
			n.s.fail("Storage", fmt.Sprintf("node %d: %v", n.id, err))
			return
		}
	}
	for _, e := range rd.CommittedEntries {
		n.apply(e)
		if n.s.failed() {
			return
		}
	}
	n.serveReads()
	n.core.Advance(rd)
	n.core.AppliedTo(n.applied)
	n.maybeSnapshot()
}

// apply applies one committed entry to the state machine (§5.3).
func (n *node) apply(e raft.Entry) {
	if e.Index != n.applied+1 {
		n.s.fail("Apply in order", fmt.Sprintf("node %d applied entry %d after %d", n.id, e.Index, n.applied))
		return
	}
	var res any
	if e.Type == raft.EntryNormal {
		res = n.kv.Apply(e)
	}
	n.applied, n.appliedTerm = e.Index, e.Term
	first := n.s.chk.applied(n, e)
	n.s.tr.add(trApply, n.id, e.Index, e.Term)
	n.s.clients.applied(first, e.Data, res)
	n.resolve(e, res)
}

// restoreKV replaces the state machine with the stored snapshot at meta
// (§7).
func (n *node) restoreKV(meta raft.SnapshotMeta) error {
	_, rc, _, err := n.store.OpenSnapshot(meta.Index)
	if err != nil {
		return fmt.Errorf("opening snapshot %d: %w", meta.Index, err)
	}
	defer rc.Close()
	if err := n.kv.Restore(rc); err != nil {
		return fmt.Errorf("restoring snapshot %d: %w", meta.Index, err)
	}
	n.applied, n.appliedTerm, n.lastSnap = meta.Index, meta.Term, meta.Index
	n.s.chk.restored(n, meta.Index)
	n.s.tr.add(trSnapshot, n.id, meta.Index, meta.Term)
	n.dropCovered(meta.Index)
	return nil
}

// maybeSnapshot takes a snapshot of the state machine every snapEvery
// applied entries and compacts the log behind it, keeping snapTrailing
// entries for slow followers (§7).
func (n *node) maybeSnapshot() {
	if n.applied-n.lastSnap < n.s.p.snapEvery {
		return
	}
	n.lastSnap = n.applied
	meta := raft.SnapshotMeta{Index: n.applied, Term: n.appliedTerm, Membership: n.s.membership}
	w, err := n.store.CreateSnapshot(meta)
	if errors.Is(err, raft.ErrSnapshotOutOfDate) {
		return // a newer snapshot arrived from the leader
	}
	if err != nil {
		n.s.fail("Storage", fmt.Sprintf("node %d: create snapshot %d: %v", n.id, meta.Index, err))
		return
	}
	view, err := n.kv.Snapshot()
	if err == nil {
		_, err = view.WriteTo(w)
		view.Release()
	}
	if err == nil {
		err = w.Commit()
	}
	if err == nil && meta.Index > n.s.p.snapTrailing {
		err = n.store.Compact(meta.Index - n.s.p.snapTrailing)
	}
	if err != nil {
		n.s.fail("Storage", fmt.Sprintf("node %d: snapshot %d: %v", n.id, meta.Index, err))
		return
	}
	n.s.tr.add(trSnapshot, n.id, meta.Index, meta.Term)
	if n.s.tr.on() {
		n.s.tr.printf(n.s.now, "n%d snapshot at %d/%d, log compacted to %d", n.id, meta.Index, meta.Term, meta.Index-min(meta.Index, n.s.p.snapTrailing))
	}
}

// receive steps a message that arrived. An InstallSnapshot's body is
// stored first, as package node's transport handler does, and the
// transfer's end reported to the sender.
func (n *node) receive(m raft.Message, body []byte) {
	if m.Type == raft.MsgSnap {
		if m.Term >= n.core.Status().Term && !n.storeSnapshot(m.Snapshot.Meta, body) {
			return
		}
		n.s.net.reportSnapshot(m.From, m.To, true)
	}
	if err := n.core.Step(m); err != nil {
		n.s.fail("Step", fmt.Sprintf("node %d: step %v: %v", n.id, m, err))
	}
}

// storeSnapshot stores a received snapshot body. Two rules keep every
// stored body at or below the core's commit index, so the core never asks
// to install a body the store refused:
//
//   - receive stores no body of a message from an earlier term: the core
//     ignores that message (§5.1), and its body, newer than anything the
//     node needs, would make the store refuse the older snapshot the
//     current leader sends (found by seed 401856);
//   - a body older than one the node holds is not stored (the store
//     refuses it), but the message still goes to the core: the node's log
//     covers that snapshot, so the core will not install it and answers
//     with its commit index, the only way the leader learns to stop
//     sending it (found by seed 102077).
func (n *node) storeSnapshot(meta raft.SnapshotMeta, body []byte) bool {
	w, err := n.store.CreateSnapshot(meta)
	if errors.Is(err, raft.ErrSnapshotOutOfDate) {
		return true
	}
	if err == nil {
		_, err = w.Write(body)
	}
	if err == nil {
		err = w.Commit()
	}
	if err != nil {
		n.s.fail("Storage", fmt.Sprintf("node %d: receive snapshot %d: %v", n.id, meta.Index, err))
		return false
	}
	return true
}

// crash cuts the power: the disk keeps what a crash clone keeps, and
// everything in memory is gone.
func (n *node) crash() {
	n.disk = n.disk.crash(n.s.faults.rng)
	n.inc++
	n.state = down
	n.core, n.store, n.kv, n.inflight, n.backlog = nil, nil, nil, nil, nil
	n.lazy = raft.HardState{}
	n.crashArmed = crashNone
	n.server.reset()
}

// pause stops the process; resume lets it run again with its backlog.
func (n *node) pause() { n.state = paused }

func (n *node) resume() {
	n.state = up
	backlog := n.backlog
	n.backlog = nil
	for _, fn := range backlog {
		fn()
		if n.s.failed() {
			return
		}
	}
	n.core.Tick() // the ticker fired while stopped: one tick is pending
	n.process()
}

// traceLines writes a node's log lines into the trace.
type traceLines struct{ n *node }

func (w traceLines) Write(p []byte) (int, error) {
	w.n.s.tr.printf(w.n.s.now, "n%d %s", w.n.id, strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func (n *node) traceReady(rd *raft.Ready) {
	s := fmt.Sprintf("n%d ready", n.id)
	if !rd.HardState.IsEmpty() {
		s += fmt.Sprintf(" hs{term=%d vote=%d commit=%d}", rd.HardState.Term, rd.HardState.Vote, rd.HardState.Commit)
	}
	if rd.Snapshot != nil {
		s += fmt.Sprintf(" snapshot=%d/%d", rd.Snapshot.Meta.Index, rd.Snapshot.Meta.Term)
	}
	if k := len(rd.Entries); k > 0 {
		s += fmt.Sprintf(" entries=%d..%d(term %d..%d)", rd.Entries[0].Index, rd.Entries[k-1].Index, rd.Entries[0].Term, rd.Entries[k-1].Term)
	}
	if k := len(rd.CommittedEntries); k > 0 {
		s += fmt.Sprintf(" apply=%d..%d", rd.CommittedEntries[0].Index, rd.CommittedEntries[k-1].Index)
	}
	n.s.tr.printf(n.s.now, "%s", s)
	for _, e := range rd.Events {
		if e.Kind != raft.EventMessageSent && e.Kind != raft.EventMessageReceived {
			n.s.tr.printf(n.s.now, "n%d   %v", n.id, e)
		}
	}
}
