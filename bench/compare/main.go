// Command compare runs raftex and etcd side by side on this machine and
// prints how they compare (issue 13, docs/benchmarks.md):
//
//	go -C bench/compare run .            # from the repository's root
//	go -C bench/compare run . --quick    # short runs: proves it works
//	go -C bench/compare run . --memory   # memory after 1,000,000 keys
//
// It starts a 3-node raftex cluster (three processes of the raftex binary,
// built from this repository) and a 3-member etcd cluster (three processes
// of this program, each embedding one member with go.etcd.io/etcd's
// defaults), fsync on for both, all on loopback. It drives both with the
// same load generator (internal/loadgen, the one behind `raftex bench`):
// put and linearizable get at each --clients, --key-size-byte keys and
// --value-size-byte values, each system through its own Go client,
// round-robin over its members. The systems take turns (which goes first
// alternates), every shape runs --rounds times, and the table gives the
// median of the rounds. The plot shows latency against throughput.
//
// This is a separate module so that the raftex module never depends on
// etcd.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/raftex/raftex/internal/loadgen"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == memberCommand {
		if err := runMember(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "etcd member:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	rounds          int
	duration        time.Duration
	clients         []int
	keySize, valSz  int
	keys            int
	timeout         time.Duration
	plot, results   string
	raftexBin, work string
	memory          bool
	memoryKeys      int
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	clients := fs.String("clients", "1,16,64", "client counts, comma-separated")
	quick := fs.Bool("quick", false, "one round of 500 ms runs: proves the harness works (CI), measures nothing")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds: every shape runs this many times per system")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each run")
	fs.IntVar(&o.keySize, "key-size", 16, "bytes per key")
	fs.IntVar(&o.valSz, "value-size", 128, "bytes per value")
	fs.IntVar(&o.keys, "keys", 1000, "size of the key space (written once before the runs)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "give up on one operation after this long")
	fs.StringVar(&o.plot, "plot", "compare.png", "where to draw latency against throughput (.png or .svg)")
	fs.StringVar(&o.results, "results", "", "also write every run's figures here as JSON")
	fs.StringVar(&o.raftexBin, "raftex-bin", "", "the raftex binary to run (default: build it from this repository)")
	fs.StringVar(&o.work, "work", "", "directory for the members' data and logs (default: a new temporary one, removed after)")
	fs.BoolVar(&o.memory, "memory", false, "instead: write --memory-keys keys to each system and report the members' memory and raftex's snapshot time")
	fs.IntVar(&o.memoryKeys, "memory-keys", 1_000_000, "keys written in --memory mode")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *quick {
		o.rounds, o.duration = 1, 500*time.Millisecond
	}
	for c := range strings.SplitSeq(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return o, fmt.Errorf("--clients %q: want counts of 1 or more, like 1,16,64", *clients)
		}
		o.clients = append(o.clients, n)
	}
	if o.rounds < 1 || o.duration <= 0 {
		return o, fmt.Errorf("--rounds (%d) and --duration (%s) must be positive", o.rounds, o.duration)
	}
	return o, o.load(loadgen.Workload{}, 1).Validate()
}

// load is the load generator's config for one run.
func (o options) load(w loadgen.Workload, clients int) loadgen.Config {
	return loadgen.Config{Workload: w, Clients: clients, Duration: o.duration, Timeout: o.timeout,
		KeySize: o.keySize, ValueSize: o.valSz, Keys: o.keys}
}

