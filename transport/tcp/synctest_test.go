package tcp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
	"github.com/raftex/raftex/transport/internal/fake"
)

// pipeNet is an in-memory network of net.Pipe connections, so the
// transport runs inside a synctest bubble and its timing is virtual.
type pipeNet struct {
	mu        sync.Mutex
	listeners map[string]*pipeListener
	dials     []time.Time // when each dial was attempted
}

func newPipeNet() *pipeNet { return &pipeNet{listeners: map[string]*pipeListener{}} }

func (n *pipeNet) dial(ctx context.Context, addr string) (net.Conn, error) {
	n.mu.Lock()
	n.dials = append(n.dials, time.Now())
	l := n.listeners[addr]
	n.mu.Unlock()
	if l == nil {
		return nil, errors.New("connection refused")
	}
	c, s := net.Pipe()
	select {
	case l.conns <- s:
		return c, nil
	case <-l.done:
		return nil, errors.New("connection refused")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (n *pipeNet) dialTimes() []time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]time.Time(nil), n.dials...)
}

func (n *pipeNet) listen(addr string) *pipeListener {
	l := &pipeListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
	n.mu.Lock()
	n.listeners[addr] = l
	n.mu.Unlock()
	return l
}

type pipeListener struct {
	addr  string
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr(l.addr) }

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

// pipeTransport starts node id on n, listening at addr "node<id>".
func pipeTransport(t *testing.T, n *pipeNet, cfg Config, h transport.Handler) *Transport {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg = cfg.withDefaults()
	cfg.Logger = slog.New(slog.DiscardHandler)
	tr := newTransport(cfg, n.listen(cfg.ListenAddr), n.dial)
	if err := tr.Start(h, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Stop() })
	return tr
}

func hb(from, to uint64) raft.Message {
	return raft.Message{Type: raft.MsgHeartbeat, From: from, To: to, Term: 1}
}

// TestReconnectBackoff: while the peer is down, each dial waits
// BackoffMin·2^(k-1), capped at BackoffMax and jittered into its upper
// half, after the k-th failure; once the peer is up the next dial
// succeeds and the queued messages flow. Virtual time: exact and fast.
func TestReconnectBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lo, hi = 10 * time.Millisecond, 80 * time.Millisecond
		n := newPipeNet()
		ha := fake.NewHandler()
		a := pipeTransport(t, n, Config{ID: 1, ClusterID: "c", ListenAddr: "node1",
			Peers: map[uint64]string{2: "node2"}, BackoffMin: lo, BackoffMax: hi}, ha)
		var msgs []raft.Message
		for range 1000 { // one is dropped per failed dial; plenty stay queued
			msgs = append(msgs, hb(1, 2))
		}
		a.Send(msgs)
		time.Sleep(time.Second)
		synctest.Wait()

		dials := n.dialTimes()
		if len(dials) < 8 {
			t.Fatalf("only %d dials in a second", len(dials))
		}
		for k := 1; k < len(dials); k++ {
			d := min(lo<<(k-1), hi)
			if gap := dials[k].Sub(dials[k-1]); gap < d/2 || gap > d {
				t.Fatalf("pause after failure %d was %s, want within [%s, %s]", k, gap, d/2, d)
			}
		}
		if got := len(ha.Unreachable()); got != len(dials) {
			t.Fatalf("%d unreachable reports for %d failed dials", got, len(dials))
		}

		hb2 := fake.NewHandler()
		up := time.Now()
		pipeTransport(t, n, Config{ID: 2, ClusterID: "c", ListenAddr: "node2", Peers: map[uint64]string{1: "node1"}}, hb2)
		time.Sleep(hi)
		synctest.Wait()
		if got := len(hb2.Messages()); got != 1000-len(dials) {
			t.Fatalf("peer got %d messages within BackoffMax of coming up, want the %d still queued", got, 1000-len(dials))
		}
		if last := n.dialTimes()[len(dials)]; last.Sub(up) > hi {
			t.Fatalf("reconnected %s after the peer came up, more than BackoffMax", last.Sub(up))
		}
		if d := a.Stats().Dropped; d != uint64(len(dials)) {
			t.Fatalf("dropped %d, want one per failed dial (%d)", d, len(dials))
		}
	})
}

// TestWriteTimeout: a peer that takes the handshake and then reads
// nothing is reported unreachable exactly when WriteTimeout runs out.
func TestWriteTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 3 * time.Second
		n := newPipeNet()
		stuck := n.listen("node2")
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { // answers the hello, then never reads
			c, err := stuck.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			_, _, _ = transport.NewFrameReader(c, 1<<10).Next(nil)
			_, _ = c.Write(transport.AppendFrame(nil, transport.KindAccept, nil))
			<-stuck.done
		})
		defer stuck.Close()
		ha := fake.NewHandler()
		a := pipeTransport(t, n, Config{ID: 1, ClusterID: "c", ListenAddr: "node1",
			Peers: map[uint64]string{2: "node2"}, WriteTimeout: timeout}, ha)
		a.Send([]raft.Message{hb(1, 2)})
		synctest.Wait()
		start := time.Now()
		time.Sleep(timeout - time.Nanosecond)
		synctest.Wait()
		if got := ha.Unreachable(); len(got) != 0 {
			t.Fatalf("reported unreachable after %s, before the write timeout", time.Since(start))
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if got := ha.Unreachable(); len(got) != 1 || got[0] != 2 {
			t.Fatalf("at the write timeout: unreachable reports %v, want [2]", got)
		}
		if err := a.Stop(); err != nil {
			t.Fatal(err)
		}
	})
}
