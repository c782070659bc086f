package node

import (
	"encoding/binary"
	"math/rand/v2"
	"time"

	"github.com/raftex/raftex/raft"
)

// drainLimit bounds how many queued inputs of one kind the core goroutine
// takes before it looks at its Ready again.
const drainLimit = 1024

// runCore is the core goroutine: the only code that touches the core. It
// feeds ticks, messages, proposals and reads in, and pushes each Ready
// through the contract: Messages at once, then the durable write on the
// storage goroutine, then MessagesAfterPersist, the apply queue and
// Advance. While one write is in flight, new proposals collect in the
// core and go to disk together in the next Ready (group commit), while
// their AppendEntries and the heartbeats leave at once (TakeMessages,
// thesis §10.2.1): a slow fsync never silences the leader.
func (n *Node) runCore(r *raft.Raft) {
	defer n.wg.Done()
	defer close(n.coreDone)
	defer close(n.persistc)
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	reads := newReadBatches()
	// The Ready being written, if writing; held by value so that no Ready
	// escapes to the heap.
	var inflight raft.Ready
	writing := false
	// lazy is a hard state whose only change was the commit index: it is
	// not worth an fsync of its own, so it rides along with the next write
	// (or the last one, at Stop). Losing it in a crash is harmless.
	var lazy raft.HardState
	for {
		if !writing && r.HasReady() {
			rd := r.Ready()
			n.startReady(r, rd, reads)
			if rd.MustSync() {
				if rd.HardState.IsEmpty() {
					rd.HardState = lazy
				}
				lazy = raft.HardState{}
				inflight, writing = rd, true
				n.persistc <- rd
			} else {
				if !rd.HardState.IsEmpty() {
					lazy = rd.HardState
				}
				n.finishReady(r, rd)
			}
		} else if writing {
			if msgs := r.TakeMessages(); len(msgs) > 0 {
				n.trans.Send(msgs)
			}
		}
		select {
		case <-ticker.C:
			r.Tick()
			reads.expire(2 * n.cfg.ElectionTicks)
		case m := <-n.inbox:
			n.step(r, m)
			for i := 0; i < drainLimit && len(n.inbox) > 0; i++ {
				n.step(r, <-n.inbox)
			}
		case p := <-n.propc:
			n.propose(r, p)
			for i := 0; i < drainLimit && len(n.propc) > 0; i++ {
				n.propose(r, <-n.propc)
			}
		case w := <-n.readc:
			batch := []*readWaiter{w}
			for i := 0; i < drainLimit && len(n.readc) > 0; i++ {
				batch = append(batch, <-n.readc)
			}
			reads.start(r, batch, false)
			reads.start(r, batch, true)
		case f := <-n.ctrlc:
			f(r)
		case <-n.appliedc:
			r.AppliedTo(n.applyWait.applied())
		case err := <-n.persisted:
			rd := inflight
			inflight, writing = raft.Ready{}, false
			if err != nil {
				n.fail(err)
				reads.failAll(n.stoppedErr())
				return
			}
			n.finishReady(r, rd)
		case <-n.failc:
			reads.failAll(n.stoppedErr())
			return
		case <-n.stopc:
			if writing {
				// Leave the disk consistent: let the write in flight end.
				if err := <-n.persisted; err != nil {
					n.fail(err)
				}
			}
			if !lazy.IsEmpty() {
				n.persistc <- raft.Ready{HardState: lazy}
				if err := <-n.persisted; err != nil {
					n.fail(err)
				}
			}
			reads.failAll(ErrStopped)
			return
		}
	}
}

func (n *Node) step(r *raft.Raft, m raft.Message) {
	if err := r.Step(m); err != nil {
		n.log.Warn("dropping invalid message", "from", m.From, "type", m.Type, "err", err)
	}
}

func (n *Node) propose(r *raft.Raft, p *proposal) {
	index, term, err := r.Propose(p.data)
	if err != nil {
		p.done <- proposalResult{err: err}
		return
	}
	n.proposals.add(index, term, p.done)
}

// startReady does what may happen before the durable write: send the
// leader's messages (thesis §10.2.1), publish events, note confirmed reads.
func (n *Node) startReady(r *raft.Raft, rd raft.Ready, reads *readBatches) {
	n.trans.Send(rd.Messages)
	for _, e := range rd.Events {
		n.mirror(e, reads)
		if e.Kind == raft.EventRoleChanged && e.PrevRole == raft.Leader {
			n.leadershipLost(r)
		}
		n.publish(e)
	}
	for _, rs := range rd.ReadStates {
		reads.confirm(rs)
	}
}

