package inspect

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raftex/raftex/raft"
)

// fakeSource is a subscribe func whose channel the test feeds and whose
// cancel closes cancelled.
type fakeSource struct {
	events    chan raft.Event
	cancelled chan struct{}
}

func newFakeSource() *fakeSource {
	return &fakeSource{events: make(chan raft.Event), cancelled: make(chan struct{})}
}

func (s *fakeSource) subscribe() (<-chan raft.Event, func()) {
	return s.events, func() { close(s.cancelled) }
}

// dataLines decodes the "data:" messages of an SSE body.
func dataLines(t *testing.T, body string) []JSONEvent {
	t.Helper()
	var out []JSONEvent
	for msg := range strings.SplitSeq(body, "\n\n") {
		if data, ok := strings.CutPrefix(msg, "data: "); ok {
			var j JSONEvent
			if err := json.Unmarshal([]byte(data), &j); err != nil {
				t.Fatalf("bad data %q: %v", data, err)
			}
			out = append(out, j)
		}
	}
	return out
}

var (
	sseState  = raft.Event{Kind: raft.EventRoleChanged, Node: 2, Term: 1, Role: raft.Candidate, PrevRole: raft.Follower}
	sseRPC    = raft.Event{Kind: raft.EventMessageSent, Node: 2, Term: 1, Role: raft.Candidate, Peer: 1, MsgType: raft.MsgVote}
	sseBeat   = raft.Event{Kind: raft.EventMessageSent, Node: 2, Term: 1, Role: raft.Leader, Peer: 1, MsgType: raft.MsgHeartbeat}
	sseCommit = raft.Event{Kind: raft.EventCommitAdvanced, Node: 2, Term: 1, Role: raft.Leader, PrevIndex: 0, Index: 1}
)

// TestSSEFilters streams four events through ?events=state,rpc: the commit
// event and the heartbeat are left out; closing the channel ends the body.
func TestSSEFilters(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"role_changed", "message_sent", "commit_advanced"}},
		{"?events=state,rpc", []string{"role_changed", "message_sent"}},
		{"?events=rpc&heartbeats=1", []string{"message_sent", "message_sent"}},
	} {
		src := newFakeSource()
		srv := httptest.NewServer(SSEHandler(src.subscribe, time.Minute))
		resp, err := http.Get(srv.URL + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Errorf("Content-Type %q", ct)
		}
		for _, e := range []raft.Event{sseState, sseRPC, sseBeat, sseCommit} {
			src.events <- e
		}
		close(src.events)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		<-src.cancelled
		srv.Close()
		var kinds []string
		for _, j := range dataLines(t, string(body)) {
			kinds = append(kinds, j.Kind)
		}
		if strings.Join(kinds, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%q: got kinds %v, want %v\n%s", tc.query, kinds, tc.want, body)
		}
	}
}

// TestSSEEventsArriveOneByOne: each event is flushed as it comes, before
// the next one is sent; the client leaving cancels the subscription.
func TestSSEEventsArriveOneByOne(t *testing.T) {
	src := newFakeSource()
	srv := httptest.NewServer(SSEHandler(src.subscribe, time.Minute))
	defer srv.Close()
	ctx, leave := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	readMessage := func() string {
		t.Helper()
		var b strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("after %q: %v", b.String(), err)
			}
			if line == "\n" {
				return b.String()
			}
			b.WriteString(line)
		}
	}
	if got := readMessage(); got != "retry: 1000\n" {
		t.Errorf("first message %q", got)
	}
	for _, e := range []raft.Event{sseState, sseRPC} {
		src.events <- e
		got := dataLines(t, readMessage()+"\n\n")
		if len(got) != 1 || got[0].Kind != e.Kind.String() || got[0].Node != e.Node {
			t.Fatalf("sent %v, read %+v", e, got)
		}
	}
	leave()
	<-src.cancelled
}

// chunkWriter is a ResponseWriter that hands each flushed chunk to the test.
type chunkWriter struct {
	h      http.Header
	status int
	buf    bytes.Buffer
	chunks chan string
}

func (w *chunkWriter) Header() http.Header         { return w.h }
func (w *chunkWriter) WriteHeader(code int)        { w.status = code }
func (w *chunkWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }
func (w *chunkWriter) Flush() {
	w.chunks <- w.buf.String()
	w.buf.Reset()
}

// TestSSEKeepAlive: a quiet stream gets a comment every KeepAlive, on the
// bubble's virtual clock.
func TestSSEKeepAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeSource()
		w := &chunkWriter{h: http.Header{}, chunks: make(chan string)}
		ctx, leave := context.WithCancel(context.Background())
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1/events", nil)
		done := make(chan struct{})
		go func() {
			SSEHandler(src.subscribe, time.Minute).ServeHTTP(w, req)
			close(done)
		}()
		start := time.Now()
		if got := <-w.chunks; got != "retry: 1000\n\n" {
			t.Errorf("first chunk %q", got)
		}
		for i := 1; i <= 2; i++ {
			if got := <-w.chunks; got != ": keep-alive\n\n" {
				t.Errorf("chunk %q, want a keep-alive", got)
			}
			if d := time.Since(start); d != time.Duration(i)*KeepAlive {
				t.Errorf("keep-alive %d after %s, want %s", i, d, time.Duration(i)*KeepAlive)
			}
		}
		src.events <- sseCommit
		if got := <-w.chunks; !strings.HasPrefix(got, `data: {"kind":"commit_advanced"`) {
			t.Errorf("chunk %q, want the event", got)
		}
		leave()
		<-done
		<-src.cancelled
	})
}

func TestSSEBadQuery(t *testing.T) {
	for _, q := range []string{"?events=state,bogus", "?heartbeats=maybe"} {
		src := newFakeSource()
		rec := httptest.NewRecorder()
		SSEHandler(src.subscribe, time.Minute).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/events"+q, nil))
		var body struct{ Error string }
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusBadRequest || body.Error == "" {
			t.Errorf("%s: %d %q (%v)", q, rec.Code, rec.Body, err)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", q, ct)
		}
		select {
		case <-src.cancelled:
			t.Errorf("%s: subscribed despite a bad query", q)
		default:
		}
	}
}

// TestSSESlowReaderIsCutOff: a client that stops reading is cut off once a
// write waits writeTimeout, which ends its subscription, instead of
// holding its stream for as long as it keeps the connection open.
func TestSSESlowReaderIsCutOff(t *testing.T) {
	src := newFakeSource()
	srv := httptest.NewServer(SSEHandler(src.subscribe, 50*time.Millisecond))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /?heartbeats=1 HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Never read: feed events until the socket buffers fill, the write
	// deadline passes and the handler gives up.
	bound := time.After(time.Minute)
	for {
		select {
		case src.events <- sseBeat:
		case <-src.cancelled:
			return
		case <-bound:
			t.Fatal("the stream of a client that reads nothing was not cut off")
		}
	}
}
