// Package vfs is the file-system seam of package storage: everything the
// write-ahead log and the snapshot files do to a disk goes through FS, so
// tests and the simulator can run the same code over an in-memory disk that
// can lose power (MemFS.CrashClone) or fail (WithInjector).
//
// The model of durability is the one POSIX promises and no more:
//
//   - bytes written to a file are durable only after File.Sync returns;
//   - a created, renamed or removed name is durable only after SyncDir of
//     its directory returns, a directory's name made by MkdirAll too
//     (MkdirAllSync makes directories and syncs their parents).
//
// Write always appends at the end of the file: the storage only ever
// appends, truncates a torn tail, or writes a file whole.
package vfs

import (
	"errors"
	"io"
	"io/fs"
	"path/filepath"
)

// File is an open file. Safe for use by one goroutine at a time; a file
// opened by Open is read-only and its Write, Sync and Truncate fail.
type File interface {
	// Write appends p at the end of the file.
	io.Writer
	io.ReaderAt
	io.Closer
	// Sync makes the file's content durable (fsync).
	Sync() error
	// Truncate changes the file's size; writes then continue at the new end.
	Truncate(size int64) error
	// Size returns the current size in bytes.
	Size() (int64, error)
}

// FS is a file system. Names are slash- or OS-separated paths; both
// implementations clean them. All methods are safe for concurrent use.
type FS interface {
	// Create makes an empty file for writing (on a real disk, with
	// permissions 0600), truncating any file of that name. The new name is
	// durable only after SyncDir.
	Create(name string) (File, error)
	// Open opens an existing file for reading.
	Open(name string) (File, error)
	// OpenAppend opens an existing file for reading and appending.
	OpenAppend(name string) (File, error)
	// Remove deletes a file.
	Remove(name string) error
	// Rename atomically replaces newname with oldname. Durable only after
	// SyncDir of the directory (both, if they differ).
	Rename(oldname, newname string) error
	// MkdirAll makes dir and any missing parents (on a real disk, with
	// permissions 0700). The new names are durable only after SyncDir of
	// each one's parent.
	MkdirAll(dir string) error
	// List returns the names of the files (not subdirectories) in dir,
	// sorted.
	List(dir string) ([]string, error)
	// SyncDir makes the names in dir durable (fsync of the directory).
	SyncDir(dir string) error
}

// MkdirAllSync makes dir and any missing parents, durably: after making
// them it syncs the parent of each directory it made, so a crash keeps
// them (and what is later synced inside them). Directories that existed
// are left alone.
func MkdirAllSync(fsys FS, dir string) error {
	var missing []string // deepest first
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		_, err := fsys.List(d)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fsys.MkdirAll(dir); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := fsys.SyncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}
