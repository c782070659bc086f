package tcp_test

import (
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
	"github.com/raftex/raftex/transport/internal/fake"
	"github.com/raftex/raftex/transport/tcp"
)

// rawConn dials addr as a misbehaving peer would, with a deadline that
// only guards against a hang.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(fake.WaitTimeout)); err != nil {
		t.Fatal(err)
	}
	return c
}

func helloFrame(h transport.Hello) []byte {
	return transport.AppendFrame(nil, transport.KindHello, transport.AppendHello(nil, h))
}

// readReply reads the acceptor's answer to a hello.
func readReply(t *testing.T, c net.Conn) (transport.FrameKind, string) {
	t.Helper()
	kind, payload, err := transport.NewFrameReader(c, 1<<12).Next(nil)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	return kind, string(payload)
}

// waitClosed reads c until the other side closes it.
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Fatalf("waiting for the transport to close the connection: %v", err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "read" && !op.Timeout()
}

// TestHandshakeRefusals: the acceptor refuses, with a reason and a logged
// error, a hello from another cluster, an unknown node, itself, or meant
// for another node; it accepts a good one. No reason names this node's
// cluster id: with it, anyone could forge a hello.
func TestHandshakeRefusals(t *testing.T) {
	leakCheck(t)
	b := newNode(t, config(2, "prod"))
	b.tr.AddPeer(1, "127.0.0.1:1") // known, never dialed
	b.start(t, nil)
	tests := []struct {
		name   string
		hello  transport.Hello
		reason string
	}{
		{"other cluster", transport.Hello{Stream: transport.StreamMessages, ClusterID: "staging", From: 1, To: 2}, "is in cluster"},
		{"unknown node", transport.Hello{Stream: transport.StreamMessages, ClusterID: "prod", From: 7, To: 2}, "node 7 is not a peer"},
		{"own id", transport.Hello{Stream: transport.StreamMessages, ClusterID: "prod", From: 2, To: 2}, "node 2 is this node"},
		{"meant for another", transport.Hello{Stream: transport.StreamMessages, ClusterID: "prod", From: 1, To: 3}, "dialed node 3"},
	}
	for _, tt := range tests {
		c := rawConn(t, b.tr.Addr())
		if _, err := c.Write(helloFrame(tt.hello)); err != nil {
			t.Fatal(err)
		}
		kind, reason := readReply(t, c)
		if kind != transport.KindRefuse || !all(reason, []string{tt.reason}) {
			t.Errorf("%s: got %s %q, want a refusal saying %q", tt.name, kind, reason, tt.reason)
		}
		if strings.Contains(reason, "prod") {
			t.Errorf("%s: the refusal %q reveals the cluster id", tt.name, reason)
		}
		waitClosed(t, c)
		if b.logs.count("level=ERROR", "refused a connection", tt.reason) != 1 {
			t.Errorf("%s: refusal not logged", tt.name)
		}
	}
	c := rawConn(t, b.tr.Addr())
	if _, err := c.Write(helloFrame(transport.Hello{Stream: transport.StreamMessages, ClusterID: "prod", From: 1, To: 2})); err != nil {
		t.Fatal(err)
	}
	if kind, _ := readReply(t, c); kind != transport.KindAccept {
		t.Fatalf("good hello answered with %s", kind)
	}
}

// TestWrongClusterRefused: two real transports configured for different
// clusters: the dialer is refused, logs it and reports the peer
// unreachable; nothing is delivered.
func TestWrongClusterRefused(t *testing.T) {
	leakCheck(t)
	a, b := newNode(t, config(1, "blue")), newNode(t, config(2, "green"))
	a.tr.AddPeer(2, b.tr.Addr())
	b.tr.AddPeer(1, a.tr.Addr())
	a.start(t, nil)
	b.start(t, nil)
	// The acceptor logs a refusal after writing it, on its own goroutine:
	// the dialer may hear of it first, so its log line is waited for too
	// (every further refusal the dialer reports wakes the wait).
	sendUntil(t, a, a.h, "a second unreachable report and the acceptor's log of a refusal", heartbeat(1, 2, 1), func() bool {
		return len(a.h.Unreachable()) >= 2 && b.logs.count("level=ERROR", "refused a connection") > 0
	})
	if got := a.h.Unreachable(); slices.ContainsFunc(got, func(id uint64) bool { return id != 2 }) {
		t.Errorf("unreachable reports %v, want only 2", got)
	}
	if a.logs.count("level=ERROR", "connection refused by peer 2", `cluster \"blue\"`) == 0 {
		t.Errorf("dialer did not log the refusal")
	}
	if n := len(b.h.Messages()); n != 0 {
		t.Errorf("%d messages delivered across clusters", n)
	}
}

