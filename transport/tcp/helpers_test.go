package tcp_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
	"github.com/raftex/raftex/transport/internal/fake"
	"github.com/raftex/raftex/transport/tcp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// leakCheck fails t if a goroutine outlives it. Call it first: cleanups
// run last-in first-out, so it runs after every transport is stopped.
func leakCheck(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// logs is a slog destination a test can search.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// count returns how many log lines hold every one of subs.
func (l *logs) count(subs ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for line := range strings.Lines(l.buf.String()) {
		if all(line, subs) {
			n++
		}
	}
	return n
}

func all(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// node is a started transport with its handler and logs.
type node struct {
	id   uint64
	tr   *tcp.Transport
	h    *fake.Handler
	logs *logs
}

// config is a test config: loopback, port 0, quick reconnects.
func config(id uint64, cluster string) tcp.Config {
	return tcp.Config{
		ID: id, ClusterID: cluster, ListenAddr: "127.0.0.1:0",
		BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond,
	}
}

// newNode creates a transport from cfg (its Logger set to a fresh logs)
// without starting it, and stops it when the test ends.
func newNode(t *testing.T, cfg tcp.Config) *node {
	t.Helper()
	n := &node{id: cfg.ID, h: fake.NewHandler(), logs: &logs{}}
	cfg.Logger = slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr, err := tcp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.tr = tr
	t.Cleanup(func() {
		if err := tr.Stop(); err != nil {
			t.Errorf("node %d: Stop: %v", cfg.ID, err)
		}
		if t.Failed() {
			t.Logf("node %d log:\n%s", cfg.ID, n.logs.buf.String())
		}
	})
	return n
}

func (n *node) start(t *testing.T, src transport.SnapshotSource) {
	t.Helper()
	if err := n.tr.Start(n.h, src); err != nil {
		t.Fatal(err)
	}
}

// cluster starts n nodes of cluster "c" that know each other.
func cluster(t *testing.T, size int) []*node {
	t.Helper()
	nodes := make([]*node, size)
	for i := range nodes {
		nodes[i] = newNode(t, config(uint64(i+1), "c"))
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.tr.AddPeer(b.id, b.tr.Addr())
			}
		}
	}
	for _, n := range nodes {
		n.start(t, nil)
	}
	return nodes
}

func heartbeat(from, to, round uint64) raft.Message {
	return raft.Message{Type: raft.MsgHeartbeat, From: from, To: to, Term: 1, ReadRound: round}
}

// countFrom counts the messages delivered to h from id.
func countFrom(h *fake.Handler, id uint64) int {
	n := 0
	for _, m := range h.Messages() {
		if m.From == id {
			n++
		}
	}
	return n
}

// sendUntil sends m from n every few milliseconds until cond holds (or the
// handler's wait times out): for a peer that is down or coming back, where
// some messages are lost on the way. The interval only paces the retries;
// nothing depends on how fast the machine is.
func sendUntil(t *testing.T, n *node, wait *fake.Handler, what string, m raft.Message, cond func() bool) {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			n.tr.Send([]raft.Message{m})
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { close(stop); <-done }()
	wait.Wait(t, what, cond)
}

func describe(ms []raft.Message) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintln(&b, m)
	}
	return b.String()
}
