package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftex/raftex/kvapi"
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

// registered answers a session's registration with client id 42.
var registered = reply(200, `{"client_id":42}`)

func TestRetriesKeepTheSessionSequence(t *testing.T) {
	node := &fakeNode{responses: []func(http.ResponseWriter){
		registered,
		reply(503, `{"error":"no leader"}`),
		reply(503, `{"error":"no leader"}`),
		reply(200, `{"revision":7}`),
	}}
	srv := httptest.NewServer(node)
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	rev, err := c.Set(context.Background(), "a/b", []byte("v"))
	if err != nil || rev != 7 {
		t.Fatalf("Put = %d, %v", rev, err)
	}
	if len(node.seen) != 4 || node.seen[0].Method != http.MethodPost || node.seen[0].URL.Path != "/v1/sessions" {
		t.Fatalf("%d requests, want a registration and 3 attempts", len(node.seen))
	}
	id, seq := node.seen[1].Header.Get("Raftex-Client-Id"), node.seen[1].Header.Get("Raftex-Request-Seq")
	if id != "42" || seq != "1" || c.ClientID() != 42 {
		t.Fatalf("first write in session %q seq %q, want the registered 42 and 1", id, seq)
	}
	for _, r := range node.seen[1:] {
		if r.Header.Get("Raftex-Client-Id") != id || r.Header.Get("Raftex-Request-Seq") != seq {
			t.Fatalf("attempts carry different sessions: %q/%q vs %q/%q", r.Header.Get("Raftex-Client-Id"), r.Header.Get("Raftex-Request-Seq"), id, seq)
		}
		if r.URL.EscapedPath() != "/v1/kv/a%2Fb" {
			t.Fatalf("path %q", r.URL.EscapedPath())
		}
	}
	node.responses = []func(http.ResponseWriter){reply(200, `{"revision":8}`)}
	c.Set(context.Background(), "k", nil)
	if got := node.seen[4].Header.Get("Raftex-Request-Seq"); got != "2" || len(node.seen) != 5 {
		t.Fatalf("the next write has sequence number %q (%d requests), want 2 in the same session", got, len(node.seen))
	}
}

// Thesis §6.3: a write refused because its session expired (412) applied
// nothing, so the client registers a new session and sends it again.
func TestReregistersWhenTheSessionExpired(t *testing.T) {
	node := &fakeNode{responses: []func(http.ResponseWriter){
		registered,
		reply(412, `{"error":"kv: no such client session","code":"session_expired"}`),
		reply(200, `{"client_id":43}`),
		reply(200, `{"revision":9}`),
	}}
	srv := httptest.NewServer(node)
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	if rev, err := c.Set(context.Background(), "k", []byte("v")); err != nil || rev != 9 {
		t.Fatalf("Put = %d, %v; want 9 through a new session", rev, err)
	}
	last := node.seen[3]
	if id, seq := last.Header.Get("Raftex-Client-Id"), last.Header.Get("Raftex-Request-Seq"); id != "43" || seq != "1" || node.seen[2].URL.Path != "/v1/sessions" {
		t.Fatalf("retry in session %q seq %q, want the new session 43 from its first number", id, seq)
	}
}

