package raft

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Membership changes (thesis chapter 4).

// addNode starts id as a server that joins: an empty log and no
// configuration; it learns both from the leader.
func (c *cluster) addNode(id uint64) {
	c.t.Helper()
	c.ids = append(c.ids, id)
	c.stores[id] = NewMemoryStorage(Membership{})
	c.start(id)
}

// conf proposes ccs on node id and fails the test on an error.
func (c *cluster) conf(id uint64, ccs ...ConfChange) uint64 {
	c.t.Helper()
	i, _, err := c.nodes[id].ProposeConfChange(ccs...)
	if err != nil {
		c.t.Fatalf("ProposeConfChange on %d: %v", id, err)
	}
	return i
}

func hasEvent(evs []Event, kind EventKind, peer uint64, reason string) bool {
	for _, e := range evs {
		if e.Kind == kind && (peer == None || e.Peer == peer) && strings.Contains(e.Reason, reason) {
			return true
		}
	}
	return false
}

// stableLeader returns a cluster of n whose node 1 leads and has committed
// an entry of its term.
func stableLeader(t *testing.T, n int, opts ...func(*Config)) *cluster {
	t.Helper()
	c := newCluster(t, n, opts...)
	c.campaign(1)
	expectEq(t, "leader", c.leader(), 1)
	return c
}

// Thesis §4.1: every invalid change is refused with an error naming why.
func TestConf_4_1_InvalidChangesAreRefusedWithTheirReason(t *testing.T) {
	c := stableLeader(t, 3)
	c.addNode(4)
	c.conf(1, ConfChange{Type: AddLearner, ID: 4})
	c.settle()
	for _, tc := range []struct {
		ccs  []ConfChange
		want string
	}{
		{nil, "no change"},
		{[]ConfChange{{Type: AddLearner, ID: 0}}, "id 0 is reserved"},
		{[]ConfChange{{Type: AddLearner, ID: 2}}, "node 2 is already a voter"},
		{[]ConfChange{{Type: AddVoter, ID: 2}}, "node 2 is already a voter"},
		{[]ConfChange{{Type: AddLearner, ID: 4}}, "node 4 is already a learner"},
		{[]ConfChange{{Type: RemoveMember, ID: 9}}, "node 9 is not a member"},
		{[]ConfChange{{Type: AddLearner, ID: 5}, {Type: RemoveMember, ID: 5}}, "node 5 is named twice"},
		{[]ConfChange{{Type: RemoveMember, ID: 1}, {Type: RemoveMember, ID: 2}, {Type: RemoveMember, ID: 3}}, "no voter would be left"},
		{[]ConfChange{{Type: 42, ID: 5}}, "unknown change type 42"},
	} {
		_, _, err := c.nodes[1].ProposeConfChange(tc.ccs...)
		if !errors.Is(err, ErrInvalidConfChange) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ProposeConfChange(%v) = %v, want ErrInvalidConfChange: %s", tc.ccs, err, tc.want)
		}
	}
	if _, _, err := c.nodes[2].ProposeConfChange(ConfChange{Type: AddLearner, ID: 5}); !errors.Is(err, ErrNotLeader) {
		t.Errorf("ProposeConfChange on a follower: %v", err)
	}
	// One change at a time: the second waits for the first to commit.
	c.conf(1, ConfChange{Type: AddLearner, ID: 5})
	_, _, err := c.nodes[1].ProposeConfChange(ConfChange{Type: RemoveMember, ID: 4})
	if !errors.Is(err, ErrConfChangePending) || !strings.Contains(err.Error(), "not committed yet") {
		t.Errorf("a second change while one is pending: %v", err)
	}
	c.settle()
	c.conf(1, ConfChange{Type: RemoveMember, ID: 4})
	c.settle()
	// §3.10: no change during a leadership transfer.
	if err := c.nodes[1].TransferLeadership(2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.nodes[1].ProposeConfChange(ConfChange{Type: RemoveMember, ID: 5}); !errors.Is(err, ErrTransferring) {
		t.Errorf("a change during a transfer: %v", err)
	}
}

