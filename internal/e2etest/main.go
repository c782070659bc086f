package e2etest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// bin is the binary Main built; StartProc runs it.
var bin string

// Bin returns the raftex binary Main built ("" outside Main).
func Bin() string { return bin }

// MainConfig says what Main checks after the tests.
type MainConfig struct {
	// Name starts what Main prints and names its temporary directory:
	// "e2e", "observe".
	Name string
	// Goroutines makes a goroutine the tests leaked fail the run
	// (goleak), once the idle connections of HTTP are closed.
	Goroutines bool
	HTTP       []*http.Client
}

// Main is the body of the TestMain of a package whose tests run raftex:
//
//	func TestMain(m *testing.M) { os.Exit(e2etest.Main(m, e2etest.MainConfig{Name: "e2e"})) }
//
// It builds the binary once, runs the tests, and returns their exit code,
// or 1 when the build failed, when a process running the binary is left
// (started by a test, or by a process a test started, as `raftex cluster`
// starts its nodes: Main kills it and says which), or, with
// cfg.Goroutines, when a goroutine leaked.
func Main(m *testing.M, cfg MainConfig) int {
	dir, err := os.MkdirTemp("", "raftex-"+cfg.Name+"-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", cfg.Name, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "raftex")
	if err := Build(bin); err != nil {
		fmt.Fprintf(os.Stderr, "%s: building raftex: %v\n", cfg.Name, err)
		return 1
	}
	code := m.Run()
	if left := leftoverProcesses(bin); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "%s: FAIL: raftex processes left running (killed now):\n  %s\n", cfg.Name, strings.Join(left, "\n  "))
		code = 1
	}
	if cfg.Goroutines {
		for _, c := range cfg.HTTP {
			c.CloseIdleConnections()
		}
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: FAIL: leaked goroutines: %v\n", cfg.Name, err)
			code = 1
		}
	}
	return code
}

// Build builds cmd/raftex to the file out.
func Build(out string) error {
	// go test puts its own GOROOT/bin first on PATH, so "go" is the
	// toolchain running these tests.
	cmd := exec.Command("go", "build", "-o", out, "github.com/raftex/raftex/cmd/raftex")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, msg)
	}
	return nil
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
