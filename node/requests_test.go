package node

import (
	"fmt"
	"strings"
	"testing"
)

// The apply-index waiters are kept by index (a heap): an apply batch
// releases exactly the waiters at or below the applied index, in index
// order, and looks at no other.
func TestIndexWaitersReleaseInIndexOrder(t *testing.T) {
	w := newIndexWaiters(10)
	var got []string
	add := func(i uint64, name string) {
		w.wait(i, func(err error) { got = append(got, fmt.Sprintf("%s:%v", name, err)) })
	}
	add(5, "applied") // released at once
	add(30, "c")
	add(20, "b")
	add(20, "b2")
	add(40, "d")
	w.trigger(25)
	if s := strings.Join(got, " "); s != "applied:<nil> b:<nil> b2:<nil>" {
		t.Fatalf("after trigger(25): %s", s)
	}
	if n := w.heap.Len(); n != 2 {
		t.Fatalf("%d waiters left, want 2", n)
	}
	w.trigger(24) // going back changes nothing
	w.failAll(ErrStopped)
	if s := strings.Join(got[3:], " "); s != "c:node: stopped d:node: stopped" {
		t.Fatalf("after failAll: %s", s)
	}
}

func BenchmarkIndexWaiters(b *testing.B) {
	w := newIndexWaiters(0)
	const far = 1 << 20
	for i := range 10_000 {
		w.wait(far+uint64(i), func(error) {}) // never released here
	}
	b.ResetTimer()
	for i := range b.N {
		w.wait(uint64(i)+1, func(error) {})
		w.trigger(uint64(i) + 1)
	}
}

// §5.3: an entry never moves to another index. The registry answers a
// proposal at an index whose applied entry has another term with
// ErrNotCommitted (certainly not applied), and one whose place was learned
// after its index applied with ErrForwardLost (outcome unknown).
func TestRegistryResolvesByTerm(t *testing.T) {
	g := newRegistry(3)
	var got []string
	prop := func(name string) *Proposal {
		return &Proposal{Done: func(v any, err error) { got = append(got, fmt.Sprintf("%s:%v:%v", name, v, err)) }}
	}
	g.add(5, 2, prop("ours"))
	g.add(5, 1, prop("overwritten"))
	g.add(3, 1, prop("late"))
	g.resolve(5, 2, "r5")
	want := "late:<nil>:" + ErrForwardLost.Error() + " ours:r5:<nil> overwritten:<nil>:" + ErrNotCommitted.Error()
	if s := strings.Join(got, " "); s != want {
		t.Fatalf("got  %s\nwant %s", s, want)
	}
	if len(g.m) != 0 {
		t.Fatalf("registry keeps %d indexes", len(g.m))
	}
}
