package raftex

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockFileName is the file in DataDir a running node holds an exclusive
// lock on, and writes its process id into.
const lockFileName = "raftex.lock"

// ErrDataDirInUse is returned by StartNode when another process (or
// another Node of this one) runs on the same DataDir: two nodes writing
// one log would corrupt it.
var ErrDataDirInUse = errors.New("raftex: the data dir is in use")

// dataDirLock is the lock StartNode holds on DataDir until Stop.
type dataDirLock struct{ f *os.File }

// lockDataDir takes DataDir's lock, or returns ErrDataDirInUse naming the
// holder's process id. The lock is the kernel's (flock): it ends with the
// process, however that ends, so a stale lock file never blocks a start.
func lockDataDir(dir string) (*dataDirLock, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("raftex: locking the data dir: %w", err)
	}
	if err := flock(f); err != nil {
		holder := readHolder(f)
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("%w: %s is locked by process %s (is another raftex running on it?)", ErrDataDirInUse, dir, holder)
		}
		return nil, fmt.Errorf("raftex: locking %s: %w", path, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, err
	}
	return &dataDirLock{f: f}, nil
}

// readHolder returns the process id the lock's holder wrote, or "unknown"
// (it may not have written it yet).
func readHolder(f *os.File) string {
	b, _ := io.ReadAll(io.LimitReader(f, 32))
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
		return strconv.Itoa(pid)
	}
	return "unknown"
}

// release ends the lock. The file stays: removing it could let two
// processes each lock a different file of the same name.
func (l *dataDirLock) release() error { return l.f.Close() }
