package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage"
	"github.com/raftex/raftex/storage/vfs"
)

// These tests run inside synctest bubbles over transport/mem and in-memory
// disks: every wait is virtual time, so they neither sleep nor depend on
// the machine's speed.

const wait = 30 * time.Second // virtual: generous costs nothing

// others returns the ids of c other than not.
func others(c *testCluster, not uint64) []uint64 {
	return slices.DeleteFunc(slices.Clone(c.ids), func(id uint64) bool { return id == not })
}

func TestProposeReturnsFSMResult(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(3))
		lead := c.waitLeader(wait)
		for i := 1; i <= 5; i++ {
			v, err := c.nodes[lead].Propose(t.Context(), []byte(fmt.Sprint("cmd", i)))
			if err != nil {
				t.Fatal(err)
			}
			if v != i {
				t.Fatalf("proposal %d resolved with %v, want %d (what Apply returned)", i, v, i)
			}
		}
	})
}

// §8: a follower hands a proposal to the leader over the peer connection
// (MsgProp) and answers with what its own FSM's Apply returned for it.
func TestProposeOnFollowerIsForwardedToTheLeader(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(3))
		lead := c.waitLeader(wait)
		f := c.follower(lead)
		for i := 1; i <= 3; i++ {
			v, err := c.nodes[f].Propose(t.Context(), []byte(fmt.Sprint("cmd", i)))
			if err != nil {
				t.Fatalf("Propose on a follower: %v", err)
			}
			if v != i {
				t.Fatalf("proposal %d resolved with %v, want %d (what the follower's Apply returned)", i, v, i)
			}
		}
		c.waitConverged(wait)
	})
}

// A forwarded proposal whose request or answer is lost has an unknown
// outcome: the follower says so within two election timeouts instead of
// waiting for the caller's deadline.
func TestForwardedProposalLostHasUnknownOutcome(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(3))
		lead := c.waitLeader(wait)
		f := c.follower(lead)
		c.network.Partition([]uint64{f}, others(c, f))
		_, err := c.nodes[f].Propose(t.Context(), []byte("x"))
		if !errors.Is(err, ErrForwardLost) && !errors.Is(err, ErrLeadershipLost) {
			t.Fatalf("Propose forwarded into a partition: %v, want ErrForwardLost or ErrLeadershipLost", err)
		}
	})
}

func TestProposeTimesOut(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(3))
		lead := c.waitLeader(wait)
		c.network.Partition([]uint64{lead}, others(c, lead))
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if _, err := c.nodes[lead].Propose(ctx, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Propose that cannot commit: %v, want context.DeadlineExceeded", err)
		}
	})
}

// §5.3, §5.4: a leader cut off from the majority cannot commit; with
// CheckQuorum it steps down within an election timeout (thesis §6.2),
// which fails its pending proposals with ErrLeadershipLost. After the
// heal it follows the new leader and its uncommitted entry is gone.
func TestMinorityLeaderCannotCommit(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(4))
		old := c.waitLeader(wait)
		c.writeMany("a", 10, 2)
		majority := others(c, old)
		c.network.Partition([]uint64{old}, majority)

		res := proposeAsync(c.nodes[old], "minority")
		select {
		case err := <-res:
			if !errors.Is(err, ErrLeadershipLost) {
				t.Fatalf("proposal on the minority leader: %v, want ErrLeadershipLost", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("proposal on the minority leader still pending 5s after the partition")
		}
		if st := c.status(old); st.Role == raft.Leader {
			t.Fatalf("minority leader %d still leads", old)
		}
		majorityCommits(t, c, old, majority)
	})
}

