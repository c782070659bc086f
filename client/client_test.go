package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakeNode answers with the responses queued in order, recording requests.
type fakeNode struct {
	mu        sync.Mutex
	responses []func(w http.ResponseWriter)
	seen      []*http.Request
}

func (f *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.seen = append(f.seen, r)
	next := func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) }
	if len(f.responses) > 0 {
		next, f.responses = f.responses[0], f.responses[1:]
	}
	f.mu.Unlock()
	next(w)
}

func reply(code int, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		w.Write([]byte(body))
	}
}

func newTestClient(t *testing.T, endpoints ...string) *Client {
	c, err := New(endpoints, Options{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestRetriesKeepTheSessionSequence(t *testing.T) {
	node := &fakeNode{responses: []func(http.ResponseWriter){
		reply(503, `{"error":"no leader"}`),
		reply(503, `{"error":"no leader"}`),
		reply(200, `{"revision":7}`),
	}}
	srv := httptest.NewServer(node)
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	rev, err := c.Put(context.Background(), "a/b", []byte("v"))
	if err != nil || rev != 7 {
		t.Fatalf("Put = %d, %v", rev, err)
	}
	if len(node.seen) != 3 {
		t.Fatalf("%d attempts, want 3", len(node.seen))
	}
	id, seq := node.seen[0].Header.Get("Raftex-Client-Id"), node.seen[0].Header.Get("Raftex-Request-Seq")
	for _, r := range node.seen {
		if r.Header.Get("Raftex-Client-Id") != id || r.Header.Get("Raftex-Request-Seq") != seq || id == "" {
			t.Fatalf("attempts carry different sessions: %q/%q vs %q/%q", r.Header.Get("Raftex-Client-Id"), r.Header.Get("Raftex-Request-Seq"), id, seq)
		}
		if r.URL.EscapedPath() != "/v1/kv/a%2Fb" {
			t.Fatalf("path %q", r.URL.EscapedPath())
		}
	}
	node.responses = []func(http.ResponseWriter){reply(200, `{"revision":8}`)}
	c.Put(context.Background(), "k", nil)
	if got := node.seen[3].Header.Get("Raftex-Request-Seq"); got == seq {
		t.Fatal("a new write reused the previous sequence number")
	}
}

func TestFailsOverToAnotherEndpoint(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // connection refused from now on
	up := &fakeNode{responses: []func(http.ResponseWriter){func(w http.ResponseWriter) {
		w.Header().Set("Raftex-Revision", "3")
		w.Write([]byte("value"))
	}}}
	srv := httptest.NewServer(up)
	defer srv.Close()
	c := newTestClient(t, downURL, srv.URL)
	v, rev, err := c.Get(context.Background(), "k", Linearizable)
	if err != nil || string(v) != "value" || rev != 3 {
		t.Fatalf("Get = %q %d %v", v, rev, err)
	}
	if q := up.seen[0].URL.Query().Get("consistency"); q != "linearizable" {
		t.Fatalf("consistency = %q", q)
	}
}

func TestTypedErrors(t *testing.T) {
	cases := []struct {
		resp func(http.ResponseWriter)
		want error
	}{
		{reply(404, `{"error":"key not found"}`), ErrNotFound},
		{reply(409, `{"error":"mismatch","revision":5}`), &CASMismatchError{Revision: 5}},
		{reply(400, `{"error":"key is empty"}`), ErrBadRequest},
		{reply(413, `{"error":"too big"}`), ErrTooLarge},
	}
	for _, tc := range cases {
		node := &fakeNode{responses: []func(http.ResponseWriter){tc.resp}}
		srv := httptest.NewServer(node)
		c := newTestClient(t, srv.URL)
		_, err := c.Put(context.Background(), "k", []byte("v"), WithCAS(1))
		srv.Close()
		var mismatch *CASMismatchError
		if want, ok := tc.want.(*CASMismatchError); ok {
			if !errors.As(err, &mismatch) || mismatch.Revision != want.Revision || !errors.Is(err, ErrCASMismatch) {
				t.Errorf("409: got %v", err)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("got %v, want %v", err, tc.want)
		}
		if q := node.seen[0].URL.Query().Get("cas"); q != "1" {
			t.Errorf("cas = %q", q)
		}
	}
}

func TestUnavailableWhenContextEnds(t *testing.T) {
	srv := httptest.NewServer(&fakeNode{}) // always 503
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := c.Delete(ctx, "k")
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Delete = %v, want ErrUnavailable wrapping the deadline", err)
	}
}

// A hung endpoint (it accepts the request and never answers) costs one
// attempt of AttemptTimeout, after which the client tries the next one,
// with the same session.
func TestMovesOnFromAHungEndpoint(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(release)
	up := &fakeNode{responses: []func(http.ResponseWriter){reply(200, `{"revision":4}`)}}
	srv := httptest.NewServer(up)
	defer srv.Close()
	c, err := New([]string{hung.URL, srv.URL}, Options{MinBackoff: time.Millisecond, AttemptTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rev, err := c.Put(ctx, "k", []byte("v"))
	if err != nil || rev != 4 {
		t.Fatalf("Put = %d, %v; want 4 from the second endpoint", rev, err)
	}
}

// The servers refuse a request SessionWindow sequence numbers behind the
// session's newest, so no number is handed out that far ahead of the
// oldest unfinished one, however many finished after it.
func TestSequenceNumbersStayWithinTheSessionWindow(t *testing.T) {
	w := newSeqWindow(4)
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
