// Package snap keeps snapshot files (§7): a state machine's state at a log
// index, written so that a crash at any moment leaves the previous snapshot
// or the new one, never neither, and checksummed so a damaged one is found.
//
// A snapshot at index i of term t is the file
//
//	<i %016x>-<t %016x>.snap
//
// written first as a .tmp file, fsynced, renamed, and its directory
// fsynced. Its format:
//
//	+---------+---------+----------+------+------+----------+---------+---------+
//	| magic   | version | meta len | meta | body | body len | CRC-32C | magic   |
//	| 8 bytes | uint32  | uint32   |      |      | uint64   | uint32  | 8 bytes |
//	+---------+---------+----------+------+------+----------+---------+---------+
//	meta: +-------+------+---------+--------+-----------+----------+
//	      | index | term | nvoters | voters | nlearners | learners |
//	      | u64   | u64  | uint32  | u64... | uint32    | u64...   |
//	      +-------+------+---------+--------+-----------+----------+
//
// Integers are little-endian; the CRC-32C (Castagnoli) covers every byte
// before it, so it vouches for the metadata and the body alike.
package snap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage/vfs"
)

const (
	// magic opens and closes every snapshot file. Part of the on-disk
	// format.
	magic = "raftexsn"
	// version of the format. Part of the on-disk format; bump it for any
	// incompatible change.
	version = 1
	// headerFixed and footerSize are the sizes of the fixed parts around
	// meta and body. Part of the on-disk format.
	headerFixed = 8 + 4 + 4
	footerSize  = 8 + 4 + 8
	// maxMeta bounds the metadata a reader accepts.
	maxMeta = 1 << 24
)

// castagnoli is the CRC-32C table; the polynomial is part of the format.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var le = binary.LittleEndian

// ErrCorrupt is returned for a snapshot file whose structure or checksum is
// wrong. The error names the file.
var ErrCorrupt = errors.New("snap: corrupt snapshot file")

// Name returns the file name of the snapshot at index and term.
func Name(index, term uint64) string { return fmt.Sprintf("%016x-%016x.snap", index, term) }

// ParseName returns the index and term a snapshot file name states.
func ParseName(name string) (index, term uint64, ok bool) {
	if len(name) != 38 || !strings.HasSuffix(name, ".snap") {
		return 0, 0, false
	}
	_, err := fmt.Sscanf(name, "%016x-%016x.snap", &index, &term)
	return index, term, err == nil && Name(index, term) == name
}

// Dir is a directory of snapshot files. Safe for concurrent use.
type Dir struct {
	fs     vfs.FS
	dir    string
	noSync bool
	tmpSeq atomic.Uint64
}

