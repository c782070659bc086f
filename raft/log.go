package raft

import (
	"errors"
	"fmt"
)

// maxApplyBytes caps the committed entries handed out in one Ready so a
// restart with a long unapplied log does not load it all at once.
const maxApplyBytes = 64 << 20

// raftLog is the core's view of the log: the caller's stable Storage
// followed by the unstable tail the core appended since.
//
// Invariants (checked by check):
//  1. applied <= applying <= committed <= lastIndex.
//  2. committed never decreases (§5.3, Figure 3).
//  3. firstIndex-1 <= applied: compacted entries were applied.
type raftLog struct {
	storage  Storage
	unstable unstable
	// committed is the highest index known to be committed.
	committed uint64
	// applying is the last index handed out in CommittedEntries.
	applying uint64
	// applied is the last index the caller reported applied (AppliedTo).
	applied uint64
	// maxApplying caps applyingBytes (Config.MaxApplyingBytes).
	maxApplying uint64
	// applyingBytes is the size of the entries handed out and not yet
	// applied, and batches their sizes by last index, oldest first.
	applyingBytes uint64
	batches       []appliedBatch
}

// appliedBatch is one hand-out of committed entries: its last index and
// its size.
type appliedBatch struct {
	last, bytes uint64
}

func newLog(s Storage, applied, maxApplying uint64) (*raftLog, error) {
	first, err := s.FirstIndex()
	if err != nil {
		return nil, err
	}
	last, err := s.LastIndex()
	if err != nil {
		return nil, err
	}
	hs, _, err := s.InitialState()
	if err != nil {
		return nil, err
	}
	if hs.Commit > last {
		return nil, fmt.Errorf("raft: hard state commit %d is past the last stored index %d (lost log entries?)", hs.Commit, last)
	}
	l := &raftLog{storage: s, maxApplying: maxApplying}
	l.unstable.offset = last + 1
	l.unstable.inProgress = last + 1
	// The state machine applied only committed entries (§5.3), so those
	// through applied are committed even where the hard state's commit,
	// which a crash may lose, lags behind a snapshot the storage kept.
	l.committed = max(hs.Commit, first-1, min(applied, last))
	l.applied = min(max(applied, first-1), l.committed)
	l.applying = l.applied
	return l, nil
}

func (l *raftLog) check() error {
	if !(l.applied <= l.applying && l.applying <= l.committed && l.committed <= l.lastIndex()) {
		return fmt.Errorf("raft: log invariant broken: applied=%d applying=%d committed=%d last=%d", l.applied, l.applying, l.committed, l.lastIndex())
	}
	return nil
}

func (l *raftLog) firstIndex() uint64 {
	if i, ok := l.unstable.maybeFirstIndex(); ok {
		return i
	}
	i, err := l.storage.FirstIndex()
	if err != nil {
		panic(err) // the storage failed: nothing the core can decide safely
	}
	return i
}

func (l *raftLog) lastIndex() uint64 {
	if i, ok := l.unstable.maybeLastIndex(); ok {
		return i
	}
	i, err := l.storage.LastIndex()
	if err != nil {
		panic(err)
	}
	return i
}

// persistedIndex is the last index known durable: everything below the
// unstable tail. While an incoming snapshot is pending it is unknown, so 0.
func (l *raftLog) persistedIndex() uint64 {
	if l.unstable.snapshot != nil {
		return 0
	}
	return l.unstable.offset - 1
}

// term returns the term of entry i, or an error for a compacted or missing
// entry.
func (l *raftLog) term(i uint64) (uint64, error) {
	if t, ok := l.unstable.maybeTerm(i); ok {
		return t, nil
	}
	if i+1 < l.firstIndex() {
		return 0, ErrCompacted
	}
	if i > l.lastIndex() {
		return 0, ErrUnavailable
	}
	t, err := l.storage.Term(i)
	if err == nil || errors.Is(err, ErrCompacted) || errors.Is(err, ErrUnavailable) {
		return t, err
	}
	panic(err)
}

// termOrZero maps a missing or compacted entry to term 0.
func (l *raftLog) termOrZero(i uint64) uint64 {
	t, err := l.term(i)
	if err != nil {
		return 0
	}
	return t
}

