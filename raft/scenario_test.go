package raft

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// The classic scenarios of the paper, run on the cluster harness with the
// Figure 3 checker watching every step.

func noPreVote(c *Config) { c.PreVote, c.CheckQuorum = false, false }

// Figure 7: a leader of term 8 meets followers with every kind of
// divergent log — missing entries (a, b), extra uncommitted entries (c, d),
// both (e, f) — and repairs them all to its own log (§5.3).
func TestScenario_Figure7_DivergentFollowersAreRepaired(t *testing.T) {
	logs := map[uint64][]uint64{
		1: {1, 1, 1, 4, 4, 5, 5, 6, 6, 6},       // the leader to be
		2: {1, 1, 1, 4, 4, 5, 5, 6, 6},          // (a)
		3: {1, 1, 1, 4},                         // (b)
		4: {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6},    // (c)
		5: {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}, // (d)
		6: {1, 1, 1, 4, 4, 4, 4},                // (e)
		7: {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3},    // (f)
	}
	ids := []uint64{1, 2, 3, 4, 5, 6, 7}
	c := newClusterWithStores(t, ids, func(id uint64) *MemoryStorage {
		return storeWith(ids, HardState{Term: 7}, logs[id]...)
	}, noPreVote)
	var trace []string
	c.trace = &trace

	c.campaign(1)

	expectEq(t, "leader", c.leader(), 1)
	expectEq(t, "term", c.nodes[1].term, 8)
	for _, id := range ids {
		// The leader's log, then its no-op of term 8.
		expectEq(t, fmt.Sprintf("log of node %d", id), c.logTerms(id), "1 1 1 4 4 5 5 6 6 6 8")
		expectEq(t, fmt.Sprintf("commit of node %d", id), c.nodes[id].log.committed, 11)
	}
	// (d) and (c) voted no: (d)'s last term is 7, (c)'s log is longer.
	for _, e := range c.events[5] {
		if e.Kind == EventVoteGranted {
			t.Fatalf("(d), whose last term is 7, granted a vote to a log ending in term 6")
		}
	}
	// With the conflict hint a follower needs one rejected AppendEntries
	// per divergent term, not one per entry: (e) and (f) two each.
	want := map[uint64]int{2: 1, 3: 1, 4: 0, 5: 0, 6: 2, 7: 2}
	for id, n := range want {
		got := 0
		for _, m := range trace {
			if strings.HasPrefix(m, fmt.Sprintf("AppendEntriesReply %d→1 ", id)) && strings.Contains(m, "reject") {
				got++
			}
		}
		expectEq(t, fmt.Sprintf("rejections from node %d", id), got, n)
	}
}

// figure8 plays Figure 8 and returns the cluster, after the step where S1,
// leader of term 4, has replicated its term-2 entry at index 2 to a
// majority (S1, S2, S3) but not its no-op of term 4. The paper's point:
// the term-2 entry must not count as committed here, because S5 (last
// term 3) could still be elected and overwrite it.
func figure8(t tb) *cluster {
	ids := []uint64{1, 2, 3, 4, 5}
	logs := map[uint64][]uint64{1: {1, 2}, 2: {1, 2}, 3: {1}, 4: {1}, 5: {1, 3}}
	hs := map[uint64]HardState{
		1: {Term: 3, Commit: 1}, 2: {Term: 2, Vote: 1, Commit: 1},
		3: {Term: 3, Vote: 5, Commit: 1}, 4: {Term: 3, Vote: 5, Commit: 1}, 5: {Term: 3, Vote: 5, Commit: 1},
	}
	c := newClusterWithStores(t, ids, func(id uint64) *MemoryStorage {
		return storeWith(ids, hs[id], logs[id]...)
	}, noPreVote, func(c *Config) { c.MaxSizePerMsg = 1 })
	// (c) S1 is elected in term 4 by S1, S2, S3 and sends S3 the entry of
	// term 2 at index 2, but not its no-op of term 4 at index 3.
	c.partition([]uint64{1, 2, 3}, []uint64{4}, []uint64{5})
	c.drop = func(m Message) bool {
		acked := c.nodes[1] != nil && c.nodes[1].prs[3] != nil && c.nodes[1].prs[3].Match >= 2
		return acked && m.From == 1 && m.To == 3 && m.Type == MsgApp && len(m.Entries) > 0
	}
	c.campaign(1)
	return c
}

