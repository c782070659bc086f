package raft

import (
	"strings"
	"testing"
)

// Snapshots and InstallSnapshot (§7).

func snapMsg(from, to, term, index, snapTerm uint64) Message {
	return Message{Type: MsgSnap, From: from, To: to, Term: term, Snapshot: &Snapshot{
		Meta: SnapshotMeta{Index: index, Term: snapTerm, Membership: NewMembership(voters3...)},
		Data: []byte("state"),
	}}
}

// §7: the leader sends InstallSnapshot to a follower that needs an entry
// it has compacted; the follower installs it, and commit and applied move
// to the snapshot's index; then replication resumes from there.
func TestSnapshot_7_LeaderSendsSnapshotWhenFollowerNeedsCompactedEntries(t *testing.T) {
	c := newCluster(t, 3, noPreVote)
	var trace []string
	c.trace = &trace
	c.campaign(1)
	c.isolate(3)
	for _, d := range []string{"a", "b", "c"} {
		c.propose(1, d)
	}
	c.settle()
	if _, err := c.stores[1].CreateSnapshot(4, c.nodes[1].membership, []byte("sm@4")); err != nil {
		t.Fatal(err)
	}
	c.heal()
	c.tick(5)

	sent := 0
	for _, m := range trace {
		if strings.HasPrefix(m, "InstallSnapshot 1→3") {
			sent++
			expectEq(t, "snapshot", m, "InstallSnapshot 1→3 term=1 snap=4/1")
		}
	}
	expectEq(t, "snapshots sent", sent, 1)
	expectEq(t, "3's first index", c.nodes[3].log.firstIndex(), 5)
	expectEq(t, "3's commit", c.nodes[3].log.committed, 4)
	expectEq(t, "3's state machine index", c.smIndex[3], 4)
	snap, _ := c.stores[3].Snapshot()
	expectEq(t, "3's stored snapshot data", string(snap.Data), "sm@4")
	expectEq(t, "leader's view of 3", c.nodes[1].prs[3].State, StateReplicate)

	c.propose(1, "d")
	c.settle()
	c.tick(5)
	expectEq(t, "3 applied after the snapshot", strings.Join(c.appliedData(3), ","), "d")
}

// §7: "if existing log entry has same index and term as snapshot's last
// included entry, retain log entries following it and reply": the
// follower keeps its matching suffix and only moves its commit index.
func TestSnapshot_7_FollowerWithMatchingEntryKeepsItsSuffix(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1, Commit: 2}, 1, 1, 1, 1, 1))
	n.step(snapMsg(1, 2, 1, 3, 1))
	rd := n.ready()
	if rd.Snapshot != nil {
		t.Fatal("the follower installed a snapshot its log already covers")
	}
	expectEq(t, "log", logTermsOf(n.Raft), "1 1 1 1 1")
	expectEq(t, "commit", n.log.committed, 3)
	expectMsgs(t, renderMsgs(rd.MessagesAfterPersist), "AppendEntriesReply 2→1 term=1 index=3")
}

// §7: otherwise the follower discards its entire log and installs the
// snapshot; its commit and applied index become the snapshot's.
func TestSnapshot_7_FollowerWithConflictingLogDiscardsIt(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 3, Commit: 1}, 1, 1, 2, 2, 2))
	n.step(snapMsg(1, 2, 3, 3, 3))
	rd := n.Ready()
	if rd.Snapshot == nil || rd.Snapshot.Meta.Index != 3 {
		t.Fatalf("Ready.Snapshot = %+v, want the snapshot at 3", rd.Snapshot)
	}
	expectEq(t, "hard state", rd.HardState, HardState{Term: 3, Commit: 3})
	expectEq(t, "entries to persist", len(rd.Entries), 0)
	expectMsgs(t, renderMsgs(rd.MessagesAfterPersist), "AppendEntriesReply 2→1 term=3 index=3")
	if err := n.st.ApplySnapshot(*rd.Snapshot); err != nil {
		t.Fatal(err)
	}
	n.st.SetHardState(rd.HardState)
	n.Advance(rd)
	expectEq(t, "first index", n.log.firstIndex(), 4)
	expectEq(t, "last index", n.log.lastIndex(), 3)
	expectEq(t, "applied", n.log.applied, 3)
	var restored bool
	for _, e := range rd.Events {
		restored = restored || (e.Kind == EventSnapshotRestored && e.Index == 3 && e.Peer == 1)
	}
	expectEq(t, "snapshot_restored event", restored, true)
}