// OpenDir opens dir, making it if absent and removing the .tmp files of
// writes a crash interrupted. noSync skips every fsync (benchmarks only:
// a crash may then lose a committed snapshot).
func OpenDir(fs vfs.FS, dir string, noSync bool) (*Dir, error) {
	mkdir := vfs.MkdirAllSync // a crash must not lose the directory
	if noSync {
		mkdir = vfs.FS.MkdirAll
	}
	if err := mkdir(fs, dir); err != nil {
		return nil, err
	}
	d := &Dir{fs: fs, dir: dir, noSync: noSync}
	names, err := fs.List(dir)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if strings.HasSuffix(name, ".tmp") {
			if err := fs.Remove(d.path(name)); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

// ReadOnly returns a Dir over dir for reading only (Names, Open, Verify):
// unlike OpenDir it creates and removes nothing. For tools such as a dump.
func ReadOnly(fs vfs.FS, dir string) *Dir { return &Dir{fs: fs, dir: dir} }

func (d *Dir) path(name string) string { return filepath.Join(d.dir, name) }

func (d *Dir) syncDir() error {
	if d.noSync {
		return nil
	}
	return d.fs.SyncDir(d.dir)
}

// Names returns the snapshot files, newest (highest index, then term)
// first.
func (d *Dir) Names() ([]string, error) {
	all, err := d.fs.List(d.dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, name := range all {
		if _, _, ok := ParseName(name); ok {
			names = append(names, name)
		}
	}
	slices.Reverse(names) // fixed-width hex sorts like the numbers
	return names, nil
}

// Remove deletes a snapshot file (durably).
func (d *Dir) Remove(name string) error {
	if err := d.fs.Remove(d.path(name)); err != nil {
		return err
	}
	return d.syncDir()
}

// Quarantine renames a corrupt snapshot file to <name>.broken, so it is
// kept for inspection but never loaded again.
func (d *Dir) Quarantine(name string) error {
	if err := d.fs.Rename(d.path(name), d.path(name+".broken")); err != nil {
		return err
	}
	return d.syncDir()
}

func appendMeta(buf []byte, m raft.SnapshotMeta) []byte {
	buf = le.AppendUint64(buf, m.Index)
	buf = le.AppendUint64(buf, m.Term)
	for _, ids := range [][]uint64{m.Membership.Voters, m.Membership.Learners} {
		buf = le.AppendUint32(buf, uint32(len(ids)))
		for _, id := range ids {
			buf = le.AppendUint64(buf, id)
		}
	}
	if m.Membership.Extended() {
		// The rest of the configuration (joint consensus, staging
		// learners, peer addresses): raft's own encoding, length first.
		ext := m.Membership.Marshal()
		buf = le.AppendUint32(buf, uint32(len(ext)))
		buf = append(buf, ext...)
	}
	return buf
}

func decodeMeta(p []byte) (raft.SnapshotMeta, error) {
	if len(p) < 16 {
		return raft.SnapshotMeta{}, errors.New("metadata cut short")
	}
	m := raft.SnapshotMeta{Index: le.Uint64(p), Term: le.Uint64(p[8:])}
	p = p[16:]
	var lists [2][]uint64
	for i := range lists {
		if len(p) < 4 {
			return raft.SnapshotMeta{}, errors.New("membership cut short")
		}
		n := uint64(le.Uint32(p))
		p = p[4:]
		if n > uint64(len(p))/8 {
			return raft.SnapshotMeta{}, fmt.Errorf("membership of %d ids in %d bytes", n, len(p))
		}
		for range n {
			lists[i] = append(lists[i], le.Uint64(p))
			p = p[8:]
		}
	}
	m.Membership = raft.Membership{Voters: lists[0], Learners: lists[1]}
	if len(p) >= 4 {
		n := uint64(le.Uint32(p))
		if n != uint64(len(p)-4) {
			return raft.SnapshotMeta{}, fmt.Errorf("membership extension of %d bytes in %d", n, len(p)-4)
		}
		full, err := raft.UnmarshalMembership(p[4:])
		if err != nil {
			return raft.SnapshotMeta{}, err
		}
		if !slices.Equal(full.Voters, lists[0]) || !slices.Equal(full.Learners, lists[1]) {
			return raft.SnapshotMeta{}, errors.New("membership extension disagrees with the member lists")
		}
		m.Membership = full
		p = nil
	}
	if len(p) != 0 {
		return raft.SnapshotMeta{}, fmt.Errorf("%d bytes after the metadata", len(p))
	}
	return m, nil
}

// Writer writes one snapshot's body. Commit makes it durable; Abort drops
// it. Not safe for concurrent use.
type Writer struct {
	d    *Dir
	meta raft.SnapshotMeta
	tmp  string
	f    vfs.File
	bw   *bufio.Writer
	crc  hash.Hash32
	body int64
	done bool
}

// Create starts writing the snapshot described by meta.
func (d *Dir) Create(meta raft.SnapshotMeta) (*Writer, error) {
	name := Name(meta.Index, meta.Term)
	tmp := fmt.Sprintf("%s.%d.tmp", name, d.tmpSeq.Add(1))
	f, err := d.fs.Create(d.path(tmp))
	if err != nil {
		return nil, err
	}
	w := &Writer{d: d, meta: meta, tmp: tmp, f: f, crc: crc32.New(castagnoli)}
	w.bw = bufio.NewWriterSize(io.MultiWriter(f, w.crc), 256<<10)
	mb := appendMeta(nil, meta)
	hdr := append([]byte(magic), 0, 0, 0, 0, 0, 0, 0, 0)
	le.PutUint32(hdr[8:], version)
	le.PutUint32(hdr[12:], uint32(len(mb)))
	if _, err := w.bw.Write(append(hdr, mb...)); err != nil {
		w.Abort()
		return nil, err
	}
	return w, nil
}

// Meta returns the metadata the snapshot is written with.
func (w *Writer) Meta() raft.SnapshotMeta { return w.meta }

// Write appends p to the body.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("snap: write after Commit or Abort")
	}
	n, err := w.bw.Write(p)
	w.body += int64(n)
	return n, err
}

// Commit writes the footer, fsyncs, renames the file into place and fsyncs
// the directory: when it returns nil the snapshot is durable. On error the
// temporary file is removed.
func (w *Writer) Commit() error {
	if w.done {
		return errors.New("snap: Commit after Commit or Abort")
	}
	if err := w.commit(); err != nil {
		w.Abort()
		return err
	}
	return nil
}

func (w *Writer) commit() error {
	var foot [footerSize]byte
	le.PutUint64(foot[:], uint64(w.body))
	if _, err := w.bw.Write(foot[:8]); err != nil {
		return err
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	le.PutUint32(foot[8:], w.crc.Sum32())
	copy(foot[12:], magic)
	if _, err := w.f.Write(foot[8:]); err != nil {
		return err
	}
	if !w.d.noSync {
		if err := w.f.Sync(); err != nil {
			return err
		}
	}
	w.done = true
	if err := w.f.Close(); err != nil {
		return err
	}
	if err := w.d.fs.Rename(w.d.path(w.tmp), w.d.path(Name(w.meta.Index, w.meta.Term))); err != nil {
		return err
	}
	return w.d.syncDir()
}

// Abort drops the snapshot. Safe to call after Commit (it then does
// nothing) and more than once.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	return w.d.fs.Remove(w.d.path(w.tmp))
}

// layout is where a snapshot file's parts lie.
type layout struct {
	meta       raft.SnapshotMeta
	head       []byte // magic through meta
	body, size int64  // body offset and length
}

func (d *Dir) corrupt(name, format string, args ...any) error {
	return fmt.Errorf("%w %s: %s", ErrCorrupt, d.path(name), fmt.Sprintf(format, args...))
}

// readLayout reads the header and footer of f, checking their structure.
func (d *Dir) readLayout(name string, f vfs.File) (layout, error) {
	size, err := f.Size()
	if err != nil {
		return layout{}, err
	}
	if size < headerFixed+footerSize {
		return layout{}, d.corrupt(name, "%d bytes is too short", size)
	}
	var fixed [headerFixed]byte
	if _, err := f.ReadAt(fixed[:], 0); err != nil {
		return layout{}, err
	}
	if string(fixed[:8]) != magic || le.Uint32(fixed[8:]) != version {
		return layout{}, d.corrupt(name, "bad magic or version")
	}
	mlen := int64(le.Uint32(fixed[12:]))
	if mlen > maxMeta || headerFixed+mlen+footerSize > size {
		return layout{}, d.corrupt(name, "metadata of %d bytes in a file of %d", mlen, size)
	}
	head := make([]byte, headerFixed+mlen)
	if _, err := f.ReadAt(head, 0); err != nil {
		return layout{}, err
	}
	meta, err := decodeMeta(head[headerFixed:])
	if err != nil {
		return layout{}, d.corrupt(name, "%v", err)
	}
	if idx, term, _ := ParseName(name); idx != meta.Index || term != meta.Term {
		return layout{}, d.corrupt(name, "metadata says index %d term %d", meta.Index, meta.Term)
	}
	var foot [footerSize]byte
	if _, err := f.ReadAt(foot[:], size-footerSize); err != nil && err != io.EOF {
		return layout{}, err
	}
	l := layout{meta: meta, head: head, body: int64(len(head)), size: size - footerSize - int64(len(head))}
	if int64(le.Uint64(foot[:])) != l.size || string(foot[12:]) != magic {
		return layout{}, d.corrupt(name, "footer does not match a body of %d bytes", l.size)
	}
	return l, nil
}

// Open opens a snapshot's body for reading after checking its header and
// footer. The body's checksum is checked as it is read: reading it to the
// end returns an error wrapping ErrCorrupt instead of io.EOF if it is
// damaged.
func (d *Dir) Open(name string) (raft.SnapshotMeta, io.ReadCloser, int64, error) {
	f, err := d.fs.Open(d.path(name))
	if err != nil {
		return raft.SnapshotMeta{}, nil, 0, err
	}
	l, err := d.readLayout(name, f)
	if err != nil {
		f.Close()
		return raft.SnapshotMeta{}, nil, 0, err
	}
	crc := crc32.New(castagnoli)
	crc.Write(l.head)
	r := &bodyReader{d: d, name: name, f: f, l: l, crc: crc, sr: io.NewSectionReader(f, l.body, l.size)}
	return l.meta, r, l.size, nil
}

// Verify reads a whole snapshot file and checks its checksum.
func (d *Dir) Verify(name string) (raft.SnapshotMeta, int64, error) {
	meta, r, size, err := d.Open(name)
	if err != nil {
		return raft.SnapshotMeta{}, 0, err
	}
	defer r.Close()
	if _, err := io.Copy(io.Discard, r); err != nil {
		return raft.SnapshotMeta{}, 0, err
	}
	return meta, size, nil
}

type bodyReader struct {
	d    *Dir
	name string
	f    vfs.File
	l    layout
	crc  hash.Hash32
	sr   *io.SectionReader
	// checked and eofErr hold the checksum's verdict once the end is read.
	checked bool
	eofErr  error
}

func (r *bodyReader) Read(p []byte) (int, error) {
	n, err := r.sr.Read(p)
	r.crc.Write(p[:n])
	if err == io.EOF {
		if !r.checked {
			r.checked, r.eofErr = true, r.check()
		}
		if r.eofErr != nil {
			return n, r.eofErr
		}
	}
	return n, err
}

func (r *bodyReader) check() error {
	var tail [12]byte
	if _, err := r.f.ReadAt(tail[:], r.l.body+r.l.size); err != nil && err != io.EOF {
		return err
	}
	r.crc.Write(tail[:8])
	if got, want := r.crc.Sum32(), le.Uint32(tail[8:]); got != want {
		return r.d.corrupt(r.name, "checksum %#08x, want %#08x", got, want)
	}
	return nil
}

func (r *bodyReader) Close() error { return r.f.Close() }
