package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftex/raftex/client"
)

func benchCmd() *cobra.Command {
	var (
		f           clientFlags
		clients     int
		duration    time.Duration
		valueSize   int
		keys        int
		readPercent int
		consistency string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load a running cluster with concurrent clients and report throughput and latency",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if clients < 1 || valueSize < 0 || keys < 1 || readPercent < 0 || readPercent > 100 {
				return &exitError{2, fmt.Errorf("need --clients >= 1, --keys >= 1, --value-size >= 0, 0 <= --reads <= 100")}
			}
			c, err := client.New(strings.Split(f.endpoints, ","), client.Options{})
			if err != nil {
				return err
			}
			defer c.Close()
			res := runBench(cmd.Context(), c, clients, duration, valueSize, keys, readPercent, client.Consistency(consistency))
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "clients=%d duration=%s value=%dB reads=%d%% consistency=%s\n", clients, duration, valueSize, readPercent, consistency)
			for _, kind := range []string{"write", "read"} {
				lat := res.latencies[kind]
				if len(lat) == 0 {
					continue
				}
				slices.Sort(lat)
				fmt.Fprintf(out, "%-5s  %8.0f ops/s  p50 %-9s p99 %-9s max %s\n", kind,
					float64(len(lat))/duration.Seconds(), pct(lat, 50), pct(lat, 99), lat[len(lat)-1])
			}
			if res.errors > 0 {
				fmt.Fprintf(out, "errors: %d (last: %v)\n", res.errors, res.lastErr)
				return &exitError{1, fmt.Errorf("%d requests failed", res.errors)}
			}
			return nil
		},
	}
	f.add(cmd)
	fl := cmd.Flags()
	fl.IntVar(&clients, "clients", 16, "concurrent clients")
	fl.DurationVar(&duration, "duration", 10*time.Second, "how long to run")
	fl.IntVar(&valueSize, "value-size", 128, "bytes per value")
	fl.IntVar(&keys, "keys", 1000, "size of the key space")
	fl.IntVar(&readPercent, "reads", 0, "percentage of reads (the rest are writes)")
	fl.StringVar(&consistency, "consistency", "linearizable", "consistency of reads")
	return cmd
}

type benchResult struct {
	latencies map[string][]time.Duration
	errors    int
	lastErr   error
}

func runBench(ctx context.Context, c *client.Client, clients int, d time.Duration, valueSize, keys, readPercent int, cons client.Consistency) benchResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	res := benchResult{latencies: map[string][]time.Duration{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	value := make([]byte, valueSize)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			local := map[string][]time.Duration{}
			var errs int
			var lastErr error
			for ctx.Err() == nil {
				key := fmt.Sprintf("bench/%d", rng.IntN(keys))
				kind, start := "write", time.Now()
				var err error
				if rng.IntN(100) < readPercent {
					kind = "read"
					_, _, err = c.Get(ctx, key, cons)
					if errors.Is(err, client.ErrNotFound) {
						err = nil
					}
				} else {
					_, err = c.Put(ctx, key, value)
				}
				if ctx.Err() != nil {
					break // the deadline, not the cluster, ended this one
				}
				if err != nil {
					errs, lastErr = errs+1, err
					continue
				}
				local[kind] = append(local[kind], time.Since(start))
			}
			mu.Lock()
			for k, v := range local {
				res.latencies[k] = append(res.latencies[k], v...)
			}
			res.errors += errs
			if lastErr != nil {
				res.lastErr = lastErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return res
}

func pct(sorted []time.Duration, p int) time.Duration {
	return sorted[(len(sorted)-1)*p/100].Round(10 * time.Microsecond)
}
