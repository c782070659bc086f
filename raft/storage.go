package raft

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Storage errors. Implementations return them (possibly wrapped) so the core
// can tell a compacted entry from a missing one.
var (
	// ErrCompacted is returned for an index at or below the last snapshot:
	// the entry is gone, replaced by the snapshot (§7).
	ErrCompacted = errors.New("raft: requested index is compacted")
	// ErrUnavailable is returned for an index past the last entry.
	ErrUnavailable = errors.New("raft: requested entry is not available")
	// ErrSnapshotOutOfDate is returned when applying a snapshot older than
	// the one already held.
	ErrSnapshotOutOfDate = errors.New("raft: snapshot is older than the current one")
)

// Storage is the stable log the core reads from: what the caller has made
// durable by handling Ready (entries, hard state, snapshot). The core never
// writes to it; the caller does, before calling Advance.
//
// Threading: the core calls these methods only from the goroutine that
// drives it, but the caller may append to the storage from another
// goroutine at the same time, so implementations must be safe for that.
// Returned slices are owned by the caller and must not be modified by the
// implementation afterwards.
type Storage interface {
	// InitialState returns the persisted hard state and the membership of
	// the snapshot the log starts after (or the bootstrap membership); the
	// core replays the configuration entries of the log after it (thesis
	// §4.1).
	InitialState() (HardState, Membership, error)
	// Entries returns the entries in [lo, hi), at least one if any exist in
	// that range, and stops before maxBytes would be exceeded.
	Entries(lo, hi, maxBytes uint64) ([]Entry, error)
	// Term returns the term of entry i, which must be in
	// [FirstIndex()-1, LastIndex()]: the term of the entry just before the
	// first one is kept from the snapshot.
	Term(i uint64) (uint64, error)
	// FirstIndex is the index of the first entry still in the log (the
	// snapshot index + 1).
	FirstIndex() (uint64, error)
	// LastIndex is the index of the last entry (the snapshot index when
	// the log is empty).
	LastIndex() (uint64, error)
	// Snapshot returns the newest snapshot. Its Data may be nil when the
	// runtime streams snapshot bodies out of band.
	Snapshot() (Snapshot, error)
}

// MemoryStorage is a Storage held in memory, for tests and simulation. It
// also offers the write side (Append, SetHardState, ApplySnapshot, Compact)
// that a caller uses while handling Ready. It is safe for concurrent use.
//
// Invariants: ents[0] is a dummy entry carrying the snapshot's index and
// term; ents[i].Index == ents[0].Index + i.
type MemoryStorage struct {
	mu   sync.Mutex
	hard HardState
	snap Snapshot
	ents []Entry
}

// NewMemoryStorage returns an empty storage whose membership is m: the
// bootstrap configuration of a new cluster.
func NewMemoryStorage(m Membership) *MemoryStorage {
	return &MemoryStorage{
		snap: Snapshot{Meta: SnapshotMeta{Membership: m.Clone()}},
		ents: make([]Entry, 1),
	}
}

var _ Storage = (*MemoryStorage)(nil)

// InitialState implements Storage.
func (ms *MemoryStorage) InitialState() (HardState, Membership, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.hard, ms.snap.Meta.Membership.Clone(), nil
}

// HardState returns the stored hard state.
func (ms *MemoryStorage) HardState() HardState {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.hard
}

// SetHardState stores h.
func (ms *MemoryStorage) SetHardState(h HardState) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.hard = h
}

func (ms *MemoryStorage) offset() uint64 { return ms.ents[0].Index }
func (ms *MemoryStorage) lastIndex() uint64 {
	return ms.ents[0].Index + uint64(len(ms.ents)) - 1
}

// Entries implements Storage.
func (ms *MemoryStorage) Entries(lo, hi, maxBytes uint64) ([]Entry, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if lo <= ms.offset() {
		return nil, ErrCompacted
	}
	if hi > ms.lastIndex()+1 {
		return nil, fmt.Errorf("%w: entries [%d, %d) past last index %d", ErrUnavailable, lo, hi, ms.lastIndex())
	}
	ents := ms.ents[lo-ms.offset() : hi-ms.offset()]
	return slices.Clone(limitSize(ents, maxBytes)), nil
}

