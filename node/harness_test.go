package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/raftex/raftex/internal/e2etest"
	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage"
	"github.com/raftex/raftex/storage/vfs"
	"github.com/raftex/raftex/transport"
	"github.com/raftex/raftex/transport/mem"
	"github.com/raftex/raftex/transport/tcp"
)

// bubble runs f in a testing/synctest bubble (virtual time: sleeps and
// tickers cost nothing, so timing is exact and the machine's speed does
// not matter), then checks that no goroutine is left. The bubble itself
// fails the test if a goroutine of it is still blocked when f returns.
func bubble(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	defer goleak.VerifyNone(t)
	synctest.Test(t, f)
}

// logFSM is a test state machine: it records every command applied, in
// order, and a running hash of them, and counts its calls.
type logFSM struct {
	mu       sync.Mutex
	applied  [][]byte
	hash     uint64
	applies  int // Apply calls since this FSM was made
	restores int // Restore calls since this FSM was made
	// hook, when set, runs at the start of every Apply (never changed
	// after Start): tests slow or block the state machine with it.
	hook func(raft.Entry)
}

func (f *logFSM) Apply(e raft.Entry) any {
	if f.hook != nil {
		f.hook(e)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applies++
	f.applied = append(f.applied, e.Data) // the node never modifies it
	f.hash = chain(f.hash, e.Data)
	return len(f.applied)
}

// chain is FNV-1a over the previous hash (big-endian) and data, inline so
// that the test FSM allocates nothing per entry (the benchmark counts the
// node's allocations).
func chain(prev uint64, data []byte) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 56; i >= 0; i -= 8 {
		h = (h ^ uint64(byte(prev>>i))) * prime
	}
	for _, b := range data {
		h = (h ^ uint64(b)) * prime
	}
	return h
}

// state returns the number of commands the state reflects and its hash.
func (f *logFSM) state() (int, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.applied), f.hash
}

func (f *logFSM) calls() (applies, restores int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applies, f.restores
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

// commands returns the set of distinct commands applied.
func (f *logFSM) commands() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	set := make(map[string]bool, len(f.applied))
	for _, a := range f.applied {
		set[string(a)] = true
	}
	return set
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
	f.restores++
	return nil
}

// testObserver counts what the runtime reports.
type testObserver struct {
	fsyncs, fsyncEntries atomic.Int64
	taken, installed     atomic.Int64
	started, events      atomic.Int64
}

func (o *testObserver) ObserveEvent(e raft.Event) {
	o.events.Add(1)
	if e.Kind == raft.EventNodeStarted {
		o.started.Add(1)
	}
}

func (o *testObserver) ObserveFsync(_ time.Duration, entries, _ int) {
	o.fsyncs.Add(1)
	o.fsyncEntries.Add(int64(entries))
}

func (o *testObserver) ObserveApply(time.Duration, int) {}
func (o *testObserver) ObserveProposal(bool)            {}

func (o *testObserver) ObserveSnapshot(installed bool, _ time.Duration, _ int64) {
	if installed {
		o.installed.Add(1)
	} else {
		o.taken.Add(1)
	}
}

// diskFault is a switchable fault on one node's disk.
type diskFault struct {
	mu    sync.Mutex
	fail  bool          // writes and syncs fail with vfs.ErrInjected
	stall chan struct{} // non-nil: syncs hang until it is closed
	syncs atomic.Int64  // syncs that hung
}

func (f *diskFault) MaybeError(op vfs.Op) error {
	f.mu.Lock()
	fail, stall := f.fail, f.stall
	f.mu.Unlock()
	if stall != nil && op.Kind == vfs.OpSync {
		f.syncs.Add(1)
		<-stall
	}
	if fail && op.Kind&(vfs.OpWrite|vfs.OpSync) != 0 {
		return vfs.ErrInjected
	}
	return nil
}

// stallSyncs makes every sync hang until the returned function (which
// may be called more than once) is called.
func (f *diskFault) stallSyncs() (release func()) {
	c := make(chan struct{})
	f.mu.Lock()
	f.stall = c
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.stall = nil
			f.mu.Unlock()
			close(c)
		})
	}
}

func (f *diskFault) failWrites() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = true
}

// latch blocks callers of wait until open is called (once or more).
type latch struct {
	c    chan struct{}
	once sync.Once
}

