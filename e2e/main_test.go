// Package e2e tests issue 5 end to end: the key-value store's HTTP API,
// the Go client and the CLI, against real `raftex` processes on loopback.
//
// The package holds test files only. TestMain builds the binary once;
// every test starts its own processes in its own temporary directory, on
// free loopback ports, and kills them in t.Cleanup. After the run TestMain
// checks that no raftex process it started (or that one of those started)
// is left, and that the test process leaked no goroutine.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// raftexBin is the binary TestMain built.
var raftexBin string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "raftex-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	raftexBin = filepath.Join(dir, "raftex")
	// go test puts its own GOROOT/bin first on PATH, so "go" is the
	// toolchain running these tests.
	build := exec.Command("go", "build", "-o", raftexBin, "github.com/raftex/raftex/cmd/raftex")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building raftex: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if left := leftoverProcesses(raftexBin); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: raftex processes left running (killed now):\n  %s\n", strings.Join(left, "\n  "))
		code = 1
	}
	httpClient.CloseIdleConnections()
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: leaked goroutines: %v\n", err)
		code = 1
	}
	return code
}

// leftoverProcesses finds every live process running bin (whoever started
// it: a `raftex cluster` starts its own children), kills it and describes
// it.
func leftoverProcesses(bin string) []string {
	var left []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 { // gone, or a zombie
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if args[0] != bin {
			continue
		}
		left = append(left, fmt.Sprintf("pid %d: %s", pid, strings.Join(args, " ")))
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return left
}
