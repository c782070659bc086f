package node

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage"
)

// Env is what a Machine needs from its driver: the seams to the disk, the
// network and the applier. A Machine calls them on the driver's goroutine;
// none may block, and none may call back into the Machine.
type Env interface {
	// Write starts making rd durable (Ready rule 2: its snapshot, entries
	// and hard state, then one fsync); the driver calls WriteDone once it
	// is. One write is in flight at a time.
	Write(rd raft.Ready)
	// Send hands messages to the network (Ready rules 1 and 3).
	Send(msgs []raft.Message)
	// Apply hands a snapshot to restore and committed entries to the
	// applier, in order (Ready rules 2 and 3); the driver reports the
	// applier's progress with AppliedTo.
	Apply(t ApplyTask)
	// Ready sees every Ready as the core handed it out, before anything
	// is done with it (the simulator checks its invariants there).
	Ready(rd *raft.Ready)
	// Event publishes an event of the core.
	Event(e raft.Event)
	// ConfChanged tells the configuration now in force (thesis §4.1:
	// the latest in the log), and whether it is committed: the driver
	// reaches new members at once (their address is their context) and
	// forgets removed ones once the change is committed, until when the
	// leader still replicates to them (so they learn of their removal).
	ConfChanged(m raft.Membership, committed bool)
}

// Machine is the Ready step machine: everything the runtime does with the
// core's output (raft.Ready, rules 1–6), with no goroutine, clock or I/O
// of its own. Package node's goroutines drive it with real time, disk and
// network; the simulator drives the very same Machine single-threaded on
// virtual time. One goroutine calls all of its methods.
//
// Inputs come in through Tick, Step, Propose, Read, WriteDone, AppliedTo
// and Control; after a batch of them the driver calls Process, which
// pushes Readys through the contract: the messages that may leave at once
// and the committed entries (already durable) to the applier, then the
// durable write (Env.Write) while the leader's messages keep leaving
// (TakeMessages, thesis §10.2.1), then, once WriteDone, the replies that
// speak of the write, an installed snapshot to the applier, and Advance. While one write is in flight, everything proposed collects
// in the core and goes to disk with the next (group commit).
type Machine struct {
	cfg   *Config
	r     *raft.Raft
	env   Env
	store *storage.Store
	props *registry
	waits *indexWaiters

	// writing: inflight is being made durable.
	writing  bool
	inflight raft.Ready
	// lazy is a hard state whose only change was the commit index: not
	// worth an fsync of its own, it rides with the next write (or a last
	// one at Stop). Losing it in a crash is harmless.
	lazy raft.HardState

	reads readBatches
	fwd   forwards
	// outbox holds a follower's proposals until Process forwards them to
	// the leader in one message.
	outbox []*Proposal
	// lead is the leader as of the last event seen.
	lead uint64
	// confPending: the configuration last told to Env.ConfChanged was
	// not committed yet.
	confPending bool
	// transfers wait for the end of a leadership transfer.
	transfers []*transferWait
}

// transferWait is a caller waiting for the transfer to to end.
type transferWait struct {
	to   uint64
	age  int
	done func(error)
}

