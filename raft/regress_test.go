package raft

import (
	"slices"
	"testing"
)

// Regression tests: each replays, step for step, a case the property test
// failed on (see property_test.go), named for the bug it found. The fix is
// in the commit that added the test.

// The leader pipelined MaxInflightMsgs AppendEntries to a follower and all
// were lost: with the pipeline full and no acknowledgement ever coming, it
// never sent that follower anything again (a liveness bug). Heartbeat
// replies now let one more AppendEntries out when the pipeline is full.
func TestRegress_LostFullPipelineStallsFollower(t *testing.T) {
	runCase(t, propCase{Cfg: propConfig{Nodes: 5, PreVote: true, CheckQuorum: true, LeaseRead: false, MaxSizePerMsg: 0x1, MaxInflight: 1}, Steps: []step{{opDeliverAll, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDrop, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opPropose, 5}, {opDeliver, 0}, {opReady, 2}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliverAll, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDrop, 0}, {opDup, 0}, {opDeliver, 0}, {opPropose, 1}, {opTick, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opRead, 0}, {opDeliver, 0}, {opDeliver, 0}, {opTick, 0}, {opDeliverAll, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opTick, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opReady, 2}, {opDeliver, 0}, {opTick, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opReady, 0}, {opDeliverAll, 0}, {opDrop, 0}, {opTick, 0}, {opTick, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opTick, 0}, {opDeliverAll, 0}, {opRestart, 4}, {opDeliver, 0}, {opTick, 0}, {opTick, 0}, {opReady, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opTick, 0}, {opDup, 0}, {opTick, 0}, {opRead, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDrop, 0}, {opFlush, 0}, {opDeliverAll, 0}, {opDeliverAll, 0}, {opReady, 4}, {opRestart, 1}, {opDeliverAll, 0}, {opReady, 2}, {opTick, 0}, {opDeliverAll, 0}, {opPartition, 8}, {opDeliver, 0}, {opDeliver, 0}, {opCompact, 0}, {opTick, 0}, {opFlush, 0}, {opPropose, 1}, {opDeliver, 3}, {opDeliverAll, 0}, {opPropose, 3}, {opTick, 0}, {opDeliver, 0}, {opTick, 0}, {opDeliver, 0}, {opFlush, 0}, {opDeliver, 7}, {opTick, 0}, {opDeliverAll, 0}, {opTick, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opTick, 0}, {opDeliver, 0}, {opTick, 0}, {opPartition, 12}, {opDeliver, 0}, {opDeliver, 0}, {opPropose, 1}, {opDeliver, 0}, {opDeliverAll, 0}, {opPropose, 5}, {opDeliverAll, 0}, {opTick, 0}, {opDeliverAll, 0}, {opFlush, 0}, {opDeliver, 3}, {opTick, 0}, {opDeliverAll, 0}}})
}

// leaseCluster is three nodes serving reads from the leader's lease
// (thesis §6.4.1), with a leader elected and a lease confirmed by a
// heartbeat round.
func leaseCluster(t *testing.T) (*cluster, uint64) {
	t.Helper()
	c := newCluster(t, 3, func(c *Config) {
		c.HeartbeatTick, c.ElectionTick, c.LeaseDriftTicks = 1, 5, 1
		c.PreVote, c.CheckQuorum, c.LeaseRead = false, true, true
	})
	for range 20 {
		if c.leader() != None {
			break
		}
		c.tick(1)
	}
	l := c.leader()
	if l == None {
		t.Fatal("no leader elected")
	}
	c.tick(1) // one heartbeat round: the lease is now held
	if r := c.nodes[l]; !r.leaseHolds() {
		t.Fatalf("leader %d holds no lease (until %s, now %s)", l, r.reads.leaseUntil, c.clock.now)
	}
	return c, l
}

func others(c *cluster, not ...uint64) []uint64 {
	var out []uint64
	for _, id := range c.ids {
		if !slices.Contains(not, id) {
			out = append(out, id)
		}
	}
	return out
}

// Found by the property test: a follower that had just acknowledged the
// leader's lease round was made to Campaign (an explicit API call) and won
// with the vote of a node that had been partitioned; the old leader kept
// serving reads from its lease, missing the new leader's commit. With
// LeaseRead a follower in lease now refuses to campaign.
func TestRegress_LeaseBrokenByCampaignInLease(t *testing.T) {
	c, l := leaseCluster(t)
	f := others(c, l)
	c.partition([]uint64{l}, f)
	c.nodes[f[0]].Campaign()
	c.settle()
	expectEq(t, "role of the follower asked to campaign", c.nodes[f[0]].role, Follower)
	c.chk.readRequested("x")
	if err := c.nodes[l].ReadLease([]byte("x")); err != nil {
		t.Fatal(err)
	}
	c.flush()
	expectEq(t, "reads served by the lease", len(c.reads[l]), 1)
}

