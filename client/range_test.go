package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/raftex/raftex/kvapi"
)

func TestListTxnAndDeletePrefix(t *testing.T) {
	node := &fakeNode{responses: []func(http.ResponseWriter){
		reply(200, `{"kvs":[{"key":"a/1","value":"MQ==","revision":3},{"key_base64":"YS//","revision":4}],"more":true,"revision":9}`),
		registered,
		reply(200, `{"succeeded":true,"revision":10,"results":[{"revision":10},{"deleted":false},{"found":true,"value":"Mg==","revision":10}]}`),
		reply(200, `{"deleted":2,"revision":11}`),
	}}
	srv := httptest.NewServer(node)
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	ctx := context.Background()
	page, err := c.List(ctx, "a/", kvapi.ListOptions{StartAfter: []byte("a/\x00\xff"), Limit: 2, KeysOnly: true, Consistency: kvapi.Stale})
	if err != nil || len(page.KVs) != 2 || string(page.KVs[1].Key) != "a/\xff" || !page.More || page.Revision != 9 {
		t.Fatalf("List = %+v %v", page, err)
	}
	if q := node.seen[0].URL.RawQuery; q != "consistency=stale&keys_only=true&limit=2&prefix=a%2F&start_after_base64=YS8A%2Fw%3D%3D" {
		t.Fatalf("list query %q", q)
	}
	resp, err := c.Txn(ctx, kvapi.Txn{Compare: []kvapi.Compare{kvapi.Exists("k", false)},
		Success: []kvapi.Op{kvapi.Put("k", []byte("2")), kvapi.Delete("x"), kvapi.Get("k")}})
	if err != nil || !resp.Succeeded || resp.Revision != 10 || len(resp.Results) != 3 || string(resp.Results[2].Value) != "2" {
		t.Fatalf("Txn = %+v %v", resp, err)
	}
	if r := node.seen[2]; r.URL.Path != "/v1/txn" || r.Header.Get("Raftex-Client-Id") != "42" {
		t.Fatalf("txn request %s %v", r.URL, r.Header)
	}
	if n, rev, err := c.DeletePrefix(ctx, "a/", false); err != nil || n != 2 || rev != 11 {
		t.Fatalf("DeletePrefix = %d %d %v", n, rev, err)
	}
}

// watchNode plays a cluster's watch route: each connection is answered by
// the next step, which sees the request.
type watchNode struct {
	t     *testing.T
	mu    sync.Mutex
	steps []func(w http.ResponseWriter, r *http.Request)
}

func (n *watchNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	if len(n.steps) == 0 {
		n.mu.Unlock()
		<-r.Context().Done() // the client is done: hang until it leaves
		return
	}
	step := n.steps[0]
	n.steps = n.steps[1:]
	n.mu.Unlock()
	step(w, r)
}

func stream(events ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "retry: 1000\n\n: heartbeat\n\n"+strings.Join(events, ""))
	}
}

func expectRequest(t *testing.T, r *http.Request, query, lastID string) {
	t.Helper()
	if r.URL.RawQuery != query || r.Header.Get("Last-Event-ID") != lastID {
		t.Errorf("request %s Last-Event-ID %q, want %s and %q", r.URL, r.Header.Get("Last-Event-ID"), query, lastID)
	}
}

// TestWatch_ReconnectsAndRecoversFromCompaction: the client resumes after
// the last revision it delivered when a stream ends; on 410 it lists the
// prefix (a Reset event) and watches on from the listing's revision; a
// final "compacted" event is handled the same way.
func TestWatch_ReconnectsAndRecoversFromCompaction(t *testing.T) {
	n := &watchNode{t: t}
	n.steps = []func(http.ResponseWriter, *http.Request){
		func(w http.ResponseWriter, r *http.Request) {
			expectRequest(t, r, "from_revision=5&prefix=p%2F", "")
			stream("id: 5\nevent: put\ndata: {\"key\":\"p/a\",\"value\":\"MQ==\",\"revision\":5}\n\n",
				"id: 7\nevent: batch\ndata: {\"revision\":7,\"changes\":[{\"type\":\"delete\",\"key\":\"p/a\"},{\"type\":\"put\",\"key_base64\":\"cC//\",\"value\":\"\"}]}\n\n")(w, r)
		},
		func(w http.ResponseWriter, r *http.Request) {
			expectRequest(t, r, "from_revision=5&prefix=p%2F", "7") // Last-Event-ID wins
			reply(410, `{"error":"compacted","compact_revision":20}`)(w)
		},
		func(w http.ResponseWriter, r *http.Request) {
			expectRequest(t, r, "limit=10000&prefix=p%2F", "")
			reply(200, `{"kvs":[{"key":"p/b","value":"Yg==","revision":21}],"more":false,"revision":30}`)(w)
		},
		func(w http.ResponseWriter, r *http.Request) {
			expectRequest(t, r, "from_revision=31&prefix=p%2F", "")
			stream("id: 31\nevent: delete\ndata: {\"key\":\"p/b\",\"revision\":31}\n\n",
				"event: compacted\ndata: {\"error\":\"fell behind\",\"compact_revision\":40}\n\n")(w, r)
		},
		func(w http.ResponseWriter, r *http.Request) {
			reply(200, `{"kvs":[],"more":false,"revision":45}`)(w)
		},
		func(w http.ResponseWriter, r *http.Request) {
			expectRequest(t, r, "from_revision=46&prefix=p%2F", "")
			stream("id: 46\nevent: put\ndata: {\"key\":\"p/c\",\"value\":\"\",\"revision\":46}\n\n")(w, r)
		},
	}
	srv := httptest.NewServer(n)
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := c.Watch(ctx, "p/", 5)
	want := []string{
		"5 [put p/a 1]",
		"7 [delete p/a  put p/\xff ]",
		"30 reset [put p/b b]",
		"31 [delete p/b ]",
		"45 reset []",
		"46 [put p/c ]",
	}
	for _, w := range want {
		ev := <-events
		got := fmt.Sprint(ev.Revision)
		if ev.Reset {
			got += " reset"
		}
		var parts []string
		for _, c := range ev.Changes {
			parts = append(parts, fmt.Sprintf("%s %s %s", c.Type, c.Key, c.Value))
		}
		got += " [" + strings.Join(parts, " ") + "]"
		if got != w || ev.Err != nil {
			t.Fatalf("event %q (err %v), want %q", got, ev.Err, w)
		}
	}
	cancel()
	for range events {
	}
}

func TestWatch_ForbiddenEndsWithAnError(t *testing.T) {
	n := &watchNode{t: t}
	n.steps = []func(http.ResponseWriter, *http.Request){
		func(w http.ResponseWriter, r *http.Request) {
			reply(403, `{"error":"permission denied","code":"permission_denied"}`)(w)
		},
	}
	srv := httptest.NewServer(n)
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	events := c.Watch(context.Background(), "secret/", 0)
	ev := <-events
	if ev.Err == nil || !strings.Contains(ev.Err.Error(), "permission denied") {
		t.Fatalf("event %+v, want the 403", ev)
	}
	if _, open := <-events; open {
		t.Fatal("the channel stays open after the error")
	}
}
