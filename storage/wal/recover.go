package wal

import (
	"errors"
	"fmt"
	"io"

	"github.com/raftex/raftex/raft"
)

// Reasons for corruption found by the scan, wrapped in a *CorruptError.
var (
	errBatchAfterDamage = errors.New("a complete batch follows the damage: not a torn tail")
	errNoCommit         = errors.New("batch without a commit record before the end of a segment that is not the last")
	errBadHeader        = errors.New("segment does not open with a valid header")
)

// scan is what scanning one segment found.
type scan struct {
	hdr header
	// end is where the intact part ends: after the last complete batch.
	end int64
	// pending are the valid records of an incomplete last batch.
	pending []Record
	// tornAt and torn say where and why the tail after end is torn; torn
	// is nil when the segment ends cleanly or only lacks a commit record.
	tornAt int64
	torn   error
}

// isTorn reports whether the segment has a tail to cut.
func (s *scan) isTorn(size int) bool { return s.end != int64(size) }

// scanSegment reads the records of a segment: onHeader gets the header,
// onBatch each complete batch's records (the commit record excluded) in
// order. Damage that is not a torn tail of the last segment, or an error
// from a callback, is returned as a *RecordError.
func scanSegment(buf []byte, last bool, onHeader func(header) error, onBatch func([]Record) error) (*scan, *RecordError) {
	r, err := DecodeRecord(buf, 0)
	if err != nil || r.Type != TypeHeader {
		return nil, &RecordError{0, fmt.Errorf("%w: %v", errBadHeader, orType(err, r.Type))}
	}
	h, err := decodeHeader(r.Payload)
	if err != nil {
		return nil, &RecordError{0, err}
	}
	if err := onHeader(h); err != nil {
		return nil, &RecordError{0, err}
	}
	s := &scan{hdr: h}
	batchStart, off := r.End(), r.End()
	var recs []Record
	for off < int64(len(buf)) {
		r, err := DecodeRecord(buf, off)
		if err != nil {
			return s, s.tail(buf, batchStart, err.(*RecordError), last, recs)
		}
		switch r.Type {
		case TypeHeader:
			return nil, &RecordError{off, fmt.Errorf("%w: a header record inside a segment", ErrBadPayload)}
		case TypeCommit:
			start, err := decodeCommit(r.Payload)
			if err == nil && (start != batchStart || len(recs) == 0) {
				err = fmt.Errorf("%w: commit of a batch at %d, but the batch began at %d with %d records", ErrBadPayload, start, batchStart, len(recs))
			}
			if err == nil {
				err = onBatch(recs)
			}
			if err != nil {
				return nil, &RecordError{batchStart, err}
			}
			recs = recs[:0]
			batchStart = r.End()
		default:
			recs = append(recs, r)
		}
		off = r.End()
	}
	s.end = batchStart
	if len(recs) > 0 {
		if !last {
			return nil, &RecordError{batchStart, errNoCommit}
		}
		s.pending, s.tornAt = recs, off
	}
	return s, nil
}

func orType(err error, t RecordType) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("first record is a %s", t)
}

// tail decides whether damage found at bad.Offset, inside the batch that
// began at batchStart, is a torn tail: only in the last segment, and only
// if no complete batch follows. Commit records have a fixed size, so one
// pass looks for every valid one past the damage; the torn batch's own
// commit may be among them, any other is a later batch.
func (s *scan) tail(buf []byte, batchStart int64, bad *RecordError, last bool, recs []Record) *RecordError {
	if !last {
		return bad
	}
	own := 0
	for o := bad.Offset + 1; o+commitRecLen <= int64(len(buf)); o++ {
		if RecordType(buf[o+4]) != TypeCommit || le.Uint32(buf[o:]) != commitSize {
			continue
		}
		r, err := DecodeRecord(buf, o)
		if err != nil {
			continue
		}
		if start, _ := decodeCommit(r.Payload); start != batchStart || own > 0 {
			return &RecordError{bad.Offset, fmt.Errorf("%w (%w; commit at %d)", bad.Err, errBatchAfterDamage, o)}
		}
		own++
	}
	s.end, s.pending, s.tornAt, s.torn = batchStart, recs, bad.Offset, bad.Err
	return nil
}

// replay is the state of a recovery in progress: the log as its records
// rebuild it, which may begin with an unknown stretch (base, start) of
// entries that were in segments deleted after a compaction. By the end a
// compaction must have covered that stretch, or entries are lost.
//
// Invariant: base < start; ents[i].Index == start+i.
type replay struct {
	hs             raft.HardState
	membership     raft.Membership
	base, baseTerm uint64
	start          uint64
	ents           []raft.Entry
	seg            *segment
}

func (r *replay) lastIndex() uint64 { return r.start + uint64(len(r.ents)) - 1 }

// missing reports an unknown stretch of entries, or nil.
func (r *replay) missing() error {
	if r.start == r.base+1 {
		return nil
	}
	return fmt.Errorf("entries %d to %d are missing and no compaction covers them", r.base+1, r.start-1)
}

func (r *replay) log() memLog {
	return memLog{hs: r.hs, membership: r.membership, base: r.base, baseTerm: r.baseTerm, ents: r.ents}
}

