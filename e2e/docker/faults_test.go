package docker

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/raftex/raftex/client"
	"github.com/raftex/raftex/internal/e2etest"
	"github.com/raftex/raftex/internal/kvmodel"
)

// Each test runs a three-node cluster under the workload (internal/kvload),
// injects its fault, waits for writes to go on, heals, and ends with
// cluster.check: every acknowledged write on every node, and the history
// linearizable. The tests run one after the other: on two cores, parallel
// clusters would starve each other into elections nobody asked for.

// TestDockerLeaderKill: `docker kill` (SIGKILL) of the leader's container;
// the others elect a leader and writes go on; `docker start` brings it
// back, and it catches up.
func TestDockerLeaderKill(t *testing.T) {
	c := newCluster(t)
	w := startWorkload(t, c)
	w.WaitWrites(50, "before the fault")
	old := c.leader(c.nodes...)
	c.kill(old)
	lead := c.leader(c.others(old)...)
	t.Logf("%s killed; %s leads (%d writes acknowledged)", old.Name, lead.Name, w.Acknowledged())
	w.WaitWrites(50, old.Name+" down")
	c.start(old)
	c.leader(c.nodes...)
	w.WaitWrites(50, old.Name+" back")
	c.check(w)
}

// TestDockerPartitionedLeader cuts the leader off the peer network (the
// test still reaches it): the majority elects a new leader and serves; the
// old one commits nothing (a write through it answers 503 and never
// applies, a linearizable read through it answers 503 rather than a stale
// value). Reconnected, it follows the new leader and catches up.
func TestDockerPartitionedLeader(t *testing.T) {
	c := newCluster(t)
	w := startWorkload(t, c)
	w.WaitWrites(50, "before the fault")
	old := c.leader(c.nodes...)
	before := mustStatus(t, old)
	c.disconnect(old)
	lead := c.leader(c.others(old)...)
	after := mustStatus(t, lead)
	if after.Term <= before.Term {
		t.Fatalf("new leader %s at term %d, the old one led at term %d", lead.Name, after.Term, before.Term)
	}
	t.Logf("%s cut off at term %d; %s leads at term %d", old.Name, before.Term, lead.Name, after.Term)

	// A write through the cut-off node cannot commit: 503, outcome
	// unknown. (The node's own session keeps its retries from applying
	// it twice.)
	lost := kvmodel.Input{Kind: kvmodel.Put, Key: "partition/lost", Value: "lost"}
	start, call := time.Now(), w.Now()
	r, err := e2etest.Do(probe, http.MethodPut, old.URL("/v1/kv/"+lost.Key), []byte(lost.Value))
	if err != nil {
		t.Fatalf("write through the cut-off %s: %v", old.Name, err)
	}
	if r.Code != http.StatusServiceUnavailable {
		t.Fatalf("write through the cut-off %s = %d %s, want 503", old.Name, r.Code, r.Body)
	}
	w.Record(lost, kvmodel.Output{Unknown: true}, call, kvmodel.Never)
	t.Logf("write through the cut-off %s: 503 after %s", old.Name, time.Since(start).Round(time.Millisecond))
	r, err = old.Get("/v1/kv/hot/0")
	if err != nil || r.Code != http.StatusServiceUnavailable {
		t.Fatalf("linearizable read through the cut-off %s = %d %s (%v), want 503", old.Name, r.Code, r.Body, err)
	}
	w.WaitWrites(50, "through the majority, "+old.Name+" cut off")
	// CheckQuorum (thesis §6.2): a leader that hears from no quorum for an
	// election timeout steps down by itself.
	poll.Until(t, "the cut-off "+old.Name+" stops leading", func() error {
		st, err := old.Status()
		if err != nil {
			return err
		}
		if st.Role == "leader" || st.Leader != "" {
			return fmt.Errorf("%s is %s, leader %q", old.Name, st.Role, st.Leader)
		}
		return nil
	})

	c.connect(old)
	stepsDown(t, old, before)
	c.leader(c.nodes...)
	// The write the cut-off leader took never applied, anywhere.
	for _, m := range c.nodes {
		call := w.Now()
		r, err := m.Get("/v1/kv/" + lost.Key)
		if err != nil || r.Code != http.StatusNotFound {
			t.Errorf("the write taken by the cut-off leader, read through %s = %d %s (%v), want 404", m.Name, r.Code, r.Body, err)
		}
		w.Record(kvmodel.Input{Kind: kvmodel.Get, Key: lost.Key}, kvmodel.Output{}, call, w.Now())
	}
	w.WaitWrites(50, old.Name+" reconnected")
	c.check(w)
}

// TestDockerPausedLeader freezes the leader (`docker pause`: its
// connections stay open, it answers nothing) until the others have
// elected a new leader, which takes more than an election timeout, and
// served writes; unpaused, the old leader steps down.
func TestDockerPausedLeader(t *testing.T) {
	c := newCluster(t)
	w := startWorkload(t, c)
	w.WaitWrites(50, "before the fault")
	old := c.leader(c.nodes...)
	before := mustStatus(t, old)
	c.pause(old)
	paused := time.Now()
	lead := c.leader(c.others(old)...)
	w.WaitWrites(50, old.Name+" paused")
	c.unpause(old)
	t.Logf("%s paused for %s; %s leads", old.Name, time.Since(paused).Round(time.Millisecond), lead.Name)
	stepsDown(t, old, before)
	c.leader(c.nodes...)
	w.WaitWrites(50, old.Name+" resumed")
	c.check(w)
}

// TestDockerWholeClusterRestart restarts every container: first with
// `docker restart` (SIGTERM and start, one after the other), then all at
// once, SIGKILLed together and started again. The data lives in the
// containers' filesystems: every acknowledged write survives.
func TestDockerWholeClusterRestart(t *testing.T) {
	c := newCluster(t)
	w := startWorkload(t, c)
	w.WaitWrites(50, "before the restarts")
	lead := c.leader(c.nodes...)
	before := mustStatus(t, lead)
	c.restart(c.nodes...)
	c.leader(c.nodes...)
	w.WaitWrites(30, "after docker restart")
	c.kill(c.nodes...)
	killedAt := w.Acknowledged()
	c.start(c.nodes...)
	lead = c.leader(c.nodes...)
	if st := mustStatus(t, lead); st.CommitIndex < before.CommitIndex {
		t.Fatalf("after the restarts %s's commit index is %d, below %d before them", lead.Name, st.CommitIndex, before.CommitIndex)
	}
	w.WaitWrites(30, "after the whole cluster was killed and started")
	t.Logf("%d writes acknowledged before the whole cluster was killed", killedAt)
	c.check(w)
}

// stepsDown waits until m, which led at term before.Term, has moved to a
// later term: a leader leaves its term only by stepping down (§5.1), so it
// no longer leads at the term it led.
func stepsDown(t *testing.T, m *member, before client.Status) {
	t.Helper()
	poll.Until(t, m.Name+" steps down", func() error {
		st, err := m.Status()
		if err != nil {
			return err
		}
		if st.Term <= before.Term {
			return fmt.Errorf("%s is %s at term %d, the term it led", m.Name, st.Role, st.Term)
		}
		t.Logf("%s stepped down: %s at term %d (led at term %d), leader %q", m.Name, st.Role, st.Term, before.Term, st.Leader)
		return nil
	})
}

func mustStatus(t *testing.T, m *member) client.Status {
	t.Helper()
	st, err := m.Status()
	if err != nil {
		t.Fatal(err)
	}
	return st
}
