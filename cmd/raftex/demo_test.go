package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the narrated scenario and checks that every step ran and
// the final table shows all nodes equal.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	// Only against a hang: each wait of the scenario has its own
	// generous bound, and a loaded machine may take a while.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := runDemo(ctx, demoOptions{nodes: 3, events: "all", color: "never"}, &out); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, heading := range []string{
		"Step 1. Start 3 nodes",
		"Step 2. Leader election",
		"Step 3. Replication",
		"Step 4. A linearizable read through follower",
		"Step 5. The leader",
		"Step 6. Re-election",
		"Step 7. Writes continue",
		"Step 8. The old leader",
		"Step 9. Follower",
		"Step 10.",
		"Step 11. Follower",
		"⚙ CONFIG n4 added as learner",
		"⚙ CONFIG n4 promoted to voter",
		"was promoted to voter: the cluster has 3 voters again",
		"Step 12. Final state: every node agrees",
		"👑 WON election!",
		"SNAPSHOT taken",
		"installed the leader's snapshot",
		"NODE  ROLE      TERM  COMMIT  APPLIED  STATE HASH",
		"✔ all 3 nodes agree",
		"✔ demo finished",
	} {
		if !strings.Contains(text, heading) {
			t.Errorf("demo output lacks %q", heading)
		}
	}
	if !regexp.MustCompile(`⚙ CONFIG n\d removed at index`).MatchString(text) {
		t.Error("demo output lacks the failed node's removal")
	}
	rows := regexp.MustCompile(`(?m)^n\d\s+\w+\s+(\d+)\s+(\d+)\s+(\d+)\s+([0-9a-f]{16})$`).FindAllStringSubmatch(text, -1)
	if len(rows) != 3 {
		t.Fatalf("final table has %d rows, want 3:\n%s", len(rows), text)
	}
	for _, r := range rows[1:] {
		if strings.Join(r[1:], " ") != strings.Join(rows[0][1:], " ") {
			t.Errorf("final rows differ: %v vs %v", r[1:], rows[0][1:])
		}
	}
	if strings.Contains(text, "\x1b[") {
		t.Error("colour codes in output with --color never")
	}
}

func TestDemoRejectsBadFlags(t *testing.T) {
	var out bytes.Buffer
	if err := runDemo(context.Background(), demoOptions{nodes: 2, events: "all"}, &out); err == nil {
		t.Error("2 nodes accepted")
	}
	if err := runDemo(context.Background(), demoOptions{nodes: 3, events: "bogus"}, &out); err == nil {
		t.Error("unknown event category accepted")
	}
}
