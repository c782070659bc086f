package node

import (
	"cmp"
	"container/heap"
	"encoding/binary"
	"slices"
	"sync"

	"github.com/raftex/raftex/raft"
)

// This file holds the request registry: the proposals and reads in flight
// and the functions that receive their outcomes. The runtime's goroutines
// and the simulator use it alike (through Machine and applier): a
// proposal is resolved once, by whoever learns its outcome first, and
// everything is walked in index or sequence order so that a simulation
// stays deterministic.

// Proposal is a command on its way into the log and the function that
// receives its outcome: the state machine's result once the command is
// applied on this node, or an error (see Node.Propose for which). Done is
// called exactly once, on the driver's or the applier's goroutine; it
// must not block.
type Proposal struct {
	Data []byte
	Done func(result any, err error)
}

// ReadRequest is a linearizable read waiting to be safe (thesis §6.4):
// Done(nil) is called once this node has applied everything committed
// before the read began, Done(err) if it cannot be served. Lease asks for
// the leader's lease instead of a heartbeat round when it holds (§6.4.1).
type ReadRequest struct {
	Lease bool
	Done  func(err error)
}

// registry maps log indexes to the proposals waiting for them. The driver
// adds and fails them; the applier resolves them as it applies.
type registry struct {
	mu sync.Mutex
	m  map[uint64][]pendingProposal
	// through is the last index resolved: a proposal learned to be at or
	// below it was applied (or not) before anyone waited for it.
	through uint64
}

type pendingProposal struct {
	term uint64
	p    *Proposal
}

func newRegistry(applied uint64) *registry {
	return &registry{m: map[uint64][]pendingProposal{}, through: applied}
}

// add waits for the entry proposed at index in term. A proposal whose
// index was already applied gets ErrForwardLost: its answer came after
// its entry, and its result is gone.
func (g *registry) add(index, term uint64, p *Proposal) {
	g.mu.Lock()
	if index <= g.through {
		g.mu.Unlock()
		p.Done(nil, ErrForwardLost)
		return
	}
	g.m[index] = append(g.m[index], pendingProposal{term: term, p: p})
	g.mu.Unlock()
}

// resolve completes the proposals at index as the entry of term applied
// there with result: the one of that term is that entry; any other was
// overwritten by another leader's entry and is certainly not applied
// (§5.3: an entry never moves to another index).
func (g *registry) resolve(index, term uint64, result any) {
	g.mu.Lock()
	ps := g.m[index]
	delete(g.m, index)
	g.through = max(g.through, index)
	g.mu.Unlock()
	for _, pp := range ps {
		if pp.term == term || bugs.ResolveIgnoringTerm {
			pp.p.Done(result, nil)
		} else {
			pp.p.Done(nil, ErrNotCommitted)
		}
	}
}

// skipTo notes that the state machine jumped to index (a snapshot): the
// proposals at or below it have an unknown outcome here.
func (g *registry) skipTo(index uint64) {
	g.failIf(func(i uint64) bool { return i <= index }, ErrLeadershipLost)
	g.mu.Lock()
	g.through = max(g.through, index)
	g.mu.Unlock()
}

func (g *registry) failAfter(index uint64, err error) {
	g.failIf(func(i uint64) bool { return i > index }, err)
}

func (g *registry) failAll(err error) { g.failIf(func(uint64) bool { return true }, err) }