// Without CheckQuorum the cut-off leader keeps leading (and committing
// nothing) until the heal shows it a higher term (§5.1); then it steps
// down and its pending proposal fails with ErrLeadershipLost.
func TestMinorityLeaderStepsDownAtHeal(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(4), withConfig(func(cfg *Config) { cfg.CheckQuorum = false }))
		old := c.waitLeader(wait)
		c.writeMany("a", 10, 2)
		majority := others(c, old)
		c.network.Partition([]uint64{old}, majority)

		res := proposeAsync(c.nodes[old], "minority")
		next := c.waitLeaderAmong(wait, majority...)
		if err := c.propose(next, "majority"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		if st := c.status(old); st.Role != raft.Leader || st.Commit >= st.LastIndex {
			t.Fatalf("cut-off leader: role %v, commit %d of %d: want still leading, its last entry uncommitted",
				st.Role, st.Commit, st.LastIndex)
		}
		select {
		case err := <-res:
			t.Fatalf("proposal on the cut-off leader finished before the heal: %v", err)
		default:
		}

		c.network.Heal()
		select {
		case err := <-res:
			if !errors.Is(err, ErrLeadershipLost) {
				t.Fatalf("proposal on the old leader after the heal: %v, want ErrLeadershipLost", err)
			}
		case <-time.After(wait):
			t.Fatal("proposal on the old leader still pending after the heal")
		}
		majorityCommits(t, c, old, majority)
	})
}

// proposeAsync proposes cmd on n and delivers the error.
func proposeAsync(n *Node, cmd string) <-chan error {
	res := make(chan error, 1)
	go func() {
		_, err := n.Propose(context.Background(), []byte(cmd))
		res <- err
	}()
	return res
}

// majorityCommits checks the end of a partition of old from majority:
// the majority commits "majority", the heal converges every node on it,
// and old's uncommitted "minority" is applied nowhere.
func majorityCommits(t *testing.T, c *testCluster, old uint64, majority []uint64) {
	t.Helper()
	next := c.waitLeaderAmong(wait, majority...)
	if err := c.propose(next, "majority"); err != nil {
		t.Fatal(err)
	}
	if c.fsms[old].contains("minority") {
		t.Fatal("the minority leader applied its own uncommitted entry")
	}
	c.network.Heal()
	c.waitLeader(wait)
	c.waitConverged(wait)
	for _, id := range c.ids {
		if c.fsms[id].contains("minority") || !c.fsms[id].contains("majority") {
			t.Fatalf("node %d: minority entry applied or majority entry missing", id)
		}
	}
}

func TestStopFailsPendingAndIsIdempotent(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(5))
		lead := c.waitLeader(wait)
		c.network.Partition([]uint64{lead}, others(c, lead)) // nothing completes on lead
		n := c.nodes[lead]
		errs := make(chan error, 6)
		for i := range 5 {
			go func() {
				_, err := n.Propose(context.Background(), []byte(fmt.Sprint("p", i)))
				errs <- err
			}()
		}
		go func() { errs <- n.Read(context.Background()) }()
		synctest.Wait() // all six are pending inside the node

		if err := n.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		for range 6 {
			if err := <-errs; !errors.Is(err, ErrStopped) {
				t.Fatalf("pending call after Stop: %v, want ErrStopped", err)
			}
		}
		if err := n.Stop(); err != nil {
			t.Fatalf("second Stop: %v", err)
		}
		if _, err := n.Propose(t.Context(), []byte("late")); !errors.Is(err, ErrStopped) {
			t.Fatalf("Propose after Stop: %v", err)
		}
		if err := n.Read(t.Context()); !errors.Is(err, ErrStopped) {
			t.Fatalf("Read after Stop: %v", err)
		}
		if _, err := n.Status(t.Context()); !errors.Is(err, ErrStopped) {
			t.Fatalf("Status after Stop: %v", err)
		}
		c.stop(lead)
	})
}