// finishReady does what must follow the durable write (§5.1).
func (n *Node) finishReady(r *raft.Raft, rd raft.Ready) {
	n.trans.Send(rd.MessagesAfterPersist)
	if rd.Snapshot != nil || len(rd.CommittedEntries) > 0 {
		n.applier.enqueue(applyTask{snapshot: rd.Snapshot, entries: rd.CommittedEntries})
	}
	r.Advance(rd)
}

// leadershipLost fails the proposals this node can no longer see through:
// those past its commit index may never commit (another leader may
// overwrite them, §5.3), and nothing would resolve them until a later
// entry lands at their index. Committed ones still resolve when applied.
func (n *Node) leadershipLost(r *raft.Raft) {
	n.proposals.failAfter(r.Status().Commit, ErrLeadershipLost)
}

// mirror keeps the atomics other goroutines read in step with the core,
// and fails reads that a leader change made unanswerable.
func (n *Node) mirror(e raft.Event, reads *readBatches) {
	n.term.Store(e.Term)
	n.role.Store(uint32(e.Role))
	if e.Kind == raft.EventLeaderChanged {
		n.lead.Store(e.Peer)
		reads.failAll(ErrLeadershipLost)
	}
}

// runStorage is the storage goroutine: it makes each Ready durable, in
// order: snapshot, entries, hard state, one fsync (Ready rule 2).
func (n *Node) runStorage() {
	defer n.wg.Done()
	for rd := range n.persistc {
		start := time.Now()
		err := n.persist(rd)
		if n.cfg.Observer != nil && err == nil {
			bytes := 0
			for _, e := range rd.Entries {
				bytes += len(e.Data)
			}
			n.cfg.Observer.ObserveFsync(time.Since(start), len(rd.Entries), bytes)
		}
		n.persisted <- err
	}
}

func (n *Node) persist(rd raft.Ready) error {
	if rd.Snapshot != nil {
		if err := n.store.ApplySnapshot(rd.Snapshot.Meta); err != nil {
			return err
		}
	}
	return n.store.Save(rd.HardState, rd.Entries)
}

// readBatches tracks ReadIndex requests in flight on the core goroutine.
// Every read that arrives while the core is busy joins one request, so a
// burst of reads costs one heartbeat round (thesis §6.4).
type readBatches struct {
	// epoch is random per node start, so that an answer to a read
	// request sent before a restart can never release a read made after
	// it with the same sequence number (its index could be stale).
	epoch   uint64
	seq     uint64
	pending map[uint64]*readBatch
}

type readBatch struct {
	waiters []*readWaiter
	age     int
}

type readWaiter struct {
	lease bool
	done  chan readResult
}

type readResult struct {
	index uint64
	err   error
}

func newReadBatches() *readBatches {
	return &readBatches{epoch: rand.Uint64(), pending: map[uint64]*readBatch{}}
}

// start asks the core for one read index for the waiters of batch whose
// lease flag equals lease.
func (b *readBatches) start(r *raft.Raft, batch []*readWaiter, lease bool) {
	var ws []*readWaiter
	for _, w := range batch {
		if w.lease == lease {
			ws = append(ws, w)
		}
	}
	if len(ws) == 0 {
		return
	}
	b.seq++
	ctx := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), b.epoch), b.seq)
	read := r.ReadIndex
	if lease {
		read = r.ReadLease
	}
	if err := read(ctx); err != nil {
		for _, w := range ws {
			w.done <- readResult{err: err}
		}
		return
	}
	b.pending[b.seq] = &readBatch{waiters: ws}
}

func (b *readBatches) confirm(rs raft.ReadState) {
	if len(rs.RequestCtx) != 16 || binary.BigEndian.Uint64(rs.RequestCtx) != b.epoch {
		return
	}
	seq := binary.BigEndian.Uint64(rs.RequestCtx[8:])
	batch := b.pending[seq]
	if batch == nil {
		return
	}
	delete(b.pending, seq)
	for _, w := range batch.waiters {
		w.done <- readResult{index: rs.Index}
	}
}

// expire fails batches that waited longer than maxTicks: their request or
// answer was lost.
func (b *readBatches) expire(maxTicks int) {
	for seq, batch := range b.pending {
		if batch.age++; batch.age > maxTicks {
			delete(b.pending, seq)
			for _, w := range batch.waiters {
				w.done <- readResult{err: ErrReadLost}
			}
		}
	}
}

func (b *readBatches) failAll(err error) {
	for seq, batch := range b.pending {
		delete(b.pending, seq)
		for _, w := range batch.waiters {
			w.done <- readResult{err: err}
		}
	}
}
