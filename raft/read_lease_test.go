package raft

import "testing"

// Thesis §6.4 and §6.4.1: with LeaseRead on, ReadIndex still confirms the
// leadership with a heartbeat round; only ReadLease answers from the lease.
func TestReadIndexTakesRoundWhileLeaseHolds(t *testing.T) {
	c, l := leaseCluster(t)
	c.partition([]uint64{l}, others(c, l))
	c.chk.readRequested("round")
	if err := c.nodes[l].ReadIndex([]byte("round")); err != nil {
		t.Fatal(err)
	}
	c.flush()
	expectEq(t, "reads served without a quorum", len(c.reads[l]), 0)
	c.chk.readRequested("lease")
	if err := c.nodes[l].ReadLease([]byte("lease")); err != nil {
		t.Fatal(err)
	}
	c.flush()
	expectEq(t, "reads served by the lease", len(c.reads[l]), 1)
	expectEq(t, "read served", string(c.reads[l][0].RequestCtx), "lease")
}

// Thesis §6.4.1: once the lease has run out, ReadLease falls back to a
// heartbeat round, answered when a quorum acknowledges it.
func TestReadLeaseFallsBackToRoundOnceLeaseExpired(t *testing.T) {
	c, l := leaseCluster(t)
	r := c.nodes[l]
	c.partition([]uint64{l}, others(c, l))
	for r.leaseHolds() {
		c.tickAll()
		c.flush()
	}
	expectEq(t, "role of the partitioned leader", r.role, Leader)
	c.queue = nil // the rounds of those ticks are lost
	c.chk.readRequested("late")
	if err := r.ReadLease([]byte("late")); err != nil {
		t.Fatal(err)
	}
	c.flush()
	expectEq(t, "reads served by an expired lease", len(c.reads[l]), 0)
	c.heal()
	c.settle()
	expectEq(t, "reads served after the round", len(c.reads[l]), 1)
}

// A follower's read reaches the leader as MsgReadIndex, which always takes
// a round: the lease is the leader's clock, not the follower's.
func TestFollowerReadLeaseTakesRound(t *testing.T) {
	c, l := leaseCluster(t)
	f := others(c, l)[0]
	c.chk.readRequested("f")
	if err := c.nodes[f].ReadLease([]byte("f")); err != nil {
		t.Fatal(err)
	}
	c.deliver() // MsgReadIndex reaches the leader
	answers, heartbeats := 0, 0
	for _, m := range c.queue {
		switch {
		case m.Type == MsgReadIndexResp:
			answers++
		case m.Type == MsgHeartbeat && m.From == l:
			heartbeats++
		}
	}
	expectEq(t, "answers before the round", answers, 0)
	expectEq(t, "heartbeats of the round", heartbeats, 2)
	c.settle()
	expectEq(t, "reads served on the follower", len(c.reads[f]), 1)
}
