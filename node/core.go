package node

import (
	"sync"
	"time"

	"github.com/raftex/raftex/raft"
)

// drainLimit bounds how many queued inputs of one kind the core goroutine
// takes before it processes the core's output again.
const drainLimit = 1024

// runCore is the core goroutine: the only code that touches the Machine
// (and through it the core). It feeds ticks, messages, proposals, reads
// and write completions in, in batches, and lets the Machine push the
// core's output through the Ready contract after each batch.
func (n *Node) runCore() {
	defer n.wg.Done()
	defer close(n.coreDone)
	defer close(n.persistc)
	m := n.machine
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	for {
		m.Process()
		select {
		case <-ticker.C:
			m.Tick()
		case msg := <-n.inbox:
			n.step(msg)
			for i := 0; i < drainLimit && len(n.inbox) > 0; i++ {
				n.step(<-n.inbox)
			}
		case p := <-n.propc:
			m.Propose(p)
			for i := 0; i < drainLimit && len(n.propc) > 0; i++ {
				m.Propose(<-n.propc)
			}
		case q := <-n.readc:
			batch := []*ReadRequest{q}
			for i := 0; i < drainLimit && len(n.readc) > 0; i++ {
				batch = append(batch, <-n.readc)
			}
			m.Read(batch)
		case f := <-n.ctrlc:
			f(m)
		case <-n.appliedc:
			m.AppliedTo(n.waits.applied())
		case err := <-n.persisted:
			if err := m.WriteDone(err); err != nil {
				n.fail(err)
				m.Fail(n.stoppedErr())
				return
			}
		case <-n.failc:
			m.Fail(n.stoppedErr())
			return
		case <-n.stopc:
			n.stopCore()
			return
		}
	}
}

// stopCore leaves the disk consistent: it lets the write in flight end,
// then writes the lazy hard state, if any.
func (n *Node) stopCore() {
	m := n.machine
	if m.Writing() {
		if err := <-n.persisted; err != nil {
			n.fail(err)
		}
	}
	if hs, ok := m.Lazy(); ok {
		n.persistc <- raft.Ready{HardState: hs}
		if err := <-n.persisted; err != nil {
			n.fail(err)
		}
	}
	m.Fail(ErrStopped)
}

func (n *Node) step(msg raft.Message) {
	if err := n.machine.Step(msg); err != nil {
		n.log.Warn("dropping invalid message", "from", msg.From, "type", msg.Type, "err", err)
	}
}

// coreEnv is the Machine's world in package node: a storage goroutine, the
// transport, the apply goroutine and the event broker.
type coreEnv struct{ n *Node }

var _ Env = coreEnv{}

// Write hands rd to the storage goroutine; with one write in flight at a
// time, its channel never blocks.
func (e coreEnv) Write(rd raft.Ready)      { e.n.persistc <- rd }
func (e coreEnv) Send(msgs []raft.Message) { e.n.trans.Send(msgs) }
func (e coreEnv) Apply(t ApplyTask)        { e.n.queue.push(t) }
func (e coreEnv) Ready(*raft.Ready)        {}
func (e coreEnv) Event(ev raft.Event)      { e.n.mirror(ev); e.n.publish(ev) }

// ConfChanged mirrors the configuration and keeps the transport's peers
// in step with it (thesis §4.1): a member whose context holds a peer
// address is reachable there at once; a removed member is forgotten once
// its removal is committed.
func (e coreEnv) ConfChanged(m raft.Membership, committed bool) {
	n := e.n
	prev := n.conf.set(m)
	for _, id := range m.Members() {
		n.seen[id] = true
		if addr := string(m.Context(id)); id != n.cfg.ID && addr != "" && n.peers[id] != addr {
			n.trans.AddPeer(id, addr)
			n.peers[id] = addr
		}
	}
	if committed {
		for _, id := range sortedKeys(n.seen) {
			if id != n.cfg.ID && !m.Contains(id) {
				n.trans.RemovePeer(id)
				delete(n.peers, id)
				delete(n.seen, id)
			}
		}
	}
	if prev.Contains(n.cfg.ID) && !m.Contains(n.cfg.ID) {
		n.log.Warn("this node was removed from the cluster's configuration: it stays out unless it is added again (the members refuse its messages; until it learns the removal committed it may ask them for pre-votes, which cannot disrupt them)", "membership", m.String())
	}
}

// mirror keeps the atomics other goroutines read in step with the core.
func (n *Node) mirror(ev raft.Event) {
	n.term.Store(ev.Term)
	n.role.Store(uint32(ev.Role))
	if ev.Kind == raft.EventLeaderChanged {
		n.lead.Store(ev.Peer)
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

// applyQueue hands apply tasks from the core goroutine to the apply
// goroutine without ever blocking the core: the core bounds what it hands
// out (raft.Config.MaxApplyingBytes), so the queue stays bounded too.
type applyQueue struct {
	mu    sync.Mutex
	tasks []ApplyTask
	wake  chan struct{}
}

func newApplyQueue() *applyQueue { return &applyQueue{wake: make(chan struct{}, 1)} }

func (q *applyQueue) push(t ApplyTask) {
	q.mu.Lock()
	q.tasks = append(q.tasks, t)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// discard drops the queued tasks unapplied.
func (q *applyQueue) discard() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, t := range q.tasks {
		t.Discard()
	}
	q.tasks = nil
}

// take returns the queued tasks and gives spare, emptied, as the next
// buffer: the two swap.
func (q *applyQueue) take(spare []ApplyTask) []ApplyTask {
	q.mu.Lock()
	defer q.mu.Unlock()
	tasks := q.tasks
	q.tasks = spare[:0]
	return tasks
}

// runApply is the apply goroutine: it runs the Applier over the queued
// tasks, tells the core goroutine how far it got, and writes a snapshot
// on a goroutine of its own when one is due (one at a time).
func (n *Node) runApply() {
	defer n.wg.Done()
	var snapshotting chan struct{} // non-nil while a snapshot is written
	defer func() {
		if snapshotting != nil {
			<-snapshotting
		}
	}()
	defer n.queue.discard()
	var spare []ApplyTask
	for {
		select {
		case <-n.queue.wake:
		case <-n.coreDone:
			// Committed entries not applied yet are durable; a restart
			// replays them.
			return
		}
		tasks := n.queue.take(spare)
		for i, t := range tasks {
			if err := n.applier.Apply(t); err != nil {
				for _, rest := range tasks[i+1:] {
					rest.Discard()
				}
				n.fail(err)
				return
			}
		}
		clear(tasks) // let applied entries go
		spare = tasks
		n.wakeCoreApplied()
		if snapshotting != nil {
			select {
			case <-snapshotting:
				snapshotting = nil
			default:
				continue
			}
		}
		if meta, view, ok := n.applier.SnapshotDue(); ok {
			done := make(chan struct{})
			snapshotting = done
			go func() {
				defer close(done)
				if err := n.applier.WriteSnapshot(meta, view); err != nil {
					n.log.Error("snapshot failed", "index", meta.Index, "err", err)
				}
			}()
		}
	}
}

// wakeCoreApplied tells the core goroutine the FSM applied more, without
// ever blocking: one pending wake-up covers any number of applies.
func (n *Node) wakeCoreApplied() {
	select {
	case n.appliedc <- struct{}{}:
	default:
	}
}
