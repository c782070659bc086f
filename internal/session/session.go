// Package session is the client's side of exactly-once sessions (thesis
// §6.3), shared by package client (over HTTP) and package server (its
// own writes): a Session registers with the cluster on first use, and
// again once the cluster reports it expired, and hands out sequence
// numbers so that none is SessionWindow or more ahead of the oldest write
// still in flight (the cluster forgets results beyond that window).
package session

import (
	"context"
	"sync"
)

// Register registers a new session with the cluster and returns its
// client id.
type Register func(ctx context.Context) (uint64, error)

// Session is one client session at a time. Safe for concurrent use.
type Session struct {
	register Register
	window   uint64

	mu  sync.Mutex
	cur *state
	// registering is closed when the registration in flight ends (nil:
	// none in flight).
	registering chan struct{}
}

// state is one registered session.
type state struct {
	id   uint64
	seqs *window
}

// Ticket is one write's place in a session. Release it when the write
// ended, whatever its outcome.
type Ticket struct {
	ClientID uint64
	Seq      uint64
	st       *state
}

// New returns a Session that registers with register and keeps its
// writes within window sequence numbers of the oldest in flight.
func New(register Register, window uint64) *Session {
	return &Session{register: register, window: window}
}

// Acquire returns a ticket in the current session, registering a session
// first if there is none (one registration at a time: the other callers
// wait for it), and waiting while window writes are in flight.
func (s *Session) Acquire(ctx context.Context) (Ticket, error) {
	for {
		s.mu.Lock()
		st, wait := s.cur, s.registering
		if st == nil && wait == nil {
			s.registering = make(chan struct{})
		}
		s.mu.Unlock()
		switch {
		case st != nil:
			seq, err := st.seqs.acquire(ctx)
			if err != nil {
				return Ticket{}, err
			}
			return Ticket{ClientID: st.id, Seq: seq, st: st}, nil
		case wait != nil:
			select {
			case <-wait:
			case <-ctx.Done():
				return Ticket{}, ctx.Err()
			}
		default:
			if err := s.registerNow(ctx); err != nil {
				return Ticket{}, err
			}
		}
	}
}

func (s *Session) registerNow(ctx context.Context) error {
	id, err := s.register(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.cur = &state{id: id, seqs: newWindow(s.window)}
	}
	close(s.registering)
	s.registering = nil
	return err
}

// Release ends t's write.
func (s *Session) Release(t Ticket) { t.st.seqs.release(t.Seq) }

// Expired drops t's session, if it is still the current one: the
// cluster reported it expired, and the next Acquire registers anew.
func (s *Session) Expired(t Ticket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == t.st {
		s.cur = nil
	}
}

// ClientID returns the current session's client id (0: none).
func (s *Session) ClientID() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return 0
	}
	return s.cur.id
}

// window hands out a session's sequence numbers, each less than size
// ahead of the oldest one not yet released.
type window struct {
	size uint64
	mu   sync.Mutex
	next uint64          // the next number to hand out
	low  uint64          // every number below low is released
	done map[uint64]bool // released numbers above low
	wake chan struct{}   // closed when low moves
}

func newWindow(size uint64) *window {
	return &window{size: size, next: 1, low: 1, done: map[uint64]bool{}, wake: make(chan struct{})}
}

// acquire returns the next number once it is within the window.
func (w *window) acquire(ctx context.Context) (uint64, error) {
	for {
		w.mu.Lock()
		if w.next-w.low < w.size {
			n := w.next
			w.next++
			w.mu.Unlock()
			return n, nil
		}
		wake := w.wake
		w.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// release marks n finished (applied, failed, or given up on).
func (w *window) release(n uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done[n] = true
	moved := false
	for w.done[w.low] {
		delete(w.done, w.low)
		w.low++
		moved = true
	}
	if moved {
		close(w.wake)
		w.wake = make(chan struct{})
	}
}