// Thesis §4.1 (and the single-server change bug of raft-dev, 2015): a new
// leader changes the configuration only once it has committed an entry of
// its term.
func TestConf_4_1_NewLeaderChangesOnlyAfterCommittingInItsTerm(t *testing.T) {
	c := newCluster(t, 3, noPreVote)
	c.nodes[1].Campaign()
	c.deliver() // vote requests
	c.deliver() // votes: 1 leads, its no-op not committed yet
	expectEq(t, "role", c.nodes[1].role, Leader)
	_, _, err := c.nodes[1].ProposeConfChange(ConfChange{Type: AddLearner, ID: 4})
	if !errors.Is(err, ErrConfChangePending) || !strings.Contains(err.Error(), "has not committed an entry of its term") {
		t.Fatalf("change before the leader's first commit: %v", err)
	}
	c.settle()
	c.conf(1, ConfChange{Type: AddLearner, ID: 4})
}

// Thesis §4.1: a server uses the latest configuration in its log, whether
// or not the entry is committed.
func TestConf_4_1_TakesEffectWhenAppendedNotWhenCommitted(t *testing.T) {
	c := stableLeader(t, 3)
	c.addNode(4)
	c.cut[[2]uint64{2, 1}], c.cut[[2]uint64{3, 1}] = true, true // no acknowledgement reaches 1
	i := c.conf(1, ConfChange{Type: AddVoter, ID: 4, Context: []byte("h4:7000")})
	expectEq(t, "leader: 4 is a staging learner at once", c.nodes[1].membership.IsStaging(4), true)
	c.settle()
	for _, id := range []uint64{1, 2, 3} {
		r := c.nodes[id]
		if r.log.committed >= i {
			t.Fatalf("node %d committed the change at %d (commit %d)", id, i, r.log.committed)
		}
		expectEq(t, "learner 4 in force on a follower before commit", r.membership.IsLearner(4), true)
		expectEq(t, "4's context", string(r.membership.Context(4)), "h4:7000")
		if !hasEvent(c.events[id], EventMemberAdded, 4, "learner") {
			t.Errorf("node %d: no member_added event for 4: %v", id, c.events[id])
		}
	}
	expectEq(t, "pending on the leader", c.nodes[1].Status().PendingConfIndex, i)
}

// Thesis §4.1: a configuration entry that is truncated takes its
// configuration with it: the server falls back to the one before.
func TestConf_4_1_TruncatedEntryRollsBack(t *testing.T) {
	c := stableLeader(t, 3)
	c.isolate(1)
	c.conf(1, ConfChange{Type: AddLearner, ID: 4})
	c.settle()
	expectEq(t, "1's membership with its uncommitted entry", c.nodes[1].membership.IsLearner(4), true)
	c.campaign(2)
	c.tick(40)
	lead := c.leader()
	if lead == 1 || lead == None {
		t.Fatalf("leader %d", lead)
	}
	c.heal()
	c.tick(20)
	expectEq(t, "1 rolled back", c.nodes[1].membership.Contains(4), false)
	if !hasEvent(c.events[1], EventConfChanged, None, "rolled back") {
		t.Errorf("no rollback event: %v", c.events[1])
	}
	expectEq(t, "1's log matches the leader's", c.logTerms(1), c.logTerms(lead))
}

// Thesis §4.1: a restarted server finds its configuration in its log.
func TestConf_4_1_RestartReplaysConfigurationEntries(t *testing.T) {
	c := stableLeader(t, 3)
	c.addNode(4)
	c.conf(1, ConfChange{Type: AddLearner, ID: 4, Context: []byte("a4")})
	c.settle()
	for _, id := range []uint64{2, 4} {
		c.restart(id)
		m := c.nodes[id].membership
		expectEq(t, "voters after restart", slices.Equal(m.Voters, []uint64{1, 2, 3}), true)
		expectEq(t, "learner after restart", m.IsLearner(4), true)
		expectEq(t, "context after restart", string(m.Context(4)), "a4")
	}
}