// NewMachine opens a node's runtime over store: it bootstraps an empty
// store with cfg.InitialMembership, restores fsm from the newest snapshot
// (only the entries after it are replayed, §7) and starts the core from
// what the store holds. It returns the Machine and the Applier that feeds
// fsm; a driver runs the Applier's work wherever it likes (package node:
// its apply goroutine) and reports its progress with AppliedTo.
func NewMachine(cfg *Config, store *storage.Store, fsm FSM, env Env, ev Emitter) (*Machine, *Applier, error) {
	switch {
	case store.HasState():
	case len(cfg.InitialMembership.Voters) > 0:
		if err := store.Bootstrap(cfg.InitialMembership); err != nil {
			return nil, nil, fmt.Errorf("node: bootstrap: %w", err)
		}
	case !cfg.Join:
		return nil, nil, errors.New("node: storage is empty and neither Config.InitialMembership nor Config.Join is set")
	}
	_, membership, err := store.InitialState()
	if err != nil {
		return nil, nil, fmt.Errorf("node: reading storage: %w", err)
	}
	applied, err := restoreNewestSnapshot(store, fsm)
	if err != nil {
		return nil, nil, err
	}
	r, err := raft.New(cfg.raftConfig(store, applied))
	if err != nil {
		return nil, nil, err
	}
	props, waits := newRegistry(applied), newIndexWaiters(applied)
	epoch := newEpoch(cfg)
	m := &Machine{
		cfg: cfg, r: r, env: env, store: store, props: props, waits: waits,
		reads: newReadBatches(epoch), fwd: newForwards(epoch ^ 1), lead: r.Leader(),
	}
	a := newApplier(cfg, store, fsm, props, waits, membership, applied, ev)
	return m, a, nil
}

// restoreNewestSnapshot loads fsm from the newest snapshot and returns its
// index (0 if none).
func restoreNewestSnapshot(store *storage.Store, fsm FSM) (uint64, error) {
	snap, err := store.Snapshot()
	if err != nil || snap.IsEmpty() {
		return 0, err
	}
	_, body, _, err := store.OpenSnapshot(snap.Meta.Index)
	if err != nil {
		return 0, fmt.Errorf("node: opening snapshot %d: %w", snap.Meta.Index, err)
	}
	defer body.Close()
	if err := fsm.Restore(body); err != nil {
		return 0, fmt.Errorf("node: restoring snapshot %d: %w", snap.Meta.Index, err)
	}
	return snap.Meta.Index, nil
}

// Raft returns the core, for calls the Machine does not wrap (Status,
// Campaign, TransferLeadership, ReportUnreachable, ReportSnapshot).
func (m *Machine) Raft() *raft.Raft { return m.r }

// Tick advances the core's clock one tick and ages the requests waiting
// for an answer from the leader (they fail after two election timeouts),
// and the leadership transfers waited for (four).
func (m *Machine) Tick() {
	m.r.Tick()
	m.reads.expire(2 * m.cfg.ElectionTick)
	m.fwd.expire(2 * m.cfg.ElectionTick)
	m.transfers = slices.DeleteFunc(m.transfers, func(w *transferWait) bool {
		if w.age++; w.age > 4*m.cfg.ElectionTick {
			w.done(ErrTransferAborted)
			return true
		}
		return false
	})
}

// ProposeConfChange proposes the configuration change ccs (thesis §4) on
// the leader; p.Done is called once its entry is applied here (and so
// committed), or with the error that refused it.
func (m *Machine) ProposeConfChange(ccs []raft.ConfChange, p *Proposal) {
	index, term, err := m.r.ProposeConfChange(ccs...)
	if err != nil {
		p.Done(nil, err)
		return
	}
	m.props.add(index, term, p)
}

// TransferLeadership starts handing leadership to to (raft.None: the most
// up-to-date voter; thesis §3.10) and calls done once it ended: nil once
// this node learns that the target leads, ErrTransferAborted if the
// leader gave up or another node took over.
func (m *Machine) TransferLeadership(to uint64, done func(error)) {
	if err := m.r.TransferLeadership(to); err != nil {
		done(err)
		return
	}
	m.transfers = append(m.transfers, &transferWait{to: m.r.LeadTransferee(), done: done})
}

// endTransfers ends the transfers waited for that ev decides.
func (m *Machine) endTransfers(ev raft.Event) {
	m.transfers = slices.DeleteFunc(m.transfers, func(w *transferWait) bool {
		switch {
		case ev.Kind == raft.EventLeaderChanged && ev.Peer == w.to:
			w.done(nil)
		case ev.Kind == raft.EventLeaderChanged && ev.Peer != raft.None,
			ev.Kind == raft.EventLeadershipTransferAborted && ev.Peer == w.to:
			w.done(ErrTransferAborted)
		default:
			return false
		}
		return true
	})
}

