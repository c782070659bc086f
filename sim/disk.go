package sim

import (
	"fmt"
	"math/rand/v2"

	"github.com/raftex/raftex/storage/vfs"
)

// disk is one node's disk: an in-memory file system that can lose power,
// with fsyncs that take virtual time. The WAL calls Sync and returns at
// once (the simulator is single-threaded), so while a write is in flight
// the disk holds its syncs back: the data sits in the page cache, unsynced,
// until the simulated fsync completes (flush). A crash in between takes a
// crash clone of the file system, which drops the unsynced data or keeps a
// torn prefix of it, exactly what a power cut during the fsync leaves.
//
// Only the WAL's batch of one Ready is ever held back: snapshots,
// compaction and InstallSnapshot happen while no write is in flight, and
// their syncs go through at once, so every ordering the storage relies on
// (sync A, then do B) holds.
type disk struct {
	mem *vfs.MemFS
	// holding: syncs are queued in held instead of performed.
	holding bool
	held    []heldSync
}

// heldSync is a file's fsync (f set) or a directory's (dir set) that was
// called while the disk was holding.
type heldSync struct {
	f   *diskFile
	dir string
}

func newDisk(mem *vfs.MemFS) *disk { return &disk{mem: mem} }

var _ vfs.FS = (*disk)(nil)

// hold starts holding syncs back.
func (d *disk) hold() { d.holding = true }

// release stops holding syncs back, leaving those held pending.
func (d *disk) release() { d.holding = false }

// flush performs the held syncs, in order: the fsync has completed.
func (d *disk) flush() {
	for _, h := range d.held {
		var err error
		if h.f != nil {
			err = h.f.syncHeld()
		} else {
			err = d.mem.SyncDir(h.dir)
		}
		if err != nil {
			panic(fmt.Sprintf("sim: held sync failed: %v", err))
		}
	}
	d.held = d.held[:0]
}

// crash returns the disk as a power cut now might leave it.
func (d *disk) crash(rng *rand.Rand) *disk { return newDisk(d.mem.CrashClone(rng)) }

func (d *disk) file(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &diskFile{File: f, d: d}, nil
}

func (d *disk) Create(name string) (vfs.File, error)     { return d.file(d.mem.Create(name)) }
func (d *disk) Open(name string) (vfs.File, error)       { return d.file(d.mem.Open(name)) }
func (d *disk) OpenAppend(name string) (vfs.File, error) { return d.file(d.mem.OpenAppend(name)) }
func (d *disk) Remove(name string) error                 { return d.mem.Remove(name) }
func (d *disk) Rename(oldname, newname string) error     { return d.mem.Rename(oldname, newname) }
func (d *disk) MkdirAll(dir string) error                { return d.mem.MkdirAll(dir) }
func (d *disk) List(dir string) ([]string, error)        { return d.mem.List(dir) }

func (d *disk) SyncDir(dir string) error {
	if d.holding {
		d.held = append(d.held, heldSync{dir: dir})
		return nil
	}
	return d.mem.SyncDir(dir)
}

type diskFile struct {
	vfs.File
	d *disk
	// pending: a sync of this file is held.
	pending bool
}

func (f *diskFile) Sync() error {
	if f.d.holding {
		if !f.pending {
			f.pending = true
			f.d.held = append(f.d.held, heldSync{f: f})
		}
		return nil
	}
	return f.File.Sync()
}

func (f *diskFile) syncHeld() error {
	if !f.pending {
		return nil
	}
	f.pending = false
	return f.File.Sync()
}

// Close completes a held sync first: the WAL syncs a new segment's header
// and closes it before renaming it into place, and that sync must not be
// lost with the handle.
func (f *diskFile) Close() error {
	if err := f.syncHeld(); err != nil {
		return err
	}
	return f.File.Close()
}
