package storage

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage/snap"
	"github.com/raftex/raftex/storage/vfs"
	"github.com/raftex/raftex/storage/wal"
)

// Options configure a Store. The zero value is the safe default.
type Options struct {
	// SegmentSize is the WAL's segment size in bytes. Default 64 MiB.
	SegmentSize int64
	// UnsafeNoSync skips every fsync. For benchmarks only: a crash then
	// loses acknowledged writes, which breaks Raft's promises (§5.1).
	// Default false.
	UnsafeNoSync bool
	// KeepSnapshots is how many snapshot files to keep, newest first (the
	// one the log relies on is always kept too). Default 2.
	KeepSnapshots int
	// Logger receives warnings about what recovery repaired or skipped.
	// Default: none.
	Logger *slog.Logger
}

// DefaultKeepSnapshots is the number of snapshots kept by default.
const DefaultKeepSnapshots = 2

// Errors of the store. Errors of the layers below (wal.ErrCorrupt,
// snap.ErrCorrupt, raft.ErrCompacted, ...) are returned wrapped.
var (
	// ErrHasState is returned by Bootstrap on a directory that already
	// holds state.
	ErrHasState = errors.New("storage: directory already holds state")
	// ErrClosed is returned by writes after Close.
	ErrClosed = errors.New("storage: closed")
	// ErrNoSnapshot is returned for a snapshot index no file holds.
	ErrNoSnapshot = errors.New("storage: no such snapshot")
	// ErrUncovered is returned by Open when the log was compacted past
	// every valid snapshot: state is lost, and the store refuses to start.
	ErrUncovered = errors.New("storage: no valid snapshot covers the compacted log")
)

// Store is a node's durable Raft state. It implements raft.Storage.
//
// Threading: safe for concurrent use. The core's goroutine may read
// while the runtime's storage goroutine writes; reads see a write once it
// is durable and never wait for an fsync.
type Store struct {
	fs   vfs.FS
	dir  string
	opts Options
	wal  *wal.WAL
	snap *snap.Dir

	// wmu serializes the writes that change which snapshots exist.
	wmu sync.Mutex
	// mu guards what follows.
	mu sync.RWMutex
	// snaps are the committed snapshot files, newest first.
	snaps []raft.SnapshotMeta
	// installed is the snapshot the log continues from: the newest that
	// agrees with the log (its index at or above the compaction point and
	// its term the log's term there). Zero if none.
	installed raft.SnapshotMeta
	closed    bool
	// recovered is what Open found; set once, read-only after.
	recovered Recovered
}

// Recovered is what Open found on disk, for the node's startup log.
type Recovered struct {
	// Entries in the log after the installed snapshot, from FirstIndex
	// through LastIndex.
	Entries               uint64
	FirstIndex, LastIndex uint64
	// SnapshotIndex of the installed snapshot, 0 if none.
	SnapshotIndex uint64
	// Term of the hard state.
	Term uint64
	// Duration of Open: reading and checking the log and the snapshots.
	Duration time.Duration
}

var _ raft.Storage = (*Store)(nil)

