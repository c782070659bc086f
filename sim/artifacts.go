package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/raftex/raftex/internal/kvmodel"
)

// ArtifactDir is where failing runs leave their traces: the directory
// named by $RAFTEX_SIM_ARTIFACTS (CI collects it), else a new temporary
// directory.
func ArtifactDir() (string, error) {
	if dir := os.Getenv("RAFTEX_SIM_ARTIFACTS"); dir != "" {
		return dir, os.MkdirAll(dir, 0o755)
	}
	return os.MkdirTemp("", "raftex-sim-")
}

// SaveArtifacts writes into dir what a failed run leaves for a human: its
// readable trace (the seed replayed with tracing on, which must reach the
// same trace hash) and, if the history was not linearizable, porcupine's
// visualisation of it. It returns the files written.
func SaveArtifacts(dir string, res *Result) ([]string, error) {
	base := filepath.Join(dir, fmt.Sprintf("seed-%d-n%d", res.Seed, res.Nodes))
	f, err := os.Create(base + ".trace")
	if err != nil {
		return nil, err
	}
	replay := Run(Options{Seed: res.Seed, Nodes: res.Nodes, Faults: res.Faults, Trace: f})
	if err := f.Close(); err != nil {
		return nil, err
	}
	files := []string{f.Name()}
	if replay.TraceHash != res.TraceHash {
		return files, fmt.Errorf("sim: the replay of seed %d diverged (trace hash %016x, first run %016x): the simulation is not deterministic", res.Seed, replay.TraceHash, res.TraceHash)
	}
	if res.Violation == nil || res.Violation.Check != "Linearizability" {
		return files, nil
	}
	_, info, _ := kvmodel.CheckVerbose(res.ops, 20*time.Second)
	html := base + "-history.html"
	if err := kvmodel.Visualize(info, html); err != nil {
		return files, err
	}
	return append(files, html), nil
}
