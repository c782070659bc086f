// Package etcdcmp benchmarks raftex's core side by side with etcd-io/raft,
// driven the same way: three cores in one goroutine, in-memory storage,
// synchronous delivery, every Ready handled in full. It measures the
// protocol cores alone (no disk, no network):
//
//	go test -run '^$' -bench . -benchmem ./internal/etcdcmp
package etcdcmp

import (
	"fmt"
	"io"
	"log"
	"runtime"
	"testing"

	etcd "go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftex/raftex/raft"
)

// cluster is what the benchmark needs of either implementation.
type cluster interface {
	// propose appends data on the leader.
	propose(data []byte) error
	// run handles Readies and delivers messages until all is quiet.
	run()
	// applied counts the normal entries the leader has applied.
	applied() int
	// compact snapshots every node at what it applied and trims its log.
	compact()
}

var ids = []uint64{1, 2, 3}

// raftexCluster drives three raftex cores.
type raftexCluster struct {
	nodes     []*raft.Raft
	stores    []*raft.MemoryStorage
	appliedAt []uint64
	count     int
	queue     []raft.Message
}

func newRaftex(b testing.TB) cluster {
	c := &raftexCluster{appliedAt: make([]uint64, len(ids))}
	for _, id := range ids {
		st := raft.NewMemoryStorage(raft.NewMembership(ids...))
		r, err := raft.New(raft.DefaultConfig(id, st))
		if err != nil {
			b.Fatal(err)
		}
		c.nodes, c.stores = append(c.nodes, r), append(c.stores, st)
	}
	c.nodes[0].Campaign()
	c.run()
	if c.nodes[0].Status().Role != raft.Leader {
		b.Fatal("raftex: node 1 did not become leader")
	}
	return c
}

func (c *raftexCluster) propose(data []byte) error {
	_, _, err := c.nodes[0].Propose(data)
	return err
}

func (c *raftexCluster) run() {
	for {
		for i, r := range c.nodes {
			for r.HasReady() {
				rd := r.Ready()
				c.queue = append(c.queue, rd.Messages...)
				if err := c.stores[i].Append(rd.Entries); err != nil {
					panic(err)
				}
				if !rd.HardState.IsEmpty() {
					c.stores[i].SetHardState(rd.HardState)
				}
				c.queue = append(c.queue, rd.MessagesAfterPersist...)
				for _, e := range rd.CommittedEntries {
					c.appliedAt[i] = e.Index
					if i == 0 && e.Type == raft.EntryNormal {
						c.count++
					}
				}
				r.Advance(rd)
				if n := len(rd.CommittedEntries); n > 0 {
					r.AppliedTo(rd.CommittedEntries[n-1].Index)
				}
			}
		}
		if len(c.queue) == 0 {
			return
		}
		msgs := c.queue
		c.queue = nil
		for _, m := range msgs {
			if err := c.nodes[m.To-1].Step(m); err != nil {
				panic(err)
			}
		}
	}
}

func (c *raftexCluster) applied() int { return c.count }

func (c *raftexCluster) compact() {
	for i, st := range c.stores {
		if _, err := st.CreateSnapshot(c.appliedAt[i], raft.NewMembership(ids...), nil); err != nil && err != raft.ErrSnapshotOutOfDate {
			panic(err)
		}
	}
}

// etcdCluster drives three etcd-io/raft RawNodes with the same settings
// as raftex's defaults: PreVote and CheckQuorum on, 1 MiB messages, 256
// in flight.
type etcdCluster struct {
	nodes     []*etcd.RawNode
	stores    []*etcd.MemoryStorage
	appliedAt []uint64
	count     int
	queue     []*raftpb.Message
	confState raftpb.ConfState
}

