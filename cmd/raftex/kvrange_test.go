package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeRangeKV plays a cluster for ls, del --prefix, txn and watch.
func fakeRangeKV(t *testing.T) (*httptest.Server, *[]string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	watches := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery+" "+r.Header.Get("Last-Event-ID"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v1/sessions":
			io.WriteString(w, `{"client_id":1}`)
		case r.URL.Path == "/v1/kv" && r.Method == "DELETE":
			io.WriteString(w, `{"deleted":3,"revision":12}`)
		case r.URL.Path == "/v1/kv" && r.URL.Query().Get("start_after_base64") == "":
			io.WriteString(w, `{"kvs":[{"key":"app/a","value":"b24=","revision":7},{"key_base64":"YXBwL/8=","value":"AAE=","revision":8}],"more":true,"revision":11}`)
		case r.URL.Path == "/v1/kv":
			io.WriteString(w, `{"kvs":[{"key":"app/z","value":"","revision":9}],"more":false,"revision":11}`)
		case r.URL.Path == "/v1/txn":
			io.WriteString(w, `{"succeeded":false,"revision":13,"results":[{"found":true,"value":"b24=","revision":7},{"revision":13}]}`)
		case r.URL.Path == "/v1/watch":
			mu.Lock()
			watches++
			n := watches
			mu.Unlock()
			if n > 1 { // the reconnect: refused, which ends the watch
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, `{"error":"permission denied","code":"permission_denied"}`)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "id: 14\nevent: put\ndata: {\"key\":\"app/a\",\"value\":\"b2Zm\",\"revision\":14}\n\n"+
				"id: 15\nevent: batch\ndata: {\"revision\":15,\"changes\":[{\"type\":\"delete\",\"key\":\"app/a\"},{\"type\":\"put\",\"key\":\"app/b\",\"value\":\"eA==\"}]}\n\n")
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

// TestCLIRangeGolden: ls (paging through), del --prefix, txn from stdin
// and watch (its events, then the error that ends it), in text and json.
func TestCLIRangeGolden(t *testing.T) {
	srv, seen := fakeRangeKV(t)
	t.Setenv("RAFTEX_ENDPOINTS", srv.Listener.Addr().String())
	got := transcript(t,
		[]string{"ls", "app/"},
		[]string{"ls", "app/", "--keys-only", "-o", "json"},
		[]string{"del", "--prefix", "app/"},
		[]string{"del", "--prefix", ""},
		[]string{"del", "--all", "-o", "json"},
		[]string{"watch", "app/", "--from-revision", "14"},
	)
	txn := `{"compare":[{"key":"app/a","value":"b2Zm"}],"success":[{"op":"delete","key":"app/a"}],"failure":[{"op":"get","key":"app/a"},{"op":"put","key":"app/a","value":"b2Zm"}]}`
	for _, args := range [][]string{{"txn"}, {"txn", "-o", "json"}} {
		stdout, stderr, code := runCLIInput(t, txn, args...)
		got += "$ raftex " + strings.Join(args, " ") + " <<< '" + txn + "'\n" + stdout + stderr
		if code != 0 {
			t.Errorf("%v: exit %d", args, code)
		}
	}
	stdout, stderr, code := runCLIInput(t, `{"compare":[{"key":"k"}]}`, "txn")
	got += "$ raftex txn <<< '{\"compare\":[{\"key\":\"k\"}]}'\n" + stdout + stderr
	if code != exitUsage {
		t.Errorf("a malformed txn: exit %d, want %d", code, exitUsage)
	}
	golden(t, "range", got)
	for _, want := range []string{
		"GET /v1/kv?consistency=linearizable&limit=10000&prefix=app%2F ",
		"GET /v1/kv?consistency=linearizable&limit=10000&prefix=app%2F&start_after_base64=YXBwL%2F8%3D ",
		"DELETE /v1/kv?prefix=app%2F ",
		"DELETE /v1/kv?all=true&prefix= ",
		"GET /v1/watch?from_revision=14&prefix=app%2F ",
		"GET /v1/watch?from_revision=14&prefix=app%2F 15", // resumes after the last event
	} {
		found := false
		for _, s := range *seen {
			found = found || s == want
		}
		if !found {
			t.Errorf("no request %q in %q", want, *seen)
		}
	}
}