// A session that expired after an attempt whose answer was lost leaves
// the write's outcome unknown: the client says so instead of sending it
// again in a new session, which could apply it twice.
func TestSessionExpiredAfterAnUnknownOutcome(t *testing.T) {
	node := &fakeNode{responses: []func(http.ResponseWriter){
		registered,
		reply(503, `{"error":"server: the write's outcome is unknown"}`),
		reply(412, `{"error":"kv: no such client session","code":"session_expired"}`),
		reply(200, `{"client_id":43}`),
		reply(200, `{"revision":9}`),
	}}
	srv := httptest.NewServer(node)
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	_, err := c.Set(context.Background(), "k", []byte("v"))
	if !errors.Is(err, ErrSessionExpired) || !errors.Is(err, ErrUnavailable) || len(node.seen) != 3 {
		t.Fatalf("Put = %v after %d requests; want ErrSessionExpired (outcome unknown) and no third attempt", err, len(node.seen))
	}
	if _, err := c.Set(context.Background(), "k", []byte("v")); err != nil || node.seen[4].Header.Get("Raftex-Client-Id") != "43" {
		t.Fatalf("the next write: %v; want it in a new session", err)
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
	v, rev, err := c.Get(context.Background(), "k")
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
		{reply(404, `{"error":"key not found"}`), kvapi.ErrNotFound},
		{reply(409, `{"error":"mismatch","revision":5}`), &kvapi.CASMismatchError{Revision: 5}},
		{reply(400, `{"error":"key is empty"}`), ErrBadRequest},
		{reply(413, `{"error":"too big"}`), ErrTooLarge},
	}
	for _, tc := range cases {
		node := &fakeNode{responses: []func(http.ResponseWriter){registered, tc.resp}}
		srv := httptest.NewServer(node)
		c := newTestClient(t, srv.URL)
		_, err := c.Set(context.Background(), "k", []byte("v"), kvapi.WithCAS(1))
		srv.Close()
		var mismatch *kvapi.CASMismatchError
		if want, ok := tc.want.(*kvapi.CASMismatchError); ok {
			if !errors.As(err, &mismatch) || mismatch.Revision != want.Revision || !errors.Is(err, kvapi.ErrCASMismatch) {
				t.Errorf("409: got %v", err)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("got %v, want %v", err, tc.want)
		}
		if q := node.seen[1].URL.Query().Get("cas"); q != "1" {
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
	// The endpoint that is up answers by what is asked, not in a scripted
	// order: on a slow machine one of its answers may come after the
	// short AttemptTimeout, and the client then asks again.
	var mu sync.Mutex
	var writes []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/sessions" {
			registered(w)
			return
		}
		mu.Lock()
		writes = append(writes, r)
		mu.Unlock()
		reply(200, `{"revision":4}`)(w)
	}))
	defer srv.Close()
	c, err := New([]string{hung.URL, srv.URL}, Options{MinBackoff: time.Millisecond, AttemptTimeout: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rev, err := c.Set(ctx, "k", []byte("v"))
	if err != nil || rev != 4 {
		t.Fatalf("Put = %d, %v; want 4 from the second endpoint", rev, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(writes) == 0 {
		t.Fatal("the write never reached the endpoint that is up")
	}
	for _, r := range writes {
		if r.Method != http.MethodPut || r.Header.Get("Raftex-Client-Id") != "42" || r.Header.Get("Raftex-Request-Seq") != "1" {
			t.Fatalf("write %s %s in session %q seq %q, want every attempt a PUT in session 42 seq 1",
				r.Method, r.URL.Path, r.Header.Get("Raftex-Client-Id"), r.Header.Get("Raftex-Request-Seq"))
		}
	}
}

// When the context ends during an attempt, the error still carries the
// server's last explanation (why it answered 503), not only the deadline:
// a CLI's --timeout cutting the retry after a server's own request timeout
// must not hide why the cluster could not serve.
func TestUnavailableKeepsTheServersExplanation(t *testing.T) {
	release := make(chan struct{})
	answered := false
	var mu sync.Mutex
	var giveUp context.CancelFunc // set before the first request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		first := !answered
		answered = true
		mu.Unlock()
		if first {
			reply(503, `{"error":"no leader or no quorum answered within 1s","leader":""}`)(w)
			return
		}
		giveUp() // the caller gives up during the retry, which hangs
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := newTestClient(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	giveUp = cancel
	_, err := c.Set(ctx, "k", []byte("v"))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no quorum answered within 1s") {
		t.Fatalf("Put = %v, want ErrUnavailable with the server's explanation", err)
	}
}

// TestLogsInAndRenewsTheToken: with a user name and password the client
// logs in before its first request, sends the token, and logs in again
// when a node refuses it (expired, say) and repeats the request once.
func TestLogsInAndRenewsTheToken(t *testing.T) {
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	node := &fakeNode{responses: []func(http.ResponseWriter){
		reply(200, `{"token":"t1","expires":"`+exp+`"}`),
		reply(200, `value`),
		reply(401, `{"error":"auth: token expired","code":"token_expired"}`),
		reply(200, `{"token":"t2","expires":"`+exp+`"}`),
		reply(200, `again`),
	}}
	srv := httptest.NewServer(node)
	defer srv.Close()
	c, err := New([]string{srv.URL}, Options{Username: "alice", Password: "pw", MinBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, want := range []string{"value", "again"} {
		v, _, err := c.Get(t.Context(), "k")
		if err != nil || string(v) != want {
			t.Fatalf("Get = %q, %v; want %q", v, err, want)
		}
	}
	var got []string
	for _, r := range node.seen {
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
	}
	want := []string{"POST /v1/auth/token ", "GET /v1/kv/k Bearer t1", "GET /v1/kv/k Bearer t1", "POST /v1/auth/token ", "GET /v1/kv/k Bearer t2"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("requests:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestLoginRefusedAndAuthDisabled: a wrong password ends the call with
// ErrUnauthorized at once; a cluster without auth is used without a token.
func TestLoginRefusedAndAuthDisabled(t *testing.T) {
	node := &fakeNode{responses: []func(http.ResponseWriter){
		reply(401, `{"error":"auth: wrong user name or password","code":"bad_password"}`),
		reply(409, `{"error":"auth: auth is not enabled","code":"auth_disabled"}`),
		reply(200, `v`),
		reply(403, `{"error":"auth: permission denied","code":"permission_denied"}`),
	}}
	srv := httptest.NewServer(node)
	defer srv.Close()
	c, _ := New([]string{srv.URL}, Options{Username: "alice", Password: "bad", MinBackoff: time.Millisecond})
	defer c.Close()
	if _, _, err := c.Get(t.Context(), "k"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong password: %v, want ErrUnauthorized", err)
	}
	if v, _, err := c.Get(t.Context(), "k"); err != nil || string(v) != "v" {
		t.Fatalf("auth disabled: %q, %v", v, err)
	}
	if node.seen[2].Header.Get("Authorization") != "" {
		t.Fatal("sent a token to a cluster without auth")
	}
	if _, _, err := c.Get(t.Context(), "k"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("403: %v, want ErrForbidden", err)
	}
}