func newLatch() *latch { return &latch{c: make(chan struct{})} }

func (l *latch) wait() { <-l.c }
func (l *latch) open() { l.once.Do(func() { close(l.c) }) }

// testCluster runs N nodes in one process, over loopback TCP with real
// WALs in temp dirs, or over transport/mem with an in-memory disk per node
// (then it must run inside a bubble).
type testCluster struct {
	t   testing.TB
	ids []uint64
	// mu guards the maps of running nodes, which the test goroutine
	// changes (start, stop) while writers read them.
	mu      sync.RWMutex
	dirs    map[uint64]string
	addrs   map[uint64]string
	nodes   map[uint64]*Node
	fsms    map[uint64]*logFSM
	obs     map[uint64]*testObserver
	faults  map[uint64]*diskFault
	hook    func(id uint64, e raft.Entry) // runs in every node's Apply, if set
	network *mem.Network                  // nil: TCP
	disks   map[uint64]*vfs.MemFS         // with network: each node's disk
	tweak   func(*Config)
	// joiners started with Config.Join, not in the bootstrap membership.
	joiners map[uint64]bool
	// logs, when set, receives every node's log lines.
	logs io.Writer
}

type clusterOption func(*testCluster)

// tcpPorts hands out the TCP clusters' ports from a range of this
// package's own below the kernel's ephemeral ports (see e2etest.Ports): a
// port taken from the kernel (127.0.0.1:0) and closed again could go to a
// node's outgoing connection before its own node listens on it, or
// before a stopped node listens on it again.
var tcpPorts = e2etest.NewPorts(7000, 8000)

// withMemNetwork runs the cluster over transport/mem and in-memory disks.
// Messages take 0.5–2 ms of virtual time: with no delay at all a busy
// cluster would never let virtual time advance.
func withMemNetwork(seed uint64) clusterOption {
	return func(c *testCluster) {
		c.network = mem.NewNetwork(seed)
		c.network.SetDelay(500*time.Microsecond, 2*time.Millisecond)
	}
}

func withConfig(f func(*Config)) clusterOption { return func(c *testCluster) { c.tweak = f } }

// withApplyHook runs hook at the start of every Apply of every node.
func withApplyHook(hook func(id uint64, e raft.Entry)) clusterOption {
	return func(c *testCluster) { c.hook = hook }
}

func newTestCluster(t testing.TB, n int, opts ...clusterOption) *testCluster {
	t.Helper()
	c := &testCluster{
		t: t, dirs: map[uint64]string{}, addrs: map[uint64]string{},
		nodes: map[uint64]*Node{}, fsms: map[uint64]*logFSM{}, obs: map[uint64]*testObserver{},
		faults: map[uint64]*diskFault{},
		disks:  map[uint64]*vfs.MemFS{},
	}
	for _, o := range opts {
		o(c)
	}
	if c.network == nil {
		if _, ok := t.(*testing.T); ok {
			t.Cleanup(func() { goleak.VerifyNone(t) }) // runs after stopAll
		}
	}
	for i := range n {
		id := uint64(i + 1)
		c.ids = append(c.ids, id)
		c.faults[id] = &diskFault{}
		if c.network != nil {
			c.dirs[id] = "/data"
			c.disks[id] = vfs.NewMem()
		} else {
			c.dirs[id] = filepath.Join(t.TempDir(), fmt.Sprintf("n%d", id))
		}
	}
	if c.network == nil {
		// Reserve a port per node so every node can know every address.
		for i, port := range tcpPorts.Free(t, n) {
			c.addrs[c.ids[i]] = e2etest.Addr(port)
		}
	}
	t.Cleanup(c.stopAll)
	for _, id := range c.ids {
		c.start(id)
	}
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

func (c *testCluster) config(id uint64) Config {
	cfg := DefaultConfig(id)
	var boot []uint64
	for _, id := range c.ids {
		if !c.joiners[id] {
			boot = append(boot, id)
		}
	}
	cfg.InitialMembership = raft.NewMembership(boot...)
	if c.joiners[id] {
		cfg.InitialMembership, cfg.Join = raft.Membership{}, true
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if c.logs != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(c.logs, nil))
	}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	return cfg
}