func TestSubscribeDropsCounted(t *testing.T) {
	bubble(t, func(t *testing.T) {
		const buf = 8
		c := newTestCluster(t, 3, withMemNetwork(6), withConfig(func(cfg *Config) { cfg.EventBuffer = buf }))
		lead := c.waitLeader(wait)
		n := c.nodes[lead]
		idle := n.Subscribe()   // never read
		c.writeMany("a", 20, 1) // writes are not held up by it
		if idle.Dropped() == 0 {
			t.Fatal("a subscriber that never reads missed no event")
		}
		if got := len(idle.C); got != buf {
			t.Fatalf("subscription holds %d events, want its bound %d", got, buf)
		}
		if st := c.status(lead); st.DroppedEvents < idle.Dropped() {
			t.Fatalf("Status.DroppedEvents %d < the subscriber's %d", st.DroppedEvents, idle.Dropped())
		}
		kept := len(idle.C)
		c.stop(lead)
		got := 0
		for range idle.C { // Stop closes every subscription
			got++
		}
		if got < kept {
			t.Fatalf("read %d events after Stop, want at least the %d held", got, kept)
		}
	})
}

// The Observer sees every event from the very start, including the
// node-started event published before any Subscribe could run.
func TestObserverSeesEventsFromStart(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(12))
		lead := c.waitLeader(wait)
		for _, id := range c.ids {
			if got := c.obs[id].started.Load(); got != 1 {
				t.Fatalf("node %d: observer saw %d node-started events, want 1", id, got)
			}
		}
		before := c.obs[lead].events.Load()
		c.writeMany("a", 5, 1)
		if c.obs[lead].events.Load() <= before {
			t.Fatal("the observer saw no event of the writes")
		}
	})
}

// §7: after SnapshotEntries applied entries the node snapshots its FSM and
// compacts the log, keeping SnapshotTrailing entries for slow followers.
func TestAutomaticSnapshotByEntries(t *testing.T) {
	bubble(t, func(t *testing.T) {
		const every, trailing = 100, 20
		c := newTestCluster(t, 3, withMemNetwork(7), withConfig(func(cfg *Config) {
			cfg.SnapshotEntries, cfg.SnapshotTrailing = every, trailing
		}))
		c.waitLeader(wait)
		c.writeMany("a", 350, 8)
		c.waitConverged(wait)
		for _, id := range c.ids {
			c.eventually(wait, fmt.Sprintf("snapshots on %d", id), func() bool { return c.obs[id].taken.Load() >= 3 })
			st := c.status(id)
			kept := st.LastIndex - st.FirstIndex + 1
			if st.FirstIndex <= 1 || kept < trailing || kept > every+trailing+50 {
				t.Fatalf("node %d keeps log [%d, %d]: want compaction behind the newest snapshot, %d entries kept",
					id, st.FirstIndex, st.LastIndex, trailing)
			}
		}
	})
}

func TestAutomaticSnapshotByBytes(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(7), withConfig(func(cfg *Config) {
			cfg.SnapshotEntries, cfg.SnapshotBytes = 0, 4096
		}))
		lead := c.waitLeader(wait)
		for i := range 100 {
			cmd := make([]byte, 128) // the node keeps it
			cmd[0] = byte(i)
			if _, err := c.nodes[lead].Propose(t.Context(), cmd); err != nil {
				t.Fatal(err)
			}
		}
		if got := c.obs[lead].taken.Load(); got < 2 {
			t.Fatalf("%d snapshots after 12,800 bytes with SnapshotBytes 4096", got)
		}
	})
}

