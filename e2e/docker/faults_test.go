package docker

import (
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"
)

// Each test runs a three-node cluster under the workload (workload_test.go),
// injects its fault, waits for writes to go on, heals, and ends with
// workload.check: every acknowledged write on every node, and the history
// linearizable. The tests run one after the other: on two cores, parallel
// clusters would starve each other into elections nobody asked for.

// TestDockerLeaderKill: `docker kill` (SIGKILL) of the leader's container;
// the others elect a leader and writes go on; `docker start` brings it
// back, and it catches up.
func TestDockerLeaderKill(t *testing.T) {
	c := newCluster(t)
	w := startWorkload(t, c)
	w.waitWrites(50, "before the fault")
	old := c.leader(c.nodes...)
	c.kill(old)
	lead := c.leader(c.others(old)...)
	t.Logf("%s killed; %s leads (%d writes acknowledged)", old.name, lead.name, w.acknowledged())
	w.waitWrites(50, old.name+" down")
	c.start(old)
	c.leader(c.nodes...)
	w.waitWrites(50, old.name+" back")
	w.check()
}

// TestDockerPartitionedLeader cuts the leader off the peer network (the
// test still reaches it): the majority elects a new leader and serves; the
// old one commits nothing (a write through it answers 503 and never
// applies, a linearizable read through it answers 503 rather than a stale
// value). Reconnected, it follows the new leader and catches up.
func TestDockerPartitionedLeader(t *testing.T) {
	c := newCluster(t)
	w := startWorkload(t, c)
	w.waitWrites(50, "before the fault")
	old := c.leader(c.nodes...)
	before := mustStatus(t, old)
	c.disconnect(old)
	lead := c.leader(c.others(old)...)
	after := mustStatus(t, lead)
	if after.Term <= before.Term {
		t.Fatalf("new leader %s at term %d, the old one led at term %d", lead.name, after.Term, before.Term)
	}
	t.Logf("%s cut off at term %d; %s leads at term %d", old.name, before.Term, lead.name, after.Term)

	// A write through the cut-off node cannot commit: 503, outcome
	// unknown. (Its own session, so that no retry could apply it twice.)
	lost := kvInput{Kind: opPut, Key: "partition/lost", Value: "lost"}
	start, call := time.Now(), w.now()
	code, body, _, err := do(http.MethodPut, old.url("/v1/kv/"+lost.Key), []byte(lost.Value),
		"Raftex-Client-Id", c.prefix+"-probe", "Raftex-Request-Seq", "1")
	if err != nil {
		t.Fatalf("write through the cut-off %s: %v", old.name, err)
	}
	if code != http.StatusServiceUnavailable {
		t.Fatalf("write through the cut-off %s = %d %s, want 503", old.name, code, body)
	}
	w.record(testClient, lost, kvOutput{Unknown: true}, call, math.MaxInt64)
	t.Logf("write through the cut-off %s: 503 after %s", old.name, time.Since(start).Round(time.Millisecond))
	code, body, _, err = do(http.MethodGet, old.url("/v1/kv/hot/0"), nil)
	if err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("linearizable read through the cut-off %s = %d %s (%v), want 503", old.name, code, body, err)
	}
	w.waitWrites(50, "through the majority, "+old.name+" cut off")
	// CheckQuorum (thesis §6.2): a leader that hears from no quorum for an
	// election timeout steps down by itself.
	eventually(t, deadline, "the cut-off "+old.name+" stops leading", func() error {
		st, err := status(old)
		if err != nil {
			return err
		}
		if st.Role == "leader" || st.Leader != "" {
			return fmt.Errorf("%s is %s, leader %q", old.name, st.Role, st.Leader)
		}
		return nil
	})

	c.connect(old)
	stepsDown(t, old, before)
	c.leader(c.nodes...)
	// The write the cut-off leader took never applied, anywhere.
	for _, m := range c.nodes {
		call := w.now()
		code, body, _, err := do(http.MethodGet, m.url("/v1/kv/"+lost.Key), nil)
		if err != nil || code != http.StatusNotFound {
			t.Errorf("the write taken by the cut-off leader, read through %s = %d %s (%v), want 404", m.name, code, body, err)
		}
		w.record(testClient, kvInput{Kind: opGet, Key: lost.Key}, kvOutput{}, call, w.now())
	}
	w.waitWrites(50, old.name+" reconnected")
	w.check()
}

// TestDockerPausedLeader freezes the leader (`docker pause`: its
// connections stay open, it answers nothing) until the others have
// elected a new leader, which takes more than an election timeout, and
// served writes; unpaused, the old leader steps down.
func TestDockerPausedLeader(t *testing.T) {
	c := newCluster(t)
	w := startWorkload(t, c)
	w.waitWrites(50, "before the fault")
	old := c.leader(c.nodes...)
	before := mustStatus(t, old)
	c.pause(old)
	paused := time.Now()
	lead := c.leader(c.others(old)...)
	w.waitWrites(50, old.name+" paused")
	c.unpause(old)
	t.Logf("%s paused for %s; %s leads", old.name, time.Since(paused).Round(time.Millisecond), lead.name)
	stepsDown(t, old, before)
	c.leader(c.nodes...)
	w.waitWrites(50, old.name+" resumed")
	w.check()
}

// TestDockerWholeClusterRestart restarts every container: first with
// `docker restart` (SIGTERM and start, one after the other), then all at
// once, SIGKILLed together and started again. The data lives in the
// containers' filesystems: every acknowledged write survives.
func TestDockerWholeClusterRestart(t *testing.T) {
	c := newCluster(t)
	w := startWorkload(t, c)
	w.waitWrites(50, "before the restarts")
	lead := c.leader(c.nodes...)
	before := mustStatus(t, lead)
	c.restart(c.nodes...)
	c.leader(c.nodes...)
	w.waitWrites(30, "after docker restart")
	c.kill(c.nodes...)
	killedAt := w.acknowledged()
	c.start(c.nodes...)
	lead = c.leader(c.nodes...)
	if st := mustStatus(t, lead); st.CommitIndex < before.CommitIndex {
		t.Fatalf("after the restarts %s's commit index is %d, below %d before them", lead.name, st.CommitIndex, before.CommitIndex)
	}
	w.waitWrites(30, "after the whole cluster was killed and started")
	t.Logf("%d writes acknowledged before the whole cluster was killed", killedAt)
	w.check()
}

// stepsDown waits until m, which led at term before.Term, has moved to a
// later term: a leader leaves its term only by stepping down (§5.1), so it
// no longer leads at the term it led.
func stepsDown(t *testing.T, m *member, before statusBody) {
	t.Helper()
	eventually(t, deadline, m.name+" steps down", func() error {
		st, err := status(m)
		if err != nil {
			return err
		}
		if st.Term <= before.Term {
			return fmt.Errorf("%s is %s at term %d, the term it led", m.name, st.Role, st.Term)
		}
		t.Logf("%s stepped down: %s at term %d (led at term %d), leader %q", m.name, st.Role, st.Term, before.Term, st.Leader)
		return nil
	})
}

func mustStatus(t *testing.T, m *member) statusBody {
	t.Helper()
	st, err := status(m)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
