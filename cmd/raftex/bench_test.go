package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeKV is a node answering the routes bench uses: status, sessions, and
// puts and gets through kv (nil: 200 with a revision or a value).
func fakeKV(t *testing.T, kv http.HandlerFunc) (addr string, requests *atomic.Int64) {
	t.Helper()
	requests = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v1/status":
			w.Write([]byte(`{"id":"n1","role":"leader"}`))
		case r.URL.Path == "/v1/sessions":
			w.Write([]byte(`{"client_id":1}`))
		case kv != nil:
			requests.Add(1)
			kv(w, r)
		case r.Method == http.MethodGet:
			requests.Add(1)
			w.Header().Set("Raftex-Revision", "3")
			w.Write([]byte("value"))
		default:
			requests.Add(1)
			w.Write([]byte(`{"revision":3}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), requests
}

// closedAddr is an address nothing listens on.
func closedAddr(t *testing.T) string {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	return addr
}

// numbers and spaces mask the figures of a run's report (and the
// alignment they make), leaving its shape.
var (
	numbers = regexp.MustCompile(`\b[0-9]+(\.[0-9]+)?(ns|µs|ms|s)?`)
	spaces  = regexp.MustCompile(` +`)
)

// TestBenchGolden: the text report of a run (figures masked), the usage
// errors, and an unreachable endpoint: exit 5 with nothing on stdout.
func TestBenchGolden(t *testing.T) {
	addr, _ := fakeKV(t, nil)
	down := closedAddr(t)
	run := transcript(t,
		[]string{"bench", "--endpoints", addr, "--ops", "40", "--clients", "4", "--workload", "mixed:50/50", "--progress", "never"})
	got := spaces.ReplaceAllString(numbers.ReplaceAllString(strings.ReplaceAll(run, addr, "ADDR"), "N"), " ")
	got += transcript(t,
		[]string{"bench", "--workload", "scan"},
		[]string{"bench", "--workload", "mixed:90/20"},
		[]string{"bench", "--ops", "5", "--duration", "1s"},
		[]string{"bench", "--key-size", "8"},
		[]string{"bench", "--consistency", "bogus"},
		[]string{"bench", "--endpoints", down, "--ops", "5"},
	)
	t.Setenv("RAFTEX_WORKLOAD", "gets")
	got += transcript(t, []string{"bench"})
	golden(t, "bench", strings.ReplaceAll(got, down, "DOWN"))
}

// -o json is one object that parses, with the figures of the run.
func TestBenchJSON(t *testing.T) {
	addr, requests := fakeKV(t, nil)
	stdout, stderr, code := runCLI(t, "bench", "--endpoints", addr, "--ops", "60", "--clients", "3",
		"--workload", "mixed:50/50", "--keys", "20", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep struct {
		Workload    string
		Ops         int64
		Failed      int64
		OpsPerS     float64 `json:"ops_per_s"`
		Consistency string
		Latency     map[string]struct {
			Count int64
			P50   *float64 `json:"p50_ms"`
			P999  *float64 `json:"p99_9_ms"`
			Max   *float64 `json:"max_ms"`
		}
		Errors map[string]int64
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("-o json does not parse: %v\n%s", err, stdout)
	}
	if rep.Workload != "mixed:50/50" || rep.Ops != 60 || rep.Failed != 0 || rep.OpsPerS <= 0 || rep.Consistency != "linearizable" {
		t.Errorf("report %+v", rep)
	}
	get, put := rep.Latency["get"], rep.Latency["put"]
	if get.Count+put.Count != 60 || get.P50 == nil || put.P999 == nil || put.Max == nil {
		t.Errorf("latency %+v", rep.Latency)
	}
	// The fill wrote the 20 keys first.
	if n := requests.Load(); n != 80 {
		t.Errorf("%d requests, want 20 to fill and 60 measured", n)
	}
	if strings.Count(stdout, "\n") != 1 {
		t.Errorf("want one line of JSON:\n%s", stdout)
	}
	// --json, as issue 13 spells it, is the same as -o json.
	stdout, stderr, code = runCLI(t, "bench", "--endpoints", addr, "--ops", "10", "--keys", "5", "--json")
	if code != 0 || !json.Valid([]byte(stdout)) {
		t.Fatalf("--json: exit %d, output %q, %s", code, stdout, stderr)
	}
}

// --timeout bounds each operation: against a node that never answers,
// every operation ends as a timeout, and the run exits 5. (The timeout
// also bounds the first look at the endpoint and the session's
// registration, which must succeed: it is long enough for a loaded
// machine.)
func TestBenchTimeoutPerOperation(t *testing.T) {
	hang := make(chan struct{})
	addr, requests := fakeKV(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	})
	defer close(hang)
	stdout, stderr, code := runCLI(t, "bench", "--endpoints", addr, "--ops", "4", "--clients", "2",
		"--timeout", "2s", "-o", "json")
	if code != exitUnavailable {
		t.Fatalf("exit %d, want %d: %s", code, exitUnavailable, stderr)
	}
	var rep struct {
		Ops    int64
		Errors map[string]int64
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Ops != 0 || rep.Errors["timeout"] != 4 || requests.Load() < 4 {
		t.Errorf("ops %d, errors %v after %d requests; want 4 timeouts", rep.Ops, rep.Errors, requests.Load())
	}
	if !strings.Contains(stderr, "every operation failed (timeout 4;") || strings.Count(stderr, "raftex: ") != 1 {
		t.Errorf("stderr %q", stderr)
	}
}

// Every operation refused (not for want of a cluster): exit 1, the errors
// counted by kind.
func TestBenchEveryOperationRefused(t *testing.T) {
	addr, _ := fakeKV(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		w.Write([]byte(`{"error":"value larger than 1048576 bytes"}`))
	})
	stdout, stderr, code := runCLI(t, "bench", "--endpoints", addr, "--ops", "6", "--value-size", "2000000", "--progress", "never")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d: %s", code, exitFailed, stderr)
	}
	if !strings.Contains(stdout, "errors: 6 of 6 operations") || !strings.Contains(stdout, "too_large  6  first: client: value too large") {
		t.Errorf("stdout:\n%s", stdout)
	}
}

// --progress always draws the bar on stderr, never on stdout (and clears
// it at the end).
func TestBenchProgressOnStderr(t *testing.T) {
	addr, _ := fakeKV(t, nil)
	stdout, stderr, code := runCLI(t, "bench", "--endpoints", addr, "--ops", "20", "--progress", "always", "-o", "json")
	if code != 0 || !strings.Contains(stderr, "put: 20 ops") || !strings.Contains(stderr, "% |") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if !json.Valid([]byte(stdout)) {
		t.Errorf("stdout is not JSON alone: %q", stdout)
	}
}