// §7: a snapshot the follower's commit index already covers is stale.
func TestSnapshot_7_StaleSnapshotIsIgnored(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1, Commit: 4}, 1, 1, 1, 1))
	n.step(snapMsg(1, 2, 1, 2, 1))
	rd := n.ready()
	if rd.Snapshot != nil {
		t.Fatal("installed a stale snapshot")
	}
	expectMsgs(t, renderMsgs(rd.MessagesAfterPersist), "AppendEntriesReply 2→1 term=1 index=4")
}

// leaderNeedingSnapshot: leader 1 of term 1 whose log is compacted
// through 3, while follower 2 still needs entry 2.
func leaderNeedingSnapshot(t *testing.T) *testNode {
	t.Helper()
	n := leaderWithFollowers(t)
	n.Propose([]byte("a"))
	n.Propose([]byte("b"))
	n.ready()                   // entries 2, 3 to 2 and 3
	n.step(appResp(3, 1, 1, 3)) // 3 has them: they commit
	n.ready()                   // applied through 3
	if _, err := n.st.CreateSnapshot(3, n.membership, []byte("sm@3")); err != nil {
		t.Fatal(err)
	}
	// 2 lost entries 2 and 3, and rejects the next AppendEntries (prev 3).
	n.step(Message{Type: MsgAppResp, From: 2, To: 1, Term: 1, Index: 3, Reject: true, RejectHint: 2})
	return n
}

// Progress states: a follower sent a snapshot is in StateSnapshot and
// gets nothing else until it acknowledges the snapshot.
func TestSnapshot_7_SnapshotStatePausesReplication(t *testing.T) {
	n := leaderNeedingSnapshot(t)
	expectMsgs(t, n.sent(), "InstallSnapshot 1→2 term=1 snap=3/1")
	expectEq(t, "state of 2", n.prs[2].State, StateSnapshot)
	n.Propose([]byte("c"))
	expectMsgs(t, n.sent(), "AppendEntries 1→3 term=1 prev=3/1 entries=1 commit=3")
	n.step(appResp(2, 1, 1, 3))
	expectEq(t, "state of 2 once it has the snapshot", n.prs[2].State, StateReplicate)
	expectMsgs(t, n.sent(), "AppendEntries 1→2 term=1 prev=3/1 entries=1 commit=3")
}

// ReportSnapshot: when sending the snapshot failed the leader probes
// again, and sends a new snapshot; when it succeeded it waits for the
// follower's acknowledgement.
func TestSnapshot_7_ReportSnapshot(t *testing.T) {
	n := leaderNeedingSnapshot(t)
	n.ready()
	n.ReportSnapshot(2, false)
	expectEq(t, "state of 2 after a failed snapshot", n.prs[2].State, StateProbe)
	n.step(Message{Type: MsgHeartbeatResp, From: 2, To: 1, Term: 1})
	expectMsgs(t, n.sent(), "InstallSnapshot 1→2 term=1 snap=3/1")

	n.ReportSnapshot(2, true)
	expectEq(t, "state of 2 after a delivered snapshot", n.prs[2].State, StateProbe)
	expectEq(t, "next of 2", n.prs[2].Next, 4)
	expectEq(t, "paused until 2 answers", n.prs[2].isPaused(), true)
	n.ReportSnapshot(3, true) // not sending 3 a snapshot: ignored
	expectEq(t, "state of 3", n.prs[3].State, StateReplicate)
}