// Figure 8: an entry of an earlier term is never committed by counting
// replicas (§5.4.2); only the current term's no-op commits it.
func TestScenario_Figure8_OldTermEntryIsNotCommittedByCounting(t *testing.T) {
	c := figure8(t)
	expectEq(t, "leader", c.leader(), 1)
	expectEq(t, "term", c.nodes[1].term, 4)
	expectEq(t, "S3's log", c.logTerms(3), "1 2")
	expectEq(t, "S1's match for S3", c.nodes[1].prs[3].Match, 2)
	// Index 2 (term 2) is on S1, S2, S3: a majority. Still not committed.
	expectEq(t, "S1's commit", c.nodes[1].log.committed, 1)

	// (d) S1 crashes; S5 (last term 3) is elected by S3 and S4 and
	// replaces index 2 everywhere, even on S2 which had S1's no-op:
	// nothing committed was lost.
	c.crash(1)
	c.drop = nil
	c.partition([]uint64{1}, []uint64{2, 3, 4, 5})
	c.campaign(5) // term 4: S2 and S3 already voted for S1
	c.campaign(5) // term 5: S3 and S4 vote for S5
	expectEq(t, "leader", c.leader(), 5)
	for _, id := range []uint64{2, 3, 4, 5} {
		expectEq(t, "log", c.logTerms(id), "1 3 5")
	}

	// (e) had S1 stayed, its no-op of term 4 would commit index 2 with it.
	c2 := figure8(t)
	c2.drop = nil
	c2.tick(5) // a heartbeat round: S3 answers, and gets index 3
	expectEq(t, "S1's commit once its no-op is on a majority", c2.nodes[1].log.committed, 3)
}

// Split vote (§5.2): two candidates split the votes of a 4-node cluster;
// nobody wins, and each candidate times out at its own randomized
// timeout, so the next election is won.
func TestScenario_5_2_SplitVoteIsResolvedByRandomizedTimeouts(t *testing.T) {
	c := newCluster(t, 4, noPreVote)
	c.nodes[1].Campaign()
	c.nodes[3].Campaign()
	c.flush()
	// 1 asks 2 first, 3 asks 4 first: each gets one vote, 2 of 4.
	for _, m := range c.take(isType(MsgVote)) {
		if (m.From == 1 && m.To == 2) || (m.From == 3 && m.To == 4) {
			c.deliverMsg(m)
		}
	}
	c.settle()
	expectEq(t, "leader after the split vote", c.leader(), None)
	expectEq(t, "role of 1", c.nodes[1].role, Candidate)
	expectEq(t, "role of 3", c.nodes[3].role, Candidate)
	t1, t3 := c.nodes[1].randomizedElectionTimeout, c.nodes[3].randomizedElectionTimeout
	if t1 == t3 {
		t.Fatalf("both candidates drew timeout %d", t1)
	}
	for range 2 * 15 {
		c.tick(1)
		if c.leader() != None {
			break
		}
	}
	l := c.leader()
	if l == None {
		t.Fatal("no leader after two election timeouts")
	}
	expectEq(t, "term of the winner", c.nodes[l].term, 2)
}