// Thesis §4.1: an entry that is not a legal step from the configuration
// before it is ignored, alike on every server.
func TestConf_4_1_IllegalEntryIsIgnoredWhenApplied(t *testing.T) {
	m := NewMembership(1, 2, 3)
	bad := Entry{Index: 7, Type: EntryConfChange, Data: NewMembership(1, 4, 5).Marshal()}
	if _, err := m.AfterEntry(bad); !errors.Is(err, ErrInvalidConfChange) || !strings.Contains(err.Error(), "more than one voter") {
		t.Errorf("two voters changed without joint consensus: %v", err)
	}
	if _, err := m.AfterEntry(Entry{Type: EntryConfChange, Data: []byte{9}}); err == nil {
		t.Error("undecodable entry accepted")
	}
	if _, err := m.AfterEntry(Entry{Type: EntryConfChange, Data: (Membership{Learners: []uint64{1}}).Marshal()}); err == nil {
		t.Error("entry without voters accepted")
	}
	joint := Membership{Voters: []uint64{1, 4, 5}, Outgoing: []uint64{1, 2, 3}}
	if got, err := m.AfterEntry(Entry{Type: EntryConfChange, Data: joint.Marshal()}); err != nil || !got.Joint() {
		t.Errorf("entering joint consensus: %v %v", got, err)
	}
	if _, err := joint.AfterEntry(Entry{Type: EntryConfChange, Data: NewMembership(1, 2, 3).Marshal()}); err == nil {
		t.Error("leaving joint consensus to a configuration other than C_new accepted")
	}

	// In a cluster: the follower ignores it and says so.
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}))
	n.step(Message{Type: MsgApp, From: 1, Term: 1, Entries: []Entry{{Term: 1, Index: 1, Type: EntryConfChange, Data: NewMembership(1, 4, 5).Marshal()}}})
	rd := n.ready()
	expectEq(t, "membership", n.membership.String(), "voters=[1 2 3]")
	if !hasEvent(rd.Events, EventConfChanged, None, "entry ignored") {
		t.Errorf("no event for the ignored entry: %v", rd.Events)
	}
}

// The configuration's encoding round-trips.
func TestConf_MembershipMarshalRoundTrip(t *testing.T) {
	m := Membership{Voters: []uint64{1, 4}, Learners: []uint64{5, 6}, Outgoing: []uint64{1, 2, 3}, Staging: []uint64{6},
		Contexts: map[uint64][]byte{4: []byte("h4:1"), 6: []byte("h6:1")}}
	must(t, m.Validate())
	got, err := UnmarshalMembership(m.Marshal())
	if err != nil || !got.Equal(m) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for i := range len(m.Marshal()) {
		if _, err := UnmarshalMembership(m.Marshal()[:i]); err == nil {
			t.Fatalf("a cut at %d decoded", i)
		}
	}
}

// Thesis §4.2.1: a learner receives the log but neither votes, campaigns,
// nor counts toward commitment.
func TestConf_4_2_1_LearnerDoesNotVoteOrCount(t *testing.T) {
	c := stableLeader(t, 3)
	c.addNode(4)
	c.conf(1, ConfChange{Type: AddLearner, ID: 4})
	c.settle()
	c.tick(60)
	expectEq(t, "learner stays a learner", c.nodes[1].membership.IsLearner(4), true)
	i, _ := c.propose(1, "x")
	c.settle()
	expectEq(t, "learner has the entry", c.nodes[4].log.lastIndex() >= i, true)

	c.isolate(2)
	c.isolate(3)
	j, _ := c.propose(1, "y")
	c.tick(5)
	if c.nodes[1].log.committed >= j {
		t.Fatalf("leader and learner committed %d without a majority of voters", j)
	}
	c.isolate(1) // 4 hears from nobody: it still never campaigns
	term := c.nodes[4].term
	c.tick(100)
	expectEq(t, "learner's term", c.nodes[4].term, term)
	expectEq(t, "learner's role", c.nodes[4].role, Follower)
}

