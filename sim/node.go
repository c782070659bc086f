package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/raftex/raftex/auth"
	"github.com/raftex/raftex/kv"
	nodepkg "github.com/raftex/raftex/node"
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

// node is one simulated server running the production runtime without its
// goroutines: package node's Ready step machine (node.Machine) and
// applier (node.Applier) over the real storage on a crashable disk and
// the real key-value state machine. The simulation supplies only what
// package node's goroutines, clock, disk and network would: it calls the
// Machine's inputs at virtual times, completes its writes after a
// simulated fsync latency, carries its messages over the simulated
// network, and runs the applier as an event of its own (slowed by the
// slow state machine fault).
type node struct {
	s  *sim
	id uint64
	// inc counts restarts; events scheduled for an earlier incarnation
	// are void.
	inc   int
	state nodeState

	disk  *disk
	store *storage.Store
	kv    *kv.Store
	cfg   *nodepkg.Config
	m     *nodepkg.Machine
	ap    *nodepkg.Applier
	core  *raft.Raft // the Machine's core, for the checks and faults

	// inflight is the Ready whose durable write is in progress.
	inflight *raft.Ready
	// backlog holds what arrived while paused, by source, each in order
	// of arrival.
	backlog [numSources][]func()
	// applyQ holds the work handed to the applier; applying: an apply
	// event is scheduled.
	applyQ   []nodepkg.ApplyTask
	applying bool
	// lastApplied is the entry the state machine applied last: the one a
	// proposal resolved from the applier was acknowledged as.
	lastApplied raft.Entry

	// rate is the speed of the node's clock: it ticks every
	// tickInterval/rate of virtual time, and its monotonic clock (the
	// lease's, raft.Config.Clock) runs at the same speed. clockBase is
	// that clock's reading at virtual time clockAt.
	rate               float64
	clockBase, clockAt time.Duration
	// slowUntil and slowLatency make fsyncs slow until then.
	slowUntil   time.Duration
	slowLatency time.Duration
	// fsmSlowUntil and fsmDelay make each apply batch take fsmDelay per
	// entry until then (the slow state machine fault).
	fsmSlowUntil time.Duration
	fsmDelay     time.Duration
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

// Now is the node's monotonic clock (raft.Clock): virtual time at the
// node's rate, running whether or not the node does (a paused process's
// clock moves on).
func (n *node) Now() time.Duration {
	return n.clockBase + time.Duration(float64(n.s.now-n.clockAt)*n.rate)
}

// wall is the node's wall clock, which auth tokens expire by: it runs at
// the node's rate, so nodes disagree about a token's expiry as skewed
// clocks do.
func (n *node) wall() time.Time { return simEpoch.Add(n.Now()) }

// simEpoch is virtual time 0 on the nodes' wall clocks.
var simEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// setRate changes the speed of the node's clock from now on.
func (n *node) setRate(rate float64) {
	n.clockBase, n.clockAt, n.rate = n.Now(), n.s.now, rate
}

// config is the runtime's configuration for this run: package node's
// defaults with the knobs the seed varies.
func (n *node) config() *nodepkg.Config {
	p := n.s.p
	cfg := nodepkg.DefaultConfig(n.id)
	cfg.InitialMembership = n.s.membership
	cfg.Rand = rand.New(rand.NewPCG(n.s.opts.Seed, streamNode+n.id<<16+uint64(n.inc)))
	cfg.Clock = n
	cfg.MaxSizePerMsg = p.maxSizePerMsg
	cfg.MaxInflightMsgs = p.maxInflight
	cfg.MaxApplyingBytes = p.maxApplying
	cfg.MaxUncommittedBytes = p.maxUncommitted
	cfg.LeaseRead = p.leaseRead
	cfg.SnapshotEntries, cfg.SnapshotBytes, cfg.SnapshotTrailing = p.snapEvery, 0, p.snapTrailing
	cfg.Logger = slog.New(slog.DiscardHandler)
	if n.s.tr.on() {
		cfg.Logger = n.traceLogger()
	}
	return &cfg
}

// start boots the node from its disk, as package node's Start does: open
// and recover the store, then node.NewMachine (bootstrap, restore the
// state machine from the newest snapshot, start the core).
func (n *node) start() error {
	opts := storage.Options{SegmentSize: n.s.p.segmentSize}
	if n.s.tr.on() {
		// What recovery repaired (a torn tail cut, a snapshot skipped)
		// goes into the trace.
		opts.Logger = n.traceLogger()
	}
	st, err := storage.Open(n.disk, "/data", opts)
	if err != nil {
		return fmt.Errorf("recovery failed: %w", err)
	}
	n.store, n.kv = st, kv.New(kv.Config{SessionTTL: n.s.p.sessionTTL, MaxSessions: n.s.p.maxSessions, HistoryCount: n.s.p.historyCount})
	n.cfg = n.config()
	n.m, n.ap, err = nodepkg.NewMachine(n.cfg, st, observedFSM{n}, simEnv{n}, n.runtimeEvent)
	if err != nil {
		return err
	}
	n.core, n.state = n.m.Raft(), up
	n.lastApplied = raft.Entry{}
	if applied := n.ap.Applied(); applied > 0 {
		n.s.chk.restored(n, applied)
		n.s.tr.add(trSnapshot, n.id, applied, 0)
	}
	if err := n.s.chk.started(n); err != nil {
		return err
	}
	n.scheduleTick(time.Duration(n.s.net.rng.Int64N(int64(tickInterval))))
	return nil
}

// appliedIndex is the last index the state machine reflects.
func (n *node) appliedIndex() uint64 {
	if n.ap == nil {
		return 0
	}
	return n.ap.Applied()
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
			n.m.Tick()
			n.process()
		}
	})
}

