// Package e2e tests issue 5 end to end: the key-value store's HTTP API,
// the Go client and the CLI, against real `raftex` processes on loopback.
//
// The package holds test files only; its harness is internal/e2etest.
// TestMain builds the binary once; every test starts its own processes in
// its own temporary directory, on free loopback ports, and kills them in
// t.Cleanup. After the run TestMain checks that no raftex process it
// started (or that one of those started) is left, and that the test
// process leaked no goroutine.
package e2e

import (
	"net/http"
	"os"
	"testing"

	"github.com/raftex/raftex/internal/e2etest"
)

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, e2etest.MainConfig{Name: "e2e", Goroutines: true, HTTP: []*http.Client{httpClient}}))
}