// Found by the property test: after sending TimeoutNow the old leader kept
// serving lease reads, but the transfer target's voters ignore their
// leases (thesis §3.10), so a new leader could commit meanwhile. Sending
// TimeoutNow now revokes the lease for the rest of the term.
func TestRegress_LeaseBrokenByTransfer(t *testing.T) {
	c, l := leaseCluster(t)
	f := others(c, l)
	if err := c.nodes[l].TransferLeadership(f[0]); err != nil {
		t.Fatal(err)
	}
	c.deliver() // TimeoutNow reaches the target, which campaigns
	c.partition([]uint64{l}, f)
	c.settle()
	expectEq(t, "new leader", c.leader(), f[0])
	c.chk.readRequested("x")
	if err := c.nodes[l].ReadLease([]byte("x")); err != nil {
		t.Fatal(err)
	}
	c.settle()
	expectEq(t, "reads served by the old leader", len(c.reads[l]), 0)
}

// Found by reading the code, confirmed as the property test would see it:
// a follower that acknowledged the lease round restarted and at once voted
// for a node that had not heard from the leader, which won while the old
// leader still served lease reads. With LeaseRead a node keeps its promise
// for an election timeout after it starts.
func TestRegress_LeaseBrokenByRestart(t *testing.T) {
	c, l := leaseCluster(t)
	f := others(c, l)
	// f[1] stops hearing from the leader; f[0] keeps acknowledging it.
	c.partition([]uint64{l, f[0]}, []uint64{f[1]})
	c.tick(6)
	expectEq(t, "leader", c.leader(), l)
	c.restart(f[0])
	c.partition([]uint64{l}, f)
	c.nodes[f[1]].Campaign()
	c.settle()
	expectEq(t, "role of the campaigner", c.nodes[f[1]].role, Candidate)
	c.chk.readRequested("x")
	if err := c.nodes[l].ReadLease([]byte("x")); err != nil {
		t.Fatal(err)
	}
	c.flush()
	expectEq(t, "reads served by the lease", len(c.reads[l]), 1)
}

// A configuration of one voter ({2}, after removing 3 and then the leader,
// thesis §4): node 2 won term 2 at once, before its term was durable, and
// crashed; restarted in term 1 it voted for node 1 in term 2. Not a bug of
// the core, whose undurable leader never spoke (§5.1), but of the checker,
// which counted that leadership: like the simulator's, it now forgets a
// leadership a crash took before its term was durable.
func TestRegress_SingleVoterConfigurationLosesUndurableTerm(t *testing.T) {
	runCase(t, propCase{Cfg: propConfig{Nodes: 3, PreVote: true, CheckQuorum: false, LeaseRead: false, MaxSizePerMsg: 0x100000, MaxInflight: 256}, Steps: []step{{opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opCampaign, 0}, {opSettle, 0}, {opConfChange, 11}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opSettle, 0}, {opConfChange, 0}, {opDeliverAll, 0}, {opTick, 0}, {opTick, 0}, {opTick, 0}, {opTick, 0}, {opTick, 0}, {opTick, 0}, {opCrash, 0}, {opCrash, 1}}})
}