func (l *raftLog) lastTerm() uint64 {
	t, err := l.term(l.lastIndex())
	if err != nil {
		panic(fmt.Sprintf("raft: term of last index %d: %v", l.lastIndex(), err))
	}
	return t
}

func (l *raftLog) matchTerm(i, t uint64) bool {
	gt, err := l.term(i)
	return err == nil && gt == t
}

// isUpToDate is the §5.4.1 election restriction: a log ending in
// (lasti, term) is at least as up-to-date as ours if its last term is
// greater, or equal with an index at least as large.
func (l *raftLog) isUpToDate(lasti, term uint64) bool {
	return term > l.lastTerm() || (term == l.lastTerm() && lasti >= l.lastIndex())
}

// findConflict returns the index of the first entry of ents that is not in
// the log (missing or with another term), or 0 if all match. §5.3: only a
// conflicting entry, never a matching one, may cause truncation.
func (l *raftLog) findConflict(ents []Entry) uint64 {
	for _, e := range ents {
		if !l.matchTerm(e.Index, e.Term) {
			return e.Index
		}
	}
	return 0
}

// maybeAppend handles AppendEntries on a follower (§5.3, Figure 2 receiver
// rules 2–5). It returns the index of the last entry the message proved to
// match and the entries it wrote (replacing any from the first one's index
// on), and false when the consistency check fails.
func (l *raftLog) maybeAppend(prevIndex, prevTerm, leaderCommit uint64, ents []Entry) (uint64, []Entry, bool) {
	// §5.3 rule 2: reply false if the log has no entry at prevIndex whose
	// term matches prevTerm.
	if !l.matchTerm(prevIndex, prevTerm) {
		return 0, nil, false
	}
	var written []Entry
	lastNew := prevIndex + uint64(len(ents))
	if bugs.TruncateMatchingSuffix && len(ents) > 0 {
		// Planted bug: treat every entry as new, which cuts off a longer
		// matching suffix when the message is stale.
		written = ents
		l.append(ents...)
	} else if ci := l.findConflict(ents); ci != 0 {
		// §5.3 rules 3 and 4: if an existing entry conflicts with a new
		// one, delete it and all that follow; append entries not already
		// in the log.
		if ci <= l.committed {
			panic(fmt.Sprintf("raft: entry %d conflicts with committed entry (committed=%d)", ci, l.committed))
		}
		written = ents[ci-ents[0].Index:]
		l.append(written...)
	}
	// §5.3 rule 5: commitIndex = min(leaderCommit, index of last new entry).
	l.commitTo(min(leaderCommit, lastNew))
	return lastNew, written, true
}

// append adds entries, truncating any conflicting suffix; it returns the
// new last index.
func (l *raftLog) append(ents ...Entry) uint64 {
	if len(ents) == 0 {
		return l.lastIndex()
	}
	if after := ents[0].Index - 1; after < l.committed {
		panic(fmt.Sprintf("raft: append after %d would overwrite committed entries (committed=%d)", after, l.committed))
	}
	l.unstable.truncateAndAppend(ents)
	return l.lastIndex()
}

// conflictHint is the follower's answer to a failed consistency check at
// index i: the first index of the conflicting term and that term, or
// lastIndex+1 and 0 when the log is too short. The leader then skips the
// whole term in one round trip (§5.3, the optimization the paper sketches).
// Entries at or below committed always match the leader, so the scan stops
// there.
func (l *raftLog) conflictHint(i uint64) (index, term uint64) {
	if i > l.lastIndex() {
		return l.lastIndex() + 1, 0
	}
	t := l.termOrZero(i)
	floor := max(l.committed+1, l.firstIndex())
	for i > floor && l.termOrZero(i-1) == t {
		i--
	}
	return i, t
}

// commitTo raises the commit index; it never lowers it (Figure 3).
func (l *raftLog) commitTo(i uint64) {
	if i <= l.committed {
		return
	}
	if last := l.lastIndex(); i > last {
		panic(fmt.Sprintf("raft: commit %d is past last index %d", i, last))
	}
	l.committed = i
}

