package e2etest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ArtifactDir returns $RAFTEX_ARTIFACTS joined with elem, made if need
// be: where CI keeps files for people to look at (.ci/run sets it). It
// returns "" when RAFTEX_ARTIFACTS is not set, and fails the test when the
// directory cannot be made.
func ArtifactDir(t testing.TB, elem ...string) string {
	base := os.Getenv("RAFTEX_ARTIFACTS")
	if base == "" {
		return ""
	}
	dir := filepath.Join(append([]string{base}, elem...)...)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("RAFTEX_ARTIFACTS: %v", err)
		return ""
	}
	return dir
}

// LastLines returns the last n lines of s.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