// §7 and requirement 5: a restarted node restores its newest snapshot and
// applies only the entries after it.
func TestRestartReplaysOnlyAfterSnapshot(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(8), withConfig(func(cfg *Config) {
			cfg.SnapshotEntries, cfg.SnapshotTrailing = 100, 10
		}))
		lead := c.waitLeader(wait)
		c.writeMany("a", 250, 4)
		c.waitConverged(wait)
		f := c.follower(lead)
		c.eventually(wait, "two snapshots", func() bool { return c.obs[f].taken.Load() >= 2 })
		c.stop(f)

		// What the newest snapshot on f's disk holds.
		store, err := storage.Open(c.disks[f], c.dirs[f], storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		snap, _ := store.Snapshot()
		_, body, _, err := store.OpenSnapshot(snap.Meta.Index)
		if err != nil {
			t.Fatal(err)
		}
		var inSnap logFSM
		if err := inSnap.Restore(body); err != nil {
			t.Fatal(err)
		}
		body.Close()
		store.Close()
		held, _ := inSnap.state()
		if held <= 100 {
			t.Fatalf("newest snapshot holds %d commands, want the second one (> 100)", held)
		}

		c.start(f)
		total, _ := c.waitConverged(wait)
		applies, restores := c.fsms[f].calls()
		if restores != 1 || applies != total-held {
			t.Fatalf("restart: %d restores and %d applies, want 1 restore (of %d commands) and %d applies",
				restores, applies, held, total-held)
		}
	})
}

// Requirement 5: a node killed mid-write (its disk as a power cut leaves
// it) restarts with its term, vote and log, then rejoins.
func TestKilledNodeRejoins(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(9))
		lead := c.waitLeader(wait)
		c.writeMany("a", 100, 4)
		count, _ := c.waitConverged(wait)
		before := c.status(lead) // quiet: everything it acknowledged is durable

		w := c.startWriter("b")
		c.eventually(wait, "writes in flight", func() bool { return w.count() >= 20 })
		c.kill(lead, 1)
		rest := others(c, lead)
		c.waitLeaderAmong(wait, rest...)
		c.eventually(wait, "writes after the kill", func() bool { return w.count() >= 100 })
		acked := w.stop()

		// Restarted alone, it shows what its disk kept.
		c.network.Partition([]uint64{lead}, rest)
		c.start(lead)
		st := c.status(lead)
		if st.Term != before.Term || st.Vote != before.Vote || st.LastIndex < before.Commit {
			t.Fatalf("restarted with term %d vote %d last index %d, want term %d vote %d and at least index %d",
				st.Term, st.Vote, st.LastIndex, before.Term, before.Vote, before.Commit)
		}
		c.eventually(wait, "replaying its committed entries", func() bool {
			n, _ := c.fsms[lead].state()
			return n >= count
		})

		c.network.Heal()
		c.waitConverged(wait)
		cmds := c.fsms[lead].commands()
		for _, cmd := range acked {
			if !cmds[cmd] {
				t.Fatalf("rejoined node lacks acknowledged write %q", cmd)
			}
		}
	})
}

// A slow state machine never delays heartbeats: with every FSM blocked for
// twenty election timeouts, entries still commit and nobody campaigns.
func TestBlockedFSMDoesNotCauseElections(t *testing.T) {
	bubble(t, func(t *testing.T) {
		var blocked atomic.Bool
		gate := newLatch()
		defer gate.open() // before the nodes stop, even on failure
		c := newTestCluster(t, 3, withMemNetwork(10),
			withConfig(func(cfg *Config) { cfg.EventBuffer = 1 << 14 }),
			withApplyHook(func(uint64, raft.Entry) {
				if blocked.Load() {
					gate.wait()
				}
			}))
		lead := c.waitLeader(wait)
		c.writeMany("warm", 5, 1)
		term := c.status(lead).Term
		subs := map[uint64]*Subscription{}
		for _, id := range c.ids {
			subs[id] = c.nodes[id].Subscribe()
		}

		blocked.Store(true)
		res := make(chan error, 10)
		for i := range 10 {
			go func() {
				_, err := c.nodes[lead].Propose(context.Background(), []byte(fmt.Sprint("slow", i)))
				res <- err
			}()
		}
		synctest.Wait()
		target := c.status(lead).LastIndex
		for _, id := range c.ids {
			c.eventually(wait, fmt.Sprintf("commit on %d", id), func() bool { return c.status(id).Commit >= target })
		}
		time.Sleep(20 * 150 * time.Millisecond)
		for _, id := range c.ids {
			if st := c.status(id); st.Term != term || st.Leader != lead {
				t.Fatalf("node %d: term %d leader %d, want term %d leader %d", id, st.Term, st.Leader, term, lead)
			}
			if n, _ := c.fsms[id].state(); n > 5+1 {
				t.Fatalf("node %d applied %d entries through a blocked FSM", id, n)
			}
		}
		for id, sub := range subs {
			if sub.Dropped() > 0 {
				t.Fatalf("node %d dropped events: the check below would be blind", id)
			}
			for len(sub.C) > 0 {
				if e := <-sub.C; e.Kind == raft.EventElectionTimeout || e.Kind == raft.EventRoleChanged {
					t.Fatalf("node %d while the FSMs were blocked: %v", id, e)
				}
			}
		}

		blocked.Store(false)
		gate.open()
		for range 10 {
			if err := <-res; err != nil {
				t.Fatal(err)
			}
		}
		c.waitConverged(wait)
	})
}