// ConfChanged tells Env the configuration in force at the start: the
// driver reaches the members at their addresses from the log or snapshot.
func (m *Machine) ConfChanged() {
	m.confPending = m.r.PendingConfIndex() != 0
	m.env.ConfChanged(m.r.Membership(), !m.confPending)
}

// Step feeds a message from a peer to the core. An invalid message is
// dropped and its error returned, for the driver to log.
func (m *Machine) Step(msg raft.Message) error { return m.r.Step(msg) }

// Propose takes a proposal: on the leader it is appended now and waits for
// its entry to apply; on a follower it waits in the outbox for Process to
// forward it to the leader (§8).
func (m *Machine) Propose(p *Proposal) {
	if m.r.Role() == raft.Leader {
		index, term, err := m.r.Propose(p.Data)
		if err != nil {
			p.Done(nil, err)
			return
		}
		m.props.add(index, term, p)
		return
	}
	if m.r.Leader() == raft.None {
		p.Done(nil, raft.ErrNoLeader)
		return
	}
	m.outbox = append(m.outbox, p)
}

// Read takes a batch of reads: one read index serves them all, one for
// those that accept a lease and one for those that do not.
func (m *Machine) Read(batch []*ReadRequest) {
	m.reads.start(m.r, batch, false)
	m.reads.start(m.r, batch, true)
}

// AppliedTo reports the applier's progress to the core, which then hands
// out more committed entries (raft.Raft.AppliedTo).
func (m *Machine) AppliedTo(index uint64) { m.r.AppliedTo(index) }

// Writing reports whether a durable write is in flight.
func (m *Machine) Writing() bool { return m.writing }

// Lazy returns the hard state waiting for the next write, if any: a
// driver that stops writes it last.
func (m *Machine) Lazy() (raft.HardState, bool) { return m.lazy, !m.lazy.IsEmpty() }

// Fail ends every request waiting on the Machine with err: the driver
// stops.
func (m *Machine) Fail(err error) {
	m.reads.failAll(err)
	m.fwd.failAll(err)
	for _, w := range m.transfers {
		w.done(err)
	}
	m.transfers = nil
	for _, p := range m.outbox {
		p.Done(nil, err)
	}
	m.outbox = nil
}

// Process pushes Readys through the contract until the core has nothing
// more, or a durable write is in flight; while one is, it sends the
// messages that may leave at once (thesis §10.2.1).
func (m *Machine) Process() {
	m.forwardOutbox()
	for {
		if m.writing {
			if msgs := m.r.TakeMessages(); len(msgs) > 0 {
				m.env.Send(msgs)
			}
			return
		}
		if !m.r.HasReady() {
			return
		}
		rd := m.r.Ready()
		m.env.Ready(&rd)
		m.start(rd)
		if !rd.MustSync() {
			if !rd.HardState.IsEmpty() {
				m.lazy = rd.HardState
			}
			m.finish(rd, snapshotBody{}) // no snapshot: it would have to be synced
			continue
		}
		if rd.HardState.IsEmpty() {
			rd.HardState = m.lazy
		}
		m.lazy = raft.HardState{}
		m.inflight, m.writing = rd, true
		m.env.Write(rd)
	}
}

// WriteDone finishes the write in flight once it is durable, or returns
// its error: the node cannot keep Raft's promises (§5.1) and must stop.
func (m *Machine) WriteDone(err error) error {
	if !m.writing {
		panic("node: WriteDone without a write in flight")
	}
	rd := m.inflight
	m.inflight, m.writing = raft.Ready{}, false
	if err != nil {
		return err
	}
	var snap snapshotBody
	if rd.Snapshot != nil {
		// Open the installed snapshot's body now, while the store must
		// keep it: a later install may prune its file before the applier
		// gets to it, and an open file stays readable (simulator seed
		// 3008233).
		_, snap.r, snap.size, err = m.store.OpenSnapshot(rd.Snapshot.Meta.Index)
		if err != nil {
			return fmt.Errorf("node: opening the installed snapshot %d: %w", rd.Snapshot.Meta.Index, err)
		}
	}
	m.finish(rd, snap)
	return nil
}

