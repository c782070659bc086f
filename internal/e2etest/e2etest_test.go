package e2etest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPortsFreeAreDistinctAndInRange(t *testing.T) {
	p := NewPorts(40000, 40100)
	got := append(p.Free(t, 10), p.Free(t, 10)...)
	slices.Sort(got)
	if len(slices.Compact(slices.Clone(got))) != 20 {
		t.Fatalf("ports handed out twice: %v", got)
	}
	for _, port := range got {
		if port < 40000 || port >= 40100 {
			t.Fatalf("port %d outside [40000, 40100)", port)
		}
	}
}

func TestPortsRunIsConsecutive(t *testing.T) {
	got := NewPorts(40100, 40200).Run(t, 6)
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("not consecutive: %v", got)
		}
	}
}

func TestPollUntilRetries(t *testing.T) {
	tries := 0
	Poll{Within: time.Minute, Every: time.Millisecond}.Until(t, "the third try", func() error {
		if tries++; tries < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if tries != 3 {
		t.Fatalf("%d tries, want 3", tries)
	}
}

func TestEnvDropsRaftexVariables(t *testing.T) {
	t.Setenv("RAFTEX_ID", "n9")
	env := Env("RAFTEX_LOG_FORMAT=json")
	if slices.Contains(env, "RAFTEX_ID=n9") || !slices.Contains(env, "RAFTEX_LOG_FORMAT=json") {
		t.Fatalf("RAFTEX_ variables: %v", slices.DeleteFunc(env, func(e string) bool { return !strings.HasPrefix(e, "RAFTEX_") }))
	}
}

func TestLastLines(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb", 5, "a\nb"},
		{"", 3, ""},
	} {
		if got := LastLines(tc.in, tc.n); got != tc.want {
			t.Errorf("LastLines(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// A run whose search starts near the top of the range must not wrap to the
// bottom (CI saw [40196 40197 40198 40199 40100 40101]).
func TestPortsRunNeverWraps(t *testing.T) {
	for start := 40190; start < 40200; start++ {
		p := NewPorts(40100, 40200)
		p.next = start
		got := p.Run(t, 6)
		for i := 1; i < len(got); i++ {
			if got[i] != got[i-1]+1 {
				t.Fatalf("search from %d: not consecutive: %v", start, got)
			}
		}
	}
}
