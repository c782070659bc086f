package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The scenarios of issue 4, each run over loopback TCP with real WALs
// (real time, generous deadlines) and over transport/mem with in-memory
// disks inside a synctest bubble (virtual time).

func TestClusterTCP(t *testing.T) {
	c := newTestCluster(t, 3)
	clusterScenario(t, c, 30*time.Second)
}

func TestClusterMem(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(1))
		clusterScenario(t, c, 30*time.Second)
	})
}

// clusterScenario: election; replication and commit; a linearizable Read
// on a follower; the leader stopped and a new one elected while writes
// continue; the old leader restarted and caught up; identical FSMs.
func clusterScenario(t *testing.T, c *testCluster, timeout time.Duration) {
	lead := c.waitLeader(timeout)

	c.writeMany("a", 200, 16)
	c.waitConverged(timeout)
	for _, id := range c.ids {
		if got := len(c.fsms[id].commands()); got != 200 {
			t.Fatalf("node %d applied %d distinct commands, want 200", id, got)
		}
	}

	// Thesis §6.4: once Read returns on a follower (ReadIndex obtained
	// from the leader), the follower's FSM reflects every write that was
	// committed before Read was called.
	c.write(timeout, "latest")
	f := c.follower(c.waitLeader(timeout))
	c.read(f, false, timeout)
	if !c.fsms[f].contains("latest") {
		t.Fatalf("Read on follower %d returned before it applied the latest committed write", f)
	}

	w := c.startWriter("b")
	c.eventually(timeout, "writes before the leader stops", func() bool { return w.count() >= 20 })
	c.stop(lead)
	others := c.live()
	next := c.waitLeaderAmong(timeout, others...)
	if next == lead {
		t.Fatalf("stopped node %d still leads", lead)
	}
	atElection := w.count()
	c.eventually(timeout, "writes under the new leader", func() bool { return w.count() >= atElection+50 })

	c.start(lead)
	atRestart := w.count()
	c.eventually(timeout, "writes after the restart", func() bool { return w.count() >= atRestart+50 })
	acked := w.stop()
	c.waitConverged(timeout)
	for _, id := range c.ids {
		cmds := c.fsms[id].commands()
		for _, cmd := range acked {
			if !cmds[cmd] {
				t.Fatalf("node %d lacks acknowledged write %q", id, cmd)
			}
		}
	}
}

func TestCatchUpBySnapshotTCP(t *testing.T) {
	c := newTestCluster(t, 3, withConfig(snapshotEvery(1000, 200)))
	catchUpScenario(t, c, 60*time.Second)
}

func TestCatchUpBySnapshotMem(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(2), withConfig(snapshotEvery(1000, 200)))
		catchUpScenario(t, c, 60*time.Second)
	})
}

// snapshotEvery makes compaction happen within a test's writes.
func snapshotEvery(entries, trailing uint64) func(*Config) {
	return func(cfg *Config) { cfg.SnapshotEntries, cfg.SnapshotTrailing = entries, trailing }
}

// catchUpScenario: a follower is stopped while 20,000 writes and several
// compactions happen; restarted, it needs entries no log holds any more,
// so it catches up by InstallSnapshot (§7).
func catchUpScenario(t *testing.T, c *testCluster, timeout time.Duration) {
	lead := c.waitLeader(timeout)
	c.writeMany("a", 100, 8)
	c.waitConverged(timeout)
	f := c.follower(lead)
	stoppedAt := c.status(f).LastIndex
	c.stop(f)

	const writes = 20_000
	c.writeMany("b", writes, 128)
	for _, id := range c.live() {
		c.eventually(timeout, fmt.Sprintf("node %d compacting past %d", id, stoppedAt), func() bool {
			return c.status(id).FirstIndex > stoppedAt+1
		})
	}

	c.start(f)
	c.waitConverged(timeout)
	// The FSM holds the snapshot's state before the runtime reports the
	// install (Restore, then ObserveSnapshot), so a snapshot as new as the
	// last entry converges the FSMs a moment before it is counted.
	c.eventually(timeout, fmt.Sprintf("node %d reporting the snapshot it caught up by", f), func() bool {
		return c.obs[f].installed.Load() > 0
	})
	cmds := c.fsms[f].commands()
	for i := range writes {
		if !cmds[fmt.Sprint("b", i)] {
			t.Fatalf("node %d lacks write b%d", f, i)
		}
	}
}

// writer writes prefix0, prefix1, ... through whichever node leads until
// stopped, and remembers which writes were acknowledged.
type writer struct {
	mu    sync.Mutex
	acked []string
	stopc chan struct{}
	done  chan struct{}
}