// source is where an input comes from: package node's core goroutine
// takes each from its own channel.
type source uint8

const (
	fromRuntime source = iota // ticks, writes done, the applier, the transport's reports
	fromPeer                  // the inbox
	fromClient                // proposals and reads
	numSources
)

// input runs fn on the node and lets the Machine process what it caused:
// at once if the node runs, on resume if it is paused, never if it is
// down.
func (n *node) input(fn func()) { n.inputFrom(fromRuntime, fn) }

func (n *node) inputFrom(src source, fn func()) {
	switch n.state {
	case down:
		return
	case paused:
		n.backlog[src] = append(n.backlog[src], fn)
		return
	}
	fn()
	n.process()
}

func (n *node) process() {
	if n.state == up && !n.s.failed() {
		n.m.Process()
	}
}

// simEnv is the Machine's world in the simulation.
type simEnv struct{ n *node }

var _ nodepkg.Env = simEnv{}

// Ready checks every Ready as the core hands it out.
func (e simEnv) Ready(rd *raft.Ready) {
	n := e.n
	n.s.chk.ready(n, rd)
	n.s.tr.add(trReady, n.id, rd.HardState.Term, rd.HardState.Vote, rd.HardState.Commit, uint64(len(rd.Entries)), uint64(len(rd.CommittedEntries)))
	if n.s.tr.on() {
		n.traceReady(rd)
	}
}

// ConfChanged: the simulated network reaches every node by id; nothing to
// do but trace it.
func (e simEnv) ConfChanged(m raft.Membership, committed bool) {
	if n := e.n; n.s.tr.on() {
		n.s.tr.printf(n.s.now, "n%d   configuration %v committed=%t", n.id, m, committed)
	}
}

func (e simEnv) Send(msgs []raft.Message) {
	for _, m := range msgs {
		e.n.s.net.send(m)
	}
}

func (e simEnv) Event(ev raft.Event) {
	if n := e.n; n.s.tr.on() && ev.Kind != raft.EventMessageSent && ev.Kind != raft.EventMessageReceived {
		n.s.tr.printf(n.s.now, "n%d   %v", n.id, ev)
	}
}