// Open opens (creating if absent) the store in dir and recovers it: see
// the package doc. It refuses to start, with an error wrapping
// wal.ErrCorrupt or ErrUncovered, rather than lose acknowledged state.
func Open(fs vfs.FS, dir string, opts Options) (*Store, error) {
	start := time.Now()
	if opts.KeepSnapshots <= 0 {
		opts.KeepSnapshots = DefaultKeepSnapshots
	}
	w, err := wal.Open(fs, filepath.Join(dir, "wal"), wal.Options{
		SegmentSize: opts.SegmentSize, UnsafeNoSync: opts.UnsafeNoSync, Logger: opts.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: opening the log: %w", err)
	}
	s := &Store{fs: fs, dir: dir, opts: opts, wal: w}
	if err := s.openSnapshots(); err != nil {
		w.Close()
		return nil, err
	}
	s.recovered = Recovered{FirstIndex: w.FirstIndex(), LastIndex: w.LastIndex(),
		SnapshotIndex: s.installed.Index, Term: w.HardState().Term, Duration: time.Since(start)}
	if s.recovered.LastIndex >= s.recovered.FirstIndex {
		s.recovered.Entries = s.recovered.LastIndex - s.recovered.FirstIndex + 1
	}
	return s, nil
}

// Recovered returns what Open found on disk.
func (s *Store) Recovered() Recovered { return s.recovered }

// openSnapshots loads the snapshot files, newest first, verifying each,
// and picks the installed one.
func (s *Store) openSnapshots() error {
	d, err := snap.OpenDir(s.fs, filepath.Join(s.dir, "snap"), s.opts.UnsafeNoSync)
	if err != nil {
		return fmt.Errorf("storage: opening snapshots: %w", err)
	}
	s.snap = d
	names, err := d.Names()
	if err != nil {
		return err
	}
	base := s.wal.FirstIndex() - 1
	var corrupt, pending []string
	for _, name := range names {
		meta, _, err := d.Verify(name)
		switch {
		case errors.Is(err, snap.ErrCorrupt):
			corrupt = append(corrupt, name)
			s.warn("storage: skipping a corrupt snapshot", "file", name, "err", err)
		case err != nil:
			return fmt.Errorf("storage: reading snapshot %s: %w", name, err)
		case s.installed.Index == 0 && s.agrees(meta):
			s.installed = meta
			s.snaps = append(s.snaps, meta)
		case s.installed.Index == 0 && meta.Index >= base:
			pending = append(pending, name)
		default:
			s.snaps = append(s.snaps, meta)
		}
	}
	if s.installed.Index == 0 && base > 0 {
		return fmt.Errorf("%w: log compacted to %d; corrupt snapshots: %v", ErrUncovered, base, corrupt)
	}
	for _, name := range corrupt {
		if err := d.Quarantine(name); err != nil {
			return err
		}
	}
	for _, name := range pending {
		// Committed, but a crash came before ApplySnapshot reset the log
		// to it. Nothing depended on it; the leader sends it again.
		s.warn("storage: discarding a snapshot whose installation was interrupted", "file", name)
		if err := d.Remove(name); err != nil {
			return err
		}
	}
	return s.retain()
}

func (s *Store) warn(msg string, args ...any) {
	if s.opts.Logger != nil {
		s.opts.Logger.Warn(msg, args...)
	}
}

// agrees reports whether the log continues from the snapshot: its index is
// at or past the compaction point and the log's term there is its term.
func (s *Store) agrees(m raft.SnapshotMeta) bool {
	t, err := s.wal.Term(m.Index)
	return err == nil && t == m.Term && m.Index > 0
}

// retain deletes the snapshot files beyond the KeepSnapshots newest,
// except the installed one. Caller holds wmu (or is Open).
func (s *Store) retain() error {
	s.mu.RLock()
	var drop []raft.SnapshotMeta
	for i, m := range s.snaps {
		if i >= s.opts.KeepSnapshots && m.Index != s.installed.Index {
			drop = append(drop, m)
		}
	}
	s.mu.RUnlock()
	for _, m := range drop {
		if err := s.snap.Remove(snap.Name(m.Index, m.Term)); err != nil {
			return err
		}
		s.mu.Lock()
		s.snaps = slices.DeleteFunc(s.snaps, func(o raft.SnapshotMeta) bool { return o.Index == m.Index && o.Term == m.Term })
		s.mu.Unlock()
	}
	return nil
}

// HasState reports whether the directory holds any state: false for a
// brand-new one (then Bootstrap, or wait for a snapshot from a leader).
func (s *Store) HasState() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.snaps) > 0 || !s.wal.HardState().IsEmpty() || s.wal.LastIndex() > 0 ||
		len(s.wal.Membership().Voters) > 0
}

// Bootstrap records the initial membership of a new cluster. It fails
// with ErrHasState if the store holds any state.
func (s *Store) Bootstrap(m raft.Membership) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if s.HasState() {
		return ErrHasState
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("storage: bootstrap: %w", err)
	}
	return s.wal.Bootstrap(m)
}

func (s *Store) writable() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

// InitialState implements raft.Storage: the persisted hard state, and the
// membership of the newest snapshot, or else the bootstrap membership.
func (s *Store) InitialState() (raft.HardState, raft.Membership, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.wal.HardState(), s.membership(), nil
}

