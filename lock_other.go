//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package raftex

import (
	"errors"
	"os"
)

// lockSupported: this system has no flock; StartNode warns that a second
// process on the same data dir is not refused.
const lockSupported = false

var errLocked = errors.New("locked")

func flock(*os.File) error { return nil }
