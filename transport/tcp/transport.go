package tcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
	"github.com/raftex/raftex/transport/internal/stats"
)

// Errors of the TCP transport, wrapped with the details.
var (
	// ErrRefused is returned (and logged) when a handshake fails: another
	// cluster, an unknown or own node id, a hello meant for another node,
	// and under TLS a failed TLS handshake or a certificate that does not
	// name the node claimed.
	ErrRefused = errors.New("transport/tcp: connection refused")
	// ErrProtocol is logged when a peer sends a frame that is valid on its
	// own but not where it came: a frame of the wrong kind, a message
	// claiming another sender, a snapshot body of the wrong length.
	ErrProtocol = errors.New("transport/tcp: protocol violation")
	// ErrSnapshotNotStored is returned when the receiver of a snapshot
	// reports that its Handler failed to store the body.
	ErrSnapshotNotStored = errors.New("transport/tcp: peer did not store the snapshot")
)

// Transport is a transport.Transport over TCP; see the package doc.
//
// Threading: every method is safe for concurrent use and none blocks on
// the network (Stop waits for the transport's goroutines). mu guards the
// fields below it and is never held while calling the Handler or doing
// I/O; cfg, log, ln, ctx and, once Start has run, h and src never change.
type Transport struct {
	cfg    Config
	log    *slog.Logger
	ln     net.Listener
	dial   dialFunc
	stats  stats.Counters
	ctx    context.Context // canceled by Stop; every peer's context derives from it
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the transport starts

	mu      sync.Mutex
	started bool
	stopped bool
	h       transport.Handler
	src     transport.SnapshotSource
	peers   map[uint64]*peer
	conns   map[net.Conn]connTag // every open connection, so Stop and RemovePeer can close it
}

// dialFunc opens a connection to addr; net.Dialer's DialContext in
// production, an in-memory network in the synctest tests.
type dialFunc func(ctx context.Context, addr string) (net.Conn, error)

// connTag says whose a connection is.
type connTag struct {
	peer uint64 // the remote node; 0 until an inbound handshake names it
	out  *peer  // the peer whose sender or snapshot dialed it; nil for inbound
}

var _ transport.Transport = (*Transport)(nil)

// New validates cfg, binds its listen address and returns a Transport that
// moves nothing until Start.
func New(cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("transport/tcp: listen: %w", err)
	}
	d := net.Dialer{Timeout: cfg.DialTimeout}
	return newTransport(cfg, ln, func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}), nil
}

// newTransport builds a Transport from a valid cfg with defaults applied,
// accepting from ln and dialing with dial.
func newTransport(cfg Config, ln net.Listener, dial dialFunc) *Transport {
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		cfg: cfg, log: cfg.Logger.With("node", "n"+strconv.FormatUint(cfg.ID, 10)), ln: ln, dial: dial, ctx: ctx, cancel: cancel,
		peers: make(map[uint64]*peer, len(cfg.Peers)), conns: make(map[net.Conn]connTag),
	}
	for id, addr := range cfg.Peers {
		t.peers[id] = t.newPeer(id, addr)
	}
	return t
}

// Addr returns the address the transport listens on (with the port picked
// when ListenAddr asked for port 0).
func (t *Transport) Addr() string { return t.ln.Addr().String() }

// Start begins accepting peers and sending to them.
func (t *Transport) Start(h transport.Handler, src transport.SnapshotSource) error {
	if h == nil {
		return errors.New("transport/tcp: Start needs a Handler")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.stopped:
		return transport.ErrStopped
	case t.started:
		return transport.ErrStarted
	}
	t.started, t.h, t.src = true, h, src
	for _, p := range t.peers {
		t.wg.Go(func() { t.runSender(p) })
	}
	t.wg.Go(t.acceptLoop)
	return nil
}

