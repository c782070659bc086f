package wal

import (
	"fmt"

	"github.com/raftex/raftex/raft"
)

// memLog is the in-memory copy of what the WAL holds.
//
// Invariant: ents[i].Index == base+1+i; baseTerm is the term of entry
// base (0 when base is 0).
type memLog struct {
	hs             raft.HardState
	membership     raft.Membership
	base, baseTerm uint64
	ents           []raft.Entry
}

func (l *memLog) lastIndex() uint64 { return l.base + uint64(len(l.ents)) }

func (l *memLog) term(i uint64) (uint64, error) {
	switch {
	case i < l.base:
		return 0, raft.ErrCompacted
	case i > l.lastIndex():
		return 0, raft.ErrUnavailable
	case i == l.base:
		return l.baseTerm, nil
	}
	return l.ents[i-l.base-1].Term, nil
}

// entryOverhead is what raft adds to len(Data) when it sizes entries for
// maxBytes (raft's unexported entryOverhead).
const entryOverhead = 24

func (l *memLog) entries(lo, hi, maxBytes uint64) ([]raft.Entry, error) {
	if lo <= l.base {
		return nil, raft.ErrCompacted
	}
	if hi > l.lastIndex()+1 {
		return nil, fmt.Errorf("%w: entries [%d, %d) past last index %d", raft.ErrUnavailable, lo, hi, l.lastIndex())
	}
	if lo > hi {
		return nil, fmt.Errorf("wal: invalid range [%d, %d)", lo, hi)
	}
	ents := l.ents[lo-l.base-1 : hi-l.base-1]
	size := uint64(0)
	for i, e := range ents {
		size += uint64(len(e.Data)) + entryOverhead
		if i > 0 && size > maxBytes {
			ents = ents[:i]
			break
		}
	}
	out := make([]raft.Entry, len(ents))
	copy(out, ents)
	return out, nil
}

// append adds ents (consecutive, ents[0].Index in (base, lastIndex+1]),
// first dropping any entry at or after ents[0].Index (§5.3).
func (l *memLog) append(ents []raft.Entry) {
	if len(ents) == 0 {
		return
	}
	first := ents[0].Index
	if first <= l.base || first > l.lastIndex()+1 {
		panic(fmt.Sprintf("wal: append at %d outside (%d, %d]", first, l.base, l.lastIndex()+1))
	}
	// Readers get copies (entries), so the array may be reused in place.
	l.ents = append(l.ents[:first-l.base-1], ents...)
}

// apply applies a compact or reset record.
func (l *memLog) apply(t RecordType, m mark) {
	switch t {
	case TypeCompact:
		if m.index < l.base {
			return
		}
		// Copy, so the compacted prefix's memory is freed.
		l.ents = append([]raft.Entry(nil), l.ents[min(m.index-l.base, uint64(len(l.ents))):]...)
	case TypeReset:
		l.ents = nil
	default:
		panic(fmt.Sprintf("wal: apply of a %s record", t))
	}
	l.base, l.baseTerm = m.index, m.term
}
