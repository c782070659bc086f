package sim

import (
	"fmt"
	"io"
	"time"
)

// tracer records the run. Every notable step is folded into a 64-bit
// hash, cheaply and always: two runs of one seed must end with the same
// hash (the determinism check). When a writer is set it also gets a
// readable line per step, the trace a failing seed writes for a human.
type tracer struct {
	hash uint64
	w    io.Writer
	err  error
}

func newTracer(w io.Writer) *tracer { return &tracer{hash: 14695981039346656037, w: w} }

// The kinds of step folded into the hash.
const (
	trSend uint64 = iota + 1
	trDeliver
	trLost
	trReady
	trPersist
	trApply
	trFault
	trClient
	trSnapshot
	trWatch
)

// add folds one step into the hash.
func (t *tracer) add(kind uint64, vals ...uint64) {
	t.mix(kind)
	for _, v := range vals {
		t.mix(v)
	}
}

// mix folds v in with a multiply-xorshift step: every bit of v reaches
// every bit of the hash.
func (t *tracer) mix(v uint64) {
	h := (t.hash ^ v) * 0x9e3779b97f4a7c15
	t.hash = h ^ h>>29
}

// on reports whether readable lines are wanted; callers check it before
// formatting one.
func (t *tracer) on() bool { return t.w != nil }

// printf writes a readable line stamped with the virtual time.
func (t *tracer) printf(now time.Duration, format string, args ...any) {
	if t.w == nil || t.err != nil {
		return
	}
	_, t.err = fmt.Fprintf(t.w, "%12.6fs "+format+"\n", append([]any{now.Seconds()}, args...)...)
}
