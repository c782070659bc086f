//go:build raftbugs

package raft

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The planted bugs (bugs.go) prove that the checker can fail: with each
// switched on, the property test, or a targeted scenario watched by the
// same checker, must report a violation. Run with
//
//	go test -tags raftbugs -run TestPlanted ./raft
//
// A property test searches up to plantedChecks cases and fails if it finds
// no violation; CommitOldTerm is typically caught within a few hundred.
const plantedChecks = 10000

// recordTB is a rapid.TB that records a failure instead of failing the
// test, so a test can expect the property to be violated.
type recordTB struct {
	name   string
	failed bool
	out    strings.Builder
}

func (r *recordTB) Helper()                 {}
func (r *recordTB) Name() string            { return r.name }
func (r *recordTB) Logf(f string, a ...any) { fmt.Fprintf(&r.out, f+"\n", a...) }
func (r *recordTB) Log(a ...any)            { fmt.Fprintln(&r.out, a...) }
func (r *recordTB) Skipf(string, ...any)    {}
func (r *recordTB) Skip(...any)             {}
func (r *recordTB) SkipNow()                {}
func (r *recordTB) Errorf(f string, a ...any) {
	r.failed = true
	r.Logf(f, a...)
}
func (r *recordTB) Error(a ...any)            { r.failed = true; r.Log(a...) }
func (r *recordTB) Fatalf(f string, a ...any) { r.Errorf(f, a...) }
func (r *recordTB) Fatal(a ...any)            { r.Error(a...) }
func (r *recordTB) FailNow()                  { r.failed = true }
func (r *recordTB) Fail()                     { r.failed = true }
func (r *recordTB) Failed() bool              { return r.failed }

// expectViolation runs the property test with one planted bug on and
// requires it to fail with a message containing want.
func expectViolation(t *testing.T, bug *bool, want ...string) {
	t.Helper()
	setFlag(t, "rapid.checks", fmt.Sprint(plantedChecks))
	setFlag(t, "rapid.nofailfile", "true")
	*bug = true
	defer func() { *bug = false }()
	rec := &recordTB{name: t.Name()}
	rapid.Check(rec, propertyCheck)
	if !rec.failed {
		t.Fatalf("the property test found no violation in %d cases", plantedChecks)
	}
	first, _, _ := strings.Cut(rec.out.String(), "\nTo reproduce")
	t.Logf("caught: %s", first)
	if !slices.ContainsFunc(want, func(w string) bool { return strings.Contains(rec.out.String(), w) }) {
		t.Fatalf("violation mentions none of %q:\n%s", want, rec.out.String())
	}
}

func setFlag(t *testing.T, name, value string) {
	old := flag.Lookup(name).Value.String()
	if err := flag.Set(name, value); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = flag.Set(name, old) })
}

// catchTB is a harness tb whose Fatalf ends the scenario with the
// violation instead of failing the test.
type catchTB struct{ msg string }

type caught struct{}

func (c *catchTB) Helper()             {}
func (c *catchTB) Logf(string, ...any) {}
func (c *catchTB) Fatalf(f string, a ...any) {
	c.msg = fmt.Sprintf(f, a...)
	panic(caught{})
}

// scenarioViolation runs a scenario with one planted bug on and returns
// the first violation the checker reported.
func scenarioViolation(bug *bool, scenario func(tb) *cluster) (msg string) {
	*bug = true
	defer func() { *bug = false }()
	ct := &catchTB{}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(caught); !ok {
				panic(r)
			}
			msg = ct.msg
		}
	}()
	scenario(ct)
	return ""
}

// CommitOldTerm, by the property test: counting replicas of an old-term
// entry commits it while a node lacking it can still be elected.
func TestPlanted_CommitOldTerm(t *testing.T) {
	expectViolation(t, &PlantedBugs.CommitOldTerm, "Leader Completeness")
}