func newEtcd(b testing.TB) cluster {
	c := &etcdCluster{appliedAt: make([]uint64, len(ids)), confState: raftpb.ConfState{Voters: ids}}
	quiet := &etcd.DefaultLogger{Logger: log.New(io.Discard, "", 0)}
	for _, id := range ids {
		st := etcd.NewMemoryStorage()
		// The cluster's membership, as a snapshot at index 1.
		one := uint64(1)
		meta := &raftpb.SnapshotMetadata{Index: &one, Term: &one, ConfState: &c.confState}
		if err := st.ApplySnapshot(&raftpb.Snapshot{Metadata: meta}); err != nil {
			b.Fatal(err)
		}
		rn, err := etcd.NewRawNode(&etcd.Config{
			ID: id, ElectionTick: 15, HeartbeatTick: 5, Storage: st,
			MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, MaxUncommittedEntriesSize: 64 << 20,
			PreVote: true, CheckQuorum: true, Logger: quiet,
		})
		if err != nil {
			b.Fatal(err)
		}
		c.nodes, c.stores = append(c.nodes, rn), append(c.stores, st)
		c.appliedAt[id-1] = 1
	}
	if err := c.nodes[0].Campaign(); err != nil {
		b.Fatal(err)
	}
	c.run()
	if c.nodes[0].BasicStatus().RaftState != etcd.StateLeader {
		b.Fatal("etcd: node 1 did not become leader")
	}
	return c
}

func (c *etcdCluster) propose(data []byte) error { return c.nodes[0].Propose(data) }

func (c *etcdCluster) run() {
	for {
		for i, rn := range c.nodes {
			for rn.HasReady() {
				rd := rn.Ready()
				if err := c.stores[i].Append(rd.Entries); err != nil {
					panic(err)
				}
				if !etcd.IsEmptyHardState(rd.HardState) {
					if err := c.stores[i].SetHardState(rd.HardState); err != nil {
						panic(err)
					}
				}
				c.queue = append(c.queue, rd.Messages...)
				for _, e := range rd.CommittedEntries {
					c.appliedAt[i] = e.GetIndex()
					if i == 0 && e.GetType() == raftpb.EntryType_EntryNormal && len(e.Data) > 0 {
						c.count++
					}
				}
				rn.Advance(rd)
			}
		}
		if len(c.queue) == 0 {
			return
		}
		msgs := c.queue
		c.queue = nil
		for i := range msgs {
			if err := c.nodes[msgs[i].GetTo()-1].Step(msgs[i]); err != nil {
				panic(err)
			}
		}
	}
}

func (c *etcdCluster) applied() int { return c.count }

func (c *etcdCluster) compact() {
	for i, st := range c.stores {
		if _, err := st.CreateSnapshot(c.appliedAt[i], &c.confState, nil); err != nil && err != etcd.ErrSnapOutOfDate {
			panic(err)
		}
		if err := st.Compact(c.appliedAt[i]); err != nil && err != etcd.ErrCompacted {
			panic(err)
		}
	}
}

// BenchmarkPropose proposes batches of 128-byte entries on the leader and
// drives each batch until the leader applied it, for both cores in the
// same run. Reports entries/s and allocations per entry.
func BenchmarkPropose(b *testing.B) {
	impls := []struct {
		name string
		new  func(testing.TB) cluster
	}{{"raftex", newRaftex}, {"etcd", newEtcd}}
	for _, batch := range []int{1, 16, 256} {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("batch=%d/impl=%s", batch, impl.name), func(b *testing.B) {
				c := impl.new(b)
				data := make([]byte, 128)
				var ms0, ms1 runtime.MemStats
				runtime.ReadMemStats(&ms0)
				b.ResetTimer()
				for i := 0; i < b.N; {
					n := min(batch, b.N-i)
					want := c.applied() + n
					for range n {
						if err := c.propose(data); err != nil {
							b.Fatal(err)
						}
					}
					c.run()
					if got := c.applied(); got != want {
						b.Fatalf("%d entries applied, want %d", got, want)
					}
					i += n
					if i%(1<<14) < n {
						c.compact()
					}
				}
				b.StopTimer()
				runtime.ReadMemStats(&ms1)
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
				b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N), "allocs/entry")
			})
		}
	}
}

// TestBothClustersCommit keeps the harness honest: each implementation
// elects node 1 and applies every entry proposed, across a compaction.
func TestBothClustersCommit(t *testing.T) {
	for _, mk := range []func(testing.TB) cluster{newRaftex, newEtcd} {
		c := mk(t)
		for round := range 3 {
			for range 100 {
				if err := c.propose([]byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			c.run()
			if got := c.applied(); got != 100*(round+1) {
				t.Fatalf("%T applied %d of %d", c, got, 100*(round+1))
			}
			c.compact()
		}
	}
}
