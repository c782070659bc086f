package sim

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/raftex/raftex/internal/kvmodel"
)

// TestSaveArtifactsHistory: a run whose history is not linearizable
// leaves porcupine's visualisation of it next to its trace. (The run is a
// passing one with a read of a value nobody wrote added at the end.)
func TestSaveArtifactsHistory(t *testing.T) {
	res := Run(Options{Seed: 1, Nodes: 3, Faults: MixFaults(1)})
	if res.Failed() || len(res.ops) == 0 {
		t.Fatalf("seed 1: %v, %d operations", res.Violation, len(res.ops))
	}
	end := res.ops[0].Call
	for _, op := range res.ops {
		if op.Return != kvmodel.Never {
			end = max(end, op.Return)
		}
	}
	bogus := kvmodel.Output{Found: true, Value: "nobody wrote this", Rev: 1 << 40}
	res.ops = append(res.ops, porcupine.Operation{ClientId: 99,
		Input: kvmodel.Input{Kind: kvmodel.Get, Key: "k0"}, Output: bogus, Call: end + 1, Return: end + 2})
	_, err := kvmodel.Check(res.ops, 20*time.Second)
	if !errors.Is(err, kvmodel.ErrNotLinearizable) {
		t.Fatalf("the check of the doctored history: %v, want ErrNotLinearizable", err)
	}
	res.Violation = &Violation{Check: "Linearizability", Detail: err.Error()}

	files, err := SaveArtifacts(t.TempDir(), res)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || !strings.HasSuffix(files[1], "-history.html") {
		t.Fatalf("SaveArtifacts wrote %q, want the trace and the history", files)
	}
	html, err := os.ReadFile(files[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), "nobody wrote this") {
		t.Errorf("%s does not show the bad read", files[1])
	}
}
