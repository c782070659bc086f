package sim

import (
	"io"
	"testing"
)

// TestDeterminism runs seeds twice, once with the readable trace on, and
// requires the same trace hash: a run depends on its options only (no map
// order, goroutine, wall clock or unseeded randomness leaks into it).
// Different seeds must give different runs.
func TestDeterminism(t *testing.T) {
	seen := map[uint64]uint64{}
	for seed := uint64(1); seed <= 6; seed++ {
		opts := Options{Seed: seed, Nodes: []int{3, 5, 7}[seed%3], Faults: AllFaults()}
		first := Run(opts)
		opts.Trace = io.Discard
		second := Run(opts)
		if first.TraceHash != second.TraceHash || first.Stats != second.Stats {
			t.Fatalf("seed %d ran differently twice:\n%016x %+v\n%016x %+v", seed, first.TraceHash, first.Stats, second.TraceHash, second.Stats)
		}
		if other, ok := seen[first.TraceHash]; ok {
			t.Fatalf("seeds %d and %d ran identically (trace hash %016x)", other, seed, first.TraceHash)
		}
		seen[first.TraceHash] = seed
	}
}
