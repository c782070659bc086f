package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/raftex/raftex/sim"
)

// simCmd runs a long campaign of the deterministic simulator (package
// sim): seed after seed of whole clusters under faults, each checked for
// the safety properties, liveness and linearizability. Every failing seed
// prints the command that replays it and leaves its trace in --artifacts.
func simCmd() *cobra.Command {
	var (
		seeds, parallel int
		first           uint64
		nodes, faults   string
		artifacts       string
	)
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run the deterministic simulator over many seeds",
		Long: `Run the deterministic simulator over many seeds: clusters of real cores, WALs
and key-value stores under network, disk and process faults, checked after
every step (Figure 3 of the Raft paper) and at the end (liveness, and
linearizability with porcupine). Ctrl-C stops early and prints the summary.

--faults is "mix" (a different mix of faults per seed) or a spec such as
"all", "none" or "drop=0.05,crash=0.4,part" (see docs/testing.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := sim.Campaign{Seeds: seeds, FirstSeed: first, Workers: parallel}
			var err error
			if c.Nodes, err = parseSizes(nodes); err != nil {
				return &exitError{2, err}
			}
			if faults != "mix" {
				f, err := sim.ParseFaults(faults)
				if err != nil {
					return &exitError{2, err}
				}
				c.Faults = &f
			}
			if seeds < 1 || parallel < 1 {
				return &exitError{2, fmt.Errorf("need --seeds >= 1 and --parallel >= 1")}
			}
			if artifacts == "" {
				if artifacts, err = sim.ArtifactDir(); err != nil {
					return err
				}
			} else if err := os.MkdirAll(artifacts, 0o755); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			sum := runCampaign(ctx, c, artifacts)
			printSummary(sum, artifacts)
			if sum.Failed > 0 {
				return &exitError{1, fmt.Errorf("%d of %d seeds failed", sum.Failed, sum.Seeds)}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&seeds, "seeds", 1000, "number of seeds to run")
	cmd.Flags().Uint64Var(&first, "first", 1, "first seed")
	cmd.Flags().IntVar(&parallel, "parallel", 2, "seeds run at once (each run is single-threaded)")
	cmd.Flags().StringVar(&nodes, "nodes", "3,5,7", "cluster sizes, used in turn")
	cmd.Flags().StringVar(&faults, "faults", "mix", `fault spec, or "mix" for a different mix per seed`)
	cmd.Flags().StringVar(&artifacts, "artifacts", "", "directory for the traces of failing seeds (default $RAFTEX_SIM_ARTIFACTS or a new temporary directory)")
	return cmd
}

func parseSizes(s string) ([]int, error) {
	var sizes []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 15 {
			return nil, fmt.Errorf("--nodes=%q: want cluster sizes from 1 to 15, like 3,5,7", s)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// runCampaign runs c with a progress bar on stderr; each failure is
// printed at once, with its replay command and artifacts.
func runCampaign(ctx context.Context, c sim.Campaign, artifacts string) sim.Summary {
	bar := progressbar.NewOptions(c.Seeds,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription("simulating"),
		progressbar.OptionSetItsString("seeds"),
		progressbar.OptionShowIts(),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionFullWidth(),
	)
	failed := 0
	c.Progress = func(res *sim.Result) {
		if res.Failed() {
			failed++
			_ = bar.Clear()
			fmt.Fprintf(os.Stderr, "FAIL seed %d (%d nodes): %v\n  replay: %s\n", res.Seed, res.Nodes, res.Violation, res.Repro())
			if files, err := sim.SaveArtifacts(artifacts, res); err != nil {
				fmt.Fprintf(os.Stderr, "  artifacts: %v\n", err)
			} else {
				fmt.Fprintf(os.Stderr, "  artifacts: %s\n", strings.Join(files, " "))
			}
			bar.Describe(fmt.Sprintf("simulating (%d failed)", failed))
		}
		_ = bar.Add(1)
	}
	sum := sim.RunCampaign(ctx, c)
	_ = bar.Exit()
	fmt.Fprintln(os.Stderr)
	return sum
}

func printSummary(s sim.Summary, artifacts string) {
	fmt.Printf("seeds run          %d\n", s.Seeds)
	fmt.Printf("simulated time     %.1f h\n", s.SimTime.Hours())
	fmt.Printf("operations checked %d (linearizable: every passing seed)\n", s.Ops)
	fmt.Printf("messages           %d\n", s.Messages)
	fmt.Printf("faults injected    %d (%d crashes, %d snapshots installed)\n", s.FaultsInjected, s.Crashes, s.Snapshots)
	fmt.Printf("violations         %d\n", s.Failed)
	for _, r := range s.Failures {
		fmt.Printf("  seed %d: %s: %s\n    %s\n", r.Seed, r.Violation.Check, firstLine(r.Violation.Detail), r.Repro())
	}
	if s.Failed > 0 {
		fmt.Printf("traces in          %s\n", artifacts)
	}
	fmt.Printf("wall time          %v (%.0f seeds/s)\n", s.Wall.Round(time.Second), float64(s.Seeds)/s.Wall.Seconds())
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
