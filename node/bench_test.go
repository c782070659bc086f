package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftex/raftex/raft"
)

// BenchmarkNodePropose measures Propose on a 3-node cluster over loopback
// TCP with real WALs in temp dirs (fsync on): 1, 16 and 64 concurrent
// proposers of 128-byte commands, each waiting for its command to be
// applied on the leader. It reports throughput and latency percentiles;
// allocs/op counts the whole process (three nodes and their transports)
// per proposal. A leader change (a slow fsync steps the leader down, as it
// must) costs the proposals caught in it a retry at the new leader, inside
// their latency; "retries" counts them. Results are in docs/benchmarks.md.
func BenchmarkNodePropose(b *testing.B) {
	for _, proposers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("proposers=%d", proposers), func(b *testing.B) {
			c := newTestCluster(b, 3)
			var lead atomic.Pointer[Node]
			lead.Store(c.nodes[c.waitLeader(30*time.Second)])
			cmd := make([]byte, 128)
			lat := make([][]time.Duration, proposers)
			var next, retries atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for w := range proposers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						t0 := time.Now()
						for {
							n := lead.Load()
							_, err := n.Propose(context.Background(), cmd)
							if err == nil {
								break
							}
							if !retryable(err) {
								b.Error(err)
								return
							}
							retries.Add(1)
							if !c.followLeader(&lead, n, 30*time.Second) {
								b.Error("no leader within 30s")
								return
							}
						}
						lat[w] = append(lat[w], time.Since(t0))
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			all := slices.Concat(lat...)
			if len(all) == 0 {
				return
			}
			slices.Sort(all)
			pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))]) / 1e3 }
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
			b.ReportMetric(pct(0.50), "p50-µs")
			b.ReportMetric(pct(0.99), "p99-µs")
			b.ReportMetric(float64(retries.Load()), "retries")
			b.ReportMetric(0, "ns/op") // per-op time means little with concurrent proposers
		})
	}
}

// followLeader waits until a leader other than old is agreed on (or old
// leads again) and stores it in lead; false after timeout.
func (c *testCluster) followLeader(lead *atomic.Pointer[Node], old *Node, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cur := lead.Load(); cur != old {
			return true // another proposer found it
		}
		if id := c.agreedLeader(); id != raft.None {
			c.mu.RLock()
			n := c.nodes[id]
			c.mu.RUnlock()
			lead.CompareAndSwap(old, n)
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}