// Requirement 7: a leader whose fsync hangs longer than an election
// timeout stops leading; the others elect a new leader and keep
// committing; once its disk returns, the old leader catches up.
func TestDiskStallLeaderStepsDown(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(11))
		old := c.waitLeader(wait)
		c.writeMany("a", 10, 2)
		oldTerm := c.status(old).Term

		release := c.faults[old].stallSyncs()
		defer release()
		res := make(chan error, 1)
		go func() {
			_, err := c.nodes[old].Propose(context.Background(), []byte("stalled"))
			res <- err
		}()
		c.eventually(wait, "the leader's fsync hanging", func() bool { return c.faults[old].syncs.Load() > 0 })
		c.eventually(wait, "the stalled leader stepping down", func() bool { return c.status(old).Role != raft.Leader })
		rest := others(c, old)
		next := c.waitLeaderAmong(wait, rest...)
		if st := c.status(next); st.Term <= oldTerm {
			t.Fatalf("new leader %d in term %d, want a term after %d", next, st.Term, oldTerm)
		}
		for i := range 20 {
			if err := c.propose(next, fmt.Sprint("b", i)); err != nil {
				t.Fatalf("write to the new leader while the old one's disk hangs: %v", err)
			}
		}
		if c.faults[old].syncs.Load() == 0 {
			t.Fatal("the stall never hung a sync")
		}

		release()
		select {
		case err := <-res:
			if err != nil && !errors.Is(err, ErrLeadershipLost) {
				t.Fatalf("proposal made before the stall: %v", err)
			}
		case <-time.After(wait):
			t.Fatal("proposal made before the stall never finished")
		}
		c.waitConverged(wait)
		for i := range 20 {
			if !c.fsms[old].contains(fmt.Sprint("b", i)) {
				t.Fatalf("old leader lacks b%d after its disk returned", i)
			}
		}
	})
}

// A failed write stops the node with ErrStorageFailed (§5.1: it cannot
// keep its promises); the others carry on.
func TestStorageFailureStopsNode(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(12))
		old := c.waitLeader(wait)
		c.writeMany("a", 10, 2)
		n := c.nodes[old]
		c.faults[old].failWrites()
		if _, err := n.Propose(t.Context(), []byte("x")); !errors.Is(err, ErrStorageFailed) {
			t.Fatalf("Propose over a failing disk: %v, want ErrStorageFailed", err)
		}
		if _, err := n.Status(t.Context()); !errors.Is(err, ErrStorageFailed) {
			t.Fatalf("Status after the failure: %v, want ErrStorageFailed", err)
		}
		if _, err := n.Propose(t.Context(), []byte("y")); !errors.Is(err, ErrStorageFailed) {
			t.Fatalf("Propose after the failure: %v, want ErrStorageFailed", err)
		}
		next := c.waitLeaderAmong(wait, others(c, old)...)
		if err := c.propose(next, "after"); err != nil {
			t.Fatal(err)
		}
		if err := n.Stop(); !errors.Is(err, ErrStorageFailed) {
			t.Fatalf("Stop of the failed node: %v, want ErrStorageFailed", err)
		}
		c.mu.Lock()
		c.nodes[old] = nil
		c.mu.Unlock()
	})
}