// Term implements Storage.
func (ms *MemoryStorage) Term(i uint64) (uint64, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if i < ms.offset() {
		return 0, ErrCompacted
	}
	if i > ms.lastIndex() {
		return 0, ErrUnavailable
	}
	return ms.ents[i-ms.offset()].Term, nil
}

// FirstIndex implements Storage.
func (ms *MemoryStorage) FirstIndex() (uint64, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.offset() + 1, nil
}

// LastIndex implements Storage.
func (ms *MemoryStorage) LastIndex() (uint64, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.lastIndex(), nil
}

// Snapshot implements Storage.
func (ms *MemoryStorage) Snapshot() (Snapshot, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.snap, nil
}

// Append writes ents, replacing any stored entry at or after ents[0].Index
// (§5.3: a conflicting suffix is deleted). Entries already covered by the
// snapshot are skipped. ents must be contiguous and must not leave a gap.
func (ms *MemoryStorage) Append(ents []Entry) error {
	if len(ents) == 0 {
		return nil
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	first := ms.offset() + 1
	if last := ents[len(ents)-1].Index; last < first {
		return nil
	}
	if ents[0].Index < first {
		ents = ents[first-ents[0].Index:]
	}
	if ents[0].Index > ms.lastIndex()+1 {
		return fmt.Errorf("raft: append at %d leaves a gap after last index %d", ents[0].Index, ms.lastIndex())
	}
	ms.ents = append(ms.ents[:ents[0].Index-ms.offset()], ents...)
	return nil
}

// ApplySnapshot replaces the whole log with snap (§7: the follower discards
// its log when the snapshot is not a prefix of it; the core decides that).
func (ms *MemoryStorage) ApplySnapshot(snap Snapshot) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if snap.Meta.Index < ms.snap.Meta.Index {
		return ErrSnapshotOutOfDate
	}
	ms.snap = snap
	ms.ents = []Entry{{Index: snap.Meta.Index, Term: snap.Meta.Term}}
	return nil
}

// CreateSnapshot records a snapshot of the state machine at index i (which
// must be in the log) and compacts the log up to it (§7).
func (ms *MemoryStorage) CreateSnapshot(i uint64, m Membership, data []byte) (Snapshot, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if i <= ms.snap.Meta.Index {
		return Snapshot{}, ErrSnapshotOutOfDate
	}
	if i > ms.lastIndex() {
		return Snapshot{}, fmt.Errorf("%w: snapshot index %d past last index %d", ErrUnavailable, i, ms.lastIndex())
	}
	ms.snap = Snapshot{
		Meta: SnapshotMeta{Index: i, Term: ms.ents[i-ms.offset()].Term, Membership: m.Clone()},
		Data: data,
	}
	ms.compact(i)
	return ms.snap, nil
}

// Compact discards entries up to and including i, which must be covered by
// the current snapshot.
func (ms *MemoryStorage) Compact(i uint64) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if i > ms.snap.Meta.Index {
		return fmt.Errorf("raft: compact to %d past snapshot index %d", i, ms.snap.Meta.Index)
	}
	ms.compact(i)
	return nil
}

func (ms *MemoryStorage) compact(i uint64) {
	if i <= ms.offset() {
		return
	}
	ents := make([]Entry, 1, 1+ms.lastIndex()-i)
	ents[0] = Entry{Index: i, Term: ms.ents[i-ms.offset()].Term}
	ms.ents = append(ents, ms.ents[i-ms.offset()+1:]...)
}

// limitSize returns the longest prefix of ents whose size stays within
// maxBytes, but always at least one entry.
func limitSize(ents []Entry, maxBytes uint64) []Entry {
	if len(ents) == 0 {
		return ents
	}
	size := ents[0].size()
	for i := 1; i < len(ents); i++ {
		size += ents[i].size()
		if size > maxBytes {
			return ents[:i]
		}
	}
	return ents
}