// system is a running cluster under test.
type system interface {
	name() string
	target() loadgen.Target
	procs() []*proc
	applied(context.Context) error
	stop()
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	work := o.work
	if work == "" {
		if work, err = os.MkdirTemp("", "raftex-compare-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	bin := o.raftexBin
	if bin == "" {
		fmt.Fprintln(stderr, "building raftex ...")
		if bin, err = buildRaftex(work); err != nil {
			return err
		}
	}
	if o.memory {
		return runMemory(ctx, o, bin, work, stdout, stderr)
	}
	return runCompare(ctx, o, bin, work, stdout, stderr)
}

// startBoth starts both clusters, each in a directory of its own.
func startBoth(ctx context.Context, bin, work string) ([]system, error) {
	rdir, edir := work+"/raftex", work+"/etcd"
	for _, d := range []string{rdir, edir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	r, err := startRaftex(ctx, bin, rdir)
	if err != nil {
		return nil, fmt.Errorf("raftex: %w", err)
	}
	e, err := startEtcd(ctx, edir)
	if err != nil {
		r.stop()
		return nil, fmt.Errorf("etcd: %w", err)
	}
	return []system{r, e}, nil
}

// sample is one run's figures.
type sample struct {
	System     string        `json:"system"`
	Workload   string        `json:"workload"`
	Clients    int           `json:"clients"`
	Round      int           `json:"round"`
	Throughput float64       `json:"ops_per_s"`
	P50        time.Duration `json:"p50_ns"`
	P99        time.Duration `json:"p99_ns"`
	Failed     int64         `json:"failed"`
}

func runCompare(ctx context.Context, o options, bin, work string, stdout, stderr io.Writer) error {
	loadBefore := loadAverage()
	systems, err := startBoth(ctx, bin, work)
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range systems {
			s.stop()
		}
	}()
	for _, s := range systems {
		fill := o.load(loadgen.Workload{}, 16).Fill()
		res, err := loadgen.Run(ctx, s.target(), fill)
		if err != nil {
			return err
		}
		if res.Failed() > 0 {
			return fmt.Errorf("%s: filling %d keys: %d failed: %v", s.name(), o.keys, res.Failed(), res.Examples)
		}
	}
	workloads := []loadgen.Workload{{GetPercent: 0}, {GetPercent: 100}}
	var samples []sample
	turn := 0
	for round := 1; round <= o.rounds; round++ {
		for _, w := range workloads {
			for _, c := range o.clients {
				order := systems
				if turn%2 == 1 {
					order = []system{systems[1], systems[0]}
				}
				turn++
				for _, s := range order {
					res, err := loadgen.Run(ctx, s.target(), o.load(w, c))
					if err != nil {
						return err
					}
					if ctx.Err() != nil {
						return ctx.Err()
					}
					sm := summarize(s.name(), w, c, round, res)
					samples = append(samples, sm)
					fmt.Fprintf(stderr, "round %d/%d  %-4s %3d clients  %-6s %8.0f ops/s  p50 %-8s p99 %-8s failed %d\n",
						round, o.rounds, w, c, s.name(), sm.Throughput, sm.P50, sm.P99, sm.Failed)
				}
			}
		}
	}
	loadAfter := loadAverage()
	fmt.Fprintf(stdout, "raftex against etcd: %d round(s) of %s per shape, %d-byte keys, %d-byte values, %d keys; "+
		"%d cores (GOMAXPROCS %d), load average %s before and %s after\n\n",
		o.rounds, o.duration, o.keySize, o.valSz, o.keys, runtime.NumCPU(), runtime.GOMAXPROCS(0), loadBefore, loadAfter)
	rows := table(samples, workloads, o.clients)
	printTable(stdout, rows)
	if o.results != "" {
		b, _ := json.MarshalIndent(samples, "", "  ")
		if err := os.WriteFile(o.results, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if err := drawPlot(o.plot, rows); err != nil {
		return fmt.Errorf("drawing %s: %w", o.plot, err)
	}
	fmt.Fprintf(stdout, "\nplot: %s\n", o.plot)
	for _, sm := range samples {
		if sm.Failed > 0 {
			fmt.Fprintf(stdout, "note: %s %s at %d clients, round %d: %d operations failed\n", sm.System, sm.Workload, sm.Clients, sm.Round, sm.Failed)
		}
	}
	return nil
}

func summarize(system string, w loadgen.Workload, clients, round int, res *loadgen.Result) sample {
	sm := sample{System: system, Workload: w.String(), Clients: clients, Round: round,
		Throughput: res.Throughput(), Failed: res.Failed()}
	op := loadgen.Put
	if w.Gets() {
		op = loadgen.Get
	}
	if h := res.Latency[op]; h != nil {
		s := loadgen.Summarize(h)
		sm.P50, sm.P99 = s.P50, s.P99
	}
	return sm
}

// figures are a system's medians over the rounds of one shape.
type figures struct {
	Throughput float64
	P50, P99   time.Duration
}

// row is one shape of the table.
type row struct {
	Workload       string
	Clients        int
	Raftex, Etcd   figures
	Ratio          float64 // raftex's throughput over etcd's
	RaftexN, EtcdN int     // rounds measured
}

// table takes the median of each system's rounds for every shape.
func table(samples []sample, workloads []loadgen.Workload, clients []int) []row {
	var rows []row
	for _, w := range workloads {
		for _, c := range clients {
			r := row{Workload: w.String(), Clients: c}
			r.Raftex, r.RaftexN = medians(samples, "raftex", r.Workload, c)
			r.Etcd, r.EtcdN = medians(samples, "etcd", r.Workload, c)
			if r.Etcd.Throughput > 0 {
				r.Ratio = r.Raftex.Throughput / r.Etcd.Throughput
			}
			rows = append(rows, r)
		}
	}
	return rows
}

func medians(samples []sample, system, workload string, clients int) (figures, int) {
	var tput []float64
	var p50, p99 []time.Duration
	for _, s := range samples {
		if s.System == system && s.Workload == workload && s.Clients == clients {
			tput, p50, p99 = append(tput, s.Throughput), append(p50, s.P50), append(p99, s.P99)
		}
	}
	return figures{median(tput), median(p50), median(p99)}, len(tput)
}

// median of xs (the mean of the middle two for an even count; 0 for none).
func median[T int64 | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// printTable prints rows as a Markdown table, as docs/benchmarks.md shows
// it.
func printTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| workload | raftex | etcd | ratio |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", shapeName(r.Workload, r.Clients), cellText(r.Raftex), cellText(r.Etcd), ratioText(r.Ratio))
	}
}

func shapeName(workload string, clients int) string {
	if workload == "get" {
		workload = "linearizable get"
	}
	s := "s"
	if clients == 1 {
		s = ""
	}
	return fmt.Sprintf("%s, %d client%s", workload, clients, s)
}

func cellText(f figures) string {
	return fmt.Sprintf("%s/s (p50 %s, p99 %s)", thousands(f.Throughput), msText(f.P50), msText(f.P99))
}

// ratioText bolds a ratio below 1 (raftex slower), as the table.
func ratioText(r float64) string {
	if r < 1 {
		return fmt.Sprintf("**%.2f**", r)
	}
	return fmt.Sprintf("%.2f", r)
}

func msText(d time.Duration) string {
	return strconv.FormatFloat(float64(loadgen.Round(d))/float64(time.Millisecond), 'f', -1, 64) + " ms"
}

// thousands renders x rounded, with commas: 12,092.
func thousands(x float64) string {
	s := strconv.FormatInt(int64(x+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