// start (re)starts node id from its data directory, with a fresh state
// machine and observer.
func (c *testCluster) start(id uint64) {
	c.t.Helper()
	if err := c.tryStart(id); err != nil {
		c.t.Fatal(err)
	}
}

func (c *testCluster) tryStart(id uint64) error {
	var fs vfs.FS = vfs.OS()
	if c.network != nil {
		fs = c.disks[id]
	}
	store, err := storage.Open(vfs.WithInjector(fs, c.faults[id]), c.dirs[id], storage.Options{})
	if err != nil {
		return fmt.Errorf("open storage of %d: %w", id, err)
	}
	var tr transport.Transport
	if c.network != nil {
		tr = c.network.Transport(id)
	} else {
		t, err := tcp.New(c.tcpConfig(id, c.addrs[id]))
		if err != nil {
			store.Close()
			return fmt.Errorf("transport of %d: %w", id, err)
		}
		tr = t
	}
	cfg := c.config(id)
	obs := &testObserver{}
	cfg.Observer = obs
	fsm := &logFSM{}
	if c.hook != nil {
		fsm.hook = func(e raft.Entry) { c.hook(id, e) }
	}
	n, err := Start(cfg, fsm, store, tr)
	if err != nil {
		tr.Stop()
		store.Close()
		return fmt.Errorf("start %d: %w", id, err)
	}
	c.mu.Lock()
	c.nodes[id], c.fsms[id], c.obs[id] = n, fsm, obs
	c.mu.Unlock()
	if _, ok := c.t.(*testing.T); ok { // benchmarks measure the node alone
		c.record(id, n.Subscribe())
	}
	return nil
}

