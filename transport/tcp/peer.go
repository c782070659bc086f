package tcp

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
)

// Sender batching limits.
const (
	// batchBytes ends a batch: the sender stops draining its queue once
	// this much is encoded, and writes.
	batchBytes = 1 << 20
	// keepBuf is the largest batch buffer a sender keeps between batches
	// (one huge message must not pin its size forever).
	keepBuf = 4 * batchBytes
)

// peer is a remote node and the queue of messages waiting for it.
type peer struct {
	id       uint64
	addr     string
	queue    chan raft.Message
	ctx      context.Context // canceled when the peer is removed or replaced, and by Stop
	cancel   context.CancelFunc
	snapping atomic.Bool // a snapshot stream to this peer is in flight
}

func (t *Transport) newPeer(id uint64, addr string) *peer {
	ctx, cancel := context.WithCancel(t.ctx)
	return &peer{id: id, addr: addr, queue: make(chan raft.Message, t.cfg.QueueSize), ctx: ctx, cancel: cancel}
}

// sender is the state of one peer's sender goroutine, which alone owns it:
// the outbound message connection, the dial backoff and the batch buffer.
type sender struct {
	t        *Transport
	p        *peer
	conn     net.Conn // nil while disconnected
	failures int      // failed dials since the last success
	buf      []byte   // the batch: encoded frames
	batch    []sent   // what buf holds
}

type sent struct {
	typ   raft.MessageType
	bytes int
}

// runSender is a peer's sender goroutine: it takes a message from the
// queue, drains whatever else is queued into one buffer and writes it with
// one call, dialing first if needed. It returns when the peer's context is
// canceled (RemovePeer, AddPeer replacing it, Stop).
func (t *Transport) runSender(p *peer) {
	s := &sender{t: t, p: p}
	defer s.disconnect()
	for {
		select {
		case <-p.ctx.Done():
			return
		case m := <-p.queue:
			s.send(m)
		}
	}
}

func (s *sender) send(first raft.Message) {
	if s.conn == nil {
		if err := s.connect(); err != nil {
			s.t.stats.Dropped(1)
			s.fail("transport/tcp: cannot reach peer", err)
			return
		}
	}
	s.add(first)
drain:
	for len(s.buf) < batchBytes {
		select {
		case m := <-s.p.queue:
			s.add(m)
		default:
			break drain
		}
	}
	s.flush()
}

// add encodes m into the batch, or drops it if it exceeds the frame limit.
func (s *sender) add(m raft.Message) {
	start := len(s.buf)
	s.buf = transport.AppendMessageFrame(s.buf, m)
	if n := len(s.buf) - start - transport.FrameHeaderSize; n > s.t.cfg.MaxFrameSize {
		s.buf = s.buf[:start]
		s.t.stats.Dropped(1)
		s.t.log.Warn("transport/tcp: message exceeds the maximum frame size, dropped",
			"peer", s.p.id, "msg", m.String(), "bytes", n, "max", s.t.cfg.MaxFrameSize)
		return
	}
	s.batch = append(s.batch, sent{m.Type, len(s.buf) - start})
}

// flush writes the batch with one write and empties it.
func (s *sender) flush() {
	if len(s.batch) > 0 {
		if err := s.t.write(s.conn, s.buf); err != nil {
			s.t.stats.Dropped(len(s.batch))
			s.disconnect()
			s.fail("transport/tcp: write to peer", err)
		} else {
			for _, b := range s.batch {
				s.t.stats.Sent(b.typ, b.bytes)
			}
		}
	}
	s.buf, s.batch = s.buf[:0], s.batch[:0]
	if cap(s.buf) > keepBuf {
		s.buf = nil
	}
}

// connect dials the peer, after a backoff pause if the last dials failed.
func (s *sender) connect() error {
	if s.failures > 0 {
		pause := time.NewTimer(backoff(s.failures, s.t.cfg.BackoffMin, s.t.cfg.BackoffMax, jitter))
		defer pause.Stop()
		select {
		case <-s.p.ctx.Done():
			return s.p.ctx.Err()
		case <-pause.C:
		}
	}
	conn, err := s.t.connect(s.p, transport.StreamMessages)
	if err != nil {
		s.failures++
		return err
	}
	s.failures = 0
	s.conn = conn
	return nil
}

// fail logs a failed dial or write and reports the peer unreachable,
// unless the failure is the peer's own shutdown.
func (s *sender) fail(msg string, err error) {
	if s.p.ctx.Err() != nil {
		return
	}
	s.t.logDialErr(msg, err, s.failures, "peer", s.p.id, "addr", s.p.addr)
	s.t.h.ReportUnreachable(s.p.id)
}

func (s *sender) disconnect() {
	if s.conn != nil {
		s.t.untrack(s.conn)
		s.conn = nil
	}
}
