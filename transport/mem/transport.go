package mem

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
	"github.com/raftex/raftex/transport/internal/stats"
)

// QueueSize is how many messages may wait on each link; more are dropped.
const QueueSize = 4096

// Transport is one node's transport.Transport on a Network.
//
// Threading: every method is safe for concurrent use. Lock order is
// Transport.mu, then Network.mu; neither is held while calling a Handler.
// h and src never change after Start.
type Transport struct {
	net    *Network
	id     uint64
	stats  stats.Counters
	ctx    context.Context // canceled by Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // this transport's goroutines
	calls  sync.WaitGroup // calls into h in progress, from any transport's goroutines

	mu      sync.Mutex
	stopped atomic.Bool // set under mu; read without it by Network.Transport
	started bool
	h       transport.Handler
	src     transport.SnapshotSource
	links   map[uint64]*link // outbound, by destination
	removed map[uint64]bool  // peers removed by RemovePeer
}

var _ transport.Transport = (*Transport)(nil)

func newTransport(n *Network, id uint64) *Transport {
	ctx, cancel := context.WithCancel(context.Background())
	return &Transport{net: n, id: id, ctx: ctx, cancel: cancel, links: map[uint64]*link{}, removed: map[uint64]bool{}}
}

// Start begins delivering: h receives inbound traffic and src supplies
// the bodies of the snapshots this node sends.
func (t *Transport) Start(h transport.Handler, src transport.SnapshotSource) error {
	if h == nil {
		return errors.New("mem: Start needs a Handler")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.stopped.Load():
		return transport.ErrStopped
	case t.started:
		return transport.ErrStarted
	}
	t.started, t.h, t.src = true, h, src
	for _, l := range t.links {
		t.wg.Go(func() { t.runLink(l) })
	}
	return nil
}

// Send draws each message's faults and queues it on its link. It never
// blocks; lost messages and full queues are counted as dropped, and a lost
// MsgSnap is reported failed.
func (t *Transport) Send(msgs []raft.Message) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range msgs {
		if t.stopped.Load() || t.removed[m.To] || (m.Type == raft.MsgSnap && m.Snapshot == nil) {
			t.stats.Dropped(1)
			continue
		}
		payload := transport.AppendMessage(nil, m)
		times := t.net.plan(t.id, m.To, now)
		if len(times) == 0 {
			t.lost(m)
			continue
		}
		l := t.link(m.To)
		for i, at := range times {
			if i > 0 {
				payload = bytes.Clone(payload) // each delivery owns its bytes
			}
			select {
			case l.queue <- envelope{payload: payload, at: at}:
				t.stats.Sent(m.Type, len(payload))
			default:
				t.lost(m)
			}
		}
	}
}

// lost counts m as dropped and, for a MsgSnap, reports it failed from a
// goroutine (Send's caller may be the one that handles reports). Called
// with mu held.
func (t *Transport) lost(m raft.Message) {
	t.stats.Dropped(1)
	if m.Type == raft.MsgSnap && t.started {
		t.wg.Go(func() { t.h.ReportSnapshot(m.To, false) })
	}
}

// link returns the link to id, creating it (and its goroutine, once
// started). Called with mu held.
func (t *Transport) link(id uint64) *link {
	l := t.links[id]
	if l == nil {
		ctx, cancel := context.WithCancel(t.ctx)
		l = &link{to: id, queue: make(chan envelope, QueueSize), ctx: ctx, cancel: cancel}
		t.links[id] = l
		if t.started {
			t.wg.Go(func() { t.runLink(l) })
		}
	}
	return l
}

// AddPeer undoes RemovePeer(id); addr is ignored (every node of the
// network is reachable).
func (t *Transport) AddPeer(id uint64, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.removed, id)
}

// RemovePeer drops what is queued for id and refuses traffic to and from
// it until AddPeer(id, ...).
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removed[id] = true
	if l := t.links[id]; l != nil {
		l.cancel()
		delete(t.links, id)
	}
}

// Stats returns a copy of the traffic counters.
func (t *Transport) Stats() transport.Stats { return t.stats.Stats() }

// Stop ends every goroutine of this transport and waits for every call
// into its Handler to return. Later calls do nothing.
func (t *Transport) Stop() error {
	t.mu.Lock()
	if t.stopped.Load() {
		t.mu.Unlock()
		return nil
	}
	t.stopped.Store(true)
	t.mu.Unlock()
	t.cancel()
	t.wg.Wait()
	t.calls.Wait()
	return nil
}

// enter admits a call into this transport's Handler for a message from
// from: it returns the Handler, or false if the node is down (not
// started, stopped) or refuses from. The caller calls t.calls.Done after
// the call.
func (t *Transport) enter(from uint64) (transport.Handler, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.started || t.stopped.Load() || t.removed[from] {
		return nil, false
	}
	t.calls.Add(1)
	return t.h, true
}
