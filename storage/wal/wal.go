package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"sync"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage/vfs"
)

// DefaultSegmentSize is the size past which a new segment is started.
const DefaultSegmentSize = 64 << 20

// Options configure a WAL. The zero value is the safe default.
type Options struct {
	// SegmentSize is the size in bytes past which the next batch starts a
	// new segment. Default DefaultSegmentSize (64 MiB).
	SegmentSize int64
	// UnsafeNoSync skips every fsync. For benchmarks only: a crash then
	// loses acknowledged writes, which breaks Raft's promises (§5.1).
	// Default false.
	UnsafeNoSync bool
	// Logger receives a warning when Open cuts a torn tail. Default: none.
	Logger *slog.Logger
}

// Errors returned by the WAL besides the record errors.
var (
	// ErrCorrupt is what every *CorruptError is: the log is damaged
	// somewhere a crash cannot explain, and Open refuses to start.
	ErrCorrupt = errors.New("wal: corrupt")
	// ErrClosed is returned by writes after Close.
	ErrClosed = errors.New("wal: closed")
	// ErrFailed is returned by every write after one failed: after a
	// failed write or fsync the disk's content is unknown (the page cache
	// may have dropped it), so the WAL stops rather than guess.
	ErrFailed = errors.New("wal: a previous write failed")
	// ErrGap is returned by Save for entries that do not follow on from
	// the log or from each other.
	ErrGap = errors.New("wal: entries leave a gap")
)

