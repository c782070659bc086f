//go:build raftbugs

package raft

import (
	"flag"
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// The planted bugs (bugs.go) prove that the checker can fail: with each
// switched on, the property test must report a violation. Run with
//
//	go test -tags raftbugs -run TestPlanted ./raft
//
// Each test lets the property test search up to plantedChecks cases and
// fails if it finds no violation.
const plantedChecks = 30000

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
func expectViolation(t *testing.T, bug *bool, want string) {
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
	if !strings.Contains(rec.out.String(), want) {
		t.Fatalf("violation does not mention %q:\n%s", want, rec.out.String())
	}
}

func setFlag(t *testing.T, name, value string) {
	old := flag.Lookup(name).Value.String()
	if err := flag.Set(name, value); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = flag.Set(name, old) })
}

func TestPlanted_CommitOldTerm(t *testing.T) {
	expectViolation(t, &PlantedBugs.CommitOldTerm, "property violated")
}

func TestPlanted_SkipElectionRestriction(t *testing.T) {
	expectViolation(t, &PlantedBugs.SkipElectionRestriction, "property violated")
}

func TestPlanted_VoteBeforePersist(t *testing.T) {
	expectViolation(t, &PlantedBugs.VoteBeforePersist, "property violated")
}

func TestPlanted_ApplyUncommitted(t *testing.T) {
	expectViolation(t, &PlantedBugs.ApplyUncommitted, "property violated")
}

func TestPlanted_TruncateMatchingSuffix(t *testing.T) {
	expectViolation(t, &PlantedBugs.TruncateMatchingSuffix, "property violated")
}
