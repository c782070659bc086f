package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage"
	"github.com/raftex/raftex/storage/vfs"
	"github.com/raftex/raftex/transport"
	"github.com/raftex/raftex/transport/mem"
	"github.com/raftex/raftex/transport/tcp"
)

// logFSM is a test state machine: it records every command applied, in
// order, and a running hash of them.
type logFSM struct {
	mu      sync.Mutex
	applied [][]byte
	hash    uint64
	delay   time.Duration // per Apply, to play a slow state machine
}

func (f *logFSM) Apply(e raft.Entry) any {
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, append([]byte(nil), e.Data...))
	h := fnv.New64a()
	binary.Write(h, binary.BigEndian, f.hash)
	h.Write(e.Data)
	f.hash = h.Sum64()
	return len(f.applied)
}

func (f *logFSM) state() (int, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.applied), f.hash
}

func (f *logFSM) contains(cmd string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.applied {
		if string(a) == cmd {
			return true
		}
	}
	return false
}

type logSnapshot struct {
	applied [][]byte
	hash    uint64
}

func (f *logFSM) Snapshot() (FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &logSnapshot{applied: f.applied[:len(f.applied):len(f.applied)], hash: f.hash}, nil
}

func (s *logSnapshot) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriter(w)
	var n int64
	binary.Write(bw, binary.BigEndian, s.hash)
	binary.Write(bw, binary.BigEndian, uint64(len(s.applied)))
	for _, a := range s.applied {
		binary.Write(bw, binary.BigEndian, uint32(len(a)))
		bw.Write(a)
		n += int64(4 + len(a))
	}
	return n + 16, bw.Flush()
}

func (s *logSnapshot) Release() {}

func (f *logFSM) Restore(r io.Reader) error {
	br := bufio.NewReader(r)
	var hash, count uint64
	if err := binary.Read(br, binary.BigEndian, &hash); err != nil {
		return err
	}
	if err := binary.Read(br, binary.BigEndian, &count); err != nil {
		return err
	}
	applied := make([][]byte, 0, count)
	for range count {
		var l uint32
		if err := binary.Read(br, binary.BigEndian, &l); err != nil {
			return err
		}
		a := make([]byte, l)
		if _, err := io.ReadFull(br, a); err != nil {
			return err
		}
		applied = append(applied, a)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied, f.hash = applied, hash
	return nil
}

// testCluster runs N nodes in one process, over loopback TCP or an
// in-memory network, with real WALs in temp dirs (or an in-memory FS).
type testCluster struct {
	t       testing.TB
	ids     []uint64
	dirs    map[uint64]string
	addrs   map[uint64]string
	nodes   map[uint64]*Node
	fsms    map[uint64]*logFSM
	network *mem.Network // nil: TCP
	fs      vfs.FS
	tweak   func(*Config)
}

type clusterOption func(*testCluster)

// withMemNetwork runs the cluster over transport/mem and an in-memory disk.
func withMemNetwork(seed uint64) clusterOption {
	return func(c *testCluster) {
		c.network = mem.NewNetwork(seed)
		c.fs = vfs.NewMem()
	}
}

func withConfig(f func(*Config)) clusterOption { return func(c *testCluster) { c.tweak = f } }

func newTestCluster(t testing.TB, n int, opts ...clusterOption) *testCluster {
	t.Helper()
	c := &testCluster{
		t: t, dirs: map[uint64]string{}, addrs: map[uint64]string{},
		nodes: map[uint64]*Node{}, fsms: map[uint64]*logFSM{}, fs: vfs.OS(),
	}
	for _, o := range opts {
		o(c)
	}
	for i := range n {
		id := uint64(i + 1)
		c.ids = append(c.ids, id)
		if c.network != nil {
			c.dirs[id] = fmt.Sprintf("/node%d", id)
		} else {
			c.dirs[id] = filepath.Join(t.TempDir(), fmt.Sprintf("n%d", id))
		}
	}
	if c.network == nil {
		// Reserve a port per node so every node can know every address.
		for _, id := range c.ids {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			c.addrs[id] = ln.Addr().String()
			ln.Close()
		}
	}
	for _, id := range c.ids {
		c.start(id)
	}
	t.Cleanup(c.stopAll)
	return c
}

func (c *testCluster) tcpConfig(id uint64, listen string) tcp.Config {
	cfg := tcp.DefaultConfig()
	cfg.ID, cfg.ClusterID, cfg.ListenAddr = id, "test", listen
	cfg.Peers = map[uint64]string{}
	for _, p := range c.ids {
		if p != id {
			cfg.Peers[p] = c.addrs[p]
		}
	}
	cfg.BackoffMin, cfg.BackoffMax = 5*time.Millisecond, 50*time.Millisecond
	return cfg
}

// start (re)starts node id from its data directory.
func (c *testCluster) start(id uint64) {
	c.t.Helper()
	store, err := storage.Open(c.fs, c.dirs[id], storage.Options{})
	if err != nil {
		c.t.Fatalf("open storage of %d: %v", id, err)
	}
	var tr transport.Transport
	if c.network != nil {
		tr = c.network.Transport(id)
	} else {
		t, err := tcp.New(c.tcpConfig(id, c.addrs[id]))
		if err != nil {
			c.t.Fatalf("transport of %d: %v", id, err)
		}
		tr = t
	}
	cfg := DefaultConfig(id)
	cfg.InitialMembership = raft.NewMembership(c.ids...)
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	fsm := &logFSM{}
	n, err := Start(cfg, fsm, store, tr)
	if err != nil {
		c.t.Fatalf("start %d: %v", id, err)
	}
	c.nodes[id], c.fsms[id] = n, fsm
}

func (c *testCluster) stop(id uint64) {
	c.t.Helper()
	if n := c.nodes[id]; n != nil {
		if err := n.Stop(); err != nil {
			c.t.Errorf("stop %d: %v", id, err)
		}
		c.nodes[id] = nil
	}
}

func (c *testCluster) stopAll() {
	for _, id := range c.ids {
		c.stop(id)
	}
}

// waitLeader waits until the live nodes agree on one leader and returns it.
func (c *testCluster) waitLeader(timeout time.Duration) uint64 {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var lead uint64
		agree := true
		for _, id := range c.ids {
			n := c.nodes[id]
			if n == nil {
				continue
			}
			l, _ := n.Leader()
			if l == raft.None || (lead != raft.None && l != lead) {
				agree = false
				break
			}
			lead = l
		}
		if agree && lead != raft.None && c.nodes[lead] != nil && c.nodes[lead].Role() == raft.Leader {
			return lead
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatalf("no agreed leader within %s", timeout)
	return 0
}

func (c *testCluster) propose(id uint64, cmd string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.nodes[id].Propose(ctx, []byte(cmd))
	return err
}

// waitConverged waits until every live node applied the same commands.
func (c *testCluster) waitConverged(timeout time.Duration) (int, uint64) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var count int
		var hash uint64
		same := true
		first := true
		for _, id := range c.ids {
			if c.nodes[id] == nil {
				continue
			}
			n, h := c.fsms[id].state()
			if first {
				count, hash, first = n, h, false
			} else if n != count || h != hash {
				same = false
			}
		}
		if same {
			return count, hash
		}
		if time.Now().After(deadline) {
			for _, id := range c.ids {
				if c.nodes[id] != nil {
					n, h := c.fsms[id].state()
					c.t.Logf("node %d: %d applied, hash %x", id, n, h)
				}
			}
			c.t.Fatalf("state machines did not converge within %s", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