// After configuration changes node 1, a member of leader 3's
// configuration, campaigned in ever higher terms among the voters of its
// own older configuration, which did not include 3; without PreVote and
// CheckQuorum it ignored 3's AppendEntries of a lower term without an
// answer, so 3 never learned the higher term and 1 never caught up (a
// liveness bug). A node now always answers a stale AppendEntries or
// heartbeat with its term (Figure 2).
func TestRegress_StaleLeaderNeverHearsMembersHigherTerm(t *testing.T) {
	runCase(t, propCase{Cfg: propConfig{Nodes: 3, PreVote: false, CheckQuorum: false, LeaseRead: false, MaxSizePerMsg: 0x100000, MaxInflight: 1}, Steps: []step{{opDeliver, 0}, {opDeliver, 0}, {opTick, 0}, {opTick, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opSettle, 0}, {opDeliver, 0}, {opHeal, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opCampaign, 0}, {opCampaign, 2}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opSettle, 0}, {opConfChange, 1}, {opDeliverAll, 0}, {opDrop, 0}, {opTick, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opCampaign, 0}, {opTick, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opPropose, 3}, {opDeliver, 0}, {opDeliver, 0}, {opTick, 0}, {opPartition, 1}, {opTick, 0}, {opDeliver, 0}, {opPropose, 0}, {opDeliver, 0}, {opDeliver, 0}, {opConfChange, 6}, {opDeliver, 0}, {opDeliver, 0}, {opConfChange, 8}, {opDeliver, 0}, {opCampaign, 0}, {opDeliver, 0}, {opRead, 0}, {opDeliver, 0}, {opReady, 1}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opTick, 0}, {opDeliver, 0}, {opFlush, 0}, {opTransfer, 2}, {opDeliver, 0}, {opTick, 0}, {opConfChange, 3}, {opReady, 2}, {opDeliver, 0}, {opDeliver, 0}, {opReady, 2}, {opDeliver, 0}, {opDeliverAll, 0}, {opTick, 0}, {opDeliverAll, 0}, {opPropose, 2}, {opDeliver, 0}, {opFlush, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opConfChange, 1}, {opDrop, 0}, {opDeliver, 0}, {opDeliver, 0}, {opReady, 1}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opTick, 0}, {opStall, 0}, {opDeliver, 1}, {opDeliver, 3}, {opDeliver, 2}, {opRestart, 1}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opFlush, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opPropose, 3}, {opPropose, 0}, {opFlush, 0}, {opPropose, 2}, {opDeliver, 0}, {opDeliver, 0}, {opFlush, 0}, {opDup, 0}, {opDeliver, 0}, {opTick, 0}, {opDeliver, 0}, {opFlush, 0}, {opConfChange, 1}, {opDeliver, 0}, {opDeliver, 0}, {opFlush, 0}, {opDeliverAll, 0}, {opTick, 0}, {opRestart, 1}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDrop, 0}, {opDeliver, 0}, {opRead, 1}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opConfChange, 4}, {opDeliver, 0}, {opFlush, 0}, {opDeliver, 0}, {opCampaign, 1}, {opDeliver, 0}, {opDeliver, 0}, {opTick, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opConfChange, 0}, {opDeliverAll, 0}, {opReady, 2}, {opDeliver, 0}, {opDeliverAll, 0}, {opReady, 1}, {opDeliverAll, 0}, {opPropose, 1}, {opPropose, 1}, {opDeliver, 0}, {opReady, 1}, {opDeliverAll, 0}, {opDeliver, 0}, {opSettle, 0}, {opConfChange, 1}, {opFlush, 0}, {opPersist, 0}, {opDeliver, 0}, {opConfChange, 5}, {opTick, 0}, {opCampaign, 2}, {opDeliver, 0}, {opDeliver, 0}, {opConfChange, 6}, {opRestart, 2}, {opDrop, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opPersist, 1}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opPropose, 1}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opConfChange, 0}, {opTick, 0}, {opSettle, 0}, {opPartition, 2}, {opDeliver, 0}, {opDeliverAll, 0}, {opPropose, 3}, {opFlush, 0}, {opDeliver, 0}, {opDeliver, 0}, {opTick, 0}, {opConfChange, 2}, {opDeliver, 0}, {opDeliver, 0}, {opPersist, 2}, {opReady, 2}, {opDeliverAll, 0}, {opTick, 0}, {opCampaign, 1}, {opConfChange, 7}, {opSettle, 0}, {opCompact, 0}, {opPartition, 6}, {opDeliverAll, 0}, {opFlush, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opReady, 1}, {opRead, 0}, {opDeliverAll, 0}, {opTick, 0}, {opTick, 0}, {opDrop, 0}, {opCampaign, 2}, {opDrop, 0}, {opReady, 2}, {opDeliver, 0}, {opCampaign, 0}, {opTick, 0}, {opPropose, 1}, {opPropose, 1}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opPersist, 0}, {opTick, 0}, {opDeliver, 0}, {opDeliver, 0}, {opCampaign, 1}, {opDeliver, 0}, {opTick, 0}, {opDrop, 0}, {opTick, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDup, 0}, {opDeliver, 0}, {opPropose, 0}, {opDeliverAll, 0}, {opRead, 1}, {opDeliver, 0}, {opSettle, 0}, {opTick, 0}, {opPropose, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opCampaign, 0}, {opReady, 1}, {opTick, 0}, {opTick, 0}, {opDeliver, 0}, {opTick, 0}, {opDeliver, 0}, {opConfChange, 4}, {opConfChange, 1}, {opDeliver, 0}, {opDeliverAll, 0}, {opDup, 0}, {opFlush, 0}, {opDeliverAll, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opTick, 0}, {opTick, 0}, {opPersist, 2}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opCampaign, 1}, {opDeliver, 0}, {opTick, 0}, {opDeliver, 0}, {opTick, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opPropose, 3}, {opDeliver, 0}, {opDeliver, 0}, {opFlush, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opTick, 0}, {opDeliverAll, 0}, {opDeliverAll, 0}, {opSettle, 0}, {opDeliver, 0}, {opRestart, 0}, {opDeliver, 0}, {opStall, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opConfChange, 4}, {opFlush, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opTick, 0}, {opDeliver, 0}, {opCampaign, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opRestart, 1}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opConfChange, 0}, {opDeliver, 0}, {opReady, 1}, {opDeliver, 0}, {opCampaign, 2}, {opTick, 0}, {opDeliver, 0}, {opCampaign, 1}, {opDeliver, 0}, {opDeliver, 0}, {opPropose, 1}, {opTick, 0}, {opPersist, 0}, {opTick, 0}, {opDeliverAll, 0}, {opSettle, 0}, {opCampaign, 2}, {opDeliverAll, 0}, {opHeal, 0}, {opCampaign, 1}, {opDeliver, 0}, {opDeliver, 0}, {opDup, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opTick, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opCampaign, 2}, {opDeliver, 0}, {opFlush, 0}, {opDeliver, 0}, {opReady, 0}, {opDeliver, 0}, {opPersist, 2}, {opCampaign, 0}, {opCampaign, 1}, {opDeliver, 0}, {opDeliver, 0}, {opFlush, 0}, {opPartition, 3}, {opReady, 0}, {opPropose, 2}, {opDeliver, 0}, {opDeliver, 0}, {opTick, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opTick, 0}, {opReady, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opPropose, 2}, {opTick, 0}, {opDeliver, 0}, {opPropose, 1}, {opHeal, 0}, {opDeliver, 0}, {opPartition, 6}, {opPropose, 3}, {opConfChange, 2}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opFlush, 0}, {opDeliver, 0}, {opCampaign, 1}, {opDeliverAll, 0}, {opTick, 0}, {opDeliver, 0}, {opDeliver, 0}, {opSettle, 0}, {opDeliver, 0}, {opDeliver, 0}, {opFlush, 0}, {opDeliver, 0}, {opFlush, 0}, {opDeliver, 0}, {opDeliver, 0}, {opCampaign, 1}, {opDeliverAll, 0}, {opDeliver, 0}, {opReady, 0}, {opTick, 0}, {opPartition, 4}, {opTick, 0}, {opDrop, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opRestart, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opFlush, 0}, {opTick, 0}, {opRead, 0}, {opReady, 1}, {opRead, 1}, {opDup, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDrop, 0}, {opCampaign, 1}, {opTick, 0}, {opPartition, 6}, {opPartition, 1}, {opDeliver, 0}, {opTick, 0}, {opConfChange, 7}, {opDeliverAll, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opPropose, 0}, {opDup, 0}, {opPropose, 1}, {opTick, 0}, {opTick, 0}, {opFlush, 0}, {opTick, 0}, {opDeliver, 1}, {opPropose, 0}, {opFlush, 0}, {opPropose, 2}, {opReady, 0}, {opDeliver, 1}, {opTick, 0}, {opDeliver, 1}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opTick, 0}, {opSettle, 0}, {opDeliver, 0}, {opPartition, 2}, {opReady, 1}, {opFlush, 0}, {opDeliver, 0}, {opPropose, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opReady, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opCampaign, 0}, {opRestart, 1}, {opCampaign, 1}, {opDeliverAll, 0}, {opDeliver, 0}}})
}

// Node 3, the single voter of its configuration, won term 3 at once,
// wrote p1 at index 6 and crashed before its term was durable; restarted,
// it won term 3 again and wrote "final" at 6. Nothing of the first term 3
// left node 3 (§5.1), so it never existed; the checker now forgets the
// entries of a leadership it forgets.
func TestRegress_SingleVoterRewritesUndurableTerm(t *testing.T) {
	runCase(t, propCase{Cfg: propConfig{Nodes: 3, PreVote: false, CheckQuorum: false, LeaseRead: false, MaxSizePerMsg: 0x100000, MaxInflight: 256}, Steps: []step{{opDeliver, 0}, {opDeliver, 0}, {opCampaign, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliverAll, 0}, {opConfChange, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opTick, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opTick, 0}, {opDeliver, 0}, {opTick, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opTick, 0}, {opDeliver, 0}, {opTick, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opFlush, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opFlush, 0}, {opDeliver, 0}, {opConfChange, 4}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliverAll, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opRestart, 2}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opCampaign, 2}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opDeliver, 0}, {opPropose, 0}, {opCrash, 2}}})
}
