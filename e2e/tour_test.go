package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/raftex/raftex/internal/e2etest"
)

// readme is the README whose tour TestReadmeTour runs.
var readme = filepath.Join("..", "README.md")

// tourLongRunning matches the tour's lines that never end by themselves
// (an event stream, a watch): they are left out.
var tourLongRunning = regexp.MustCompile(`^(curl -N |\./raftex watch )`)

// tourBlock returns the shell lines of the README's tour: the ```sh block
// after the <!-- tour --> marker, without blank lines and long-running
// ones.
func tourBlock(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- tour -->\\s*```sh\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s has no ```sh block after <!-- tour -->", readme)
	}
	var lines []string
	for _, line := range strings.Split(string(m[1]), "\n") {
		if strings.TrimSpace(line) == "" || tourLongRunning.MatchString(line) {
			continue
		}
		lines = append(lines, line)
	}
	return lines
}

// TestReadmeTour runs the README's tour as a reader would: `raftex
// cluster --nodes 3` on its default ports, in a fresh directory holding
// ./raftex, then every line of the tour block, verbatim, in one bash (a
// line may use what an earlier one set), each of which must succeed. The
// block is read from README.md, so lines added to it are run too.
func TestReadmeTour(t *testing.T) {
	// Not parallel: the tour names the default ports 7001-7003 and
	// 8001-8003, outside every range the other tests take.
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("curl is required in CI: %v", err)
		}
		t.Skip("curl is not installed; the tour uses it")
	}
	lines := tourBlock(t)
	if len(lines) < 5 {
		t.Fatalf("the tour has only %d lines: %q", len(lines), lines)
	}
	dir := t.TempDir()
	if err := os.Symlink(e2etest.Bin(), filepath.Join(dir, "raftex")); err != nil {
		t.Fatal(err)
	}
	p := e2etest.StartProc(t, e2etest.ProcSpec{Name: "cluster", Dir: dir, Log: filepath.Join(dir, "cluster.log"),
		Arg0: "./raftex", Args: []string{"cluster", "--nodes", "3"}})
	var nodes []*e2etest.Node
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, &e2etest.Node{Name: fmt.Sprintf("n%d", i), ClientAddr: fmt.Sprintf("127.0.0.1:%d", 8000+i), HTTP: httpClient, Proc: p})
	}
	e2etest.WaitLeader(t, soon, nodes...)
	if !strings.Contains(p.Log(), "  ./raftex put greeting hello\n") {
		t.Errorf("raftex cluster's hints do not say ./raftex as the README does:\n%s", p.Tail(12))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	script := "set -euo pipefail\nset -x\n" + strings.Join(lines, "\n") + "\n"
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = e2etest.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README tour failed (%v); its output (each line run follows +):\n%s", err, out)
	}
	t.Logf("the tour ran %d lines:\n%s", len(lines), out)
}
