package e2e

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestServeEnablePprof: serve --enable-pprof serves Go's profiles under
// /debug/pprof/ (issue 13 item 1), samples blocking while on, and says so
// in the log; without the flag there is no such route.
func TestServeEnablePprof(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, "--enable-pprof")
	nd := c.Nodes[0]
	base := "http://" + nd.ClientAddr + "/debug/pprof/"
	index := must(t, http.MethodGet, base, nil)
	if index.Code != http.StatusOK {
		t.Fatalf("GET /debug/pprof/: %d %s", index.Code, index.Body)
	}
	for _, p := range []string{"allocs", "block", "goroutine", "heap", "mutex", "profile", "trace"} {
		if !strings.Contains(string(index.Body), p) {
			t.Errorf("the index lacks %s", p)
		}
	}
	if r := must(t, http.MethodGet, base+"heap?debug=1", nil); r.Code != http.StatusOK || !strings.Contains(string(r.Body), "heap profile:") {
		t.Errorf("heap: %d %.100s", r.Code, r.Body)
	}
	// The block profile samples once pprof is on: the node's goroutines
	// wait on channels all the time.
	soon.Until(t, "a blocking event in the block profile", func() error {
		r, err := get(base + "block?debug=1")
		if err != nil {
			return err
		}
		if !strings.Contains(string(r.Body), " @ 0x") {
			return errors.New("no sample yet")
		}
		return nil
	})
	// Logged once the node serves: maybe not yet when it first answered.
	waitLog(t, nd.Proc, "pprof is on")

	plain := newCluster(t, 1)
	if r := must(t, http.MethodGet, "http://"+plain.Nodes[0].ClientAddr+"/debug/pprof/", nil); r.Code != http.StatusNotFound {
		t.Errorf("without --enable-pprof: %d", r.Code)
	}
}