// Group commit: proposals that arrive while an fsync runs share the next
// one.
func TestGroupCommit(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(13))
		lead := c.waitLeader(wait)
		c.writeMany("a", 5, 1)
		n := c.nodes[lead]
		release := c.faults[lead].stallSyncs()
		defer release()
		res := make(chan error, 101)
		propose := func(cmd string) {
			_, err := n.Propose(context.Background(), []byte(cmd))
			res <- err
		}
		go propose("first")
		synctest.Wait()
		if c.faults[lead].syncs.Load() == 0 {
			t.Fatal("the first proposal's fsync did not start")
		}
		before := c.obs[lead].fsyncs.Load()
		for i := range 100 {
			go propose(fmt.Sprint("b", i))
		}
		synctest.Wait() // all 100 wait in the core while the fsync hangs
		release()
		for range 101 {
			if err := <-res; err != nil {
				t.Fatal(err)
			}
		}
		if got := c.obs[lead].fsyncs.Load() - before; got > 3 {
			t.Fatalf("101 proposals took %d fsyncs on the leader, want at most 3", got)
		}
	})
}

// Thesis §6.4.1: with LeaseRead, ReadLease is answered from the leader's
// lease even when no quorum is reachable; Read (ReadIndex) always takes a
// heartbeat round, so it cannot complete then.
func TestReadLease(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(14), withConfig(func(cfg *Config) { cfg.LeaseRead = true }))
		lead := c.waitLeader(wait)
		c.writeMany("a", 5, 1)
		time.Sleep(100 * time.Millisecond) // heartbeat rounds renew the lease
		c.network.Partition([]uint64{lead}, others(c, lead))
		n := c.nodes[lead]

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := n.ReadLease(ctx); err != nil {
			t.Fatalf("ReadLease within the lease: %v", err)
		}
		if err := n.Read(ctx); err == nil {
			t.Fatal("Read succeeded on a leader cut off from every follower")
		}
	})
}

// Without LeaseRead, ReadLease is Read: no answer without a quorum.
func TestReadLeaseOffTakesRound(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(14))
		lead := c.waitLeader(wait)
		c.writeMany("a", 5, 1)
		c.network.Partition([]uint64{lead}, others(c, lead))
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := c.nodes[lead].ReadLease(ctx); err == nil {
			t.Fatal("ReadLease without LeaseRead succeeded with no quorum")
		}
	})
}

// Thesis §6.4: a follower's Read returns only once its FSM applied the
// read index, however far behind its FSM is.
func TestFollowerReadWaitsForApply(t *testing.T) {
	bubble(t, func(t *testing.T) {
		var slow atomic.Uint64
		gate := newLatch()
		defer gate.open() // before the nodes stop, even on failure
		c := newTestCluster(t, 3, withMemNetwork(15), withApplyHook(func(id uint64, _ raft.Entry) {
			if slow.Load() == id {
				gate.wait()
			}
		}))
		lead := c.waitLeader(wait)
		f := c.follower(lead)
		slow.Store(f)
		if err := c.propose(lead, "x"); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.nodes[f].Read(context.Background()) }()
		time.Sleep(time.Second)
		select {
		case err := <-done:
			t.Fatalf("Read on a follower whose FSM is blocked returned (%v)", err)
		default:
		}
		slow.Store(0)
		gate.open()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !c.fsms[f].contains("x") {
			t.Fatal("Read returned before the follower applied the write")
		}
	})
}

