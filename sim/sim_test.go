package sim

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// Flags to replay one seed or run a campaign:
//
//	go test ./sim -run TestSim -seed=12345 -nodes=5 -faults=drop=0.02,crash=0.3
//	go test ./sim -run TestSim -seeds=2000 -timeout=30m
var (
	flagSeed    = flag.Uint64("seed", 0, "run only this seed (0: run -seeds seeds)")
	flagSeeds   = flag.Int("seeds", 300, "how many seeds TestSim runs")
	flagFirst   = flag.Uint64("first", 1, "the first seed TestSim runs")
	flagNodes   = flag.String("nodes", "3,5,7", "cluster sizes, used in turn")
	flagFaults  = flag.String("faults", "mix", `fault spec (see ParseFaults), or "mix": a different mix per seed`)
	flagWorkers = flag.Int("workers", runtime.GOMAXPROCS(0), "seeds run in parallel")
	flagTrace   = flag.Bool("showtrace", false, "with -seed: print the readable trace")
)

func parseNodes(t *testing.T) []int {
	t.Helper()
	var sizes []int
	for f := range strings.SplitSeq(*flagNodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			t.Fatalf("-nodes=%q: want sizes like 3,5,7", *flagNodes)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

func parseFaults(t *testing.T) *Faults {
	t.Helper()
	if *flagFaults == "mix" {
		return nil
	}
	f, err := ParseFaults(*flagFaults)
	if err != nil {
		t.Fatal(err)
	}
	return &f
}

// TestSim runs whole clusters under faults, one seed per run, and fails
// with the command that replays any seed that breaks a property. With
// -seed it replays that one seed.
func TestSim(t *testing.T) {
	nodes, faults := parseNodes(t), parseFaults(t)
	if *flagSeed != 0 {
		opts := Options{Seed: *flagSeed, Nodes: nodes[0]}
		if faults != nil {
			opts.Faults = *faults
		} else {
			opts.Faults = MixFaults(opts.Seed)
		}
		if *flagTrace {
			opts.Trace = testWriter{t}
		}
		res := Run(opts)
		t.Logf("seed %d: %+v trace hash %016x", res.Seed, res.Stats, res.TraceHash)
		if res.Failed() {
			reportFailure(t, res)
		}
		return
	}
	sum := RunCampaign(context.Background(), Campaign{
		Seeds: *flagSeeds, FirstSeed: *flagFirst, Nodes: nodes, Faults: faults, Workers: *flagWorkers,
		Progress: func(res *Result) {
			if res.Failed() {
				reportFailure(t, res)
			}
		},
	})
	t.Log(sum)
}

// reportFailure fails the test with the violation, the replay command and
// where the trace was written.
func reportFailure(t *testing.T, res *Result) {
	t.Helper()
	msg := fmt.Sprintf("seed %d (%d nodes): %v\nreplay: %s", res.Seed, res.Nodes, res.Violation, res.Repro())
	dir, err := ArtifactDir()
	if err == nil {
		var files []string
		files, err = SaveArtifacts(dir, res)
		msg += "\nartifacts: " + strings.Join(files, " ")
	}
	if err != nil {
		msg += "\nartifacts not written: " + err.Error()
	}
	t.Error(msg)
}

// testWriter sends the trace to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
