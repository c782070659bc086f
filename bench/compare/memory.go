package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/raftex/raftex/internal/loadgen"
)

// runMemory writes o.memoryKeys keys to each system in turn (every key
// once, by as many clients as the largest of --clients), waits until every member applied them, and reports each
// member's resident memory, and for raftex the last snapshot each node
// took while loading (a snapshot every 10,000 entries: of nearly all the
// keys).
func runMemory(ctx context.Context, o options, bin, work string, stdout, stderr io.Writer) error {
	load := o.load(loadgen.Workload{}, slices.Max(o.clients))
	load.Keys = o.memoryKeys
	load = load.Fill()
	if err := load.Validate(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "memory after %d keys of %d-byte values (%d-byte keys), written once each by %d clients; load average %s\n\n",
		o.memoryKeys, o.valSz, o.keySize, load.Clients, loadAverage())
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "member\tRSS\tpeak RSS\tload\tlast snapshot: index\tbytes\ttook")
	for _, start := range []func() (system, error){
		func() (system, error) { return startRaftex(ctx, bin, mkdir(work, "raftex-memory")) },
		func() (system, error) { return startEtcd(ctx, mkdir(work, "etcd-memory")) },
	} {
		s, err := start()
		if err != nil {
			return err
		}
		err = measureMemory(ctx, s, load, tw, stderr)
		s.stop()
		if err != nil {
			return err
		}
	}
	return tw.Flush()
}

func measureMemory(ctx context.Context, s system, load loadgen.Config, tw io.Writer, stderr io.Writer) error {
	load.Progress = func(n int64, d time.Duration) {
		if d%(10*time.Second) < loadgen.ProgressEvery {
			fmt.Fprintf(stderr, "%s: %d of %d keys in %s\n", s.name(), n, load.Ops, d.Round(time.Second))
		}
	}
	res, err := loadgen.Run(ctx, s.target(), load)
	if err != nil {
		return err
	}
	if res.Failed() > 0 {
		return fmt.Errorf("%s: %d of %d writes failed: %v", s.name(), res.Failed(), load.Ops, res.Examples)
	}
	if err := s.applied(ctx); err != nil {
		return err
	}
	loadText := fmt.Sprintf("%.0f/s", res.Throughput())
	for _, p := range s.procs() {
		m, err := p.memory()
		if err != nil {
			return err
		}
		snap := "-\t-\t-"
		if sn, ok := lastSnapshot(p); ok {
			snap = fmt.Sprintf("%d\t%s\t%s", sn.Index, mib(sn.Bytes), loadgen.Round(sn.Duration))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.name, mib(m.RSS), mib(m.Peak), loadText, snap)
	}
	return nil
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func mkdir(parent, name string) string {
	dir := parent + "/" + name
	os.MkdirAll(dir, 0o755)
	return dir
}
