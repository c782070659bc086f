package raftex_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/raftex/raftex"
)

// Config.Debug serves the routes under /debug/ (GET and HEAD, without the
// API's permission for other origins to read them); without it there is
// no /debug/ route.
func TestDebugRoutes(t *testing.T) {
	defer goleak.VerifyNone(t)
	cfg := single(t.TempDir(), loopbackAddr(t), &logBuffer{})
	cfg.Debug = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "debug "+r.URL.Path)
	})
	n, err := raftex.StartNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	off, err := raftex.StartNode(single(t.TempDir(), loopbackAddr(t), &logBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	defer off.Stop()
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	do := func(method, addr string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, "http://"+addr+"/debug/pprof/heap", nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}
	code, body, h := do(http.MethodGet, n.ClientAddr())
	if code != http.StatusOK || body != "debug /debug/pprof/heap" {
		t.Errorf("GET: %d %q", code, body)
	}
	if o := h.Get("Access-Control-Allow-Origin"); o != "" {
		t.Errorf("a /debug/ answer lets origin %q read it", o)
	}
	if code, _, _ := do(http.MethodPost, n.ClientAddr()); code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", code)
	}
	if code, body, _ := do(http.MethodGet, off.ClientAddr()); code != http.StatusNotFound || !strings.Contains(body, `"error"`) {
		t.Errorf("without Config.Debug: %d %q, want a JSON 404", code, body)
	}
}
