package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/raftex/raftex/internal/loadgen"
	"github.com/raftex/raftex/kvapi"
)

// workloadFlag is --workload: put, get or mixed:G/P, checked when parsed
// (from the flag or RAFTEX_WORKLOAD alike).
type workloadFlag struct{ w loadgen.Workload }

func (f *workloadFlag) String() string { return f.w.String() }
func (f *workloadFlag) Type() string   { return "string" }
func (f *workloadFlag) Set(s string) error {
	w, err := loadgen.ParseWorkload(s)
	if err != nil {
		return err
	}
	f.w = w
	return nil
}

// reachableWithin bounds the check, before a run, that some endpoint
// answers at all.
const reachableWithin = 5 * time.Second

func benchCmd() *cobra.Command {
	var (
		f           clientFlags
		cfg         = loadgen.DefaultConfig()
		workload    workloadFlag
		fill        bool
		ops         int64
		consistency = newEnum(string(kvapi.Linearizable), string(kvapi.Linearizable), string(kvapi.Lease), string(kvapi.Stale))
		progress    = newEnum("auto", "auto", "always", "never")
		output      *enumFlag
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load a running cluster with concurrent clients and report throughput, latency and errors",
		Long: "Load a running cluster: --clients goroutines each run one operation at a time (each under\n" +
			"--timeout) for --duration or until --ops operations, round-robin over --endpoints. A workload\n" +
			"with gets first writes every key once (--fill). Exit 0 once any operation succeeded, 5 when the\n" +
			"endpoints are unreachable or every operation failed for want of a cluster (timeouts,\n" +
			"unavailable), 1 when every operation failed otherwise, 2 for a bad flag.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fl := cmd.Flags()
			if fl.Changed("ops") && fl.Changed("duration") {
				return usageError("give --duration or --ops, not both")
			}
			if fl.Changed("ops") {
				cfg.Duration, cfg.Ops = 0, ops
			}
			cfg.Workload, cfg.Timeout = workload.w, f.timeout
			if err := cfg.Validate(); err != nil {
				return usageError("%w", err)
			}
			endpoints, err := parseEndpoints(f.endpoints)
			if err != nil {
				return &exitError{exitUsage, err}
			}
			opts, err := f.options()
			if err != nil {
				return err
			}
			target, err := loadgen.NewRaftex(endpoints, kvapi.Consistency(consistency.value), opts)
			if err != nil {
				return &exitError{exitUsage, err}
			}
			defer target.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			if err := target.Reachable(ctx, min(reachableWithin, f.timeout)); err != nil {
				return &exitError{exitUnavailable, err}
			}
			stderr := cmd.ErrOrStderr()
			show := progress.value == "always" || progress.value == "auto" && isTerminal(stderr)
			if fill && cfg.Workload.Gets() {
				fc := cfg.Fill()
				if show {
					fc.Progress = progressBar(stderr, "filling", fc)
				}
				res, err := loadgen.Run(ctx, target, fc)
				if err != nil {
					return err
				}
				if res.Succeeded() == 0 {
					return allFailed(res, "filling the key space")
				}
			}
			if show {
				cfg.Progress = progressBar(stderr, cfg.Workload.String(), cfg)
			}
			res, err := loadgen.Run(ctx, target, cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output.value == outputJSON || asJSON {
				rep := res.Report()
				if cfg.Workload.Gets() {
					rep.Consistency = consistency.value
				}
				if err := printJSON(out, rep); err != nil {
					return err
				}
			} else {
				printBench(out, res, consistency.value)
			}
			if res.Succeeded() == 0 {
				return allFailed(res, "")
			}
			return nil
		},
	}
	f.add(cmd)
	fl := cmd.Flags()
	fl.Lookup("timeout").Usage = "give up on one operation after this long"
	workload.w = cfg.Workload
	fl.Var(&workload, "workload", "put, get or mixed:G/P (G % gets, P % puts: mixed:90/10)")
	fl.Var(consistency, "consistency", "of the gets: linearizable, lease or stale")
	fl.IntVar(&cfg.Clients, "clients", cfg.Clients, "operations at once (each client runs one at a time)")
	fl.DurationVar(&cfg.Duration, "duration", cfg.Duration, "start operations for this long (or --ops)")
	fl.Int64Var(&ops, "ops", 0, "run this many operations in all (instead of --duration)")
	fl.IntVar(&cfg.KeySize, "key-size", cfg.KeySize, `bytes per key ("`+loadgen.KeyPrefix+`" and a zero-padded number)`)
	fl.IntVar(&cfg.ValueSize, "value-size", cfg.ValueSize, "bytes per value")
	fl.IntVar(&cfg.Keys, "keys", cfg.Keys, "size of the key space")
	fl.BoolVar(&cfg.Sequential, "sequential-keys", false, "take the keys in order, not at random (--ops equal to --keys writes each once)")
	fl.BoolVar(&fill, "fill", true, "before a workload with gets, write every key once (not measured)")
	fl.Var(progress, "progress", "progress bar on stderr: auto (when a terminal), always or never")
	output = addOutput(cmd, outputText, outputJSON)
	fl.BoolVar(&asJSON, "json", false, "print the report as JSON (the same as -o json)")
	return cmd
}

