package raft

import (
	"fmt"
	"slices"
)

// unstable holds what the core has decided but the caller has not yet made
// durable: entries (and at most one incoming snapshot) not yet in Storage.
//
// Invariants:
//  1. entries[i].Index == offset + i.
//  2. if snapshot != nil, offset == snapshot.Meta.Index + 1.
//  3. offset <= inProgress <= offset + len(entries): entries below
//     inProgress were handed out in a Ready whose Advance has not come yet.
//
// Entries handed out are never modified in place: truncation copies first,
// so slices given to Ready or to messages stay valid.
type unstable struct {
	snapshot           *Snapshot
	entries            []Entry
	offset             uint64
	inProgress         uint64
	snapshotInProgress bool
}

func (u *unstable) maybeFirstIndex() (uint64, bool) {
	if u.snapshot != nil {
		return u.snapshot.Meta.Index + 1, true
	}
	return 0, false
}

func (u *unstable) maybeLastIndex() (uint64, bool) {
	if l := len(u.entries); l != 0 {
		return u.offset + uint64(l) - 1, true
	}
	if u.snapshot != nil {
		return u.snapshot.Meta.Index, true
	}
	return 0, false
}

func (u *unstable) maybeTerm(i uint64) (uint64, bool) {
	if i < u.offset {
		if u.snapshot != nil && u.snapshot.Meta.Index == i {
			return u.snapshot.Meta.Term, true
		}
		return 0, false
	}
	last, ok := u.maybeLastIndex()
	if !ok || i > last {
		return 0, false
	}
	return u.entries[i-u.offset].Term, true
}

// nextEntries returns the entries not yet handed out for persistence.
func (u *unstable) nextEntries() []Entry {
	return u.entries[u.inProgress-u.offset:]
}

// nextSnapshot returns the snapshot not yet handed out, or nil.
func (u *unstable) nextSnapshot() *Snapshot {
	if u.snapshot == nil || u.snapshotInProgress {
		return nil
	}
	return u.snapshot
}

// acceptInProgress marks everything currently held as handed out.
func (u *unstable) acceptInProgress() {
	u.inProgress = u.offset + uint64(len(u.entries))
	if u.snapshot != nil {
		u.snapshotInProgress = true
	}
}

// stableTo drops the entries up to i once the caller reports them durable,
// but only if entry i still has term t: a newer leader may have replaced it
// while the write was in flight, and then the replacement is still unstable.
func (u *unstable) stableTo(i, t uint64) {
	gt, ok := u.maybeTerm(i)
	if !ok || gt != t || i < u.offset {
		return
	}
	n := i + 1 - u.offset
	u.entries = u.entries[n:]
	u.offset = i + 1
	u.inProgress = max(u.inProgress, u.offset)
	if len(u.entries) == 0 {
		u.entries = nil
	}
}

func (u *unstable) stableSnapTo(i uint64) {
	if u.snapshot != nil && u.snapshot.Meta.Index == i {
		u.snapshot = nil
		u.snapshotInProgress = false
	}
}

func (u *unstable) restore(s Snapshot) {
	u.offset = s.Meta.Index + 1
	u.inProgress = u.offset
	u.entries = nil
	u.snapshot = &s
	u.snapshotInProgress = false
}

// truncateAndAppend appends ents, first removing any held entry at or after
// ents[0].Index (§5.3).
func (u *unstable) truncateAndAppend(ents []Entry) {
	from := ents[0].Index
	switch {
	case from == u.offset+uint64(len(u.entries)):
		u.entries = append(u.entries, ents...)
	case from <= u.offset:
		// Everything held is replaced; the log now continues from the
		// stable storage at from-1.
		u.offset = from
		u.inProgress = from
		u.entries = slices.Clone(ents)
	default:
		keep := u.slice(u.offset, from)
		u.entries = append(slices.Clone(keep), ents...)
		u.inProgress = min(u.inProgress, from)
	}
}

func (u *unstable) slice(lo, hi uint64) []Entry {
	if lo > hi || lo < u.offset || hi > u.offset+uint64(len(u.entries)) {
		panic(fmt.Sprintf("raft: unstable.slice[%d,%d) out of bounds [%d,%d]", lo, hi, u.offset, u.offset+uint64(len(u.entries))))
	}
	return u.entries[lo-u.offset : hi-u.offset]
}