// Thesis §4.2.1: AddVoter of a new server adds it as a learner, and the
// leader promotes it once a catch-up round took less than an election
// timeout; a server added with AddLearner is never promoted.
func TestConf_4_2_1_NewVoterJoinsAsLearnerAndIsPromotedOnceCaughtUp(t *testing.T) {
	c := stableLeader(t, 3)
	for range 20 {
		c.propose(1, "x")
	}
	c.settle()
	c.addNode(4)
	i := c.conf(1, ConfChange{Type: AddVoter, ID: 4})
	expectEq(t, "4 votes at once", c.nodes[1].membership.IsVoter(4), false)
	c.settle()
	expectEq(t, "4 learned it is a learner", c.nodes[4].membership.IsStaging(4), true)
	c.tick(30)
	for _, id := range []uint64{1, 2, 3, 4} {
		m := c.nodes[id].membership
		if !m.IsVoter(4) || m.Contains(5) || len(m.Staging) != 0 {
			t.Errorf("node %d: membership %v", id, m)
		}
	}
	if !hasEvent(c.events[1], EventMemberPromoted, 4, "") {
		t.Errorf("no promotion event on the leader")
	}
	expectEq(t, "a later entry", c.nodes[1].lastConfIndex() > i, true)
	expectEq(t, "4's log", c.logTerms(4), c.logTerms(1))
}

// Thesis §4.2.1: a learner far behind is promoted only once a catch-up
// round takes less than an election timeout.
func TestConf_4_2_1_SlowLearnerIsNotPromoted(t *testing.T) {
	c := stableLeader(t, 3)
	c.addNode(4)
	c.conf(1, ConfChange{Type: AddVoter, ID: 4})
	c.settle()
	c.isolate(4) // it never catches up
	for range 5 {
		c.propose(1, "x")
		c.tick(10)
	}
	expectEq(t, "still staging", c.nodes[1].membership.IsStaging(4), true)
	c.heal()
	c.tick(40)
	expectEq(t, "promoted once reachable", c.nodes[1].membership.IsVoter(4), true)
}

// Thesis §4.2.2: a leader that removes itself keeps leading until the
// change commits, without counting itself, then steps down; the others
// elect a leader.
func TestConf_4_2_2_RemovedLeaderStepsDownOnceTheChangeCommits(t *testing.T) {
	c := stableLeader(t, 3)
	c.cut[[2]uint64{2, 1}] = true // 2's acknowledgements are lost
	i := c.conf(1, ConfChange{Type: RemoveMember, ID: 1})
	c.settle()
	expectEq(t, "1 still leads", c.nodes[1].role, Leader)
	expectEq(t, "1 not in its configuration", c.nodes[1].membership.Contains(1), false)
	if c.nodes[1].log.committed >= i {
		t.Fatalf("committed %d with 1 and 3: the leader counted itself", i)
	}
	c.propose(1, "during") // it still takes proposals
	c.heal()
	c.tick(3)
	expectEq(t, "1 committed the change", c.nodes[1].log.committed >= i, true)
	expectEq(t, "1 stepped down", c.nodes[1].role, Follower)
	if !hasEvent(c.events[1], EventStepDown, None, "removed") {
		t.Errorf("no step-down event: %v", c.events[1])
	}
	c.tick(60)
	lead := c.leader()
	if lead != 2 && lead != 3 {
		t.Fatalf("leader after removal: %d", lead)
	}
	c.propose(lead, "after")
	c.settle()
	for _, id := range []uint64{2, 3} {
		expectEq(t, "2 and 3 commit without 1", strings.Join(c.appliedData(id), ","), "during,after")
	}
}