// failIf fails the proposals at the indexes pred selects, in index order.
func (g *registry) failIf(pred func(index uint64) bool, err error) {
	g.mu.Lock()
	var idx []uint64
	for i := range g.m {
		if pred(i) {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	var failed []pendingProposal
	for _, i := range idx {
		failed = append(failed, g.m[i]...)
		delete(g.m, i)
	}
	g.mu.Unlock()
	for _, pp := range failed {
		pp.p.Done(nil, err)
	}
}

// forwards are a follower's proposals sent to the leader (MsgProp) and
// waiting to learn where they were appended. Driver goroutine only.
type forwards struct {
	epoch   uint64
	seq     uint64
	pending map[uint64]*forwardBatch
}

type forwardBatch struct {
	props []*Proposal
	age   int
}

func newForwards(epoch uint64) forwards {
	return forwards{epoch: epoch, pending: map[uint64]*forwardBatch{}}
}

// start registers props and returns the request context to send them
// with. Like a read's, it carries a random epoch per node start, so an
// answer to a request made before a restart never matches one after.
func (f *forwards) start(props []*Proposal) []byte {
	f.seq++
	f.pending[f.seq] = &forwardBatch{props: props}
	return requestCtx(f.epoch, f.seq)
}

// cancel forgets the batch of ctx, which was never sent.
func (f *forwards) cancel(ctx []byte) { delete(f.pending, binary.BigEndian.Uint64(ctx[8:])) }

// resolve takes the leader's answer: each proposal now waits in reg for
// its entry, or fails with the error, which means it was not appended.
func (f *forwards) resolve(res raft.ProposalResult, reg *registry) {
	seq, ok := parseRequestCtx(res.RequestCtx, f.epoch)
	b := f.pending[seq]
	if !ok || b == nil {
		return
	}
	delete(f.pending, seq)
	for i, p := range b.props {
		if res.Err != nil {
			p.Done(nil, res.Err)
		} else {
			reg.add(res.Index+uint64(i), res.Term, p)
		}
	}
}

// expire fails batches whose answer did not come within maxTicks: the
// request or the answer was lost, and the outcome is unknown.
func (f *forwards) expire(maxTicks int) {
	for _, seq := range sortedKeys(f.pending) {
		b := f.pending[seq]
		if b.age++; b.age > maxTicks {
			delete(f.pending, seq)
			for _, p := range b.props {
				p.Done(nil, ErrForwardLost)
			}
		}
	}
}

func (f *forwards) failAll(err error) {
	for _, seq := range sortedKeys(f.pending) {
		for _, p := range f.pending[seq].props {
			p.Done(nil, err)
		}
		delete(f.pending, seq)
	}
}

// readBatches tracks ReadIndex requests in flight on the driver's
// goroutine. Every read that arrives while the core is busy joins one
// request, so a burst of reads costs one heartbeat round (thesis §6.4).
type readBatches struct {
	epoch   uint64
	seq     uint64
	pending map[uint64]*readBatch
}

type readBatch struct {
	reqs []*ReadRequest
	age  int
}

func newReadBatches(epoch uint64) readBatches {
	return readBatches{epoch: epoch, pending: map[uint64]*readBatch{}}
}

// start asks the core for one read index for the requests of batch whose
// Lease equals lease.
func (b *readBatches) start(r *raft.Raft, batch []*ReadRequest, lease bool) {
	var reqs []*ReadRequest
	for _, q := range batch {
		if q.Lease == lease {
			reqs = append(reqs, q)
		}
	}
	if len(reqs) == 0 {
		return
	}
	b.seq++
	ctx := requestCtx(b.epoch, b.seq)
	read := r.ReadIndex
	if lease {
		read = r.ReadLease
	}
	if err := read(ctx); err != nil {
		for _, q := range reqs {
			q.Done(err)
		}
		return
	}
	b.pending[b.seq] = &readBatch{reqs: reqs}
}

// confirm hands the reads of rs to waits: each is done once the state
// machine applied through rs.Index (Ready rule 4).
func (b *readBatches) confirm(rs raft.ReadState, waits *indexWaiters) {
	seq, ok := parseRequestCtx(rs.RequestCtx, b.epoch)
	batch := b.pending[seq]
	if !ok || batch == nil {
		return
	}
	delete(b.pending, seq)
	for _, q := range batch.reqs {
		if bugs.ReadBeforeApplied {
			q.Done(nil)
			continue
		}
		waits.wait(rs.Index, q.Done)
	}
}

// expire fails batches that waited longer than maxTicks: their request or
// answer was lost.
func (b *readBatches) expire(maxTicks int) {
	for _, seq := range sortedKeys(b.pending) {
		batch := b.pending[seq]
		if batch.age++; batch.age > maxTicks {
			delete(b.pending, seq)
			for _, q := range batch.reqs {
				q.Done(ErrReadLost)
			}
		}
	}
}

func (b *readBatches) failAll(err error) {
	for _, seq := range sortedKeys(b.pending) {
		for _, q := range b.pending[seq].reqs {
			q.Done(err)
		}
		delete(b.pending, seq)
	}
}

// requestCtx identifies a request of this node start: a random epoch,
// then a sequence number. An answer to a request sent before a restart
// can never release one made after it with the same sequence number (its
// read index could be stale).
func requestCtx(epoch, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), epoch), seq)
}

func parseRequestCtx(ctx []byte, epoch uint64) (uint64, bool) {
	if len(ctx) != 16 || binary.BigEndian.Uint64(ctx) != epoch {
		return 0, false
	}
	return binary.BigEndian.Uint64(ctx[8:]), true
}

func sortedKeys[V any](m map[uint64]V) []uint64 {
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// indexWaiters lets callers wait until the state machine applied an
// index. A heap keeps them by index, so each apply batch looks only at
// the waiters it releases.
type indexWaiters struct {
	mu    sync.Mutex
	index uint64
	seq   uint64
	heap  waiterHeap
}

type waiter struct {
	index uint64
	seq   uint64 // ties broken by arrival: deterministic order
	done  func(error)
}

type waiterHeap []waiter

func (h waiterHeap) Len() int { return len(h) }
func (h waiterHeap) Less(i, j int) bool {
	return h[i].index < h[j].index || (h[i].index == h[j].index && h[i].seq < h[j].seq)
}
func (h waiterHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *waiterHeap) Push(x any)   { *h = append(*h, x.(waiter)) }
func (h *waiterHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = waiter{}
	*h = old[:len(old)-1]
	return w
}

func newIndexWaiters(applied uint64) *indexWaiters { return &indexWaiters{index: applied} }

// wait calls done(nil) once index is applied (at once if it is).
func (w *indexWaiters) wait(index uint64, done func(error)) {
	w.mu.Lock()
	if index <= w.index {
		w.mu.Unlock()
		done(nil)
		return
	}
	w.seq++
	heap.Push(&w.heap, waiter{index: index, seq: w.seq, done: done})
	w.mu.Unlock()
}

// trigger records that index is applied and releases its waiters, in
// index order, outside the lock.
func (w *indexWaiters) trigger(index uint64) {
	w.mu.Lock()
	if index <= w.index {
		w.mu.Unlock()
		return
	}
	w.index = index
	var ready []func(error)
	for w.heap.Len() > 0 && w.heap[0].index <= index {
		ready = append(ready, heap.Pop(&w.heap).(waiter).done)
	}
	w.mu.Unlock()
	for _, done := range ready {
		done(nil)
	}
}

// failAll releases every waiter with err.
func (w *indexWaiters) failAll(err error) {
	w.mu.Lock()
	hs := w.heap
	w.heap = nil
	w.mu.Unlock()
	slices.SortFunc(hs, func(a, b waiter) int {
		if a.index != b.index {
			return cmp.Compare(a.index, b.index)
		}
		return cmp.Compare(a.seq, b.seq)
	})
	for _, x := range hs {
		x.done(err)
	}
}

func (w *indexWaiters) applied() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.index
}
