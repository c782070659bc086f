package sim

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"
)

// Campaign is a series of runs, seed after seed.
type Campaign struct {
	// Seeds is how many seeds to run, from FirstSeed on.
	Seeds     int
	FirstSeed uint64
	// Nodes are the cluster sizes, used in turn: seed FirstSeed+i runs
	// Nodes[i%len(Nodes)] nodes. Default 3, 5, 7.
	Nodes []int
	// Faults are the rates for every seed; nil gives each seed its own mix
	// (MixFaults).
	Faults *Faults
	// Workers run seeds in parallel (each run is single-threaded).
	// Default GOMAXPROCS.
	Workers int
	// Progress, if set, is called after each seed, from one goroutine at a
	// time.
	Progress func(*Result)
}

// Summary adds up a campaign.
type Summary struct {
	Seeds, Failed int
	// SimTime is the virtual time of all runs together.
	SimTime time.Duration
	// Ops counts the operations checked for linearizability.
	Ops            int
	Messages       int
	FaultsInjected int
	Crashes        int
	Snapshots      int
	ConfChanges    int
	// AuthRuns counts the runs with auth enabled, Logins their logins.
	AuthRuns, Logins int
	// Failures are the failed runs, in seed order.
	Failures []*Result
	Wall     time.Duration
}

func (s Summary) String() string {
	return fmt.Sprintf("%d seeds, %d failed; %.2f simulated hours; %d operations checked; %d messages; %d faults injected (%d crashes); %d snapshots installed; %d configuration changes; %d runs with auth (%d logins); %v wall",
		s.Seeds, s.Failed, s.SimTime.Hours(), s.Ops, s.Messages, s.FaultsInjected, s.Crashes, s.Snapshots, s.ConfChanges, s.AuthRuns, s.Logins, s.Wall.Round(time.Second))
}

// Options returns the options of the campaign's i-th seed.
func (c *Campaign) Options(i int) Options {
	nodes := c.Nodes
	if len(nodes) == 0 {
		nodes = []int{3, 5, 7}
	}
	o := Options{Seed: c.FirstSeed + uint64(i), Nodes: nodes[i%len(nodes)]}
	if c.Faults != nil {
		o.Faults = *c.Faults
	} else {
		o.Faults = MixFaults(o.Seed)
	}
	return o
}

// RunCampaign runs the campaign until its seeds are done or ctx is
// cancelled.
func RunCampaign(ctx context.Context, c Campaign) Summary {
	start := time.Now()
	workers := c.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	next := make(chan int)
	results := make(chan *Result)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				results <- Run(c.Options(i))
			}
		})
	}
	go func() {
		defer close(next)
		for i := range c.Seeds {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	var sum Summary
	for res := range results {
		sum.add(res)
		if c.Progress != nil {
			c.Progress(res)
		}
	}
	slices.SortFunc(sum.Failures, func(a, b *Result) int { return cmp.Compare(a.Seed, b.Seed) })
	sum.Wall = time.Since(start)
	return sum
}

func (s *Summary) add(res *Result) {
	s.Seeds++
	s.SimTime += res.Stats.SimTime
	s.Ops += res.Stats.Checked
	s.Messages += res.Stats.Messages
	s.FaultsInjected += res.Stats.FaultsInjected
	s.Crashes += res.Stats.Crashes
	s.Logins += res.Stats.Logins
	if res.Stats.Auth {
		s.AuthRuns++
	}
	s.Snapshots += res.Stats.Snapshots
	s.ConfChanges += res.Stats.ConfChanges
	if res.Failed() {
		s.Failed++
		s.Failures = append(s.Failures, res)
	}
}
