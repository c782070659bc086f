package e2etest

import (
	"errors"
	"testing"
	"time"
)

// Poll says how long a condition may take to hold, and how often it is
// tried. Deadlines are generous, as CI machines are small and shared; a
// poll stops as soon as its condition holds, so a healthy run never waits
// one out.
type Poll struct {
	Within time.Duration
	Every  time.Duration
}

// Until calls f until it returns nil. It fails the test with f's last
// error once p.Within has passed, or at once when f returns
// StopPolling(err).
func (p Poll) Until(t testing.TB, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(p.Within)
	for {
		err := f()
		if err == nil {
			return
		}
		var s stopPolling
		if errors.As(err, &s) {
			t.Fatalf("%s: %v", what, s.error)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, p.Within, err)
		}
		time.Sleep(p.Every)
	}
}

type stopPolling struct{ error }

// StopPolling makes Poll.Until fail the test at once with err: the
// condition can no longer hold (a process it waits on exited).
func StopPolling(err error) error { return stopPolling{err} }
