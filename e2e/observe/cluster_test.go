// Package observe tests what issue 6 promises to show, end to end: the
// real raftex binary runs as three `raftex serve` processes on loopback,
// and the tests read them as an operator would, through /metrics and
// through the dashboard in a headless browser.
//
// The package holds test files only; its harness is internal/e2etest.
// TestMain builds the binary once; every test starts its own cluster in
// its own temporary directory and kills it in t.Cleanup. After the run
// TestMain checks that no raftex process it started is left.
package observe

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/raftex/raftex/internal/e2etest"
)

func TestMain(m *testing.M) { os.Exit(e2etest.Main(m, e2etest.MainConfig{Name: "observe"})) }

// Deadlines are generous: CI machines are small and shared. Polls that
// wait on them stop as soon as the condition holds.
const (
	electionDeadline = 60 * time.Second
	settleDeadline   = 30 * time.Second
	pollEvery        = 100 * time.Millisecond
)

// settle polls for what the nodes and the page show once things settle.
var settle = e2etest.Poll{Within: settleDeadline, Every: pollEvery}

// httpClient reads the nodes.
var httpClient = &http.Client{Timeout: 10 * time.Second}

// ports: 32000-32768, a range of this package's own (e2e takes
// 20000-32000, e2e/docker 10000-20000).
var ports = e2etest.NewPorts(32000, 32768)

// startCluster starts n nodes on free loopback ports, each with its own
// data directory under a fresh temporary directory, waits until they agree
// on a leader, and kills them all when the test ends (showing their logs
// if it failed, and keeping them in $RAFTEX_ARTIFACTS).
func startCluster(t *testing.T, n int) *e2etest.Cluster {
	t.Helper()
	return e2etest.NewCluster(t, e2etest.ClusterConfig{Nodes: n, Ports: ports, HTTP: httpClient,
		Poll: e2etest.Poll{Within: electionDeadline, Every: pollEvery}})
}

// get reads key through nd over HTTP (linearizably) and returns its value
// and revision. A 503 (an election under way) is returned as an error
// wrapping errUnavailable, for the step to be tried again if the term
// moved; any other failure fails the test.
func get(t *testing.T, nd *e2etest.Node, key string) (string, string, error) {
	t.Helper()
	r, err := nd.Get("/v1/kv/" + url.PathEscape(key))
	if err != nil {
		t.Fatalf("get %q through %s: %v", key, nd.Name, err)
	}
	if r.Code == http.StatusServiceUnavailable {
		return "", "", fmt.Errorf("get %q through %s: %w: %s", key, nd.Name, errUnavailable, r.Body)
	}
	if err := r.Want(http.StatusOK); err != nil {
		t.Fatalf("get %q through %s: %v", key, nd.Name, err)
	}
	return string(r.Body), r.Header.Get("Raftex-Revision"), nil
}
