package sim

import (
	"testing"

	"github.com/raftex/raftex/kvapi"
)

// TestWatchCheck: the watch check fails a gap, a duplicate, a change of
// another prefix and a wrong value, and passes the committed sequence.
func TestWatchCheck(t *testing.T) {
	put := func(rev uint64, key, value string) kvapi.Event {
		return kvapi.Event{Revision: rev, Changes: []kvapi.Change{{Type: kvapi.ChangePut, Key: []byte(key), Value: []byte(value)}}}
	}
	committed := []kvapi.Event{put(3, "k0", "a"), put(4, "x", "b"), put(5, "k1", "c"), put(7, "k0", "d")}
	for _, tc := range []struct {
		name      string
		delivered []kvapi.Event
		ok        bool
	}{
		{"the committed sequence", []kvapi.Event{put(3, "k0", "a"), put(5, "k1", "c"), put(7, "k0", "d")}, true},
		{"a gap", []kvapi.Event{put(3, "k0", "a"), put(7, "k0", "d")}, false},
		{"a duplicate", []kvapi.Event{put(3, "k0", "a"), put(3, "k0", "a")}, false},
		{"another prefix", []kvapi.Event{put(3, "k0", "a"), put(4, "x", "b")}, false},
		{"a wrong value", []kvapi.Event{put(3, "k0", "z")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(Options{Seed: 1, Nodes: 1})
			ws := s.watches
			ws.events = committed
			w := &watcher{id: 1, prefix: []byte("k")}
			for _, ev := range tc.delivered {
				ws.check(w, ev)
			}
			if got := s.violation == nil; got != tc.ok {
				t.Fatalf("passed=%t, want %t (%v)", got, tc.ok, s.violation)
			}
			if tc.ok {
				if want := []string{"k0=d", "k1=c"}; len(ws.stateAt([]byte("k"), 7)) != 2 || ws.stateAt([]byte("k"), 7)[0] != want[0] {
					t.Fatalf("state at 7 = %v, want %v", ws.stateAt([]byte("k"), 7), want)
				}
			}
		})
	}
}
