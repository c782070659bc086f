package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCertsRefusesANodeIDAsHost: --hosts goes into every node's
// certificate, so a host "n2" would make n1.crt name n2 and let n1's
// holder speak for n2 (tlsutil.CheckNode). It is refused and nothing is
// written.
func TestCertsRefusesANodeIDAsHost(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	_, stderr, code := runCLI(t, "certs", "--dir", dir, "--nodes", "n1,n2", "--hosts", "n2,127.0.0.1")
	if code != exitUsage || !strings.Contains(stderr, `"n2" is a node id`) {
		t.Fatalf("exit %d, stderr %q; want exit %d naming n2", code, stderr, exitUsage)
	}
	if _, err := os.Stat(filepath.Join(dir, "n1.crt")); !os.IsNotExist(err) {
		t.Errorf("n1.crt written (stat: %v)", err)
	}
}
