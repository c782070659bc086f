// Package fake holds test doubles shared by the transport tests: a
// recording transport.Handler and generated snapshot bodies.
package fake

import (
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
)

// Handler records everything a transport hands it. Safe for concurrent
// use; create it with NewHandler (inside the synctest bubble, if any).
type Handler struct {
	// OnSnapshot, if set before the transport starts, replaces the default
	// ReceiveSnapshot, which reads the body to its end and records it.
	OnSnapshot func(m raft.Message, body io.Reader) error

	mu          sync.Mutex
	msgs        []raft.Message
	snaps       []Received
	unreachable []uint64
	reports     []Report
	changed     chan struct{} // closed and replaced on every event
}

// Received is a snapshot the handler took in: its message, the body's
// length and the error reading it.
type Received struct {
	Msg  raft.Message
	Size int64
	Err  error
}

// Report is one ReportSnapshot call.
type Report struct {
	ID uint64
	OK bool
}

var _ transport.Handler = (*Handler)(nil)

// NewHandler returns an empty Handler.
func NewHandler() *Handler { return &Handler{changed: make(chan struct{})} }

func (h *Handler) record(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f()
	close(h.changed)
	h.changed = make(chan struct{})
}

func (h *Handler) Deliver(m raft.Message) { h.record(func() { h.msgs = append(h.msgs, m) }) }

func (h *Handler) ReceiveSnapshot(m raft.Message, body io.Reader) error {
	if h.OnSnapshot != nil {
		return h.OnSnapshot(m, body)
	}
	n, err := io.Copy(io.Discard, body)
	h.record(func() { h.snaps = append(h.snaps, Received{m, n, err}) })
	return err
}

func (h *Handler) ReportUnreachable(id uint64) {
	h.record(func() { h.unreachable = append(h.unreachable, id) })
}

func (h *Handler) ReportSnapshot(id uint64, ok bool) {
	h.record(func() { h.reports = append(h.reports, Report{id, ok}) })
}

// Messages returns a copy of the delivered messages, in order.
func (h *Handler) Messages() []raft.Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.msgs)
}

// Snapshots returns the snapshots received by the default ReceiveSnapshot.
func (h *Handler) Snapshots() []Received {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.snaps)
}

// Unreachable returns the ids passed to ReportUnreachable, in order.
func (h *Handler) Unreachable() []uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.unreachable)
}

// Reports returns the ReportSnapshot calls, in order.
func (h *Handler) Reports() []Report {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.reports)
}

// WaitTimeout bounds Wait. It only turns a hang into a failure: no test
// asserts anything about how fast the machine is.
const WaitTimeout = 30 * time.Second

// Wait blocks until cond holds, re-checking after every event, and fails
// the test if it does not within WaitTimeout. cond runs without the
// handler's lock, so it may call the accessors.
func (h *Handler) Wait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(WaitTimeout)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		ch := h.changed
		h.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", WaitTimeout, what)
		}
	}
}
