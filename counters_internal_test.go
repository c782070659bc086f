package raftex

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/raftex/raftex/internal/e2etest"
	"github.com/raftex/raftex/node"
	"github.com/raftex/raftex/raft"
)

// The counters of docs/observability.md fed by the runtime (fsync, apply,
// proposals, snapshots taken and installed, transport, dropped events),
// each checked on real nodes doing what it counts. Those fed by the core's
// events are checked in package inspect, on the real core.

// testCluster is three nodes in this process, on loopback.
type testCluster struct {
	t     *testing.T
	cfgs  []Config
	nodes []*Node
}

func newTestCluster(t *testing.T, tune func(*node.Config)) *testCluster {
	t.Helper()
	t.Parallel()
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	peers := map[uint64]string{}
	for id := uint64(1); id <= 3; id++ {
		peers[id] = freeLoopbackAddr(t)
	}
	c := &testCluster{t: t}
	// These tests count what one leader does, so the leader must not
	// change under them unless a test makes it. With the default election
	// timeout (150–300 ms) it would whenever a loaded machine (two cores,
	// -race, the e2e suites alongside; seven of these clusters at once)
	// delayed its heartbeats or an fsync that long: an election timeout
	// is a deadline, and this one is generous. (The first election takes
	// as long: a node with LeaseRead starts in lease and grants no vote
	// for an election timeout.)
	steady := func(cfg *node.Config) {
		cfg.ElectionTick *= 20 // 3–6 s
		if tune != nil {
			tune(cfg)
		}
	}
	for id := uint64(1); id <= 3; id++ {
		cfg := Config{ID: id, DataDir: filepath.Join(dir, fmt.Sprint("n", id)), PeerAddr: peers[id],
			InitialCluster: peers, Logger: quiet, Tune: steady}
		n, err := StartNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.cfgs = append(c.cfgs, cfg)
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			if n != nil {
				n.Stop()
			}
		}
	})
	c.until("the nodes elect a leader and publish their addresses", func() error {
		if c.leader() == nil {
			return fmt.Errorf("no leader")
		}
		for _, n := range c.running() {
			if len(n.KV().Members()) != 3 {
				return fmt.Errorf("%s knows %d members' addresses", node.FormatID(n.ID()), len(n.KV().Members()))
			}
		}
		return nil
	})
	return c
}

// counterPorts hands out these tests' peer ports, below the kernel's
// ephemeral ports, from a range of their own (ports_test.go says why).
var counterPorts = e2etest.NewPorts(6000, 7000)

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	return e2etest.Addr(counterPorts.Free(t, 1)[0])
}

func (c *testCluster) running() []*Node {
	var out []*Node
	for _, n := range c.nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

func (c *testCluster) leader() *Node {
	for _, n := range c.running() {
		if n.Raft().Role() == raft.Leader {
			return n
		}
	}
	return nil
}

func (c *testCluster) followers() []*Node {
	var out []*Node
	for _, n := range c.running() {
		if n.Raft().Role() != raft.Leader {
			out = append(out, n)
		}
	}
	return out
}

// stop stops n and forgets it; restart starts it again from its data.
func (c *testCluster) stop(n *Node) int {
	c.t.Helper()
	i := int(n.ID()) - 1
	if err := n.Stop(); err != nil {
		c.t.Fatal(err)
	}
	c.nodes[i] = nil
	return i
}

func (c *testCluster) restart(i int) *Node {
	c.t.Helper()
	n, err := StartNode(c.cfgs[i])
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[i] = n
	return n
}

// until polls f (the index gauges and transport totals are sampled once a
// second) until it returns nil, failing the test after a minute.
func (c *testCluster) until(what string, f func() error) {
	c.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *testCluster) write(n *Node, count, size int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range count {
		if _, err := n.Set(ctx, fmt.Sprintf("k%d", i), []byte(strings.Repeat("v", size))); err != nil {
			c.t.Fatal(err)
		}
	}
}

// metric returns the value of n's series name{labels} (pairs): a
// counter's or gauge's value; 0 if absent.
func metric(t *testing.T, n *Node, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := n.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue series
				}
			}
			if m.Counter != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// raftex_fsync_bytes_total: the bytes of the entries made durable, on the
// leader and on every follower.
func TestCounterFsyncBytes(t *testing.T) {
	c := newTestCluster(t, nil)
	lead := c.leader()
	before := map[*Node]float64{}
	for _, n := range c.running() {
		before[n] = metric(t, n, "raftex_fsync_bytes_total")
	}
	c.write(lead, 10, 1000)
	// Each entry holds its 1000-byte value and a short command (op, key,
	// session id, sequence): under 200 bytes more.
	for _, n := range c.running() {
		c.until(node.FormatID(n.ID())+" made the writes durable", func() error {
			if d := metric(t, n, "raftex_fsync_bytes_total") - before[n]; d < 10*1000 || d > 10*1200 {
				return fmt.Errorf("fsync bytes rose by %v, want 10,000 to 12,000", d)
			}
			return nil
		})
	}
}

// raftex_applied_entries_total: every entry applied, so on a node that
// started empty and took no snapshot, its applied index.
func TestCounterAppliedEntries(t *testing.T) {
	c := newTestCluster(t, nil)
	c.write(c.leader(), 7, 10)
	for _, n := range c.running() {
		c.until(node.FormatID(n.ID())+" counts every applied entry", func() error {
			got, applied := metric(t, n, "raftex_applied_entries_total"), float64(n.Raft().AppliedIndex())
			if got != applied || applied < 7 {
				return fmt.Errorf("applied entries %v, applied index %v", got, applied)
			}
			return nil
		})
	}
}

