package tcp

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
)

// readBufSize is the read buffer of an inbound connection.
const readBufSize = 64 << 10

// maxHelloFrame bounds the hello's payload: it is read before the dialer
// is admitted, so a stranger must not make the acceptor allocate a whole
// MaxFrameSize per connection.
const maxHelloFrame = 1 + 3*binary.MaxVarintLen64 + transport.MaxClusterIDLen

// acceptLoop is the accept goroutine: it owns the listener's Accept and
// starts a reader goroutine per connection. It returns when Stop closes
// the listener.
func (t *Transport) acceptLoop() {
	for {
		conn, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: pause, then go on.
			t.log.Warn("transport/tcp: accept", "err", err)
			select {
			case <-t.ctx.Done():
				return
			case <-time.After(t.cfg.BackoffMin):
			}
			continue
		}
		if t.cfg.TLS != nil {
			conn = tls.Server(conn, t.cfg.TLS.Server)
		}
		if t.track(conn, connTag{}) {
			t.wg.Go(func() { t.serve(conn) })
		}
	}
}

// serve is an inbound connection's reader goroutine: it owns the
// connection, answers the hello, then reads the stream to its end. It
// returns when the peer closes the connection, on the first bad frame, or
// when Stop or RemovePeer closes the connection.
func (t *Transport) serve(conn net.Conn) {
	defer t.untrack(conn)
	remote := conn.RemoteAddr().String()
	br := bufio.NewReaderSize(conn, readBufSize)
	hello, err := t.answerHello(conn, transport.NewFrameReader(br, maxHelloFrame))
	if err != nil {
		if errors.Is(err, ErrRefused) {
			t.log.Error("transport/tcp: refused a connection", "remote", remote, "err", err)
		} else {
			t.logConnErr("transport/tcp: handshake failed", err, "remote", remote)
		}
		return
	}
	fr := transport.NewFrameReader(br, uint32(t.cfg.MaxFrameSize))
	switch hello.Stream {
	case transport.StreamMessages:
		err = t.readMessages(fr, hello.From)
	case transport.StreamSnapshot:
		err = t.receiveSnapshot(conn, fr, hello.From)
	}
	if err != nil && err != io.EOF {
		t.logConnErr("transport/tcp: closed a peer connection", err, "peer", hello.From, "remote", remote, "stream", hello.Stream)
	}
}

// answerHello reads the hello and accepts or refuses it.
func (t *Transport) answerHello(conn net.Conn, fr *transport.FrameReader) (transport.Hello, error) {
	if err := conn.SetDeadline(time.Now().Add(t.cfg.DialTimeout)); err != nil {
		return transport.Hello{}, err
	}
	if tc, ok := conn.(*tls.Conn); ok {
		// Before any frame: plaintext, or a certificate another CA
		// signed, ends here.
		if err := tc.Handshake(); err != nil {
			return transport.Hello{}, fmt.Errorf("%w: TLS handshake: %w", ErrRefused, err)
		}
	}
	kind, payload, err := fr.Next(nil)
	if err != nil {
		return transport.Hello{}, fmt.Errorf("read hello: %w", err)
	}
	if kind != transport.KindHello {
		return transport.Hello{}, fmt.Errorf("%w: %s frame before hello", ErrProtocol, kind)
	}
	hello, err := transport.DecodeHello(payload)
	if err != nil {
		return transport.Hello{}, err
	}
	if reason := t.admit(conn, hello); reason != "" {
		// Best effort: the dialer logs the reason; we log it either way.
		_, _ = conn.Write(transport.AppendFrame(nil, transport.KindRefuse, []byte(reason)))
		return transport.Hello{}, fmt.Errorf("%w: %s", ErrRefused, reason)
	}
	if _, err := conn.Write(transport.AppendFrame(nil, transport.KindAccept, nil)); err != nil {
		return transport.Hello{}, fmt.Errorf("send accept: %w", err)
	}
	return hello, conn.SetDeadline(time.Time{})
}

// admit checks a hello and, if it is acceptable, tags conn as the peer's.
// It returns the reason for refusing, or "". The reason goes to the
// dialer, who may be anyone: it never names this node's cluster id, which
// would let a stranger forge a hello.
func (t *Transport) admit(conn net.Conn, h transport.Hello) string {
	if tc, ok := conn.(*tls.Conn); ok {
		// The handshake verified the chain and that there is one.
		if err := t.cfg.TLS.VerifyPeer(h.From, tc.ConnectionState().PeerCertificates[0]); err != nil {
			return fmt.Sprintf("node %d's certificate: %v", h.From, err)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case h.ClusterID != t.cfg.ClusterID:
		return fmt.Sprintf("node %d is in cluster %q, which is not this node's (%d)", h.From, h.ClusterID, t.cfg.ID)
	case h.To != t.cfg.ID:
		return fmt.Sprintf("node %d dialed node %d, this is node %d", h.From, h.To, t.cfg.ID)
	case h.From == t.cfg.ID:
		return fmt.Sprintf("node %d is this node", h.From)
	case t.peers[h.From] == nil:
		return fmt.Sprintf("node %d is not a peer of node %d", h.From, t.cfg.ID)
	}
	if _, ok := t.conns[conn]; ok {
		t.conns[conn] = connTag{peer: h.From}
	}
	return ""
}

// readMessages delivers the messages of a message stream from peer from
// until the stream ends (io.EOF) or breaks.
func (t *Transport) readMessages(fr *transport.FrameReader, from uint64) error {
	for {
		kind, payload, err := fr.Next(nil) // nil: the message keeps sub-slices of payload
		if err != nil {
			return err
		}
		if kind != transport.KindMessage {
			return fmt.Errorf("%w: %s frame on a message stream", ErrProtocol, kind)
		}
		m, err := transport.DecodeMessage(payload)
		if err != nil {
			return err
		}
		if err := t.checkInbound(m, from); err != nil {
			return err
		}
		if m.Type == raft.MsgSnap {
			return fmt.Errorf("%w: %s without its body on a message stream", ErrProtocol, m.Type)
		}
		t.stats.Received(m.Type, transport.FrameHeaderSize+len(payload))
		t.h.Deliver(m)
	}
}

// checkInbound checks that m comes from the node that said hello and is
// meant for this one.
func (t *Transport) checkInbound(m raft.Message, from uint64) error {
	if m.From != from || m.To != t.cfg.ID {
		return fmt.Errorf("%w: message %d→%d on the stream from %d to %d", ErrProtocol, m.From, m.To, from, t.cfg.ID)
	}
	return nil
}
