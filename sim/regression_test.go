package sim

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/raftex/raftex/raft"
)

// Each bug the simulator found keeps a test here, named for the bug, with
// the seed that found it. A seed replays exactly only with the simulator
// it ran on, so where a later change to the simulator moved the seed away
// from the bug, the test also pins the scenario itself.

// runFor runs the simulation's events for d of virtual time.
func runFor(s *sim, d time.Duration) {
	end := s.now + d
	for s.q.len() > 0 && s.q.h[0].at <= end && !s.failed() {
		ev := s.q.pop()
		s.now = ev.at
		ev.fn()
	}
}

// TestRegressionStaleSnapshotLivelock: seed 102077 (5 nodes,
// -faults=dup=0.0585,part=0.314,oneway=0.445,pause=0.689,transfer=0.226)
// failed Liveness: after the faults stopped, follower n2 stayed behind
// for good. Its acknowledgements had been lost, so the leader believed it
// at index 329, below the leader's compacted log, and sent its snapshot at
// 350 again every heartbeat. But n2 held a snapshot of its own at 372:
// the store refused the older body (raft.ErrSnapshotOutOfDate), so the
// message never reached n2's core, the transfer was reported failed, and
// the leader sent it again, forever. package node's transport handler
// (ReceiveSnapshot) does the same. The fix: step the message anyway; the
// core sees its log covers the snapshot and answers with its commit index.
func TestRegressionStaleSnapshotLivelock(t *testing.T) {
	s := newSim(Options{Seed: 7, Nodes: 3})
	s.p.snapEvery = 5
	for _, n := range s.nodes {
		if err := n.start(); err != nil {
			t.Fatal(err)
		}
	}
	s.clients.start()
	runFor(s, 3*time.Second)
	s.clients.stopped = true
	runFor(s, time.Second) // quiet: from now on only heartbeats flow
	l := s.leader()
	if s.failed() || l == nil {
		t.Fatalf("no leader after 3s: %v", s.violation)
	}
	f := s.node(l.id%3 + 1)
	if snap, _ := f.store.Snapshot(); snap.Meta.Index < 2 {
		t.Fatalf("follower n%d took no snapshot", f.id)
	}
	var trace bytes.Buffer
	s.tr.w = &trace
	stale := raft.Message{Type: raft.MsgSnap, From: l.id, To: f.id, Term: l.core.Status().Term,
		Snapshot: &raft.Snapshot{Meta: raft.SnapshotMeta{Index: 1, Term: s.chk.committed[1].term, Membership: s.membership}}}
	f.input(func() { f.receive(stale, nil) })
	runFor(s, 50*time.Millisecond)
	if s.failed() {
		t.Fatal(s.violation)
	}
	if want := fmt.Sprintf("send    AppendEntriesReply %d→%d", f.id, l.id); !strings.Contains(trace.String(), want) {
		t.Fatalf("n%d got an InstallSnapshot older than its own snapshot and did not answer the leader:\n%s", f.id, trace.String())
	}

	faults, err := ParseFaults("dup=0.0585,part=0.314,oneway=0.445,pause=0.689,transfer=0.226")
	if err != nil {
		t.Fatal(err)
	}
	if res := Run(Options{Seed: 102077, Nodes: 5, Faults: faults}); res.Failed() {
		t.Fatalf("%v\nreplay: %s", res.Violation, res.Repro())
	}
}