func (s *Store) membership() raft.Membership {
	if len(s.snaps) > 0 {
		return s.snaps[0].Membership.Clone()
	}
	return s.wal.Membership()
}

// Entries implements raft.Storage.
func (s *Store) Entries(lo, hi, maxBytes uint64) ([]raft.Entry, error) {
	return s.wal.Entries(lo, hi, maxBytes)
}

// Term implements raft.Storage.
func (s *Store) Term(i uint64) (uint64, error) { return s.wal.Term(i) }

// FirstIndex implements raft.Storage.
func (s *Store) FirstIndex() (uint64, error) { return s.wal.FirstIndex(), nil }

// LastIndex implements raft.Storage.
func (s *Store) LastIndex() (uint64, error) { return s.wal.LastIndex(), nil }

// Snapshot implements raft.Storage: the newest snapshot's metadata, with
// Data nil (bodies are read with OpenSnapshot). With no snapshot, an empty
// one carrying the bootstrap membership.
func (s *Store) Snapshot() (raft.Snapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.snaps) == 0 {
		return raft.Snapshot{Meta: raft.SnapshotMeta{Membership: s.wal.Membership()}}, nil
	}
	m := s.snaps[0]
	m.Membership = m.Membership.Clone()
	return raft.Snapshot{Meta: m}, nil
}

// Save appends ents, first replacing any stored entry at or after
// ents[0].Index (§5.3), and records hs if it is not empty: one batch, one
// fsync (group commit). Entries at or below the compaction point are
// skipped. Durable when it returns nil.
func (s *Store) Save(hs raft.HardState, ents []raft.Entry) error {
	if err := s.writable(); err != nil {
		return err
	}
	return s.wal.Save(hs, ents)
}

// SnapshotWriter receives a snapshot's body. Commit makes it durable and
// the newest snapshot; Abort discards it. Not safe for concurrent use.
type SnapshotWriter struct {
	s *Store
	w *snap.Writer
}

// CreateSnapshot starts a snapshot file for meta: a local snapshot (meta
// at an index of the log, body from the state machine) or one received
// from the leader (then ApplySnapshot installs it once committed). It
// fails with raft.ErrSnapshotOutOfDate for an index below the installed
// snapshot's (the log's base). A received snapshot may be older than a
// newer file that was never installed: the body a deposed leader sent
// must not block the current leader's.
func (s *Store) CreateSnapshot(meta raft.SnapshotMeta) (*SnapshotWriter, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	installed := s.installed
	s.mu.RUnlock()
	if meta.Index < installed.Index {
		return nil, fmt.Errorf("%w: snapshot at %d, installed is at %d", raft.ErrSnapshotOutOfDate, meta.Index, installed.Index)
	}
	if err := meta.Membership.Validate(); err != nil {
		return nil, fmt.Errorf("storage: snapshot at %d: %w", meta.Index, err)
	}
	meta.Membership = meta.Membership.Clone()
	w, err := s.snap.Create(meta)
	if err != nil {
		return nil, err
	}
	return &SnapshotWriter{s: s, w: w}, nil
}

// Write appends p to the body.
func (w *SnapshotWriter) Write(p []byte) (int, error) { return w.w.Write(p) }

// Commit makes the snapshot durable (temporary file, fsync, rename,
// directory fsync) and the newest. A local snapshot (one the log agrees
// with) also becomes the one the log continues from; then snapshots past
// KeepSnapshots are deleted.
func (w *SnapshotWriter) Commit() error {
	s := w.s
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		w.w.Abort()
		return err
	}
	if err := w.w.Commit(); err != nil {
		return fmt.Errorf("storage: committing snapshot: %w", err)
	}
	meta := w.w.Meta()
	s.mu.Lock()
	s.snaps = slices.DeleteFunc(s.snaps, func(o raft.SnapshotMeta) bool { return o.Index == meta.Index && o.Term == meta.Term })
	s.snaps = slices.Insert(s.snaps, 0, meta)
	slices.SortStableFunc(s.snaps, func(a, b raft.SnapshotMeta) int {
		if a.Index != b.Index {
			return cmpDesc(a.Index, b.Index)
		}
		return cmpDesc(a.Term, b.Term)
	})
	local := s.agrees(meta)
	if local {
		s.installed = meta
	}
	s.mu.Unlock()
	if !local {
		return nil
	}
	return s.retain()
}

