package raft

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// cluster is a small deterministic harness: cores over MemoryStorage, a
// queue of in-flight messages, and a Ready loop that follows the contract
// exactly (send Messages, persist, send MessagesAfterPersist, apply,
// Advance). Tests drive it step by step like a transcript.
type cluster struct {
	t       testing.TB
	ids     []uint64
	nodes   map[uint64]*Raft
	stores  map[uint64]*MemoryStorage
	applied map[uint64][]Entry
	reads   map[uint64][]ReadState
	events  map[uint64][]Event
	// queue holds messages sent and not yet delivered.
	queue []Message
	// cut[from][to] drops messages on that link.
	cut map[[2]uint64]bool
	// rejectDeliver, when set, drops messages it returns true for.
	drop func(Message) bool
}

func newCluster(t testing.TB, n int, opts ...func(*Config)) *cluster {
	t.Helper()
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	c := &cluster{
		t: t, ids: ids,
		nodes: map[uint64]*Raft{}, stores: map[uint64]*MemoryStorage{},
		applied: map[uint64][]Entry{}, reads: map[uint64][]ReadState{},
		events: map[uint64][]Event{}, cut: map[[2]uint64]bool{},
	}
	for _, id := range ids {
		c.stores[id] = NewMemoryStorage(NewMembership(ids...))
		c.start(id, opts...)
	}
	return c
}

// start (re)creates node id from its storage, as after a restart.
func (c *cluster) start(id uint64, opts ...func(*Config)) {
	c.t.Helper()
	cfg := DefaultConfig(id, c.stores[id])
	cfg.Rand = rand.New(rand.NewPCG(id, 42))
	if snap, _ := c.stores[id].Snapshot(); !snap.IsEmpty() {
		cfg.Applied = snap.Meta.Index
	}
	for _, o := range opts {
		o(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		c.t.Fatalf("New(%d): %v", id, err)
	}
	c.nodes[id] = r
}

// handle runs one Ready of node id through the contract.
func (c *cluster) handle(id uint64) bool {
	r := c.nodes[id]
	if !r.HasReady() {
		return false
	}
	rd := r.Ready()
	c.queue = append(c.queue, rd.Messages...)
	st := c.stores[id]
	if rd.Snapshot != nil {
		if err := st.ApplySnapshot(*rd.Snapshot); err != nil {
			c.t.Fatalf("node %d: apply snapshot: %v", id, err)
		}
		c.applied[id] = nil // the state machine is replaced by the snapshot
	}
	if err := st.Append(rd.Entries); err != nil {
		c.t.Fatalf("node %d: append: %v", id, err)
	}
	if !rd.HardState.IsEmpty() {
		st.SetHardState(rd.HardState)
	}
	c.queue = append(c.queue, rd.MessagesAfterPersist...)
	c.applied[id] = append(c.applied[id], rd.CommittedEntries...)
	c.reads[id] = append(c.reads[id], rd.ReadStates...)
	c.events[id] = append(c.events[id], rd.Events...)
	r.Advance(rd)
	return true
}

// flush handles every node's Ready until none has any, without delivering.
func (c *cluster) flush() {
	for progress := true; progress; {
		progress = false
		for _, id := range c.ids {
			if c.nodes[id] != nil && c.handle(id) {
				progress = true
			}
		}
	}
}

// deliver delivers the queued messages once (new ones stay queued).
func (c *cluster) deliver() int {
	c.flush()
	msgs := c.queue
	c.queue = nil
	n := 0
	for _, m := range msgs {
		if c.nodes[m.To] == nil || c.cut[[2]uint64{m.From, m.To}] || (c.drop != nil && c.drop(m)) {
			continue
		}
		if err := c.nodes[m.To].Step(m); err != nil {
			c.t.Fatalf("step %v: %v", m, err)
		}
		n++
	}
	c.flush()
	return n
}

// settle delivers messages until the network is quiet.
func (c *cluster) settle() {
	for i := 0; ; i++ {
		if i > 10000 {
			c.t.Fatal("cluster did not settle")
		}
		c.flush()
		if len(c.queue) == 0 {
			return
		}
		c.deliver()
	}
}

// tick ticks every live node n times, settling after each tick.
func (c *cluster) tick(n int) {
	for range n {
		for _, id := range c.ids {
			if r := c.nodes[id]; r != nil {
				r.Tick()
			}
		}
		c.settle()
	}
}

// campaign makes id start an election and settles.
func (c *cluster) campaign(id uint64) {
	c.nodes[id].Campaign()
	c.settle()
}

func (c *cluster) leader() uint64 {
	var lead uint64
	for _, id := range c.ids {
		if r := c.nodes[id]; r != nil && r.role == Leader {
			if lead != None && c.nodes[lead].term == r.term {
				c.t.Fatalf("two leaders in term %d: %d and %d", r.term, lead, id)
			}
			if lead == None || r.term > c.nodes[lead].term {
				lead = id
			}
		}
	}
	return lead
}

func (c *cluster) propose(id uint64, data string) (uint64, uint64) {
	c.t.Helper()
	i, tm, err := c.nodes[id].Propose([]byte(data))
	if err != nil {
		c.t.Fatalf("propose on %d: %v", id, err)
	}
	return i, tm
}

// isolate cuts every link to and from id.
func (c *cluster) isolate(id uint64) {
	for _, o := range c.ids {
		if o != id {
			c.cut[[2]uint64{id, o}] = true
			c.cut[[2]uint64{o, id}] = true
		}
	}
}

func (c *cluster) heal() { c.cut = map[[2]uint64]bool{} }

// crash stops id, losing nothing: MemoryStorage holds what was persisted.
func (c *cluster) crash(id uint64) {
	c.nodes[id] = nil
	c.queue = slices.DeleteFunc(c.queue, func(m Message) bool { return m.To == id || m.From == id })
}

// appliedData returns the data of the normal entries node id applied.
func (c *cluster) appliedData(id uint64) []string {
	var out []string
	for _, e := range c.applied[id] {
		if e.Type == EntryNormal {
			out = append(out, string(e.Data))
		}
	}
	return out
}

// logTerms returns "index:term" of every entry in node id's log.
func (c *cluster) logTerms(id uint64) string {
	r := c.nodes[id]
	s := ""
	for i := r.log.firstIndex(); i <= r.log.lastIndex(); i++ {
		s += fmt.Sprintf("%d ", r.log.termOrZero(i))
	}
	return s
}

func (c *cluster) checkInvariants() {
	c.t.Helper()
	for _, id := range c.ids {
		if r := c.nodes[id]; r != nil {
			if err := r.log.check(); err != nil {
				c.t.Fatalf("node %d: %v", id, err)
			}
		}
	}
}