// TestBadInputKeepsServing sends garbage, truncated, oversized, corrupt
// and lying input to the peer port: each closes only its own connection
// with a warning, and a good peer still gets through afterwards.
func TestBadInputKeepsServing(t *testing.T) {
	leakCheck(t)
	a, b := newNode(t, config(1, "c")), newNode(t, config(2, "c"))
	a.tr.AddPeer(2, b.tr.Addr())
	b.tr.AddPeer(1, a.tr.Addr())
	b.start(t, nil)

	hello := helloFrame(transport.Hello{Stream: transport.StreamMessages, ClusterID: "c", From: 1, To: 2})
	good := transport.AppendMessageFrame(nil, heartbeat(1, 2, 1))
	corrupt := slices.Clone(good)
	corrupt[len(corrupt)-1] ^= 0xff
	oversized := slices.Clone(good[:transport.FrameHeaderSize])
	oversized[2], oversized[3] = 0x7f, 0xff // length 2 GiB
	// A hello far larger than any hello, though within MaxFrameSize: it
	// is refused at its header, not read into a buffer of that size.
	bigHello := slices.Clone(hello[:transport.FrameHeaderSize])
	bigHello[2], bigHello[3], bigHello[4], bigHello[5] = 0, 0x10, 0, 0 // 1 MiB
	undecodable := transport.AppendFrame(nil, transport.KindMessage, []byte{byte(raft.MsgHeartbeat), 0, 0xff})
	liar := transport.AppendMessageFrame(nil, heartbeat(3, 2, 1))
	snapOnStream := transport.AppendMessageFrame(nil, snapMsg(1, 2))
	tests := []struct {
		name      string
		handshake bool // send a good hello first
		in        []byte
		closeW    bool // then close our side (the frame stays truncated)
		logged    string
	}{
		{"garbage", false, []byte("\x00\xde\xad\xbe\xef garbage"), false, "unsupported frame version"},
		{"http", false, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false, "unsupported frame version"},
		{"truncated hello", false, hello[:len(hello)-3], true, "unexpected EOF"},
		{"message before hello", false, good, false, "message frame before hello"},
		{"oversized hello", false, bigHello, false, "exceeds the maximum size"},
		{"oversized", true, oversized, false, "exceeds the maximum size"},
		{"bad checksum", true, corrupt, false, "checksum mismatch"},
		{"undecodable", true, undecodable, false, "malformed payload"},
		{"truncated message", true, good[:len(good)-2], true, "unexpected EOF"},
		{"other sender", true, liar, false, "message 3→2 on the stream from 1"},
		{"snapshot on message stream", true, snapOnStream, false, "InstallSnapshot without its body"},
		{"unknown frame kind", true, []byte{transport.Version, 99, 0, 0, 0, 0, 0, 0, 0, 0}, false, "unknown frame kind"},
	}
	for _, tt := range tests {
		c := rawConn(t, b.tr.Addr())
		if tt.handshake {
			if _, err := c.Write(hello); err != nil {
				t.Fatal(err)
			}
			if kind, _ := readReply(t, c); kind != transport.KindAccept {
				t.Fatalf("%s: hello answered with %s", tt.name, kind)
			}
		}
		if _, err := c.Write(tt.in); err != nil {
			t.Fatal(err)
		}
		if tt.closeW {
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
		}
		waitClosed(t, c)
		b.h.Wait(t, "the warning for "+tt.name, func() bool { return b.logs.count("level=WARN", tt.logged) > 0 })
	}
	if n := len(b.h.Messages()); n != 0 {
		t.Fatalf("bad input delivered %d messages", n)
	}
	a.start(t, nil)
	a.tr.Send([]raft.Message{heartbeat(1, 2, 42)})
	b.h.Wait(t, "the good peer's heartbeat", func() bool { return len(b.h.Messages()) == 1 })
}

// TestReconnectAfterPeerRestart: the peer stops (the sender reports it
// unreachable) and comes back on the same address; the sender reconnects
// by itself and messages flow again.
func TestReconnectAfterPeerRestart(t *testing.T) {
	leakCheck(t)
	a, b := newNode(t, config(1, "c")), newNode(t, config(2, "c"))
	addr := b.tr.Addr()
	a.tr.AddPeer(2, addr)
	b.tr.AddPeer(1, a.tr.Addr())
	a.start(t, nil)
	b.start(t, nil)
	a.tr.Send([]raft.Message{heartbeat(1, 2, 1)})
	b.h.Wait(t, "the first heartbeat", func() bool { return len(b.h.Messages()) == 1 })

	if err := b.tr.Stop(); err != nil {
		t.Fatal(err)
	}
	sendUntil(t, a, a.h, "peer 2 reported unreachable", heartbeat(1, 2, 2), func() bool { return len(a.h.Unreachable()) > 0 })

	cfg := config(2, "c")
	cfg.ListenAddr = addr
	b2 := newNode(t, cfg)
	b2.tr.AddPeer(1, a.tr.Addr())
	b2.start(t, nil)
	sendUntil(t, a, b2.h, "a heartbeat after the restart", heartbeat(1, 2, 3), func() bool { return len(b2.h.Messages()) > 0 })
	if st := a.tr.Stats(); st.Dropped == 0 {
		t.Errorf("no message counted as dropped while the peer was down: %+v", st)
	}
}