// Thesis §4.2.3: a removed server cannot disrupt the cluster: whether it
// knows of its removal (it never campaigns) or not (its PreVotes fail, and
// the voters ignore it within the minimum election timeout of hearing the
// leader), also after a restart with its old data.
func TestConf_4_2_3_RemovedServerCannotDisrupt(t *testing.T) {
	c := stableLeader(t, 4)
	// 4 knows it is removed; 3 does not (isolated while 4 was removed?
	// no: 3 is removed while isolated).
	c.conf(1, ConfChange{Type: RemoveMember, ID: 4})
	c.settle()
	c.isolate(3)
	c.conf(1, ConfChange{Type: RemoveMember, ID: 3})
	c.settle()
	c.propose(1, "x")
	c.settle()
	term := c.nodes[1].term
	c.heal()
	c.restart(3)
	c.restart(4)
	c.tick(200)
	expectEq(t, "leader", c.leader(), 1)
	expectEq(t, "term", c.nodes[1].term, term)
	expectEq(t, "4 never campaigned", c.nodes[4].term <= term, true)
	expectEq(t, "4 is not promotable", c.nodes[4].promotable(), false)
}

// Thesis §4.3: several voter changes go through joint consensus: C_old,new
// needs majorities of both configurations, and the leader moves on to
// C_new once it commits.
func TestConf_4_3_JointConsensusNeedsBothMajorities(t *testing.T) {
	c := stableLeader(t, 3)
	c.addNode(4)
	c.addNode(5)
	c.conf(1, ConfChange{Type: AddLearner, ID: 4}, ConfChange{Type: AddLearner, ID: 5})
	c.settle()
	c.partition([]uint64{1, 4, 5}, []uint64{2, 3}) // C_new's majority only
	i := c.conf(1, ConfChange{Type: AddVoter, ID: 4}, ConfChange{Type: AddVoter, ID: 5},
		ConfChange{Type: RemoveMember, ID: 2}, ConfChange{Type: RemoveMember, ID: 3})
	m := c.nodes[1].membership
	expectEq(t, "joint", m.String(), "voters=[1 4 5] outgoing=[1 2 3]")
	c.tick(5)
	if c.nodes[1].log.committed >= i {
		t.Fatalf("C_old,new committed %d without a majority of C_old", i)
	}
	c.heal()
	c.tick(5)
	for _, id := range []uint64{1, 4, 5} {
		expectEq(t, "C_new", c.nodes[id].membership.String(), "voters=[1 4 5]")
	}
	if !hasEvent(c.events[1], EventConfChanged, None, "joint consensus entered") ||
		!hasEvent(c.events[1], EventConfChanged, None, "joint consensus left") {
		t.Errorf("no joint consensus events: %v", c.events[1])
	}
	// §4.3: elections in C_old,new need both majorities too.
	votes := map[uint64]bool{1: true, 4: true, 5: true}
	expectEq(t, "C_new's majority alone", m.HasQuorum(func(id uint64) bool { return votes[id] }), false)
	votes[2] = true
	expectEq(t, "both majorities", m.HasQuorum(func(id uint64) bool { return votes[id] }), true)
}