// A leader cut off from the cluster keeps believing it leads until the
// partition heals; the first message it gets from the new term makes it
// step down, and its uncommitted entries are replaced (§5.1, §5.3).
func TestScenario_5_1_PartitionedStaleLeaderStepsDownOnHeal(t *testing.T) {
	c := newCluster(t, 3, noPreVote)
	c.campaign(1)
	c.isolate(1)
	c.propose(1, "lost")
	c.settle()
	c.campaign(2)
	c.propose(2, "kept")
	c.settle()
	expectEq(t, "old leader's role while cut off", c.nodes[1].role, Leader)
	expectEq(t, "new leader", c.leader(), 2)

	c.heal()
	c.tick(5) // a heartbeat of term 2 reaches 1
	expectEq(t, "old leader's role", c.nodes[1].role, Follower)
	expectEq(t, "old leader's term", c.nodes[1].term, 2)
	expectEq(t, "old leader's log", c.logTerms(1), c.logTerms(2))
	if got := c.appliedData(1); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("node 1 applied %q, want [kept]", got)
	}
}

// A node restarts with a longer log whose last term is stale: §5.4.1 keeps
// it from being elected, and the leader truncates its extra entries.
func TestScenario_5_4_1_RestartedNodeWithLongerStaleLogIsNotElected(t *testing.T) {
	c := newCluster(t, 3, noPreVote)
	c.campaign(1)
	c.crash(3)
	c.isolate(1)
	for i := range 3 {
		c.propose(1, "stale"+string(rune('0'+i)))
	}
	c.settle() // 1's log: 1 1 1 1, on 1 alone
	c.crash(1)
	c.heal()
	c.start(3)
	c.campaign(2)
	c.propose(2, "new")
	c.settle()
	c.start(1)
	expectEq(t, "restarted node's log", c.logTerms(1), "1 1 1 1")
	expectEq(t, "leader's log", c.logTerms(2), "1 2 2")

	c.nodes[1].Campaign() // term 2: 2 and 3 already voted
	c.settle()
	c.nodes[1].Campaign() // term 3: 2 and 3 refuse the stale log
	c.settle()
	expectEq(t, "leader", c.leader(), None) // 2 stepped down to term 3
	for _, id := range []uint64{2, 3} {
		refused := false
		for _, e := range c.events[id] {
			refused = refused || (e.Kind == EventVoteRejected && e.Peer == 1 && e.Term == 3 && e.Reason == "candidate log not up to date (§5.4.1)")
		}
		if !refused {
			t.Fatalf("node %d did not refuse node 1's longer but stale log in term 3", id)
		}
	}
	c.nodes[2].Campaign()
	c.settle()
	expectEq(t, "leader", c.leader(), 2)
	expectEq(t, "restarted node's log", c.logTerms(1), "1 2 2 4")
}

// AppendEntries arrive reordered and duplicated: a delayed message never
// truncates entries a later one added (§5.3, "if an existing entry
// conflicts ..." — matching entries do not conflict), and the follower
// ends with the leader's log.
func TestScenario_5_3_ReorderedAndDuplicatedAppendEntries(t *testing.T) {
	c := newCluster(t, 3, noPreVote)
	c.campaign(1)
	c.propose(1, "a")
	c.flush()
	first := c.take(isType(MsgApp))
	c.propose(1, "b")
	c.propose(1, "c")
	c.flush()
	second := c.take(isType(MsgApp))
	for _, m := range append(first, second...) {
		c.deliverMsg(m)
	}
	c.flush()
	expectEq(t, "follower 2's log", c.logTerms(2), "1 1 1 1")
	// The older message again, after the newer one, then both reordered:
	// nothing is truncated, and the replies change nothing on the leader.
	for _, batch := range [][]Message{first, second, first} {
		for _, m := range batch {
			c.deliverMsg(m)
		}
		c.flush()
		expectEq(t, "follower 2's log", c.logTerms(2), "1 1 1 1")
	}
	c.settle()
	c.tick(1)
	for _, id := range c.ids {
		if got := c.appliedData(id); !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Fatalf("node %d applied %q", id, got)
		}
	}
}