// TestQueueFullDrops: messages past a peer's queue, and to unknown peers,
// are dropped and counted; Send never blocks. The transport is not started,
// so nothing drains the queue.
func TestQueueFullDrops(t *testing.T) {
	leakCheck(t)
	cfg := config(1, "c")
	cfg.QueueSize = 8
	cfg.Peers = map[uint64]string{2: "127.0.0.1:1"}
	a := newNode(t, cfg)
	var msgs []raft.Message
	for i := range 8 + 5 {
		msgs = append(msgs, heartbeat(1, 2, uint64(i)))
	}
	msgs = append(msgs, heartbeat(1, 3, 0)) // unknown peer
	a.tr.Send(msgs)
	if st := a.tr.Stats(); st.Dropped != 6 {
		t.Fatalf("dropped %d, want 6 (5 over the queue, 1 to an unknown peer)", st.Dropped)
	}
}

// TestStopWithStuckPeer: a peer that accepts but never reads fills the
// sender's socket until its write blocks; Stop still returns and leaves
// no goroutine behind.
func TestStopWithStuckPeer(t *testing.T) {
	leakCheck(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() { // answers the hello, then never reads
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		_, _, _ = transport.NewFrameReader(c, 1<<10).Next(nil)
		_, _ = c.Write(transport.AppendFrame(nil, transport.KindAccept, nil))
		accepted <- c
	}()
	cfg := config(1, "c")
	cfg.Peers = map[uint64]string{2: ln.Addr().String()}
	a := newNode(t, cfg)
	a.start(t, nil)
	big := raft.Message{Type: raft.MsgApp, From: 1, To: 2, Entries: []raft.Entry{{Data: make([]byte, 512<<10)}}}
	for range 200 { // 100 MiB: more than any socket buffer
		a.tr.Send([]raft.Message{big})
	}
	c, ok := <-accepted
	if !ok {
		t.Fatal("the transport never connected")
	}
	defer c.Close()
	if err := a.tr.Stop(); err != nil {
		t.Fatal(err)
	}
}

// TestRemovePeer: after RemovePeer the peer's connections are closed and
// it is refused from then on; messages to it are dropped.
func TestRemovePeer(t *testing.T) {
	leakCheck(t)
	nodes := cluster(t, 2)
	a, b := nodes[0], nodes[1]
	a.tr.Send([]raft.Message{heartbeat(1, 2, 1)})
	b.h.Wait(t, "the first heartbeat", func() bool { return len(b.h.Messages()) == 1 })

	b.tr.RemovePeer(1)
	sendUntil(t, a, a.h, "a refusal", heartbeat(1, 2, 2), func() bool {
		return a.logs.count("level=ERROR", "node 1 is not a peer of node 2") > 0
	})
	if n := len(b.h.Messages()); n != 1 {
		t.Errorf("%d messages delivered, want only the one before RemovePeer", n)
	}
	before := b.tr.Stats().Dropped
	b.tr.Send([]raft.Message{heartbeat(2, 1, 1)})
	if got := b.tr.Stats().Dropped; got != before+1 {
		t.Errorf("message to a removed peer not dropped: %d, want %d", got, before+1)
	}
}

func TestLifecycleErrors(t *testing.T) {
	leakCheck(t)
	n := newNode(t, config(1, "c"))
	if err := n.tr.Start(nil, nil); err == nil {
		t.Errorf("Start with a nil handler succeeded")
	}
	n.start(t, nil)
	if err := n.tr.Start(n.h, nil); !errors.Is(err, transport.ErrStarted) {
		t.Errorf("second Start: %v, want ErrStarted", err)
	}
	if err := n.tr.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := n.tr.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := n.tr.Start(n.h, nil); !errors.Is(err, transport.ErrStopped) {
		t.Errorf("Start after Stop: %v, want ErrStopped", err)
	}
	n.tr.Send([]raft.Message{heartbeat(1, 2, 1)})
	if _, err := tcp.New(tcp.Config{ID: 1, ClusterID: "c", ListenAddr: "256.0.0.1:0"}); err == nil {
		t.Errorf("New on an impossible address succeeded")
	}
}