// Thesis §4.3: the voters C_new drops still vote in C_old,new, so the
// joint configuration keeps their contexts (package node: their peer
// addresses, which a member restarted in C_old,new, or one that learns it
// from a snapshot, needs to reach them); C_new drops them.
func TestConf_4_3_OutgoingVotersKeepTheirContextsUntilCNew(t *testing.T) {
	m := Membership{Voters: []uint64{1, 2, 3}, Learners: []uint64{4, 5},
		Contexts: map[uint64][]byte{1: []byte("h1"), 2: []byte("h2"), 3: []byte("h3"), 4: []byte("h4"), 5: []byte("h5")}}
	joint, err := m.apply([]ConfChange{{Type: AddVoter, ID: 4}, {Type: AddVoter, ID: 5},
		{Type: RemoveMember, ID: 2}, {Type: RemoveMember, ID: 3}})
	if err != nil {
		t.Fatal(err)
	}
	must(t, joint.Validate())
	expectEq(t, "joint", joint.String(), "voters=[1 4 5] outgoing=[1 2 3]")
	for _, id := range []uint64{1, 2, 3, 4, 5} {
		expectEq(t, "context in C_old,new", string(joint.Context(id)), string(m.Context(id)))
	}
	cnew := joint.leaveJoint()
	expectEq(t, "C_new drops 2's context", cnew.Context(2) == nil && cnew.Context(3) == nil, true)
	expectEq(t, "C_new keeps 4's context", string(cnew.Context(4)), "h4")
	// A single removal drops the context at once.
	single, err := m.apply([]ConfChange{{Type: RemoveMember, ID: 2}})
	if err != nil {
		t.Fatal(err)
	}
	expectEq(t, "removed at once", single.Context(2) == nil, true)
}

// Thesis §4.3: a new leader elected while in C_old,new (committed) leaves
// joint consensus by itself.
func TestConf_4_3_NewLeaderLeavesJointConsensus(t *testing.T) {
	c := stableLeader(t, 3)
	c.addNode(4)
	c.conf(1, ConfChange{Type: AddLearner, ID: 4})
	c.settle()
	// The joint entry commits, but its leader crashes before the C_new
	// entry leaves.
	c.drop = func(m Message) bool {
		return m.From == 1 && m.Type == MsgApp && m.Commit > 0 && len(m.Entries) > 0 && m.Entries[0].Type == EntryConfChange && !mustJoint(m.Entries[0])
	}
	c.conf(1, ConfChange{Type: AddVoter, ID: 4}, ConfChange{Type: RemoveMember, ID: 3})
	c.settle()
	c.drop = nil
	c.crash(1)
	c.tick(80)
	lead := c.leader()
	if lead == None || lead == 1 {
		t.Fatalf("leader %d", lead)
	}
	expectEq(t, "left joint consensus", c.nodes[lead].membership.String(), "voters=[1 2 4]")
}

func mustJoint(e Entry) bool {
	m, err := UnmarshalMembership(e.Data)
	return err == nil && m.Joint()
}

// Thesis §4.2.1 with §7: a learner that needs compacted entries gets a
// snapshot, and the snapshot's configuration is in force there.
func TestConf_4_2_1_LearnerCatchesUpFromSnapshot(t *testing.T) {
	c := stableLeader(t, 3)
	c.addNode(4)
	c.conf(1, ConfChange{Type: AddLearner, ID: 4, Context: []byte("h4")})
	c.isolate(4)
	c.settle()
	for range 5 {
		c.propose(1, "x")
	}
	c.settle()
	r := c.nodes[1]
	if _, err := c.stores[1].CreateSnapshot(r.log.applied, r.confAt(r.log.applied), []byte("sm")); err != nil {
		t.Fatal(err)
	}
	must(t, c.stores[1].Compact(r.log.applied))
	c.heal()
	c.tick(5)
	m := c.nodes[4].membership
	expectEq(t, "4's configuration from the snapshot", m.IsLearner(4) && string(m.Context(4)) == "h4", true)
	expectEq(t, "4's log", c.nodes[4].log.lastIndex(), r.log.lastIndex())
}

// confAt is the configuration in force at index i (not below the applied
// index): the one a snapshot at i records.
func (r *Raft) confAt(i uint64) Membership {
	m := r.confs[0].m
	for _, c := range r.confs {
		if c.index <= i {
			m = c.m
		}
	}
	return m
}

