package tcp_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"path/filepath"
	"testing"

	"github.com/raftex/raftex/internal/tlsutil"
	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
	"github.com/raftex/raftex/transport/tcp"
)

// certDirs writes two certificate directories: a CA with n1, n2, n3, and
// a foreign CA with its own n1 and n3.
func certDirs(t *testing.T) (trusted, foreign string) {
	t.Helper()
	trusted, foreign = t.TempDir(), t.TempDir()
	if _, err := tlsutil.Generate(tlsutil.Request{Dir: trusted, Nodes: []string{"n1", "n2", "n3"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := tlsutil.Generate(tlsutil.Request{Dir: foreign, Nodes: []string{"n1", "n3"}}); err != nil {
		t.Fatal(err)
	}
	return trusted, foreign
}

func reloader(t *testing.T, dir, name string) *tlsutil.Reloader {
	t.Helper()
	r, err := tlsutil.NewReloader(tlsutil.Files{
		Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key"), CA: filepath.Join(dir, tlsutil.CACert)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// peerTLS is the transport's TLS with the certificate name of dir.
func peerTLS(t *testing.T, dir, name string) *tcp.TLS {
	r := reloader(t, dir, name)
	return &tcp.TLS{
		Server: r.ServerConfig(tls.RequireAndVerifyClientCert),
		Client: r.PeerClientConfig(),
		VerifyPeer: func(id uint64, cert *x509.Certificate) error {
			return tlsutil.CheckNode(cert, fmt.Sprintf("n%d", id), "")
		},
	}
}

func tlsConfig(id uint64, cluster string, tl *tcp.TLS) tcp.Config {
	cfg := config(id, cluster)
	cfg.TLS = tl
	return cfg
}

// tlsConn dials addr over TLS with the certificate name of dir, as a
// hand-written peer would.
func tlsConn(t *testing.T, addr, dir, name string) net.Conn {
	t.Helper()
	c := tls.Client(rawConn(t, addr), reloader(t, dir, name).PeerClientConfig())
	t.Cleanup(func() { c.Close() })
	return c
}

// answer sends hello on c and reads the answer; a TLS failure is an error.
func answer(c net.Conn, h transport.Hello) (transport.FrameKind, string, error) {
	if _, err := c.Write(helloFrame(h)); err != nil {
		return 0, "", err
	}
	kind, payload, err := transport.NewFrameReader(c, 1<<12).Next(nil)
	return kind, string(payload), err
}

// TestTLSExchange: two transports with certificates of one CA exchange
// messages both ways.
func TestTLSExchange(t *testing.T) {
	leakCheck(t)
	dir, _ := certDirs(t)
	a, b := newNode(t, tlsConfig(1, "c", peerTLS(t, dir, "n1"))), newNode(t, tlsConfig(2, "c", peerTLS(t, dir, "n2")))
	a.tr.AddPeer(2, b.tr.Addr())
	b.tr.AddPeer(1, a.tr.Addr())
	a.start(t, nil)
	b.start(t, nil)
	a.tr.Send([]raft.Message{heartbeat(1, 2, 1)})
	b.tr.Send([]raft.Message{heartbeat(2, 1, 1)})
	b.h.Wait(t, "n1's heartbeat", func() bool { return countFrom(b.h, 1) == 1 })
	a.h.Wait(t, "n2's heartbeat", func() bool { return countFrom(a.h, 2) == 1 })
}

// TestTLSRefusesForgedPeers: under TLS, the attacks of issue 11 that
// worked over plain TCP deliver nothing: a plaintext peer (the hello and a
// TimeoutNow), a peer whose certificate names another node than its hello
// claims, a peer with a certificate of another CA (a heartbeat at term
// 5000), and a peer bound to n1 that sends a TimeoutNow as n3. A peer with
// the right certificate then gets through.
func TestTLSRefusesForgedPeers(t *testing.T) {
	leakCheck(t)
	dir, foreign := certDirs(t)
	b := newNode(t, tlsConfig(2, "c", peerTLS(t, dir, "n2")))
	b.tr.AddPeer(1, "127.0.0.1:1") // known, never dialed
	b.tr.AddPeer(3, "127.0.0.1:1")
	b.start(t, nil)
	timeoutNow := transport.AppendMessageFrame(nil, raft.Message{Type: raft.MsgTimeoutNow, From: 3, To: 2, Term: 2})
	highTerm := transport.AppendMessageFrame(nil, raft.Message{Type: raft.MsgHeartbeat, From: 3, To: 2, Term: 5000})
	as3 := transport.Hello{Stream: transport.StreamMessages, ClusterID: "c", From: 3, To: 2}

	// Plaintext: the TLS handshake fails on the hello.
	c := rawConn(t, b.tr.Addr())
	if _, err := c.Write(append(helloFrame(as3), timeoutNow...)); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, c)
	if b.logs.count("level=ERROR", "refused a connection", "TLS handshake") != 1 {
		t.Errorf("the plaintext refusal is not logged")
	}

	// n1's certificate, claiming to be n3.
	c = tlsConn(t, b.tr.Addr(), dir, "n1")
	kind, reason, err := answer(c, as3)
	if err != nil || kind != transport.KindRefuse || !all(reason, []string{"node 3's certificate", "does not name the node n3"}) {
		t.Errorf("n1's certificate claiming n3: got %s %q %v, want a refusal", kind, reason, err)
	}

	// Another CA's n3.
	raw := rawConn(t, b.tr.Addr())
	c = tls.Client(raw, reloader(t, foreign, "n3").PeerClientConfig())
	if kind, _, err := answer(c, as3); err == nil {
		t.Errorf("n3 of another CA: answered %s, want the TLS handshake to fail", kind)
	}
	_, _ = c.Write(highTerm)
	waitClosed(t, raw)
	if b.logs.count("level=ERROR", "refused a connection", "TLS handshake") != 2 {
		t.Errorf("the foreign CA's refusal is not logged")
	}

	// n1, bound to n1, sends as n3.
	c = tlsConn(t, b.tr.Addr(), dir, "n1")
	if kind, _, err := answer(c, transport.Hello{Stream: transport.StreamMessages, ClusterID: "c", From: 1, To: 2}); err != nil || kind != transport.KindAccept {
		t.Fatalf("n1 as n1: got %s %v, want accepted", kind, err)
	}
	if _, err := c.Write(append(timeoutNow, highTerm...)); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, c)
	if b.logs.count("level=WARN", "message 3→2 on the stream from 1") != 1 {
		t.Errorf("the lie is not logged")
	}

	if ms := b.h.Messages(); len(ms) != 0 {
		t.Fatalf("forged peers delivered:\n%s", describe(ms))
	}
	c = tlsConn(t, b.tr.Addr(), dir, "n3")
	if kind, _, err := answer(c, as3); err != nil || kind != transport.KindAccept {
		t.Fatalf("n3 as n3: got %s %v, want accepted", kind, err)
	}
	if _, err := c.Write(transport.AppendMessageFrame(nil, heartbeat(3, 2, 7))); err != nil {
		t.Fatal(err)
	}
	b.h.Wait(t, "the real n3's heartbeat", func() bool { return countFrom(b.h, 3) == 1 })
}

// TestTLSDialerChecksTheNode: a dialer refuses an acceptor whose
// certificate names another node than the one it dialed, and reports the
// peer unreachable; nothing is delivered.
func TestTLSDialerChecksTheNode(t *testing.T) {
	leakCheck(t)
	dir, _ := certDirs(t)
	a := newNode(t, tlsConfig(1, "c", peerTLS(t, dir, "n1")))
	impostor := newNode(t, tlsConfig(2, "c", peerTLS(t, dir, "n3"))) // node 2 with n3's certificate
	a.tr.AddPeer(2, impostor.tr.Addr())
	impostor.tr.AddPeer(1, a.tr.Addr())
	a.start(t, nil)
	impostor.start(t, nil)
	sendUntil(t, a, a.h, "an unreachable report", heartbeat(1, 2, 1), func() bool { return len(a.h.Unreachable()) >= 1 })
	if a.logs.count("level=ERROR", "connection refused", "does not name the node n2") == 0 {
		t.Errorf("the dialer did not log the refusal")
	}
	if n := len(impostor.h.Messages()); n != 0 {
		t.Errorf("%d messages delivered to an impostor", n)
	}
}

// TestTLSPlainDialerRefused: a transport without TLS cannot reach one
// with TLS.
func TestTLSPlainDialerRefused(t *testing.T) {
	leakCheck(t)
	dir, _ := certDirs(t)
	a, b := newNode(t, config(1, "c")), newNode(t, tlsConfig(2, "c", peerTLS(t, dir, "n2")))
	a.tr.AddPeer(2, b.tr.Addr())
	b.tr.AddPeer(1, a.tr.Addr())
	a.start(t, nil)
	b.start(t, nil)
	sendUntil(t, a, a.h, "an unreachable report", heartbeat(1, 2, 1), func() bool { return len(a.h.Unreachable()) >= 1 })
	if n := len(b.h.Messages()); n != 0 {
		t.Errorf("%d plaintext messages delivered", n)
	}
}
