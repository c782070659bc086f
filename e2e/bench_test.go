package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBenchAgainstACluster: raftex bench against three real nodes,
// round-robin over them (followers forward their share of the writes):
// every operation succeeds and -o json reports each (issue 13 item 4).
func TestBenchAgainstACluster(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	var endpoints []string
	for _, nd := range c.Nodes {
		endpoints = append(endpoints, nd.ClientAddr)
	}
	stdout, stderr, code := runCLI(t, nil, "bench", "--endpoints", strings.Join(endpoints, ","),
		"--ops", "300", "--clients", "8", "--workload", "mixed:50/50", "--keys", "100", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep struct {
		Ops, Failed int64
		NotFound    int64 `json:"not_found"`
		Latency     map[string]struct{ Count int64 }
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if rep.Ops != 300 || rep.Failed != 0 || rep.NotFound != 0 || rep.Latency["get"].Count == 0 || rep.Latency["put"].Count == 0 {
		t.Errorf("report %s", stdout)
	}
}
