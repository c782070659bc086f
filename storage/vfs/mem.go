package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"path"
	"path/filepath"
	"slices"
	"sync"
)

// MemFS is an in-memory FS that remembers what is durable, so CrashClone can
// show the disk as it might look after a power cut. It is deterministic:
// the same operations and the same *rand.Rand give the same clone. Cheap:
// appends and syncs cost O(bytes written); only truncation and CrashClone
// copy data.
//
// Since the last Sync of each file, MemFS keeps an undo log of its appends
// and truncations; since the last SyncDir of each directory, an undo log of
// its name changes, a new subdirectory's name among them. A crash keeps,
// per file and per directory, a prefix of the unsynced operations
// (journals and page caches reach the disk in order), and may tear the
// first operation it drops (see CrashClone); a directory whose name the
// crash drops loses everything in it.
type MemFS struct {
	mu   sync.Mutex
	dirs map[string]*memDir
}

// NewMem returns an empty in-memory file system whose root "/" and "."
// exist.
func NewMem() *MemFS {
	return &MemFS{dirs: map[string]*memDir{"/": newMemDir(), ".": newMemDir()}}
}

var _ FS = (*MemFS)(nil)

type memDir struct {
	files map[string]*memNode
	// undo holds the name changes since the last SyncDir, oldest first.
	undo []dirOp
}

func newMemDir() *memDir { return &memDir{files: map[string]*memNode{}} }

// dirOp is one operation's name changes, undone together: a rename within
// a directory is atomic.
type dirOp []link

// link is a name and a node (nil: the name is absent). In an operation it is
// what the name becomes; in the undo log, what it was before.
type link struct {
	name string
	node *memNode
}

type memNode struct {
	// dir marks a subdirectory's name in its parent: its content is the
	// MemFS's memDir of that path.
	dir  bool
	data []byte
	// undo holds the appends and truncations since the last Sync, oldest
	// first.
	undo []fileOp
}

// fileOp is an append of n bytes (removed == nil, truncate == false) or a
// truncation, enough to undo it: the size before, and for a truncation
// that shrank the file, the bytes it cut.
type fileOp struct {
	oldSize  int64
	n        int64
	truncate bool
	removed  []byte
}

func clean(name string) string { return path.Clean(filepath.ToSlash(name)) }

func split(name string) (dir, base string) {
	name = clean(name)
	dir, base = path.Split(name)
	if dir == "" {
		return ".", base
	}
	return path.Clean(dir), base
}

func pathErr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

// errIsDir is returned for file operations on a directory's name.
var errIsDir = errors.New("is a directory")

// lookup returns the node called name. Caller holds m.mu.
func (m *MemFS) lookup(op, name string) (*memDir, string, *memNode, error) {
	dir, base := split(name)
	d, ok := m.dirs[dir]
	if !ok {
		return nil, "", nil, pathErr(op, name, fs.ErrNotExist)
	}
	return d, base, d.files[base], nil
}

// set applies one operation's links and logs how to undo them. Caller
// holds the MemFS lock.
func (d *memDir) set(links ...link) {
	undo := make(dirOp, len(links))
	for i, l := range links {
		undo[i] = link{name: l.name, node: d.files[l.name]}
		d.apply(l)
	}
	d.undo = append(d.undo, undo)
}

func (d *memDir) apply(l link) {
	if l.node == nil {
		delete(d.files, l.name)
	} else {
		d.files[l.name] = l.node
	}
}

// Create implements FS.
func (m *MemFS) Create(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, n, err := m.lookup("create", name)
	if err != nil {
		return nil, err
	}
	if n != nil && n.dir {
		return nil, pathErr("create", name, errIsDir)
	}
	if n != nil {
		n.truncate(0)
	} else {
		n = &memNode{}
		d.set(link{name: base, node: n})
	}
	return &memFile{fs: m, node: n, name: clean(name), writable: true}, nil
}

// Open implements FS.
func (m *MemFS) Open(name string) (File, error) { return m.open("open", name, false) }

// OpenAppend implements FS.
func (m *MemFS) OpenAppend(name string) (File, error) { return m.open("open", name, true) }

