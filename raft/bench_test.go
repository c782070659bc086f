package raft

import (
	"fmt"
	"runtime"
	"testing"
)

// benchCluster is the leanest driver of three cores: in-memory storage,
// synchronous delivery, every Ready handled in full (no disk, no checker),
// so the benchmark measures the core.
type benchCluster struct {
	nodes   []*Raft
	stores  []*MemoryStorage
	queue   []Message
	spare   []Message
	applied uint64 // on the leader
}

func newBenchCluster(b *testing.B) *benchCluster {
	ids := []uint64{1, 2, 3}
	bc := &benchCluster{}
	for _, id := range ids {
		st := NewMemoryStorage(NewMembership(ids...))
		cfg := DefaultConfig(id, st)
		r, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		bc.nodes = append(bc.nodes, r)
		bc.stores = append(bc.stores, st)
	}
	bc.nodes[0].Campaign()
	bc.run()
	if bc.nodes[0].role != Leader {
		b.Fatal("node 1 did not become leader")
	}
	return bc
}

// run handles Readies and delivers messages until the cluster is quiet.
func (bc *benchCluster) run() {
	for {
		for i, r := range bc.nodes {
			for r.HasReady() {
				rd := r.Ready()
				bc.queue = append(bc.queue, rd.Messages...)
				st := bc.stores[i]
				if err := st.Append(rd.Entries); err != nil {
					panic(err)
				}
				if !rd.HardState.IsEmpty() {
					st.SetHardState(rd.HardState)
				}
				bc.queue = append(bc.queue, rd.MessagesAfterPersist...)
				if n := len(rd.CommittedEntries); n > 0 && i == 0 {
					bc.applied = rd.CommittedEntries[n-1].Index
				}
				r.Advance(rd)
				if n := len(rd.CommittedEntries); n > 0 {
					r.AppliedTo(rd.CommittedEntries[n-1].Index)
				}
			}
		}
		if len(bc.queue) == 0 {
			return
		}
		msgs := bc.queue
		bc.queue = bc.spare[:0]
		for _, m := range msgs {
			if err := bc.nodes[m.To-1].Step(m); err != nil {
				panic(err)
			}
		}
		clear(msgs)
		bc.spare = msgs
	}
}

// compact keeps the stores small: each snapshots at what it applied.
func (bc *benchCluster) compact() {
	for i, st := range bc.stores {
		if _, err := st.CreateSnapshot(bc.nodes[i].log.applied, bc.nodes[i].membership, nil); err != nil {
			panic(err)
		}
	}
}

// BenchmarkPropose: entries per second and allocations per entry through
// a 3-node cluster, each batch proposed on the leader then driven until
// the leader applies it. batch=1 is the latency path (one round trip per
// entry); larger batches show what group commit buys.
//
//	go test -run='^$' -bench=BenchmarkPropose -benchmem ./raft
func BenchmarkPropose(b *testing.B) {
	for _, batch := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			bc := newBenchCluster(b)
			leader := bc.nodes[0]
			data := make([]byte, 128)
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			b.ResetTimer()
			for i := 0; i < b.N; {
				n := min(batch, b.N-i)
				var last uint64
				for range n {
					idx, _, err := leader.Propose(data)
					if err != nil {
						b.Fatal(err)
					}
					last = idx
				}
				bc.run()
				if bc.applied < last {
					b.Fatalf("entry %d not applied (applied %d)", last, bc.applied)
				}
				i += n
				if i%(1<<14) < n {
					bc.compact()
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N), "allocs/entry")
		})
	}
}
