package node

import (
	"sync"
	"sync/atomic"

	"github.com/raftex/raftex/raft"
)

// Subscription receives a node's events on C until Close (or the node
// stops, which closes C).
type Subscription struct {
	C       <-chan raft.Event
	c       chan raft.Event
	dropped atomic.Uint64
	b       *broker
}

// Dropped counts events this subscriber missed because C was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and closes C.
func (s *Subscription) Close() { s.b.unsubscribe(s) }

// broker fans events out to subscriptions without ever blocking the
// publisher.
type broker struct {
	mu      sync.Mutex
	size    int
	subs    map[*Subscription]struct{}
	closed  bool
	dropped atomic.Uint64
}

func newBroker(size int) *broker {
	return &broker{size: size, subs: map[*Subscription]struct{}{}}
}

func (b *broker) subscribe() *Subscription {
	c := make(chan raft.Event, b.size)
	s := &Subscription{C: c, c: c, b: b}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(c)
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

func (b *broker) unsubscribe(s *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.c)
	}
}

func (b *broker) publish(e raft.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.c <- e:
		default:
			s.dropped.Add(1)
			b.dropped.Add(1)
		}
	}
}

func (b *broker) droppedTotal() uint64 { return b.dropped.Load() }

func (b *broker) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		delete(b.subs, s)
		close(s.c)
	}
}

// publishRuntime publishes an event of the runtime (the applier's), with
// the node's role and term as the core goroutine last saw them.
func (n *Node) publishRuntime(e raft.Event) {
	e.Term, e.Role = n.term.Load(), n.Role()
	if e.Kind == raft.EventSnapshotInstalled {
		e.Peer = n.lead.Load()
	}
	n.publish(e)
}

func (n *Node) publish(e raft.Event) {
	if n.cfg.Observer != nil {
		n.cfg.Observer.ObserveEvent(e)
	}
	n.events.publish(e)
}