// raftex_proposals_total: proposals finished on this node, by result.
func TestCounterProposals(t *testing.T) {
	c := newTestCluster(t, nil)
	lead := c.leader()
	c.write(lead, 1, 10) // the first write registers the node's client session: one proposal more
	ok, failed := metric(t, lead, "raftex_proposals_total", "result", "ok"), metric(t, lead, "raftex_proposals_total", "result", "failed")
	c.write(lead, 5, 10)
	if d := metric(t, lead, "raftex_proposals_total", "result", "ok") - ok; d != 5 {
		t.Errorf("ok proposals rose by %v after 5 writes, want 5", d)
	}
	for _, f := range c.followers() {
		c.stop(f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := lead.Set(ctx, "lost", []byte("v")); err == nil {
		t.Fatal("a write without a quorum succeeded")
	}
	if d := metric(t, lead, "raftex_proposals_total", "result", "failed") - failed; d < 1 {
		t.Errorf("failed proposals rose by %v after a write without a quorum, want at least 1", d)
	}
}

// raftex_snapshots_total: snapshots taken (every node, every
// SnapshotEntries entries), sent (the leader, to a follower that needs
// compacted entries), restored and installed (that follower).
func TestCounterSnapshots(t *testing.T) {
	c := newTestCluster(t, func(cfg *node.Config) { cfg.SnapshotEntries, cfg.SnapshotTrailing = 20, 5 })
	lead := c.leader()
	behind := c.stop(c.followers()[0])
	c.write(lead, 60, 10)
	n := c.restart(behind)
	c.until("the restarted node catches up by a snapshot", func() error {
		if n.Raft().AppliedIndex() < lead.Raft().AppliedIndex() {
			return fmt.Errorf("applied %d of %d", n.Raft().AppliedIndex(), lead.Raft().AppliedIndex())
		}
		if got := metric(t, n, "raftex_snapshots_total", "op", "installed"); got != 1 {
			return fmt.Errorf("installed %v", got)
		}
		return nil
	})
	if got := metric(t, n, "raftex_snapshots_total", "op", "restored"); got != 1 {
		t.Errorf("the restarted node restored %v snapshots, want 1", got)
	}
	if got := metric(t, lead, "raftex_snapshots_total", "op", "sent"); got < 1 {
		t.Errorf("the leader sent %v snapshots, want at least 1", got)
	}
	// 60 writes and the members' addresses: at least 3 snapshots of 20
	// (each taken in the background once its entries applied).
	c.until("the leader takes at least 3 snapshots", func() error {
		if got := metric(t, lead, "raftex_snapshots_total", "op", "taken"); got < 3 {
			return fmt.Errorf("took %v", got)
		}
		return nil
	})
}

// raftex_transport_sent_bytes_total and _received_bytes_total: the bytes
// that crossed the peer connections, values included.
func TestCounterTransportBytes(t *testing.T) {
	c := newTestCluster(t, nil)
	lead := c.leader()
	before := map[*Node][2]float64{}
	for _, n := range c.running() {
		before[n] = [2]float64{metric(t, n, "raftex_transport_sent_bytes_total"), metric(t, n, "raftex_transport_received_bytes_total")}
	}
	const size, count = 64 << 10, 5
	c.write(lead, count, size)
	c.until("the leader counts the values it sent to both followers", func() error {
		if d := metric(t, lead, "raftex_transport_sent_bytes_total") - before[lead][0]; d < 2*count*size {
			return fmt.Errorf("sent bytes rose by %v", d)
		}
		return nil
	})
	for _, f := range c.followers() {
		c.until(node.FormatID(f.ID())+" counts the values it received", func() error {
			if d := metric(t, f, "raftex_transport_received_bytes_total") - before[f][1]; d < count*size {
				return fmt.Errorf("received bytes rose by %v", d)
			}
			return nil
		})
	}
}

// raftex_transport_dropped_messages_total: messages for a peer that
// cannot be reached are dropped, and counted.
func TestCounterTransportDropped(t *testing.T) {
	c := newTestCluster(t, nil)
	lead := c.leader()
	before := metric(t, lead, "raftex_transport_dropped_messages_total")
	c.stop(c.followers()[0])
	c.until("the leader counts the heartbeats it could not deliver", func() error {
		if d := metric(t, lead, "raftex_transport_dropped_messages_total") - before; d < 1 {
			return fmt.Errorf("dropped rose by %v", d)
		}
		return nil
	})
}

// raftex_events_dropped_total: events a subscriber too slow to read them
// lost; never more than the subscriptions say they missed.
func TestCounterEventsDropped(t *testing.T) {
	c := newTestCluster(t, func(cfg *node.Config) { cfg.EventBuffer = 8 })
	lead := c.leader()
	sub := lead.Raft().Subscribe() // never read
	defer sub.Close()
	c.write(lead, 5, 10)
	c.until("the leader counts the events the subscriber lost", func() error {
		got := metric(t, lead, "raftex_events_dropped_total")
		if got < 1 || got > float64(sub.Dropped()) {
			return fmt.Errorf("events dropped %v, the subscription missed %d", got, sub.Dropped())
		}
		return nil
	})
}
