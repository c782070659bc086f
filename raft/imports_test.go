package raft

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsOnlyStdlib guards the core's purity: package raft may import
// nothing outside the standard library, with or without test-only tags.
func TestImportsOnlyStdlib(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not on PATH; CI checks this with go list too")
	}
	for _, tags := range []string{"", "raftbugs"} {
		out, err := exec.Command("go", "list", "-tags", tags, "-deps",
			"-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		for _, p := range strings.Fields(string(out)) {
			if p != "github.com/raftex/raftex/raft" {
				t.Errorf("raft (tags %q) imports non-standard package %s", tags, p)
			}
		}
	}
}