// Thesis §4.2.2: a server whose latest configuration entry removes it but
// is not committed may still campaign in the committed configuration it
// belongs to. Here 1 alone holds the entry that removes it from {1,3}: 3
// cannot win without 1's vote (its log is behind), so 1 must win, commit
// its removal with 3 and step down. (Found by the property test.)
func TestConf_4_2_2_ServerRemovedByUncommittedEntryMayStillCampaign(t *testing.T) {
	c := stableLeader(t, 3)
	c.conf(1, ConfChange{Type: RemoveMember, ID: 2})
	c.settle()
	c.crash(2)
	c.isolate(1)
	c.conf(1, ConfChange{Type: RemoveMember, ID: 1})
	c.settle()
	c.restart(1)
	expectEq(t, "1 may campaign", c.nodes[1].promotable(), true)
	c.heal()
	c.tick(100)
	expectEq(t, "leader", c.leader(), 3)
	expectEq(t, "configuration", c.nodes[3].membership.String(), "voters=[3]")
	expectEq(t, "1 may no longer campaign", c.nodes[1].promotable(), false)
}

// Thesis §4.1 with §7: a configuration entry truncated after a snapshot
// rolls the configuration back to the snapshot's, also across a restart.
func TestConf_4_1_TruncationRollsBackToTheSnapshotsConfiguration(t *testing.T) {
	n := newTestNode(t, 2, NewMemoryStorage(Membership{}))
	ms := Membership{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}
	n.step(Message{Type: MsgSnap, From: 1, Term: 2, Snapshot: &Snapshot{Meta: SnapshotMeta{Index: 10, Term: 2, Membership: ms}}})
	n.ready()
	expectEq(t, "the snapshot's configuration", n.membership.String(), ms.String())
	conf := Entry{Index: 11, Term: 2, Type: EntryConfChange, Data: NewMembership(1, 2, 3).Marshal()}
	n.step(Message{Type: MsgApp, From: 1, Term: 2, Index: 10, LogTerm: 2, Commit: 10, Entries: []Entry{conf}})
	n.ready()
	expectEq(t, "the entry's configuration", n.membership.String(), "voters=[1 2 3]")
	// A new leader replaces entry 11.
	n.step(Message{Type: MsgApp, From: 3, Term: 3, Index: 10, LogTerm: 2, Commit: 10, Entries: []Entry{{Index: 11, Term: 3}}})
	n.ready()
	expectEq(t, "rolled back", n.membership.String(), ms.String())
	expectEq(t, "after a restart", newTestNode(t, 2, n.st).membership.String(), ms.String())
}

// Thesis §4.3 with §4.2.2: a leader in C_old but not in C_new counts itself
// toward C_old,new's C_old majority, not toward C_new: once C_new is
// appended it needs a majority of C_new without itself, then steps down.
func TestConf_4_3_LeaderNotInCNewDoesNotCountItself(t *testing.T) {
	c := stableLeader(t, 3)
	c.addNode(4)
	c.addNode(5)
	c.conf(1, ConfChange{Type: AddLearner, ID: 4}, ConfChange{Type: AddLearner, ID: 5})
	c.settle()
	var cnew uint64
	c.drop = func(m Message) bool { // only 4 acknowledges C_new
		return m.Type == MsgAppResp && (m.From == 2 || m.From == 5) && cnew != 0 && m.Index >= cnew
	}
	joint := c.conf(1, ConfChange{Type: AddVoter, ID: 4}, ConfChange{Type: AddVoter, ID: 5},
		ConfChange{Type: RemoveMember, ID: 1}, ConfChange{Type: RemoveMember, ID: 3})
	cnew = joint + 1
	c.tick(3)
	r := c.nodes[1]
	expectEq(t, "C_new appended", r.lastConfIndex(), cnew)
	expectEq(t, "C_new", r.membership.String(), "voters=[2 4 5]")
	expectEq(t, "C_old,new committed", r.log.committed >= joint, true)
	if r.log.committed >= cnew {
		t.Fatalf("C_new committed with 1 and 4: the leader counted itself")
	}
	expectEq(t, "still leading", r.role, Leader)
	c.drop = nil
	c.tick(3)
	expectEq(t, "stepped down", r.role, Follower)
}