// Write starts the durable write of rd (Ready rule 2). The WAL batch is
// written now with its fsync held back by the disk until the simulated
// latency has passed; a snapshot install is written whole when the
// latency has passed (a crash before then loses it entirely).
func (e simEnv) Write(rd raft.Ready) {
	n := e.n
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

// Apply queues work for the applier, which runs as an event of its own.
func (e simEnv) Apply(t nodepkg.ApplyTask) {
	n := e.n
	n.applyQ = append(n.applyQ, t)
	n.scheduleApply()
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
	n.s.chk.persisted(n, rd)
	n.s.tr.add(trPersist, n.id, rd.HardState.Term, rd.HardState.Vote)
	if err := n.m.WriteDone(nil); err != nil {
		n.s.fail("Storage", fmt.Sprintf("node %d: %v", n.id, err))
	}
}

// scheduleApply runs the applier on the next queued task: now, or, while
// the state machine is slow, after its delay per entry.
func (n *node) scheduleApply() {
	if n.applying || len(n.applyQ) == 0 {
		return
	}
	n.applying = true
	var d time.Duration
	if n.s.now < n.fsmSlowUntil {
		d = n.fsmDelay * time.Duration(max(1, len(n.applyQ[0].Entries)))
	}
	inc := n.inc
	n.s.after(d, func() {
		if n.inc == inc {
			n.input(n.applyNext)
		}
	})
}

// applyNext is the applier's turn, as on package node's apply goroutine:
// apply one task, report the progress to the Machine, take a snapshot
// when one is due.
func (n *node) applyNext() {
	t := n.applyQ[0]
	n.applyQ = n.applyQ[1:]
	n.applying = false
	if err := n.ap.Apply(t); err != nil {
		check := "Apply"
		if errors.Is(err, nodepkg.ErrApplyOrder) {
			check = "Apply in order"
		}
		n.s.fail(check, fmt.Sprintf("node %d: %v", n.id, err))
		return
	}
	n.m.AppliedTo(n.ap.Applied())
	if meta, view, ok := n.ap.SnapshotDue(); ok {
		if err := n.ap.WriteSnapshot(meta, view); err != nil {
			n.s.fail("Storage", fmt.Sprintf("node %d: snapshot %d: %v", n.id, meta.Index, err))
			return
		}
	}
	n.scheduleApply()
}

// runtimeEvent sees the applier's events.
func (n *node) runtimeEvent(e raft.Event) {
	switch e.Kind {
	case raft.EventSnapshotInstalled:
		n.s.stats.Snapshots++
		n.s.watches.poll(n)
		n.s.chk.restored(n, e.Index)
		n.s.tr.add(trSnapshot, n.id, e.Index, 0)
	case raft.EventSnapshotTaken:
		n.s.tr.add(trSnapshot, n.id, e.Index, 1)
		if n.s.tr.on() {
			n.s.tr.printf(n.s.now, "n%d snapshot at %d, log compacted to %d", n.id, e.Index, e.PrevIndex)
		}
	}
}

// observedFSM is the node's key-value state machine with the simulator's
// checks on every entry it applies.
type observedFSM struct{ n *node }

func (f observedFSM) Apply(e raft.Entry) any {
	n := f.n
	before := n.kv.Auth()
	res := n.kv.Apply(e)
	n.checkAuth(before, e, res)
	n.lastApplied = e
	first := n.s.chk.applied(n, e)
	n.s.tr.add(trApply, n.id, e.Index, e.Term)
	n.s.clients.applied(first, e.Data, res)
	n.s.watches.applied(n, first, e)
	return res
}

// checkAuth: a client's command applied only if its user could do it in
// the auth state it applied on (with auth enabled, no anonymous write,
// no registration without a user, no auth change but root's).
func (n *node) checkAuth(before *auth.State, e raft.Entry, res any) {
	cmd, err := kv.DecodeCommand(e.Data)
	r, ok := res.(kv.Result)
	if err != nil || !ok || r.Err != nil || !cmd.ByClient || r.Revision != e.Index {
		return // refused, not a client's, or a result remembered from before
	}
	need := auth.NeedUser
	switch cmd.Op {
	case kv.OpSet, kv.OpDelete, kv.OpDeletePrefix:
		need = auth.NeedWrite
	case kv.OpAuth:
		need = auth.NeedRoot
	case kv.OpTxn:
		// Every key it touches, in both branches.
		t, err := cmd.DecodeTxn()
		if err == nil {
			err = t.Keys(func(key []byte, write bool) error {
				need := auth.NeedRead
				if write {
					need = auth.NeedWrite
				}
				return before.Allow(cmd.User, need, key)
			})
		}
		if err != nil {
			n.s.fail("Auth", fmt.Sprintf("node %d: entry %d (a transaction by %q) applied though %v", n.id, e.Index, cmd.User, err))
		}
		return
	}
	if err := before.Allow(cmd.User, need, cmd.Key); err != nil {
		n.s.fail("Auth", fmt.Sprintf("node %d: entry %d (op %d by %q) applied though %v", n.id, e.Index, cmd.Op, cmd.User, err))
	}
}

func (f observedFSM) Snapshot() (nodepkg.FSMSnapshot, error) { return f.n.kv.Snapshot() }
func (f observedFSM) Restore(r io.Reader) error              { return f.n.kv.Restore(r) }

// receive steps a message that arrived. An InstallSnapshot's body is
// stored first, as package node's transport handler does
// (node.StoreSnapshot), and the transfer's end reported to the sender.
func (n *node) receive(m raft.Message, body []byte) {
	if m.Type == raft.MsgSnap {
		if err := nodepkg.StoreSnapshot(n.store, m, bytes.NewReader(body)); err != nil {
			n.s.fail("Storage", fmt.Sprintf("node %d: receive snapshot %d: %v", n.id, m.Snapshot.Meta.Index, err))
			return
		}
		n.s.net.reportSnapshot(m.From, m.To, true)
	}
	if err := n.m.Step(m); err != nil {
		n.s.fail("Step", fmt.Sprintf("node %d: step %v: %v", n.id, m, err))
	}
}

// crash cuts the power: the disk keeps what a crash clone keeps, and
// everything in memory is gone.
func (n *node) crash() {
	n.disk = n.disk.crash(n.s.faults.rng)
	n.inc++
	n.state = down
	n.m, n.ap, n.core, n.store, n.kv, n.inflight, n.backlog = nil, nil, nil, nil, nil, nil, [numSources][]func(){}
	for _, t := range n.applyQ {
		t.Discard()
	}
	n.applyQ, n.applying = nil, false
	n.crashArmed = crashNone
}

// pause stops the process; resume lets it run again with its backlog.
func (n *node) pause() { n.state = paused }

// resume runs what waited, as package node's core goroutine would when
// it runs again: each source in its order, the sources interleaved at
// random (a Go select picks among ready channels at random). A client's
// request may so be taken before a message that arrived earlier.
func (n *node) resume() {
	n.state = up
	backlog := n.backlog
	n.backlog = [numSources][]func(){}
	for {
		var ready []source
		for src := range numSources {
			if len(backlog[src]) > 0 {
				ready = append(ready, src)
			}
		}
		if len(ready) == 0 {
			break
		}
		src := ready[n.s.faults.rng.IntN(len(ready))]
		fn := backlog[src][0]
		backlog[src] = backlog[src][1:]
		fn()
		n.process()
		if n.s.failed() || n.state != up {
			return
		}
	}
	n.m.Tick() // the ticker fired while stopped: one tick is pending
	n.process()
}

// traceLogger writes the node's log lines into the trace.
func (n *node) traceLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(traceLines{n}, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

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
}