// A snapshot message without a snapshot is malformed and ignored.
func TestSnapshot_7_MessageWithoutSnapshotIsIgnored(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}))
	n.step(Message{Type: MsgSnap, From: 1, To: 2, Term: 1})
	expectMsgs(t, n.sent())
}

// snapshotLater is a Storage whose snapshot is not ready yet (the runtime
// is still writing it).
type snapshotLater struct{ *MemoryStorage }

func (snapshotLater) Snapshot() (Snapshot, error) { return Snapshot{}, ErrUnavailable }

// §7: when the snapshot a follower needs is not available yet, the leader
// sends nothing and tries again at the next heartbeat reply.
func TestSnapshot_7_UnavailableSnapshotIsRetriedLater(t *testing.T) {
	n := leaderNeedingSnapshot(t)
	n.ready()
	n.ReportSnapshot(2, false)
	n.log.storage = snapshotLater{n.st}
	n.step(Message{Type: MsgHeartbeatResp, From: 2, To: 1, Term: 1})
	expectMsgs(t, n.sent())
	expectEq(t, "state of 2", n.prs[2].State, StateProbe)
	n.log.storage = n.st
	n.step(Message{Type: MsgHeartbeatResp, From: 2, To: 1, Term: 1})
	expectMsgs(t, n.sent(), "InstallSnapshot 1→2 term=1 snap=3/1")
}

// §7, on restart: the state machine restored from a snapshot at Applied
// holds only committed entries, so the core counts them committed even
// when the hard state's commit, lost in a crash or written lazily, lags
// behind; it never hands them out again (simulator seed 306824).
func TestRestart_7_AppliedEntriesCountAsCommitted(t *testing.T) {
	st := storeWith(voters3, HardState{Term: 1, Commit: 5}, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	n := newTestNode(t, 2, st, func(c *Config) { c.Applied = 8 })
	expectEq(t, "commit after restart", n.log.committed, 8)
	if n.HasReady() {
		if rd := n.Ready(); len(rd.CommittedEntries) > 0 {
			t.Fatalf("entries %d..%d handed out again", rd.CommittedEntries[0].Index, rd.CommittedEntries[len(rd.CommittedEntries)-1].Index)
		}
	}
	// Applied past the log's end cannot all be counted.
	n = newTestNode(t, 3, storeWith(voters3, HardState{Term: 1}, 1, 1, 1), func(c *Config) { c.Applied = 7 })
	expectEq(t, "commit capped at the last index", n.log.committed, 3)
}

// §7, issue 10 item 7: a transport may lose an InstallSnapshot without
// ever reporting it (its sender crashed, the connection dropped unseen).
// The leader, paused in StateSnapshot, does not wait forever: after an
// election timeout without a report it probes again and sends the
// snapshot anew, and the follower catches up.
func TestSnapshot_7_LostSnapshotIsRetriedAfterAnElectionTimeout(t *testing.T) {
	c := newCluster(t, 3, noPreVote)
	c.campaign(1)
	c.isolate(3)
	for _, d := range []string{"a", "b", "c"} {
		c.propose(1, d)
	}
	c.settle()
	if _, err := c.stores[1].CreateSnapshot(4, c.nodes[1].membership, []byte("sm@4")); err != nil {
		t.Fatal(err)
	}
	c.heal()
	lost, ticks := 0, 0
	c.vanish = func(m Message) bool {
		if m.Type == MsgSnap && lost == 0 {
			lost++ // gone, and nobody tells the leader
			return true
		}
		return false
	}
	for ; ticks < 10*c.nodes[1].cfg.ElectionTick && c.smIndex[3] < 4; ticks++ {
		c.tickAll()
		c.settle()
	}
	expectEq(t, "snapshots lost", lost, 1)
	expectEq(t, "3's state machine index", c.smIndex[3], 4)
	if max := 2 * c.nodes[1].cfg.ElectionTick; ticks > max {
		t.Errorf("caught up after %d ticks, want within %d", ticks, max)
	}
}