func (c *testCluster) startWriter(prefix string) *writer {
	w := &writer{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stopc:
				return
			default:
			}
			cmd := fmt.Sprint(prefix, i)
			if !c.write(30*time.Second, cmd) {
				return
			}
			w.mu.Lock()
			w.acked = append(w.acked, cmd)
			w.mu.Unlock()
		}
	}()
	return w
}

// last returns the last acknowledged write ("" if none).
func (w *writer) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.acked) == 0 {
		return ""
	}
	return w.acked[len(w.acked)-1]
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *writer) stop() []string {
	close(w.stopc)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked)
}

// Over a network that loses, duplicates, delays and reorders messages,
// with partitions and power cuts coming and going: every Read sees every
// write acknowledged before it began (thesis §6.4), and in the end every
// acknowledged write is in every state machine and they all agree.
func TestUnreliableNetworkMem(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			bubble(t, func(t *testing.T) { unreliableNetwork(t, seed) })
		})
	}
}

func unreliableNetwork(t *testing.T, seed uint64) {
	c := newTestCluster(t, 3, withMemNetwork(seed), withConfig(snapshotEvery(50, 10)))
	c.waitLeader(30 * time.Second)
	c.network.SetDropRate(0.1)
	c.network.SetDuplicateRate(0.1)
	c.network.SetReorder(0.2, 10*time.Millisecond)
	w := c.startWriter("a")
	r := c.startReader(w)
	for round := range 6 {
		id := c.ids[(round+int(seed))%len(c.ids)]
		if round%3 == 2 {
			c.kill(id, seed)
			time.Sleep(500 * time.Millisecond)
			c.start(id)
		} else {
			c.network.Partition([]uint64{id}, others(c, id))
		}
		time.Sleep(700 * time.Millisecond)
		c.network.Heal()
		time.Sleep(300 * time.Millisecond)
	}
	reads := r.stop()
	acked := w.stop()
	c.network.SetDropRate(0)
	c.network.SetDuplicateRate(0)
	c.network.SetReorder(0, 0)
	c.write(30*time.Second, "last") // commits everything before it
	c.waitConverged(30 * time.Second)
	if len(acked) < 100 || reads < 20 {
		t.Fatalf("only %d writes and %d reads succeeded: the test proves little", len(acked), reads)
	}
	for _, id := range c.ids {
		cmds := c.fsms[id].commands()
		for _, cmd := range acked {
			if !cmds[cmd] {
				t.Fatalf("node %d lacks acknowledged write %q", id, cmd)
			}
		}
	}
}

// The whole cluster stops and starts again from its disks: every node
// restores its newest snapshot, replays the rest, and the state is what
// it was.
func TestWholeClusterRestartMem(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(22), withConfig(snapshotEvery(100, 10)))
		c.waitLeader(30 * time.Second)
		c.writeMany("a", 250, 8)
		count, hash := c.waitConverged(30 * time.Second)
		c.stopAll()
		for _, id := range c.ids {
			c.start(id)
		}
		c.waitLeader(30 * time.Second)
		gotCount, gotHash := c.waitConverged(30 * time.Second)
		if gotCount != count || gotHash != hash {
			t.Fatalf("after the restart: %d commands hash %x, want %d hash %x", gotCount, gotHash, count, hash)
		}
		for _, id := range c.ids {
			if applies, restores := c.fsms[id].calls(); restores != 1 || applies >= count {
				t.Fatalf("node %d: %d restores and %d applies of %d commands: want the snapshot restored and only the rest replayed",
					id, restores, applies, count)
			}
		}
		c.write(30*time.Second, "after")
		c.waitConverged(30 * time.Second)
	})
}

// reader reads on every live node in turn until stopped, and checks each
// successful Read against the writer: the last write acknowledged before
// the Read began must be applied when it returns.
type reader struct {
	reads atomic.Int64
	stopc chan struct{}
	done  chan struct{}
}

func (c *testCluster) startReader(w *writer) *reader {
	r := &reader{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for i := 0; ; i++ {
			select {
			case <-r.stopc:
				return
			default:
			}
			last := w.last()
			c.mu.RLock()
			id := c.ids[i%len(c.ids)]
			n, fsm := c.nodes[id], c.fsms[id]
			c.mu.RUnlock()
			if n == nil || last == "" {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := n.Read(ctx)
			cancel()
			if err != nil {
				time.Sleep(5 * time.Millisecond) // lost to a fault: try elsewhere
				continue
			}
			r.reads.Add(1)
			if !fsm.contains(last) {
				c.t.Errorf("Read on %d returned before %q, acknowledged earlier, was applied", id, last)
			}
		}
	}()
	return r
}

// stop ends the reader and returns how many reads succeeded.
func (r *reader) stop() int64 {
	close(r.stopc)
	<-r.done
	return r.reads.Load()
}