// progressBar returns a Config.Progress drawing a bar on w: by operations
// with --ops, by time with --duration.
func progressBar(w io.Writer, what string, c loadgen.Config) func(int64, time.Duration) {
	total := c.Ops
	if c.Duration > 0 {
		total = c.Duration.Milliseconds()
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionClearOnFinish(),
	)
	return func(finished int64, elapsed time.Duration) {
		now := finished
		if c.Duration > 0 {
			now = min(elapsed.Milliseconds(), total)
		}
		bar.Describe(fmt.Sprintf("%s: %d ops, %.0f/s", what, finished, float64(finished)/max(elapsed.Seconds(), 1e-3)))
		_ = bar.Set64(now)
		if now >= total {
			_ = bar.Finish()
		}
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// printBench prints res as a table.
func printBench(w io.Writer, res *loadgen.Result, consistency string) {
	c := res.Config
	fmt.Fprintf(w, "%s, %d clients, %d B keys, %d B values, %d keys", c.Workload, c.Clients, c.KeySize, c.ValueSize, c.Keys)
	if c.Workload.Gets() {
		fmt.Fprintf(w, ", %s gets", consistency)
	}
	fmt.Fprintf(w, "\n%s: %d ops, %.0f ops/s\n", loadgen.Round(res.Elapsed), res.Succeeded(), res.Throughput())
	if len(res.Latency) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "op\tcount\tmean\tp50\tp90\tp99\tp99.9\tmax")
		for _, op := range []loadgen.Op{loadgen.Put, loadgen.Get} {
			if h := res.Latency[op]; h != nil {
				s := loadgen.Summarize(h)
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", op, s.Count, s.Mean, s.P50, s.P90, s.P99, s.P999, s.Max)
			}
		}
		tw.Flush()
	}
	if res.NotFound > 0 {
		fmt.Fprintf(w, "not found: %d gets found no key\n", res.NotFound)
	}
	failed := res.Failed()
	if failed == 0 {
		fmt.Fprintln(w, "errors: none")
		return
	}
	fmt.Fprintf(w, "errors: %d of %d operations\n", failed, failed+res.Succeeded())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, kind := range res.ErrorKinds() {
		fmt.Fprintf(tw, "  %s\t%d\tfirst: %s\n", kind, res.Errors[kind], res.Examples[kind])
	}
	tw.Flush()
}

// cantReach are the error kinds that mean no cluster answered in time.
var cantReach = map[string]bool{loadgen.TimeoutKind: true, "unavailable": true, "session_expired": true}

// allFailed is the exit of a run in which no operation succeeded: 5 if
// each failed for want of a cluster, else 1.
func allFailed(res *loadgen.Result, during string) error {
	kinds := res.ErrorKinds()
	var parts []string
	code := exitUnavailable
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, res.Errors[k]))
		if !cantReach[k] {
			code = exitFailed
		}
	}
	if len(kinds) == 0 {
		return &exitError{exitFailed, errors.New("no operation ran")}
	}
	msg := fmt.Sprintf("every operation failed (%s; first %s: %s)", strings.Join(parts, ", "), kinds[0], res.Examples[kinds[0]])
	if during != "" {
		msg = during + ": " + msg
	}
	return &exitError{code, errors.New(msg)}
}