// CorruptError locates damage that is not a torn tail.
type CorruptError struct {
	File   string
	Offset int64
	// Index is the last log index read intact before the damage.
	Index  uint64
	Reason error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: corrupt segment %s at offset %d (after index %d): %v", e.File, e.Offset, e.Index, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func (e *CorruptError) Unwrap() error { return e.Reason }

// Repair describes a torn tail that Open cut away.
type Repair struct {
	// File is the segment that was cut, Offset where, and Size its size
	// before.
	File         string
	Offset, Size int64
	// Broken is the saved copy of the segment as found.
	Broken string
	// Reason is what the scan found at the damage.
	Reason error
}

// segment is one file of the log.
type segment struct {
	seq, first uint64
	name       string
	// minWrite is the lowest index this segment's records wrote, or
	// reset the log below (a reset to i counts as i+1), or first: every
	// live entry at or above the minimum of minWrite over this and later
	// segments is in this or a later segment.
	minWrite uint64
}

func segmentName(seq, first uint64) string { return fmt.Sprintf("%016x-%016x.wal", seq, first) }

func parseSegmentName(name string) (seq, first uint64, ok bool) {
	if len(name) != 37 || filepath.Ext(name) != ".wal" {
		return 0, 0, false
	}
	_, err := fmt.Sscanf(name, "%016x-%016x.wal", &seq, &first)
	return seq, first, err == nil && segmentName(seq, first) == name
}

// WAL is the durable Raft log and hard state, with an in-memory copy of
// both for reads.
//
// Threading: safe for concurrent use. Writes (Save, Compact, Reset,
// Bootstrap, Close) are serialized and do their I/O without blocking
// reads; reads see a write's effect once it is durable.
type WAL struct {
	fs   vfs.FS
	dir  string
	opts Options

	// wmu serializes writers; it guards everything below mu.
	wmu      sync.Mutex
	segs     []segment
	f        vfs.File // the last segment, open for appending
	size     int64    // of f
	buf      []byte   // reused to encode Save's batches
	failed   error
	closed   bool
	repaired *Repair

	// mu guards the log's in-memory state. Writers take it only to
	// publish a durable change.
	mu  sync.RWMutex
	log memLog
}

// Open opens the log in dir, creating dir and an empty log if absent,
// and recovers it: see the package doc. A torn tail is cut (and reported
// by Repaired); corruption returns a *CorruptError and changes nothing.
func Open(fs vfs.FS, dir string, opts Options) (*WAL, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	w := &WAL{fs: fs, dir: dir, opts: opts}
	mkdir := vfs.MkdirAllSync // a crash must not lose the directory
	if opts.UnsafeNoSync {
		mkdir = vfs.FS.MkdirAll
	}
	if err := mkdir(fs, dir); err != nil {
		return nil, err
	}
	names, err := fs.List(dir)
	if err != nil {
		return nil, err
	}
	removed := false
	for _, name := range names {
		if seq, first, ok := parseSegmentName(name); ok {
			w.segs = append(w.segs, segment{seq: seq, first: first, name: name, minWrite: first})
		} else if filepath.Ext(name) == ".tmp" {
			// A segment whose creation a crash interrupted: never renamed,
			// so never written to.
			if err := fs.Remove(filepath.Join(dir, name)); err != nil {
				return nil, err
			}
			removed = true
		}
	}
	if removed {
		if err := w.syncDir(); err != nil {
			return nil, err
		}
	}
	if len(w.segs) == 0 {
		if err := w.create(header{seq: 1, first: 1}); err != nil {
			return nil, err
		}
		return w, nil
	}
	if err := w.recover(); err != nil {
		return nil, err
	}
	f, err := fs.OpenAppend(w.path(w.last().name))
	if err != nil {
		return nil, err
	}
	if w.size, err = f.Size(); err != nil {
		f.Close()
		return nil, err
	}
	w.f = f
	if err := w.release(); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

func (w *WAL) path(name string) string { return filepath.Join(w.dir, name) }
func (w *WAL) last() *segment          { return &w.segs[len(w.segs)-1] }

// Repaired reports the torn tail Open cut, or nil.
func (w *WAL) Repaired() *Repair {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return w.repaired
}

func (w *WAL) sync(f vfs.File) error {
	if w.opts.UnsafeNoSync {
		return nil
	}
	return f.Sync()
}

func (w *WAL) syncDir() error {
	if w.opts.UnsafeNoSync {
		return nil
	}
	return w.fs.SyncDir(w.dir)
}

// create starts segment h.seq with header h: written as a .tmp file,
// fsynced, renamed, directory fsynced, so it exists whole or not at all.
// It becomes the segment appended to.
func (w *WAL) create(h header) error {
	name := segmentName(h.seq, h.first)
	tmp := w.path(name + ".tmp")
	f, err := w.fs.Create(tmp)
	if err != nil {
		return err
	}
	buf := appendHeader(nil, h)
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
	if err := w.fs.Rename(tmp, w.path(name)); err != nil {
		return err
	}
	if err := w.syncDir(); err != nil {
		return err
	}
	f, err = w.fs.OpenAppend(w.path(name))
	if err != nil {
		return err
	}
	if w.f != nil {
		w.f.Close() // synced with its last batch; nothing to lose
	}
	w.f, w.size = f, int64(len(buf))
	w.segs = append(w.segs, segment{seq: h.seq, first: h.first, name: name, minWrite: h.first})
	return nil
}

// roll starts a new segment if the current one is full.
func (w *WAL) roll() error {
	if w.size < w.opts.SegmentSize {
		return nil
	}
	w.mu.RLock()
	h := header{
		seq: w.last().seq + 1, first: w.log.lastIndex() + 1,
		base: w.log.base, baseTerm: w.log.baseTerm,
		hs: w.log.hs, membership: w.log.membership,
	}
	w.mu.RUnlock()
	return w.create(h)
}

// begin starts a write: it checks the WAL can still be written.
func (w *WAL) begin() error {
	switch {
	case w.closed:
		return ErrClosed
	case w.failed != nil:
		return fmt.Errorf("%w: %w", ErrFailed, w.failed)
	}
	return nil
}

// writeBatch writes the records in buf as one batch: it appends the commit
// record, then writes and fsyncs once. It returns buf with the commit
// record appended. Any failure is sticky.
func (w *WAL) writeBatch(buf []byte) (_ []byte, err error) {
	defer func() {
		if err != nil {
			w.failed = err
		}
	}()
	if err := w.roll(); err != nil {
		return buf, err
	}
	buf = appendUints(buf, TypeCommit, uint64(w.size))
	if _, err := w.f.Write(buf); err != nil {
		return buf, err
	}
	if err := w.sync(w.f); err != nil {
		return buf, err
	}
	w.size += int64(len(buf))
	return buf, nil
}

// Save appends ents, first replacing any stored entry at or after
// ents[0].Index (§5.3: a conflicting entry and all that follow it are
// deleted), and records hs if it is not empty, in one batch with one fsync
// (group commit). Entries at or below the compaction point are skipped.
// ents must be consecutive and must not leave a gap after the last index.
// When Save returns nil, all of it is durable. Like raft.MemoryStorage.Append,
// Save keeps the entries' Data: the caller must not modify it afterwards.
func (w *WAL) Save(hs raft.HardState, ents []raft.Entry) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if err := w.begin(); err != nil {
		return err
	}
	w.mu.RLock()
	base, last := w.log.base, w.log.lastIndex()
	w.mu.RUnlock()
	for len(ents) > 0 && ents[0].Index <= base {
		ents = ents[1:]
	}
	if len(ents) > 0 && ents[0].Index > last+1 {
		return fmt.Errorf("%w: entry %d after last index %d", ErrGap, ents[0].Index, last)
	}
	for i, e := range ents {
		if i > 0 && e.Index != ents[i-1].Index+1 {
			return fmt.Errorf("%w: entry %d follows entry %d", ErrGap, e.Index, ents[i-1].Index)
		}
		if len(e.Data)+entryFixed > maxPayloadSize {
			return fmt.Errorf("%w: entry %d of %d bytes", ErrTooLarge, e.Index, len(e.Data))
		}
	}
	if len(ents) == 0 && hs.IsEmpty() {
		return nil
	}
	buf := w.buf[:0]
	for _, e := range ents {
		buf = appendEntry(buf, e)
	}
	if !hs.IsEmpty() {
		buf = appendHardState(buf, hs)
	}
	buf, err := w.writeBatch(buf)
	w.buf = buf[:0] // reused by the next batch
	if err != nil {
		return err
	}
	stored := slices.Clone(ents)
	if len(stored) > 0 {
		s := w.last()
		s.minWrite = min(s.minWrite, stored[0].Index)
	}
	w.mu.Lock()
	w.log.append(stored)
	if !hs.IsEmpty() {
		w.log.hs = hs
	}
	w.mu.Unlock()
	return nil
}

// Compact drops the entries up to and including index, which must be in
// the log (§7: they are covered by a snapshot; the caller checks that),
// then deletes the segments left with no live entry. Crash-safe: the
// compaction is one batch, and segments are deleted oldest first after it
// is durable. Compacting at or below the current point does nothing.
func (w *WAL) Compact(index uint64) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if err := w.begin(); err != nil {
		return err
	}
	w.mu.RLock()
	base, last := w.log.base, w.log.lastIndex()
	term, _ := w.log.term(index)
	w.mu.RUnlock()
	if index <= base {
		return nil
	}
	if index > last {
		return fmt.Errorf("%w: compact to %d past last index %d", raft.ErrUnavailable, index, last)
	}
	return w.mark(TypeCompact, mark{index, term})
}