// Send queues each message for its peer, or starts streaming a MsgSnap. It
// never blocks: a message for an unknown peer or a full queue is dropped.
func (t *Transport) Send(msgs []raft.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range msgs {
		p := t.peers[m.To]
		switch {
		case t.stopped || p == nil:
			t.stats.Dropped(1)
		case m.Type == raft.MsgSnap:
			t.startSnapshot(p, m)
		default:
			select {
			case p.queue <- m:
			default:
				t.stats.Dropped(1)
			}
		}
	}
}

// AddPeer makes peer id reachable at addr. A peer already known at another
// address is replaced: its queue is dropped and its outbound connections
// closed. Invalid arguments are logged and ignored.
func (t *Transport) AddPeer(id uint64, addr string) {
	if err := t.cfg.validatePeer(id, addr); err != nil {
		t.log.Warn("transport/tcp: AddPeer ignored", "err", err)
		return
	}
	t.mu.Lock()
	old := t.peers[id]
	if t.stopped || (old != nil && old.addr == addr) {
		t.mu.Unlock()
		return
	}
	p := t.newPeer(id, addr)
	t.peers[id] = p
	if t.started {
		t.wg.Go(func() { t.runSender(p) })
	}
	var closing []net.Conn
	if old != nil {
		closing = t.forgetPeer(old, func(tag connTag) bool { return tag.out == old })
	}
	t.mu.Unlock()
	closeAll(closing)
}

// RemovePeer forgets peer id and closes every connection to or from it;
// it may no longer connect.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	if p == nil {
		t.mu.Unlock()
		return
	}
	delete(t.peers, id)
	closing := t.forgetPeer(p, func(tag connTag) bool { return tag.peer == id })
	t.mu.Unlock()
	closeAll(closing)
}

// forgetPeer stops p's goroutines and returns the connections matching
// close, untracked, for the caller to close once it has released mu.
func (t *Transport) forgetPeer(p *peer, close func(connTag) bool) []net.Conn {
	p.cancel()
	var out []net.Conn
	for c, tag := range t.conns {
		if close(tag) {
			delete(t.conns, c)
			out = append(out, c)
		}
	}
	return out
}

// Stats returns a copy of the traffic counters.
func (t *Transport) Stats() transport.Stats { return t.stats.Stats() }

// Stop closes the listener and every connection, and returns once every
// goroutine of the transport has ended. Later calls do nothing.
func (t *Transport) Stop() error {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return nil
	}
	t.stopped = true
	closing := make([]net.Conn, 0, len(t.conns))
	for c := range t.conns {
		closing = append(closing, c)
	}
	clear(t.conns)
	t.mu.Unlock()

	t.cancel()
	err := t.ln.Close()
	closeAll(closing)
	t.wg.Wait()
	if err != nil {
		return fmt.Errorf("transport/tcp: close listener: %w", err)
	}
	return nil
}

// track registers an open connection so Stop and RemovePeer can close it.
// It closes c and returns false when the transport is stopped or c's
// dialing peer has been removed.
func (t *Transport) track(c net.Conn, tag connTag) bool {
	t.mu.Lock()
	ok := !t.stopped && (tag.out == nil || tag.out.ctx.Err() == nil)
	if ok {
		t.conns[c] = tag
	}
	t.mu.Unlock()
	if !ok {
		c.Close()
	}
	return ok
}

// untrack closes c and forgets it.
func (t *Transport) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	c.Close()
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// write writes b to c within the write timeout.
func (t *Transport) write(c net.Conn, b []byte) error {
	if err := c.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout)); err != nil {
		return err
	}
	_, err := c.Write(b)
	return err
}

// logConnErr logs why a connection ended: at debug when it was closed on
// purpose (Stop, RemovePeer, a clean close by the peer), else at warn.
func (t *Transport) logConnErr(msg string, err error, attrs ...any) {
	attrs = append(attrs, "err", err)
	if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		t.log.Debug(msg, attrs...)
		return
	}
	t.log.Warn(msg, attrs...)
}