// header applies a segment's header: it states the log as it was when the
// segment began. For the first segment read, the entries before its first
// index, if any, were in deleted segments.
func (r *replay) header(h header, first bool) error {
	if h.seq != r.seg.seq || h.first != r.seg.first || h.first <= h.base {
		return fmt.Errorf("%w: header names segment %d first index %d base %d", ErrBadPayload, h.seq, h.first, h.base)
	}
	if first {
		*r = replay{hs: h.hs, membership: h.membership, base: h.base, baseTerm: h.baseTerm, start: h.first, seg: r.seg}
		return nil
	}
	if h.first != r.lastIndex()+1 || h.hs != r.hs || !h.membership.Equal(r.membership) {
		return fmt.Errorf("%w: header (first %d, %+v, %v) disagrees with the log before it (last %d, %+v, %v)",
			ErrBadPayload, h.first, h.hs, h.membership, r.lastIndex(), r.hs, r.membership)
	}
	r.compact(h.base, h.baseTerm)
	return nil
}

// compact drops the entries up to index (§7); index had term t.
func (r *replay) compact(index, t uint64) {
	if index < r.base {
		return
	}
	r.base, r.baseTerm = index, t
	if index >= r.start {
		r.ents = r.ents[min(index+1-r.start, uint64(len(r.ents))):]
		r.start = index + 1
	}
}

func (r *replay) batch(recs []Record) error {
	for _, rec := range recs {
		if err := r.record(rec); err != nil {
			return err
		}
	}
	return nil
}

func (r *replay) record(rec Record) error {
	switch rec.Type {
	case TypeEntry:
		e, err := decodeEntry(rec.Payload)
		if err != nil {
			return err
		}
		r.seg.minWrite = min(r.seg.minWrite, e.Index)
		switch {
		case e.Index <= r.base:
		case e.Index >= r.start && e.Index <= r.lastIndex()+1:
			// §5.3: a conflicting entry and all that follow it go.
			r.ents = append(r.ents[:e.Index-r.start], e)
		default:
			// Before or after what is known: the entries between were in
			// deleted segments.
			r.start, r.ents = e.Index, []raft.Entry{e}
		}
	case TypeHardState:
		hs, err := decodeHardState(rec.Payload)
		if err != nil {
			return err
		}
		r.hs = hs
	case TypeCompact:
		m, err := decodeMark(rec.Payload)
		if err != nil {
			return err
		}
		r.compact(m.index, m.term)
	case TypeReset:
		m, err := decodeMark(rec.Payload)
		if err != nil {
			return err
		}
		r.seg.minWrite = min(r.seg.minWrite, m.index+1)
		r.base, r.baseTerm, r.start, r.ents = m.index, m.term, m.index+1, nil
	case TypeMembership:
		m, err := decodeMembership(rec.Payload)
		if err != nil {
			return err
		}
		r.membership = m
	}
	return nil
}

// recover replays every segment into the in-memory log, and cuts a torn
// tail of the last one.
func (w *WAL) recover() error {
	r := &replay{}
	for i := range w.segs {
		s := &w.segs[i]
		r.seg = s
		corrupt := func(off int64, reason error) error {
			return &CorruptError{File: w.path(s.name), Offset: off, Index: r.lastIndex(), Reason: reason}
		}
		if i > 0 && s.seq != w.segs[i-1].seq+1 {
			return corrupt(0, fmt.Errorf("segment %d is missing", w.segs[i-1].seq+1))
		}
		buf, err := readFile(w, s.name)
		if err != nil {
			return err
		}
		last := i == len(w.segs)-1
		sc, rerr := scanSegment(buf, last,
			func(h header) error { return r.header(h, i == 0) },
			r.batch)
		if rerr != nil {
			return corrupt(rerr.Offset, rerr.Err)
		}
		if last && sc.isTorn(len(buf)) {
			if err := w.cut(s.name, buf, sc); err != nil {
				return err
			}
		}
	}
	if err := r.missing(); err != nil {
		return &CorruptError{File: w.path(w.segs[0].name), Index: r.base, Reason: err}
	}
	w.log = r.log()
	return nil
}

func readFile(w *WAL, name string) ([]byte, error) {
	f, err := w.fs.Open(w.path(name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	if n, err := f.ReadAt(buf, 0); n != len(buf) {
		return nil, fmt.Errorf("wal: reading %s: %d of %d bytes: %w", name, n, size, err)
	} else if err != nil && err != io.EOF {
		return nil, err
	}
	return buf, nil
}

// cut saves the last segment as <name>.broken, then truncates it to the
// last complete batch. Crash-safe: a crash before the truncation is durable
// leaves the tail to be cut again.
func (w *WAL) cut(name string, buf []byte, sc *scan) error {
	broken := w.path(name + ".broken")
	f, err := w.fs.Create(broken)
	if err != nil {
		return err
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return err
	}
	if err := w.sync(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := w.syncDir(); err != nil {
		return err
	}
	if f, err = w.fs.OpenAppend(w.path(name)); err != nil {
		return err
	}
	if err := f.Truncate(sc.end); err != nil {
		f.Close()
		return err
	}
	if err := w.sync(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	reason := sc.torn
	if reason == nil {
		reason = errors.New("last batch has no commit record")
	}
	w.repaired = &Repair{File: w.path(name), Offset: sc.end, Size: int64(len(buf)), Broken: broken, Reason: reason}
	if w.opts.Logger != nil {
		w.opts.Logger.Warn("wal: cut a torn tail (an unacknowledged write interrupted by a crash)",
			"file", w.repaired.File, "offset", sc.end, "size", len(buf), "reason", reason, "saved", broken)
	}
	return nil
}
