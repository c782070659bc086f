package tcp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/raftex/raftex/transport"
)

// maxReplyFrame bounds the acceptor's answer to a hello (a refusal reason).
const maxReplyFrame = 4 << 10

// connect dials p for stream and performs the handshake. The connection
// is tracked, so Stop and RemovePeer close it; the caller untracks it.
func (t *Transport) connect(p *peer, stream transport.StreamKind) (net.Conn, error) {
	conn, err := t.dial(p.ctx, p.addr)
	if err != nil {
		return nil, err
	}
	if t.cfg.TLS != nil {
		conn = tls.Client(conn, t.cfg.TLS.Client)
	}
	if !t.track(conn, connTag{peer: p.id, out: p}) {
		return nil, transport.ErrStopped
	}
	if err := t.greet(conn, p, stream); err != nil {
		t.untrack(conn)
		return nil, err
	}
	return conn, nil
}

// greet sends the hello and reads the acceptor's answer.
func (t *Transport) greet(conn net.Conn, p *peer, stream transport.StreamKind) error {
	if err := conn.SetDeadline(time.Now().Add(t.cfg.DialTimeout)); err != nil {
		return err
	}
	if tc, ok := conn.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake with peer %d at %s: %w", p.id, p.addr, err)
		}
		if err := t.cfg.TLS.VerifyPeer(p.id, tc.ConnectionState().PeerCertificates[0]); err != nil {
			return fmt.Errorf("%w: peer %d at %s: %w", ErrRefused, p.id, p.addr, err)
		}
	}
	hello := transport.Hello{Stream: stream, ClusterID: t.cfg.ClusterID, From: t.cfg.ID, To: p.id}
	if _, err := conn.Write(transport.AppendFrame(nil, transport.KindHello, transport.AppendHello(nil, hello))); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	kind, payload, err := transport.NewFrameReader(conn, maxReplyFrame).Next(nil)
	switch {
	case err != nil:
		return fmt.Errorf("read the answer to hello: %w", err)
	case kind == transport.KindRefuse:
		return fmt.Errorf("%w by peer %d at %s: %s", ErrRefused, p.id, p.addr, payload)
	case kind != transport.KindAccept:
		return fmt.Errorf("%w: %s frame in answer to hello", ErrProtocol, kind)
	}
	return conn.SetDeadline(time.Time{})
}

// logDialErr logs a failed dial or write to a peer: a refusal at error (the
// clusters are misconfigured), the first failure after a success at warn,
// repeated failures while the peer stays down at debug.
func (t *Transport) logDialErr(msg string, err error, failures int, attrs ...any) {
	attrs = append(attrs, "err", err)
	switch {
	case errors.Is(err, ErrRefused):
		t.log.Error(msg, attrs...)
	case failures <= 1:
		t.log.Warn(msg, attrs...)
	default:
		t.log.Debug(msg, attrs...)
	}
}
