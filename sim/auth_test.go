package sim

import "testing"

// TestSimAuth: in runs with auth, an administrator enables it while the
// clients run (under faults: in some runs it does not get there before
// they stop); once it is on, the clients are refused (401), log in and
// renew their tokens, and the history stays linearizable with every
// applied command permitted (checkAuth).
func TestSimAuth(t *testing.T) {
	tried, enabled := 0, 0
	for seed := uint64(1); tried < 12 && enabled < 4; seed++ {
		p := drawParams(seed)
		if !p.auth {
			continue
		}
		tried++
		res := Run(Options{Seed: seed, Nodes: 3, Faults: MixFaults(seed)})
		if res.Failed() {
			t.Fatalf("%v\nreplay: %s", res.Violation, res.Repro())
		}
		st := res.Stats
		if !st.Auth {
			t.Fatalf("seed %d: drawn with auth, ran without", seed)
		}
		if st.Logins == 0 {
			continue // auth was not enabled before the faults stopped
		}
		enabled++
		if st.Logins < p.clients || st.Refused == 0 || st.Checked == 0 {
			t.Errorf("seed %d (token TTL %v): %d logins by %d clients, %d refused, %d operations checked",
				seed, p.tokenTTL, st.Logins, p.clients, st.Refused, st.Checked)
		}
	}
	if enabled < 4 {
		t.Fatalf("auth was enabled in %d of %d runs with auth, want 4", enabled, tried)
	}
}