// maybeCommit commits i if its entry is from term t (§5.4.2: a leader only
// commits entries of its own term by counting replicas).
func (l *raftLog) maybeCommit(i, t uint64) bool {
	if i > l.committed && l.termOrZero(i) == t {
		l.commitTo(i)
		return true
	}
	return false
}

// entries returns the entries from lo to the end, up to maxBytes.
func (l *raftLog) entries(lo, maxBytes uint64) ([]Entry, error) {
	if lo > l.lastIndex() {
		return nil, nil
	}
	return l.slice(lo, l.lastIndex()+1, maxBytes)
}

// slice returns entries [lo, hi) up to maxBytes (at least one), reading
// storage for the stable part and unstable for the rest.
func (l *raftLog) slice(lo, hi, maxBytes uint64) ([]Entry, error) {
	if lo == hi {
		return nil, nil
	}
	if lo < l.firstIndex() {
		return nil, ErrCompacted
	}
	if hi > l.lastIndex()+1 || lo > hi {
		panic(fmt.Sprintf("raft: slice[%d,%d) out of range [%d,%d]", lo, hi, l.firstIndex(), l.lastIndex()))
	}
	var ents []Entry
	if off := l.unstable.offset; lo < off {
		stop := min(hi, off)
		stored, err := l.storage.Entries(lo, stop, maxBytes)
		if errors.Is(err, ErrCompacted) {
			return nil, err
		} else if err != nil {
			panic(err)
		}
		if uint64(len(stored)) < stop-lo {
			return stored, nil // size limit reached inside storage
		}
		ents = stored
	}
	if hi > l.unstable.offset {
		u := l.unstable.slice(max(lo, l.unstable.offset), hi)
		if len(ents) > 0 {
			ents = append(ents[:len(ents):len(ents)], u...)
		} else {
			ents = u
		}
	}
	return limitSize(ents, maxBytes), nil
}

// applicable is the last index that may be handed out to apply: committed,
// and durable here, so that the caller may apply it at once, while the
// Ready that carries it is still being written (Ready rule 1). An entry
// committed in the Ready that brings it (a follower's) waits for the next.
func (l *raftLog) applicable() uint64 { return min(l.committed, l.persistedIndex()) }

// hasNextCommitted reports whether committed entries await handing out
// and the state machine has room for them (Config.MaxApplyingBytes).
func (l *raftLog) hasNextCommitted() bool {
	return l.applicable() > l.applying && l.applyingBytes < l.maxApplying
}

// nextCommitted returns the committed, durable entries not yet handed out,
// as many as fit under MaxApplyingBytes (at least one while below it).
func (l *raftLog) nextCommitted() []Entry {
	hi := l.applicable()
	if bugs.ApplyUncommitted {
		hi = l.lastIndex() // planted bug: apply what is merely appended
	}
	if hi <= l.applying || l.applyingBytes >= l.maxApplying {
		return nil
	}
	ents, err := l.slice(l.applying+1, hi+1, min(maxApplyBytes, l.maxApplying-l.applyingBytes))
	if err != nil {
		panic(fmt.Sprintf("raft: committed entries (%d,%d] unavailable: %v", l.applying, hi, err))
	}
	return ents
}

// handOut records ents as handed out to the state machine.
func (l *raftLog) handOut(ents []Entry) {
	n := len(ents)
	if n == 0 {
		return
	}
	size := entriesSize(ents)
	l.applying = ents[n-1].Index
	l.applyingBytes += size
	l.batches = append(l.batches, appliedBatch{last: l.applying, bytes: size})
}

// appliedTo records that the state machine applied through i, which frees
// the room of every batch it finished.
func (l *raftLog) appliedTo(i uint64) {
	l.applied = max(l.applied, min(i, l.applying))
	k := 0
	for k < len(l.batches) && l.batches[k].last <= l.applied {
		l.applyingBytes -= l.batches[k].bytes
		k++
	}
	l.batches = l.batches[k:]
}

func (l *raftLog) restore(s Snapshot) {
	l.committed = s.Meta.Index
	l.applying = s.Meta.Index
	l.applied = s.Meta.Index
	l.applyingBytes, l.batches = 0, nil
	l.unstable.restore(s)
}