// forwardOutbox sends a follower's queued proposals to the leader, in
// messages of at most MaxSizePerMsg bytes.
func (m *Machine) forwardOutbox() {
	for len(m.outbox) > 0 {
		n, size := 0, uint64(0)
		for n < len(m.outbox) && (n == 0 || size+uint64(len(m.outbox[n].Data)) <= m.cfg.MaxSizePerMsg) {
			size += uint64(len(m.outbox[n].Data))
			n++
		}
		batch := m.outbox[:n:n]
		m.outbox = m.outbox[n:]
		data := make([][]byte, n)
		for i, p := range batch {
			data[i] = p.Data
		}
		ctx := m.fwd.start(batch)
		if err := m.r.ForwardProposal(ctx, data...); err != nil {
			m.fwd.cancel(ctx)
			for _, p := range batch {
				p.Done(nil, err) // no leader: certainly not appended
			}
		}
	}
	m.outbox = nil
}

// start does what may happen before the durable write (Ready rule 1):
// send the messages that may leave at once, hand the committed entries to
// the applier (already durable; unless a snapshot must be installed
// first), publish events, take the answers about reads and forwarded
// proposals.
func (m *Machine) start(rd raft.Ready) {
	m.env.Send(rd.Messages)
	if rd.Snapshot == nil && len(rd.CommittedEntries) > 0 {
		m.env.Apply(ApplyTask{Entries: rd.CommittedEntries})
	}
	if bugs.AckBeforeFsync {
		m.env.Send(rd.MessagesAfterPersist)
	}
	confChanged := false
	for _, e := range rd.Events {
		m.observe(e)
		m.env.Event(e)
		confChanged = confChanged || e.Kind == raft.EventConfChanged ||
			(m.confPending && e.Kind == raft.EventCommitAdvanced)
	}
	if confChanged {
		m.ConfChanged()
	}
	for _, rs := range rd.ReadStates {
		m.reads.confirm(rs, m.waits)
	}
	for _, res := range rd.ProposalResults {
		m.fwd.resolve(res, m.props)
	}
}

// observe fails the requests an event made unanswerable.
func (m *Machine) observe(e raft.Event) {
	if len(m.transfers) > 0 {
		m.endTransfers(e)
	}
	switch {
	case e.Kind == raft.EventLeaderChanged:
		m.lead = e.Peer
		// A read index from the old leader may never come, and so may
		// the old leader's answer to a forwarded proposal.
		m.reads.failAll(ErrLeadershipLost)
		m.fwd.failAll(ErrLeadershipLost)
	case e.Kind == raft.EventRoleChanged && e.PrevRole == raft.Leader:
		// Proposals past the commit index may never commit (another
		// leader may overwrite them, §5.3), and nothing would resolve
		// them until a later entry lands at their index. Committed ones
		// still resolve when applied.
		m.props.failAfter(m.r.Commit(), ErrLeadershipLost)
	}
}

// finish does what must follow the durable write (Ready rules 3–5); snap
// is the body of rd's snapshot, if it has one.
func (m *Machine) finish(rd raft.Ready, snap snapshotBody) {
	if !bugs.AckBeforeFsync {
		m.env.Send(rd.MessagesAfterPersist)
	}
	if rd.Snapshot != nil {
		m.env.Apply(ApplyTask{Snapshot: rd.Snapshot, body: snap, Entries: rd.CommittedEntries})
	}
	m.r.Advance(rd)
}

// newEpoch draws the random epoch of a node start (see requestCtx), from
// cfg.Rand when set so that a simulation replays.
func newEpoch(cfg *Config) uint64 {
	if cfg.Rand != nil {
		return cfg.Rand.Uint64()
	}
	return rand.Uint64()
}
