package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"

	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/node"
	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage"
	"github.com/raftex/raftex/storage/vfs"
	"github.com/raftex/raftex/transport/mem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer is a single-node cluster (it elects itself) behind a Server,
// on a disk whose writes fail once diskFails is set. It runs on real time:
// its RequestTimeout only turns a hang into a failure, and no request of
// these tests is meant to reach it.
type testServer struct {
	node      *node.Node
	http      *httptest.Server
	diskFails atomic.Bool
}

func newTestServer(t *testing.T, extra map[string]http.Handler) *testServer {
	t.Helper()
	ts := &testServer{}
	fs := vfs.WithInjector(vfs.NewMem(), vfs.FailIf(func(op vfs.Op) bool {
		return ts.diskFails.Load() && op.Kind&(vfs.OpWrite|vfs.OpSync) != 0
	}))
	store, err := storage.Open(fs, "n1", storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := node.DefaultConfig(1)
	cfg.InitialMembership = raft.NewMembership(1)
	cfg.Logger = quiet
	n, err := node.Start(cfg, kv.New(kv.Config{}), store, mem.NewNetwork(1).Transport(1))
	if err != nil {
		t.Fatal(err)
	}
	ts.node = n
	srv := New(Config{Node: n, KV: kv.New(kv.Config{}), RequestTimeout: time.Minute, Logger: quiet, Extra: extra})
	ts.http = httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.http.CloseClientConnections()
		ts.http.Close()
		n.Stop()
	})
	deadline := time.Now().Add(30 * time.Second)
	for n.Role() != raft.Leader {
		if time.Now().After(deadline) {
			t.Fatal("the single node did not elect itself")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ts
}

// do sends method to path and returns the status and the body decoded as
// a JSON object, failing the test unless it is one.
func (ts *testServer) do(t *testing.T, method, path string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, ts.http.URL+path, strings.NewReader("v"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if method == http.MethodHead {
		return resp.StatusCode, nil
	}
	var body map[string]any
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: %d with Content-Type %q: %q", method, path, resp.StatusCode, ct, b)
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%s %s: %d, body %q is not a JSON object", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, body
}

// Unknown routes, and the plain-text errors of handlers mounted from
// elsewhere (a file server's 404), answer JSON like every other error.
func TestErrorsAreJSONEverywhere(t *testing.T) {
	files := http.FileServerFS(fstest.MapFS{"index.html": {Data: []byte("<p>hi</p>")}})
	ts := newTestServer(t, map[string]http.Handler{"/files/": http.StripPrefix("/files", files)})
	for _, path := range []string{"/nope", "/v1/nope", "/v2/kv/k", "/files/nope.js"} {
		code, body := ts.do(t, http.MethodGet, path)
		if code != http.StatusNotFound || body["error"] == "" || body["error"] == nil {
			t.Errorf("GET %s: %d %v, want 404 with an error", path, code, body)
		}
	}
	if code, _ := ts.do(t, http.MethodHead, "/files/index.html"); code != http.StatusOK {
		t.Errorf("HEAD of a served file: %d", code)
	}
}

// Mounted routes (/metrics, /v1/events, the dashboard) are read-only:
// other methods get 405 naming GET and HEAD.
func TestExtraRoutesAnswer405ToWrites(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("# metrics\n")) })
	ts := newTestServer(t, map[string]http.Handler{"/metrics": ok})
	for _, m := range []string{http.MethodDelete, http.MethodPost, http.MethodPut, http.MethodPatch} {
		if code, body := ts.do(t, m, "/metrics"); code != http.StatusMethodNotAllowed || body["error"] == nil {
			t.Errorf("%s /metrics: %d %v, want 405", m, code, body)
		}
	}
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		resp, err := ts.http.Client().Do(must(http.NewRequest(m, ts.http.URL+"/metrics", nil)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s /metrics: %d, want 200", m, resp.StatusCode)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// After its storage failed, the node is not alive (/healthz 503, for a
// liveness probe to restart it) and no endpoint presents it as leader.
func TestStorageFailureFailsHealthAndDropsTheLead(t *testing.T) {
	ts := newTestServer(t, nil)
	if code, body := ts.do(t, http.MethodGet, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz before the failure: %d %v", code, body)
	}
	if code, body := ts.do(t, http.MethodGet, "/readyz"); code != http.StatusOK || body["leader"] != "n1" {
		t.Fatalf("/readyz before the failure: %d %v", code, body)
	}
	ts.diskFails.Store(true)
	if code, body := ts.do(t, http.MethodPut, "/v1/kv/k"); code != http.StatusServiceUnavailable || body["leader"] != "" {
		t.Fatalf("a write on the failing disk: %d %v, want 503 without a leader", code, body)
	}
	select {
	case <-ts.node.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the node did not stop on the storage failure")
	}
	for _, path := range []string{"/healthz", "/readyz", "/v1/status"} {
		code, body := ts.do(t, http.MethodGet, path)
		if code != http.StatusServiceUnavailable || body["leader"] != "" || !strings.Contains(body["error"].(string), "storage failed") {
			t.Errorf("GET %s after the failure: %d %v, want 503 naming the storage failure and no leader", path, code, body)
		}
	}
}