// Stop lets the write in flight finish: the disk it leaves holds nothing a
// power cut could take away, and the node restarts from it.
func TestStopLeavesDiskConsistent(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(16))
		lead := c.waitLeader(wait)
		w := c.startWriter("a")
		c.eventually(wait, "writes", func() bool { return w.count() >= 50 })
		c.stop(lead)
		acked := w.stop()

		disk := c.disks[lead]
		durable := disk.CrashClone(rand.New(rand.NewPCG(1, 2)))
		hsNow, lastNow := storedState(t, disk, c.dirs[lead])
		hsCrash, lastCrash := storedState(t, durable, c.dirs[lead])
		if hsNow != hsCrash || lastNow != lastCrash {
			t.Fatalf("after Stop the disk holds %v up to %d, but only %v up to %d is durable",
				hsNow, lastNow, hsCrash, lastCrash)
		}

		c.start(lead)
		c.waitConverged(wait)
		cmds := c.fsms[lead].commands()
		for _, cmd := range acked {
			if !cmds[cmd] {
				t.Fatalf("restarted node lacks acknowledged write %q", cmd)
			}
		}
	})
}

// storedState opens the store in dir on fs and returns its hard state and
// last index.
func storedState(t *testing.T, fs vfs.FS, dir string) (raft.HardState, uint64) {
	t.Helper()
	s, err := storage.Open(fs, dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hs, _, _ := s.InitialState()
	last, _ := s.LastIndex()
	return hs, last
}

// Thesis §3.10: TransferLeadership hands leadership to the chosen voter,
// and writes go on under it.
func TestTransferLeadership(t *testing.T) {
	bubble(t, func(t *testing.T) {
		c := newTestCluster(t, 3, withMemNetwork(17))
		old := c.waitLeader(wait)
		c.writeMany("a", 20, 2)
		to := c.follower(old)
		if err := c.nodes[old].TransferLeadership(t.Context(), to); err != nil {
			t.Fatal(err)
		}
		c.eventually(wait, "the transfer", func() bool { return c.agreedLeader() == to })
		if err := c.propose(to, "after"); err != nil {
			t.Fatal(err)
		}
		c.waitConverged(wait)
		if err := c.nodes[old].TransferLeadership(t.Context(), to); !errors.Is(err, raft.ErrNotLeader) {
			t.Fatalf("TransferLeadership on a follower: %v, want ErrNotLeader", err)
		}
	})
}

// Thesis §6.4.1, issue 10 bug 1, through the runtime: the leader's core
// goroutine stalls for 2 s (a GC or VM pause: its ticker drops the ticks it
// misses); the others elect a new leader, which commits a write; a
// ReadLease sent to the old leader while it is stalled must not be served
// from before that write when it resumes. The lease is measured on the
// clock, so the stall ended it: the read takes a heartbeat round (and
// fails, or is served with the write). Cut off from the others while
// stalled, a leader with a lease in ticks serves the stale read every
// time; without the partition, when its core takes the read before the
// new leader's messages (half the runs).
func TestReadLeaseAfterStallIsNotStale(t *testing.T) {
	for _, partitioned := range []bool{true, false} {
		t.Run(fmt.Sprintf("partitioned=%t", partitioned), func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				c := newTestCluster(t, 3, withMemNetwork(15), withConfig(func(cfg *Config) { cfg.LeaseRead = true }))
				lead := c.waitLeader(wait)
				c.writeMany("before", 3, 1)
				c.read(lead, true, wait) // the lease holds
				stalled, resume := make(chan struct{}), make(chan struct{})
				go c.nodes[lead].control(func(*raft.Raft) { close(stalled); <-resume })
				<-stalled
				if partitioned {
					c.network.Partition([]uint64{lead}, others(c, lead))
				}
				newLead := c.waitLeaderAmong(wait, others(c, lead)...)
				if err := c.propose(newLead, "after"); err != nil {
					t.Fatal(err)
				}
				time.Sleep(2 * time.Second)
				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
				defer cancel()
				errc := make(chan error, 1)
				go func() { errc <- c.nodes[lead].ReadLease(ctx) }()
				synctest.Wait() // the read waits in the stalled core's queue
				close(resume)
				if err := <-errc; err == nil && !c.fsms[lead].contains("after") {
					t.Fatal("a ReadLease on the stalled old leader was served without the write the new leader committed")
				}
			})
		})
	}
}