// record keeps the last events of node id, printed if the test fails: the
// flight recorder of a failed run. Its goroutine ends when the node stops
// (which closes the subscription), before the leak check.
func (c *testCluster) record(id uint64, sub *Subscription) {
	const keep = 100
	var mu sync.Mutex
	var ring []raft.Event
	go func() {
		for e := range sub.C {
			mu.Lock()
			if len(ring) == keep {
				ring = ring[1:]
			}
			ring = append(ring, e)
			mu.Unlock()
		}
	}()
	c.t.Cleanup(func() {
		if !c.t.Failed() {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		c.t.Logf("last %d events of node %d (%d dropped):", len(ring), id, sub.Dropped())
		for _, e := range ring {
			if e.Kind != raft.EventMessageSent && e.Kind != raft.EventMessageReceived || !e.MsgType.IsHeartbeat() {
				c.t.Logf("  %v", e)
			}
		}
	})
}

func (c *testCluster) stop(id uint64) {
	c.t.Helper()
	if n := c.nodes[id]; n != nil {
		if err := n.Stop(); err != nil {
			c.t.Errorf("stop %d: %v", id, err)
		}
		c.mu.Lock()
		c.nodes[id] = nil
		c.mu.Unlock()
	}
}

func (c *testCluster) stopAll() {
	for _, id := range c.ids {
		c.stop(id)
	}
}

// kill stops node id as a power cut would: its disk is replaced by a
// crash clone taken while it ran (only what was synced survives, and a
// random part of the rest). With an in-memory disk only.
func (c *testCluster) kill(id uint64, seed uint64) {
	c.t.Helper()
	clone := c.disks[id].CrashClone(rand.New(rand.NewPCG(seed, id)))
	c.stop(id)
	c.disks[id] = clone
}

// live returns the ids of the running nodes.
func (c *testCluster) live() []uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var ids []uint64
	for _, id := range c.ids {
		if c.nodes[id] != nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// eventually polls cond until it holds, failing the test after timeout.
// Inside a bubble the time is virtual: a generous timeout costs nothing.
func (c *testCluster) eventually(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// agreedLeader returns the leader every live node names, if they agree
// and it leads.
func (c *testCluster) agreedLeader() uint64 { return c.leaderAmong(c.live()...) }

// leaderAmong returns the leader nodes ids all name, if they agree and it
// is one of them and leads.
func (c *testCluster) leaderAmong(ids ...uint64) uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var lead uint64
	for _, id := range ids {
		l, _ := c.nodes[id].Leader()
		if l == raft.None || (lead != raft.None && l != lead) {
			return raft.None
		}
		lead = l
	}
	if lead == raft.None || !slices.Contains(ids, lead) || c.nodes[lead].Role() != raft.Leader {
		return raft.None
	}
	return lead
}

// waitLeader waits until the live nodes agree on one leader and returns it.
func (c *testCluster) waitLeader(timeout time.Duration) uint64 {
	c.t.Helper()
	return c.waitLeaderAmong(timeout, c.live()...)
}

// waitLeaderAmong waits until nodes ids agree on a leader among them.
func (c *testCluster) waitLeaderAmong(timeout time.Duration, ids ...uint64) uint64 {
	c.t.Helper()
	var lead uint64
	c.eventually(timeout, fmt.Sprintf("a leader agreed by %v", ids), func() bool {
		lead = c.leaderAmong(ids...)
		return lead != raft.None
	})
	return lead
}

func (c *testCluster) propose(id uint64, cmd string) error {
	c.mu.RLock()
	n := c.nodes[id]
	c.mu.RUnlock()
	if n == nil {
		return ErrStopped
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := n.Propose(ctx, []byte(cmd))
	return err
}

// retryable reports whether a failed proposal may simply be tried again
// (at the current leader).
func retryable(err error) bool {
	return errors.Is(err, raft.ErrNotLeader) || errors.Is(err, ErrLeadershipLost) ||
		errors.Is(err, ErrStopped) || errors.Is(err, raft.ErrProposalDropped) ||
		errors.Is(err, ErrNotCommitted) || errors.Is(err, ErrForwardLost) ||
		errors.Is(err, raft.ErrNoLeader) || errors.Is(err, context.DeadlineExceeded)
}

// write proposes cmd at whichever node leads until one accepts it, and
// reports whether one did. A retry after an unknown outcome may apply cmd
// twice; tests compare sets or whole state machines, never counts, when
// leaders change under them.
func (c *testCluster) write(timeout time.Duration, cmd string) bool {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		lead := c.agreedLeader()
		var err error
		if lead == raft.None {
			err = raft.ErrNotLeader
		} else {
			err = c.propose(lead, cmd)
		}
		if err == nil {
			return true
		}
		if !retryable(err) || time.Now().After(deadline) {
			c.t.Errorf("write %q: %v", cmd, err)
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeMany writes cmds prefix0..prefix(n-1) with conc concurrent writers.
func (c *testCluster) writeMany(prefix string, n, conc int) {
	c.t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				c.write(30*time.Second, fmt.Sprint(prefix, i))
			}
		})
	}
	wg.Wait()
	if c.t.Failed() {
		c.t.FailNow()
	}
}

// waitConverged waits until every live node applied the same commands and
// returns their number and hash.
func (c *testCluster) waitConverged(timeout time.Duration) (int, uint64) {
	c.t.Helper()
	var count int
	var hash uint64
	deadline := time.Now().Add(timeout)
	for {
		same, first := true, true
		for _, id := range c.live() {
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
			for _, id := range c.live() {
				n, h := c.fsms[id].state()
				c.t.Logf("node %d: %d applied, hash %x", id, n, h)
			}
			c.t.Fatalf("state machines did not converge within %s", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// read waits until a linearizable read is safe on node id (lease: by
// ReadLease), retrying what a leader change may cause, and fails the test
// on any other error or after timeout.
func (c *testCluster) read(id uint64, lease bool, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		var err error
		if lease {
			err = c.nodes[id].ReadLease(ctx)
		} else {
			err = c.nodes[id].Read(ctx)
		}
		cancel()
		if err == nil {
			return
		}
		lost := errors.Is(err, ErrLeadershipLost) || errors.Is(err, ErrReadLost) || errors.Is(err, raft.ErrNoLeader)
		if !lost || time.Now().After(deadline) {
			c.t.Fatalf("read on %d: %v", id, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// status returns node id's status, failing the test on error.
func (c *testCluster) status(id uint64) Status {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.nodes[id].Status(ctx)
	if err != nil {
		c.t.Fatalf("status of %d: %v", id, err)
	}
	return st
}

// follower returns a live node other than lead.
func (c *testCluster) follower(lead uint64) uint64 {
	for _, id := range c.live() {
		if id != lead {
			return id
		}
	}
	c.t.Fatal("no live follower")
	return 0
}