func cmpDesc(a, b uint64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// Abort discards the snapshot. Safe after Commit (it does nothing).
func (w *SnapshotWriter) Abort() error { return w.w.Abort() }

// ApplySnapshot installs a snapshot received from the leader, whose body
// was committed with CreateSnapshot: the whole log is replaced (§7: the
// receiver discards its log), so afterwards FirstIndex() == meta.Index+1,
// LastIndex() == meta.Index and Term(meta.Index) == meta.Term. Durable
// and crash-safe when it returns.
func (s *Store) ApplySnapshot(meta raft.SnapshotMeta) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	s.mu.RLock()
	installed := s.installed
	found := slices.ContainsFunc(s.snaps, func(o raft.SnapshotMeta) bool { return o.Index == meta.Index && o.Term == meta.Term })
	s.mu.RUnlock()
	if meta.Index < installed.Index {
		return fmt.Errorf("%w: snapshot at %d, installed is at %d", raft.ErrSnapshotOutOfDate, meta.Index, installed.Index)
	}
	if !found {
		return fmt.Errorf("%w: apply of snapshot at %d term %d, whose body was not committed", ErrNoSnapshot, meta.Index, meta.Term)
	}
	if err := s.wal.Reset(meta.Index, meta.Term); err != nil {
		return err
	}
	s.mu.Lock()
	for _, o := range s.snaps {
		if o.Index == meta.Index && o.Term == meta.Term {
			s.installed = o
		}
	}
	s.mu.Unlock()
	return s.retain()
}

// Compact drops the entries up to and including index, which must not be
// past the installed snapshot (§7: a snapshot replaces them), and deletes
// the log segments left with no live entry. Crash-safe.
func (s *Store) Compact(index uint64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	s.mu.RLock()
	installed := s.installed
	s.mu.RUnlock()
	if index > installed.Index {
		return fmt.Errorf("storage: compact to %d past the snapshot at %d", index, installed.Index)
	}
	return s.wal.Compact(index)
}

// OpenSnapshot opens the body of the snapshot at index. The caller closes
// it; reading it to the end checks its checksum (an error wrapping
// snap.ErrCorrupt instead of io.EOF if damaged).
func (s *Store) OpenSnapshot(index uint64) (raft.SnapshotMeta, io.ReadCloser, int64, error) {
	s.mu.RLock()
	i := slices.IndexFunc(s.snaps, func(o raft.SnapshotMeta) bool { return o.Index == index })
	var m raft.SnapshotMeta
	if i >= 0 {
		m = s.snaps[i]
	}
	s.mu.RUnlock()
	if i < 0 {
		return raft.SnapshotMeta{}, nil, 0, fmt.Errorf("%w: at index %d", ErrNoSnapshot, index)
	}
	return s.snap.Open(snap.Name(m.Index, m.Term))
}

// Close closes the store. Reads keep working; writes fail with ErrClosed.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	return s.wal.Close()
}

// Dump prints the store in dir for an operator: every WAL segment and
// record (with any torn or corrupt one) and every snapshot file with its
// metadata and whether its checksum holds. It changes nothing.
func Dump(fs vfs.FS, dir string, w io.Writer) error {
	fmt.Fprintf(w, "== log %s\n", filepath.Join(dir, "wal"))
	if err := wal.Dump(fs, filepath.Join(dir, "wal"), w); err != nil {
		return err
	}
	sdir := filepath.Join(dir, "snap")
	fmt.Fprintf(w, "== snapshots %s\n", sdir)
	names, err := fs.List(sdir)
	if err != nil {
		return err
	}
	d := snap.ReadOnly(fs, sdir)
	for _, name := range names {
		if _, _, ok := snap.ParseName(name); !ok {
			fmt.Fprintf(w, "other file %s\n", name)
			continue
		}
		meta, size, err := d.Verify(name)
		if err != nil {
			fmt.Fprintf(w, "%s CORRUPT: %v\n", name, err)
			continue
		}
		fmt.Fprintf(w, "%s index=%d term=%d membership=%v body=%d bytes checksum ok\n", name, meta.Index, meta.Term, meta.Membership, size)
	}
	return nil
}