// CommitOldTerm, in Figure 8 itself: S1 commits index 2 of term 2 by
// counting, while S5 could still be elected and overwrite it.
func TestPlanted_CommitOldTerm_Figure8(t *testing.T) {
	msg := scenarioViolation(&PlantedBugs.CommitOldTerm, figure8)
	t.Logf("caught: %s", msg)
	if !strings.Contains(msg, "Leader Completeness: node 5 could be elected") {
		t.Fatalf("Figure 8 with CommitOldTerm: got violation %q", msg)
	}
}

// SkipElectionRestriction: a voter grants its vote to a candidate whose
// log is behind (§5.4.1). The property test sees a node that could be
// elected without a committed entry, or, as in about one run in thirty,
// first the consequence: the out-of-date winner's entry committed at an
// index where another entry was, State Machine Safety. Either check
// catching it is the bug caught.
func TestPlanted_SkipElectionRestriction(t *testing.T) {
	expectViolation(t, &PlantedBugs.SkipElectionRestriction, "Leader Completeness", "State Machine Safety")
}

// VoteBeforePersist needs a crash between sending a vote and persisting
// it, followed by a second candidate of the same term: rarely drawn at
// random, so a targeted scenario shows it (two leaders in one term).
func TestPlanted_VoteBeforePersist(t *testing.T) {
	msg := scenarioViolation(&PlantedBugs.VoteBeforePersist, voteCrashScenario)
	t.Logf("caught: %s", msg)
	if !strings.Contains(msg, "Election Safety") {
		t.Fatalf("vote crash scenario with VoteBeforePersist: got violation %q", msg)
	}
}

func TestPlanted_ApplyUncommitted(t *testing.T) {
	expectViolation(t, &PlantedBugs.ApplyUncommitted, "applying=")
}

// ConcurrentConfChanges: two single-server changes in flight make two
// voters' difference, and two disjoint majorities elect two leaders or
// commit without each other.
func TestPlanted_ConcurrentConfChanges(t *testing.T) {
	expectViolation(t, &PlantedBugs.ConcurrentConfChanges, "violated")
}

// TruncateMatchingSuffix: a follower drops entries it acknowledged. The
// property test sees it as a match index the log no longer backs, or, when
// a committed entry is lost first, as Leader Completeness (rapid seed
// 8877640205188522574).
func TestPlanted_TruncateMatchingSuffix(t *testing.T) {
	expectViolation(t, &PlantedBugs.TruncateMatchingSuffix, "Match soundness", "Leader Completeness")
}

// LeadBeforePersist: a single voter's AppendEntries leave before its new
// term is durable; crashed and re-elected in the same term, it writes
// another entry at the same index and term as one its learner kept.
func TestPlanted_LeadBeforePersist(t *testing.T) {
	msg := scenarioViolation(&PlantedBugs.LeadBeforePersist, singleVoterCrashScenario)
	t.Logf("caught: %s", msg)
	if !strings.Contains(msg, "Log Matching") {
		t.Fatalf("single voter crash scenario with LeadBeforePersist: got violation %q", msg)
	}
}

// LeaseInTicks: a leader whose goroutine stalls keeps counting a lease in
// ticks, so after the stall its ReadLease answers at once from a lease
// that ended on the clock, while the others may have elected a new leader
// and committed (TestRead_6_4_1_StalledLeaderLeaseEndsOnTheClock fails).
// The property test's opStall found it too, but only once in some
// thousands of cases once configuration changes joined its steps, so the
// scenario is the one kept here; the simulator's TestPlanted_LeaseInTicks
// shows the stale read itself.
func TestPlanted_LeaseInTicks(t *testing.T) {
	PlantedBugs.LeaseInTicks = true
	defer func() { PlantedBugs.LeaseInTicks = false }()
	n := leaseLeader(t)
	n.ReadLease([]byte("a"))
	n.ready()
	n.clock.now += 2 * time.Second // stalled: the clock ran, no tick came
	n.ReadLease([]byte("b"))
	if got := readStates(n.ready().ReadStates); got != "b@1 " {
		t.Fatalf("with LeaseInTicks, a read after the stall was served as %q; want it served from the ended lease (b@1)", got)
	}
}