func (m *MemFS) open(op, name string, writable bool) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, _, n, err := m.lookup(op, name)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, pathErr(op, name, fs.ErrNotExist)
	}
	if n.dir {
		return nil, pathErr(op, name, errIsDir)
	}
	return &memFile{fs: m, node: n, name: clean(name), writable: writable}, nil
}

// Remove implements FS.
func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, n, err := m.lookup("remove", name)
	if err != nil {
		return err
	}
	if n == nil {
		return pathErr("remove", name, fs.ErrNotExist)
	}
	if n.dir {
		return pathErr("remove", name, errIsDir)
	}
	d.set(link{name: base})
	return nil
}

// Rename implements FS.
func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	od, obase, n, err := m.lookup("rename", oldname)
	if err != nil {
		return err
	}
	if n == nil {
		return pathErr("rename", oldname, fs.ErrNotExist)
	}
	nd, nbase, old, err := m.lookup("rename", newname)
	if err != nil {
		return err
	}
	if n.dir || (old != nil && old.dir) {
		return pathErr("rename", oldname, errIsDir)
	}
	if od == nd {
		if obase != nbase {
			od.set(link{name: obase}, link{name: nbase, node: n})
		}
		return nil
	}
	nd.set(link{name: nbase, node: n})
	od.set(link{name: obase})
	return nil
}