// Reset replaces the whole log by the snapshot at (index, term) (§7: the
// receiver discards its log): afterwards the log is empty, its first index
// is index+1 and Term(index) is term. Crash-safe like Compact.
func (w *WAL) Reset(index, term uint64) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if err := w.begin(); err != nil {
		return err
	}
	return w.mark(TypeReset, mark{index, term})
}

func (w *WAL) mark(t RecordType, m mark) error {
	if _, err := w.writeBatch(appendUints(nil, t, m.index, m.term)); err != nil {
		return err
	}
	if t == TypeReset {
		s := w.last()
		s.minWrite = min(s.minWrite, m.index+1)
	}
	w.mu.Lock()
	w.log.apply(t, m)
	w.mu.Unlock()
	return w.release()
}

// release deletes, oldest first, the segments that hold no live entry:
// those before the latest segment j with every live entry in segments
// from j on (see segment.minWrite).
func (w *WAL) release() error {
	w.mu.RLock()
	base := w.log.base
	w.mu.RUnlock()
	keepFrom := 0
	lo := uint64(math.MaxUint64)
	for j := len(w.segs) - 1; j > 0; j-- {
		lo = min(lo, w.segs[j].minWrite)
		if lo <= base+1 {
			keepFrom = j
			break
		}
	}
	if keepFrom == 0 {
		return nil
	}
	for _, s := range w.segs[:keepFrom] {
		if err := w.fs.Remove(w.path(s.name)); err != nil {
			return err
		}
	}
	w.segs = slices.Delete(w.segs, 0, keepFrom)
	return w.syncDir()
}

// Bootstrap records the membership of a new cluster, durably.
func (w *WAL) Bootstrap(m raft.Membership) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if err := w.begin(); err != nil {
		return err
	}
	if _, err := w.writeBatch(appendMembership(nil, m)); err != nil {
		return err
	}
	w.mu.Lock()
	w.log.membership = m.Clone()
	w.mu.Unlock()
	return nil
}

// Close closes the segment being written. Reads keep working.
func (w *WAL) Close() error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	return w.f.Close()
}

// HardState returns the last hard state saved.
func (w *WAL) HardState() raft.HardState {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.log.hs
}

// Membership returns the bootstrap membership (empty if none).
func (w *WAL) Membership() raft.Membership {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.log.membership.Clone()
}

// FirstIndex returns the index of the first entry (compaction point + 1).
func (w *WAL) FirstIndex() uint64 {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.log.base + 1
}

// LastIndex returns the index of the last entry (the compaction point if
// the log is empty).
func (w *WAL) LastIndex() uint64 {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.log.lastIndex()
}

// Term returns the term of entry i, for i in [FirstIndex()-1, LastIndex()];
// raft.ErrCompacted below, raft.ErrUnavailable above.
func (w *WAL) Term(i uint64) (uint64, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.log.term(i)
}

// Entries returns the entries in [lo, hi), at least one if the range is
// not empty, stopping before their size passes maxBytes (sized as the core
// sizes them). The entries' Data must not be modified.
func (w *WAL) Entries(lo, hi, maxBytes uint64) ([]raft.Entry, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.log.entries(lo, hi, maxBytes)
}

var _ io.Closer = (*WAL)(nil)
