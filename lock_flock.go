//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package raftex

import (
	"errors"
	"os"
	"syscall"
)

// lockSupported: this system has flock, and the data dir is locked.
const lockSupported = true

// errLocked: another open file holds the lock.
var errLocked = syscall.EWOULDBLOCK

// flock takes an exclusive lock on f without waiting.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