// MkdirAll implements FS. Each directory it makes is a new name in its
// parent, durable once the parent is synced.
func (m *MemFS) MkdirAll(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var missing []string
	for d := clean(dir); d != "/" && d != "."; d = path.Dir(d) {
		if _, ok := m.dirs[d]; ok {
			break
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d, base, n, err := m.lookup("mkdir", missing[i])
		if err != nil {
			return err
		}
		if n != nil {
			return pathErr("mkdir", missing[i], fs.ErrExist) // a file of that name
		}
		d.set(link{name: base, node: &memNode{dir: true}})
		m.dirs[missing[i]] = newMemDir()
	}
	return nil
}

// List implements FS.
func (m *MemFS) List(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.dirs[clean(dir)]
	if !ok {
		return nil, pathErr("list", dir, fs.ErrNotExist)
	}
	names := make([]string, 0, len(d.files))
	for name, n := range d.files {
		if !n.dir {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// SyncDir implements FS.
func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.dirs[clean(dir)]
	if !ok {
		return pathErr("syncdir", dir, fs.ErrNotExist)
	}
	d.undo = nil
	return nil
}

// ReadFile returns a copy of a file's current content (a test and tool
// convenience; not part of FS).
func (m *MemFS) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, _, n, err := m.lookup("read", name)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, pathErr("read", name, fs.ErrNotExist)
	}
	if n.dir {
		return nil, pathErr("read", name, errIsDir)
	}
	return slices.Clone(n.data), nil
}

// WriteFile replaces a file's content with data, durably, as a disk edited
// behind the program's back would be: tests use it to tear and corrupt
// files. Like SyncDir, it also makes every name in the directory durable.
func (m *MemFS) WriteFile(name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, n, err := m.lookup("write", name)
	if err != nil {
		return err
	}
	if n != nil && n.dir {
		return pathErr("write", name, errIsDir)
	}
	d.files[base] = &memNode{data: slices.Clone(data)}
	d.undo = nil
	return nil
}

// CrashClone returns the file system as it might look after a power cut
// now: what was synced is kept; of the unsynced operations on each file and
// each directory a random prefix is kept, and with even odds the first
// dropped append of a file is torn (a random prefix of its bytes kept, and
// maybe the file's size grown over zeros where the rest never landed). A
// directory whose name in its parent is dropped is gone with all it holds.
// Open files of m are unaffected; the clone has everything durable.
func (m *MemFS) CrashClone(rng *rand.Rand) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make(map[string]map[string]*memNode, len(m.dirs))
	dnames := sortedKeys(m.dirs)
	for _, dname := range dnames {
		names[dname] = crashDir(m.dirs[dname], rng)
	}
	// survives reports whether dname's name, and its parents', survived.
	var survives func(dname string) bool
	survives = func(dname string) bool {
		if dname == "/" || dname == "." {
			return true
		}
		parent, base := split(dname)
		n := names[parent][base]
		return n != nil && n.dir && survives(parent)
	}
	c := &MemFS{dirs: make(map[string]*memDir, len(m.dirs))}
	crashed := map[*memNode]*memNode{}
	for _, dname := range dnames {
		if !survives(dname) {
			continue
		}
		files := names[dname]
		cd := newMemDir()
		for _, name := range sortedKeys(files) {
			n := files[name]
			if _, ok := crashed[n]; !ok {
				crashed[n] = &memNode{dir: n.dir, data: crashFile(n, rng)}
			}
			cd.files[name] = crashed[n]
		}
		c.dirs[dname] = cd
	}
	return c
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// crashDir returns d's names with a random suffix of its unsynced
// operations undone.
func crashDir(d *memDir, rng *rand.Rand) map[string]*memNode {
	c := &memDir{files: maps.Clone(d.files)}
	keep := rng.IntN(len(d.undo) + 1)
	for i := len(d.undo) - 1; i >= keep; i-- {
		op := d.undo[i]
		for j := len(op) - 1; j >= 0; j-- {
			c.apply(op[j])
		}
	}
	return c.files
}

// crashFile returns n's content with a random suffix of its unsynced
// operations undone, the first undone append maybe torn.
func crashFile(n *memNode, rng *rand.Rand) []byte {
	data := slices.Clone(n.data)
	keep := rng.IntN(len(n.undo) + 1)
	for i := len(n.undo) - 1; i > keep; i-- {
		data = undo(data, n.undo[i])
	}
	if keep == len(n.undo) {
		return data
	}
	op := n.undo[keep]
	if op.truncate || rng.IntN(2) == 0 {
		return undo(data, op)
	}
	kept := rng.Int64N(op.n + 1)
	data = data[:op.oldSize+kept]
	if rng.IntN(2) == 0 {
		// The size reached the disk, some of the data did not.
		data = append(data, make([]byte, rng.Int64N(op.n-kept+1))...)
	}
	return data
}

func undo(data []byte, op fileOp) []byte {
	if op.truncate && op.removed != nil {
		return append(data, op.removed...)
	}
	return data[:op.oldSize]
}

func (n *memNode) truncate(size int64) {
	old := int64(len(n.data))
	op := fileOp{oldSize: old, truncate: true}
	if size < old {
		op.removed = slices.Clone(n.data[size:])
		n.data = n.data[:size]
	} else {
		n.data = append(n.data, make([]byte, size-old)...)
	}
	n.undo = append(n.undo, op)
}

// ErrClosed is returned by operations on a closed MemFS file.
var ErrClosed = errors.New("vfs: file already closed")

// errReadOnly is returned by writes to a file opened by Open.
var errReadOnly = errors.New("vfs: file opened read-only")

type memFile struct {
	fs       *MemFS
	node     *memNode
	name     string
	writable bool
	closed   bool
}

func (f *memFile) check(op string, write bool) error {
	if f.closed {
		return pathErr(op, f.name, ErrClosed)
	}
	if write && !f.writable {
		return pathErr(op, f.name, errReadOnly)
	}
	return nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("write", true); err != nil {
		return 0, err
	}
	n := f.node
	n.undo = append(n.undo, fileOp{oldSize: int64(len(n.data)), n: int64(len(p))})
	n.data = append(n.data, p...)
	return len(p), nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("read", false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("read", f.name, fmt.Errorf("negative offset %d", off))
	}
	if off >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("sync", true); err != nil {
		return err
	}
	f.node.undo = nil
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("truncate", true); err != nil {
		return err
	}
	if size < 0 {
		return pathErr("truncate", f.name, fmt.Errorf("negative size %d", size))
	}
	f.node.truncate(size)
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("stat", false); err != nil {
		return 0, err
	}
	return int64(len(f.node.data)), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("close", false); err != nil {
		return err
	}
	f.closed = true
	return nil
}
