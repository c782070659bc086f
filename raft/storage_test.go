package raft

import (
	"errors"
	"fmt"
	"testing"
)

// MemoryStorage, the Storage the tests and the simulator use.

func TestStorage_AppendReplacesTheSuffixAndRejectsGaps(t *testing.T) {
	st := storeWith(voters3, HardState{}, 1, 1, 1)
	must(t, st.Append([]Entry{{Index: 2, Term: 2}, {Index: 3, Term: 2}, {Index: 4, Term: 2}}))
	expectEq(t, "log", storedTerms(st), "1 2 2 2")
	must(t, st.Append(nil))
	err := st.Append([]Entry{{Index: 9, Term: 2}})
	expectEq(t, "gap", err.Error(), "raft: append at 9 leaves a gap after last index 4")
}

func TestStorage_EntriesTermAndBounds(t *testing.T) {
	st := storeWith(voters3, HardState{}, 1, 1, 2, 2)
	ents, err := st.Entries(2, 5, 1<<20)
	must(t, err)
	expectEq(t, "entries", len(ents), 3)
	ents, _ = st.Entries(2, 5, 1) // a byte budget: still one entry
	expectEq(t, "entries within 1 byte", len(ents), 1)
	if _, err := st.Entries(0, 2, 1<<20); !errors.Is(err, ErrCompacted) {
		t.Errorf("Entries below the first index: %v", err)
	}
	if _, err := st.Entries(3, 9, 1<<20); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Entries past the last index: %v", err)
	}
	tm, err := st.Term(0)
	expectEq(t, "term before the first entry", fmt.Sprint(tm, err), "0 <nil>")
	if _, err := st.Term(9); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Term past the last index: %v", err)
	}
}

// §7: a snapshot replaces the log up to its index; what follows stays.
func TestStorage_CreateSnapshotCompactsTheLog(t *testing.T) {
	st := storeWith(voters3, HardState{}, 1, 1, 2, 2)
	snap, err := st.CreateSnapshot(3, NewMembership(voters3...), []byte("s"))
	must(t, err)
	expectEq(t, "snapshot", fmt.Sprintln(snap.Meta.Index, snap.Meta.Term, string(snap.Data)), "3 2 s\n")
	first, _ := st.FirstIndex()
	expectEq(t, "first index", first, 4)
	tm, _ := st.Term(3)
	expectEq(t, "term at the snapshot index", tm, 2)
	if _, err := st.Term(2); !errors.Is(err, ErrCompacted) {
		t.Errorf("Term of a compacted entry: %v", err)
	}
	if _, err := st.CreateSnapshot(2, NewMembership(1), nil); !errors.Is(err, ErrSnapshotOutOfDate) {
		t.Errorf("older snapshot: %v", err)
	}
	if _, err := st.CreateSnapshot(9, NewMembership(1), nil); !errors.Is(err, ErrUnavailable) {
		t.Errorf("snapshot past the log: %v", err)
	}
	// Appending entries the snapshot covers skips them.
	must(t, st.Append([]Entry{{Index: 2, Term: 1}, {Index: 3, Term: 2}, {Index: 4, Term: 2}, {Index: 5, Term: 3}}))
	expectEq(t, "log", storedTerms(st), "2 3")
	must(t, st.Append([]Entry{{Index: 1, Term: 1}}))
	expectEq(t, "log", storedTerms(st), "2 3")
}

func TestStorage_CompactAndApplySnapshot(t *testing.T) {
	st := storeWith(voters3, HardState{}, 1, 1, 2, 2)
	err := st.Compact(2)
	expectEq(t, "compact past the snapshot", err.Error(), "raft: compact to 2 past snapshot index 0")
	_, err = st.CreateSnapshot(3, NewMembership(voters3...), nil)
	must(t, err)
	must(t, st.Compact(1)) // already compacted: nothing to do
	must(t, st.ApplySnapshot(Snapshot{Meta: SnapshotMeta{Index: 9, Term: 5, Membership: NewMembership(1)}}))
	last, _ := st.LastIndex()
	expectEq(t, "last index", last, 9)
	_, m, _ := st.InitialState()
	expectEq(t, "membership", m.String(), "voters=[1]")
	if err := st.ApplySnapshot(Snapshot{Meta: SnapshotMeta{Index: 3}}); !errors.Is(err, ErrSnapshotOutOfDate) {
		t.Errorf("older snapshot: %v", err)
	}
	st.SetHardState(HardState{Term: 5})
	expectEq(t, "hard state", st.HardState(), HardState{Term: 5})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
