package inspect

import (
	"io"
	"os"

	"github.com/raftex/raftex/raft"
)

// ANSI colours of console lines: one per role, red for refusals and
// step-downs.
const (
	ansiReset  = "\x1b[0m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiBlue   = "\x1b[34m"
)

// ColorFor reports whether lines written to w should be coloured: only when
// w is a terminal (an *os.File that is a character device), NO_COLOR is
// unset or empty (https://no-color.org) and TERM is not "dumb".
func ColorFor(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func roleColor(r raft.Role) string {
	switch r {
	case raft.Leader:
		return ansiGreen
	case raft.Candidate, raft.PreCandidate:
		return ansiYellow
	}
	return ansiBlue
}

// lineColor is the colour of e's console line.
func lineColor(e raft.Event) string {
	switch {
	case failed(e):
		return ansiRed
	case e.Kind == raft.EventElectionWon:
		return ansiGreen
	}
	return roleColor(e.Role)
}
