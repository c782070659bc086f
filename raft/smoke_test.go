package raft

import "testing"

func TestSmoke(t *testing.T) {
	c := newCluster(t, 3)
	c.campaign(1)
	if c.leader() != 1 {
		t.Fatalf("leader = %d", c.leader())
	}
	c.propose(1, "a")
	c.propose(1, "b")
	c.settle()
	c.tick(10)
	for _, id := range c.ids {
		if got := c.appliedData(id); len(got) != 2 {
			t.Fatalf("node %d applied %v", id, got)
		}
	}
	c.isolate(1)
	c.tick(100)
	t.Log(c.leader(), c.nodes[1].role)
	c.heal()
	c.tick(10)
	t.Log(c.leader(), c.nodes[1].role, c.logTerms(1), c.logTerms(2))
	c.checkInvariants()
}