// §5.1, issue 10 bug 3, through the runtime: a single voter with a learner
// wins its election at once; while the write of its new term hangs, no
// message of that term may reach the learner (were the voter to crash
// then, it would win the same term again with other entries).
func TestSingleVoterSpeaksOnlyOnceItsTermIsDurable(t *testing.T) {
	bubble(t, func(t *testing.T) {
		oneVoter := raft.Membership{Voters: []uint64{1}, Learners: []uint64{2}}
		c := newTestCluster(t, 2, withMemNetwork(16), withConfig(func(cfg *Config) { cfg.InitialMembership = oneVoter }))
		release := c.faults[1].stallSyncs()
		defer release()
		c.eventually(wait, "node 1 campaigns and its write hangs", func() bool { return c.faults[1].syncs.Load() > 0 })
		time.Sleep(time.Second)
		if st := c.status(2); st.Term != 0 || st.LastIndex != 0 {
			t.Fatalf("the learner heard of term %d (last index %d) before the voter's term was durable", st.Term, st.LastIndex)
		}
		release()
		c.eventually(wait, "the learner follows the voter", func() bool {
			st := c.status(2)
			return st.Term >= 1 && st.LastIndex >= 1
		})
	})
}

// Issue 10 item 4: a slow state machine never grows memory without bound.
// With the leader's FSM blocked, the core hands the applier no more than
// MaxApplyingBytes (plus one entry), and the leader refuses proposals once
// MaxUncommittedBytes are waiting, while heartbeats keep the followers
// from starting an election. Unblocked, everything accepted applies.
func TestSlowStateMachineIsBoundedByBackPressure(t *testing.T) {
	bubble(t, func(t *testing.T) {
		const entry = 1 << 10
		var slow atomic.Uint64
		gate := newLatch()
		defer gate.open()
		c := newTestCluster(t, 3, withMemNetwork(17), withConfig(func(cfg *Config) {
			cfg.MaxApplyingBytes = 8 * entry
			cfg.MaxUncommittedBytes = 32 * entry
		}), withApplyHook(func(id uint64, _ raft.Entry) {
			if slow.Load() == id {
				gate.wait()
			}
		}))
		lead := c.waitLeader(wait)
		term := c.status(lead).Term
		slow.Store(lead)
		var accepted, dropped atomic.Int64
		var wg sync.WaitGroup
		for i := range 200 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				_, err := c.nodes[lead].Propose(ctx, append([]byte(fmt.Sprintf("%04d", i)), make([]byte, entry-4)...))
				switch {
				case errors.Is(err, raft.ErrProposalDropped):
					dropped.Add(1)
				case err == nil || errors.Is(err, context.DeadlineExceeded):
					accepted.Add(1)
				default:
					t.Errorf("proposal %d: %v", i, err)
				}
			})
		}
		time.Sleep(2 * time.Second)
		if st, max := c.status(lead), uint64(9*(entry+64)); st.ApplyingBytes > max {
			t.Errorf("%d bytes are handed to the state machine and not applied, want at most %d", st.ApplyingBytes, max)
		}
		if dropped.Load() == 0 {
			t.Error("the leader took every proposal while its state machine was blocked")
		}
		if st := c.status(lead); st.Role != raft.Leader || st.Term != term {
			t.Errorf("leadership changed while the state machine was blocked: %v in term %d (was leader in %d)", st.Role, st.Term, term)
		}
		slow.Store(0)
		gate.open()
		wg.Wait()
		c.waitConverged(wait)
	})
}
