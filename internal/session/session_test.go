package session

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

// The cluster refuses a request the window's size sequence numbers behind
// the session's newest, so no number is handed out that far ahead of the
// oldest unfinished one, however many finished after it.
func TestSequenceNumbersStayWithinTheWindow(t *testing.T) {
	defer goleak.VerifyNone(t)
	w := newWindow(4)
	for want := uint64(1); want <= 4; want++ {
		if n, err := w.acquire(context.Background()); err != nil || n != want {
			t.Fatalf("acquire = %d, %v; want %d", n, err, want)
		}
	}
	full, cancel := context.WithCancel(context.Background())
	cancel()
	w.release(2)
	w.release(3)
	w.release(4)
	if n, err := w.acquire(full); err == nil {
		t.Fatalf("acquired %d while 1 is unfinished and 4 ahead of it", n)
	}
	w.release(1)
	for want := uint64(5); want <= 8; want++ {
		if n, err := w.acquire(full); err != nil || n != want {
			t.Fatalf("acquire = %d, %v; want %d", n, err, want)
		}
	}
	// A waiter wakes when the oldest is released.
	got := make(chan uint64)
	go func() {
		n, _ := w.acquire(context.Background())
		got <- n
	}()
	w.release(5)
	if n := <-got; n != 9 {
		t.Fatalf("woken acquire = %d, want 9", n)
	}
}

// Concurrent first writes share one registration.
func TestRegistersOnceForConcurrentWrites(t *testing.T) {
	defer goleak.VerifyNone(t)
	var calls atomic.Int32
	release := make(chan struct{})
	s := New(func(ctx context.Context) (uint64, error) {
		calls.Add(1)
		<-release
		return 7, nil
	}, 16)
	var wg sync.WaitGroup
	seqs := make(chan uint64, 8)
	for range 8 {
		wg.Go(func() {
			tk, err := s.Acquire(context.Background())
			if err != nil || tk.ClientID != 7 {
				t.Errorf("Acquire = %+v, %v", tk, err)
			}
			seqs <- tk.Seq
		})
	}
	close(release)
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for q := range seqs {
		seen[q] = true
	}
	if calls.Load() != 1 || len(seen) != 8 {
		t.Fatalf("%d registrations and %d distinct sequence numbers, want 1 and 8", calls.Load(), len(seen))
	}
}

// Thesis §6.3: after the cluster reports the session expired, the next
// write registers a new session and numbers from 1 again; a late report
// about the old session does not drop the new one.
func TestExpiredRegistersANewSession(t *testing.T) {
	next := uint64(10)
	s := New(func(ctx context.Context) (uint64, error) { next++; return next, nil }, 16)
	ctx := context.Background()
	old, _ := s.Acquire(ctx)
	other, _ := s.Acquire(ctx)
	s.Expired(old)
	s.Release(old)
	fresh, err := s.Acquire(ctx)
	if err != nil || fresh.ClientID != 12 || fresh.Seq != 1 {
		t.Fatalf("after the expiry: %+v, %v; want session 12 from 1", fresh, err)
	}
	s.Expired(other) // a second write of the old session learns it late
	if tk, _ := s.Acquire(ctx); tk.ClientID != 12 || tk.Seq != 2 {
		t.Fatalf("a late report of the old session dropped the new one: %+v", tk)
	}
}

// A failed registration is returned, and the next Acquire tries again.
func TestFailedRegistrationIsRetriedByTheNextWrite(t *testing.T) {
	fail := errors.New("no quorum")
	calls := 0
	s := New(func(ctx context.Context) (uint64, error) {
		calls++
		if calls == 1 {
			return 0, fail
		}
		return 3, nil
	}, 16)
	if _, err := s.Acquire(context.Background()); !errors.Is(err, fail) {
		t.Fatalf("Acquire = %v, want the registration's error", err)
	}
	if tk, err := s.Acquire(context.Background()); err != nil || tk.ClientID != 3 || s.ClientID() != 3 {
		t.Fatalf("second Acquire = %+v, %v", tk, err)
	}
}
