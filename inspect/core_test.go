package inspect

import (
	"testing"

	"github.com/raftex/raftex/raft"
)

// cores is a cluster of real raft cores driven by hand, so the outputs of
// this package are tested on the event sequences the core really emits:
// every Ready is persisted to a MemoryStorage, its messages delivered at
// once (unless a node is cut off), its events handed to observe.
type cores struct {
	t       *testing.T
	nodes   map[uint64]*raft.Raft
	stores  map[uint64]*raft.MemoryStorage
	cut     map[uint64]bool // nodes whose messages, both ways, are lost
	observe func(raft.Event)
	ids     []uint64
}

func newCores(t *testing.T, n int, observe func(raft.Event)) *cores {
	t.Helper()
	c := &cores{t: t, nodes: map[uint64]*raft.Raft{}, stores: map[uint64]*raft.MemoryStorage{}, cut: map[uint64]bool{}, observe: observe}
	for id := uint64(1); id <= uint64(n); id++ {
		c.ids = append(c.ids, id)
	}
	for _, id := range c.ids {
		s := raft.NewMemoryStorage(raft.NewMembership(c.ids...))
		cfg := raft.DefaultConfig(id, s)
		cfg.PreVote, cfg.CheckQuorum = true, true
		r, err := raft.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes[id], c.stores[id] = r, s
	}
	return c
}

// settle processes Ready batches until no node has one.
func (c *cores) settle() {
	for busy := true; busy; {
		busy = false
		for _, id := range c.ids {
			r := c.nodes[id]
			if !r.HasReady() {
				continue
			}
			busy = true
			rd := r.Ready()
			for _, e := range rd.Events {
				c.observe(e)
			}
			s := c.stores[id]
			if len(rd.Entries) > 0 {
				if err := s.Append(rd.Entries); err != nil {
					c.t.Fatal(err)
				}
			}
			if !rd.HardState.IsEmpty() {
				s.SetHardState(rd.HardState)
			}
			c.deliver(id, rd.Messages)
			c.deliver(id, rd.MessagesAfterPersist)
			r.Advance(rd)
		}
	}
}

func (c *cores) deliver(from uint64, msgs []raft.Message) {
	for _, m := range msgs {
		if c.cut[from] || c.cut[m.To] || c.nodes[m.To] == nil { // nil: a member that never runs
			continue
		}
		c.nodes[m.To].Step(m) // an error is a message the core refuses: fine here
	}
}

// tick advances every node's clock (but skip's) n ticks, settling after
// each.
func (c *cores) tick(n int, skip ...uint64) {
	for range n {
		for _, id := range c.ids {
			if len(skip) == 0 || skip[0] != id {
				c.nodes[id].Tick()
			}
		}
		c.settle()
	}
}

// elect makes id campaign and win.
func (c *cores) elect(id uint64) {
	c.t.Helper()
	c.nodes[id].Campaign()
	c.settle()
	if c.nodes[id].Status().Role != raft.Leader {
		c.t.Fatalf("n%d did not win: %+v", id, c.nodes[id].Status())
	}
}

// leader returns the id of the node that leads, or 0.
func (c *cores) leader() uint64 {
	for _, id := range c.ids {
		if c.nodes[id].Status().Role == raft.Leader && !c.cut[id] {
			return id
		}
	}
	return 0
}

// makeLead makes id the leader: by election if none leads (ticking until
// one does), then by a leadership transfer (thesis §3.10) if another does.
func (c *cores) makeLead(id uint64) {
	c.t.Helper()
	for i := 0; i < 200 && c.leader() == 0; i++ {
		c.tick(1)
	}
	if lead := c.leader(); lead != id && lead != 0 {
		if err := c.nodes[lead].TransferLeadership(id); err != nil {
			c.t.Fatal(err)
		}
		c.settle()
		c.tick(3)
	}
	if c.leader() != id {
		c.t.Fatalf("n%d does not lead: %+v", id, c.nodes[id].Status())
	}
}