// enterJointCut makes l, leader of {1,2,3}, enter C_old,new = {1,2,3},{l,4,5}
// while cut off from the two others: only C_new's majority hears it.
func enterJointCut(t *testing.T, c *cluster, l uint64) {
	t.Helper()
	c.addNode(4)
	c.addNode(5)
	c.conf(l, ConfChange{Type: AddLearner, ID: 4}, ConfChange{Type: AddLearner, ID: 5})
	c.settle()
	old := others(c, l, 4, 5)
	c.partition([]uint64{l, 4, 5}, old)
	c.conf(l, ConfChange{Type: AddVoter, ID: 4}, ConfChange{Type: AddVoter, ID: 5},
		ConfChange{Type: RemoveMember, ID: old[0]}, ConfChange{Type: RemoveMember, ID: old[1]})
	c.settle()
	expectEq(t, "joint", c.nodes[l].membership.Joint(), true)
}

// Thesis §4.3 with §6.4: in C_old,new a read round is confirmed only by
// majorities of both configurations.
func TestConf_4_3_ReadIndexNeedsBothMajorities(t *testing.T) {
	c := stableLeader(t, 3)
	enterJointCut(t, c, 1)
	if err := c.nodes[1].ReadIndex([]byte("r")); err != nil {
		t.Fatal(err)
	}
	c.tick(3)
	expectEq(t, "reads confirmed by C_new's majority alone", len(c.reads[1]), 0)
	c.heal()
	c.tick(3)
	expectEq(t, "reads confirmed by both", len(c.reads[1]), 1)
}

// Thesis §4.3 with §6.4.1: in C_old,new the lease is extended only by
// rounds that majorities of both configurations acknowledged.
func TestConf_4_3_LeaseNeedsBothMajorities(t *testing.T) {
	c, l := leaseCluster(t)
	enterJointCut(t, c, l)
	r := c.nodes[l]
	until := r.reads.leaseUntil
	for range 3 {
		c.tick(1)
		expectEq(t, "role", r.role, Leader)
		expectEq(t, "lease end after rounds only C_new acknowledged", r.reads.leaseUntil, until)
	}
	c.heal()
	c.tick(1)
	expectEq(t, "lease extended by both majorities", r.reads.leaseUntil > until, true)
}

// Thesis §4.3 with §6.2: in C_old,new a leader that hears from C_new's
// majority only steps down after an election timeout.
func TestConf_4_3_CheckQuorumNeedsBothMajorities(t *testing.T) {
	c := stableLeader(t, 3)
	enterJointCut(t, c, 1)
	c.tick(2 * c.nodes[1].cfg.ElectionTick)
	expectEq(t, "role", c.nodes[1].role == Leader, false)
	if !hasEvent(c.events[1], EventStepDown, None, "check quorum") {
		t.Errorf("no check-quorum step-down: %v", c.events[1])
	}
}

// Thesis §4.2.1: the staging learners are in the configuration, so a new
// leader promotes one that the old leader added.
func TestConf_4_2_1_NewLeaderPromotesAStagingLearner(t *testing.T) {
	c := stableLeader(t, 3)
	c.addNode(4)
	c.isolate(4) // 4 does not catch up while 1 leads
	c.conf(1, ConfChange{Type: AddVoter, ID: 4})
	c.settle()
	c.crash(1)
	c.tick(60)
	l := c.leader()
	if l == None {
		t.Fatal("no leader")
	}
	expectEq(t, "staging on the new leader", c.nodes[l].membership.IsStaging(4), true)
	c.heal()
	c.restart(1)
	c.tick(60)
	l = c.leader()
	expectEq(t, "promoted by the new leader", l != None && c.nodes[l].membership.IsVoter(4), true)
	if !hasEvent(c.events[l], EventMemberPromoted, 4, "") {
		t.Errorf("no promotion on %d", l)
	}
}
