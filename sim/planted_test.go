//go:build raftbugs

package sim

import (
	"context"
	"flag"
	"testing"

	nodepkg "github.com/raftex/raftex/node"
	"github.com/raftex/raftex/raft"
)

// The planted bugs (raft/bugs.go) prove the simulator can fail: with each
// switched on, a campaign as CI runs it (seeds from 1, 3/5/7 nodes in
// turn, a different fault mix per seed) must catch it within the stated
// number of seeds, with a violation of one of the expected checks. Run
// with
//
//	go test -tags raftbugs ./sim -run Planted -v
//
// Each test logs the first seed that caught the bug, what it broke, and
// the command that replays it (TestPlantedReplay).

var flagBug = flag.String("bug", "", "TestPlantedReplay: the planted bug to switch on (a field of raft.PlantedBugs)")

var plantedBugs = map[string]*bool{
	"CommitOldTerm":           &raft.PlantedBugs.CommitOldTerm,
	"SkipElectionRestriction": &raft.PlantedBugs.SkipElectionRestriction,
	"VoteBeforePersist":       &raft.PlantedBugs.VoteBeforePersist,
	"ApplyUncommitted":        &raft.PlantedBugs.ApplyUncommitted,
	"TruncateMatchingSuffix":  &raft.PlantedBugs.TruncateMatchingSuffix,
	"LeadBeforePersist":       &raft.PlantedBugs.LeadBeforePersist,
	"LeaseInTicks":            &raft.PlantedBugs.LeaseInTicks,
	// The runtime's (package node's Machine and registry, which the
	// simulator drives as package node does).
	"AckBeforeFsync":      &nodepkg.PlantedBugs.AckBeforeFsync,
	"ReadBeforeApplied":   &nodepkg.PlantedBugs.ReadBeforeApplied,
	"ResolveIgnoringTerm": &nodepkg.PlantedBugs.ResolveIgnoringTerm,
}

// TestPlantedReplay replays one seed with one planted bug switched on:
//
//	go test -tags raftbugs ./sim -run TestPlantedReplay -bug=CommitOldTerm -seed=6 -nodes=7 -faults=... -v -showtrace
func TestPlantedReplay(t *testing.T) {
	if *flagBug == "" || *flagSeed == 0 {
		t.Skip("needs -bug and -seed")
	}
	bug, ok := plantedBugs[*flagBug]
	if !ok {
		t.Fatalf("-bug=%s: not a planted bug", *flagBug)
	}
	*bug = true
	defer func() { *bug = false }()
	TestSim(t)
}

// expectCaught switches bug on, runs seeds until one fails, and requires
// that to happen within the first within seeds and to break one of the
// checks listed.
func expectCaught(t *testing.T, name string, within int, checks ...string) {
	bug := plantedBugs[name]
	*bug = true
	defer func() { *bug = false }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sum := RunCampaign(ctx, Campaign{Seeds: within, FirstSeed: 1, Progress: func(r *Result) {
		if r.Failed() {
			cancel()
		}
	}})
	if sum.Failed == 0 {
		t.Fatalf("no violation in %d seeds", sum.Seeds)
	}
	// Seeds are handed out in order, so every seed below the lowest
	// failing one ran and passed: it is the first seed that catches the bug.
	first := sum.Failures[0]
	t.Logf("caught by seed %d of at most %d (%d nodes): %v\nreplay: go test -tags raftbugs ./sim -run TestPlantedReplay -bug=%s -seed=%d -nodes=%d -faults=%s",
		first.Seed, within, first.Nodes, first.Violation, name, first.Seed, first.Nodes, first.Faults)
	for _, c := range checks {
		if first.Violation.Check == c {
			return
		}
	}
	t.Fatalf("caught as %q, want one of %q", first.Violation.Check, checks)
}

// Figure 8: a leader commits an entry of an earlier term by counting
// replicas. Caught as the rule it breaks, §5.4.2 (first at seed 6 when
// written).
func TestPlantedCommitOldTerm(t *testing.T) {
	expectCaught(t, "CommitOldTerm", 100, "Commit by counting replicas", "Leader Completeness", "State Machine Safety")
}

// A voter grants its vote to a candidate whose log is behind (§5.4.1): the
// candidate wins without committed entries (first at seed 1).
func TestPlantedSkipElectionRestriction(t *testing.T) {
	expectCaught(t, "SkipElectionRestriction", 50, "Leader Completeness", "State Machine Safety", "Log Matching")
}

// A vote leaves before it is durable (§5.1); a crash during the fsync
// loses it, and the node restarts without the vote it gave (first at seed
// 15).
func TestPlantedVoteBeforePersist(t *testing.T) {
	expectCaught(t, "VoteBeforePersist", 150, "Durable before speech", "One vote per term", "Election Safety")
}

// Entries reach the state machine before they are committed (§5.3; first
// at seed 1).
func TestPlantedApplyUncommitted(t *testing.T) {
	expectCaught(t, "ApplyUncommitted", 10, "Apply only committed", "State Machine Safety")
}

// A stale AppendEntries cuts off matching entries after it (§5.3 rule 3:
// only a conflicting entry may be removed; first at seed 1).
func TestPlantedTruncateMatchingSuffix(t *testing.T) {
	expectCaught(t, "TruncateMatchingSuffix", 20, "Acknowledged entries kept", "Committed entries kept", "Leader Completeness", "State Machine Safety")
}

// A leader speaks before its new term is durable: a single voter (with
// learners) that wins at once and crashes before the write restarts in
// the old term (§5.1, issue 10 bug 3).
func TestPlantedLeadBeforePersist(t *testing.T) {
	expectCaught(t, "LeadBeforePersist", 600, "Durable before speech", "Log Matching")
}

// The leader lease counted in ticks: a paused leader resumes with its
// lease still valid by its tick count and answers a lease read that misses
// a write the new leader committed (thesis §6.4.1, issue 10 bug 1).
func TestPlantedLeaseInTicks(t *testing.T) {
	expectCaught(t, "LeaseInTicks", 1000, "Linearizability")
}

// The runtime sends acknowledgements and votes before the write they
// speak of is durable (Ready rule 3, §5.1).
func TestPlantedAckBeforeFsync(t *testing.T) {
	expectCaught(t, "AckBeforeFsync", 300, "Durable before speech", "One vote per term", "Election Safety")
}

// The runtime serves a read once its read index is confirmed, before the
// state machine applied through it (Ready rule 4, thesis §6.4).
func TestPlantedReadBeforeApplied(t *testing.T) {
	expectCaught(t, "ReadBeforeApplied", 300, "Linearizability")
}

// The runtime's registry answers a proposal with whatever entry applied
// at its index, though another leader's entry took its place (§5.3):
// another client's result, or (the new leader's empty entry) no result at
// all, which the simulated server finds is not a kv.Result ("State
// machine").
func TestPlantedResolveIgnoringTerm(t *testing.T) {
	expectCaught(t, "ResolveIgnoringTerm", 1000, "Linearizability", "Acknowledged write kept", "State machine")
}
