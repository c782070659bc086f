package raft

import (
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// The property test drives 3- and 5-node clusters through random sequences
// of ticks, proposals, reads, elections, leadership transfers,
// configuration changes (removals, additions as learner or voter, joint
// consensus: thesis chapter 4), message
// deliveries in any order, duplicates, drops, partitions, crashes (losing
// whatever was not persisted), restarts and log compactions, with each
// node's Ready taken and persisted in separate steps so the leader's
// parallel write (thesis §10.2.1) interleaves with everything else. After
// every step the checker verifies the properties of Figure 3 (see
// checker). At the end the network heals and the cluster must elect a
// leader and commit a new entry everywhere.
//
// go test ./raft runs rapid's default 100 cases; CI runs more with
//
//	go test ./raft -run 'TestProperty' -rapid.checks=1000
//
// A failure prints the case as a Go literal (propCase) to paste into
// regress_test.go, where runCase replays it deterministically.

// op is one step of a property case.
type op uint8

const (
	opDeliver    op = iota // deliver queued message A
	opTick                 // tick every running node
	opDeliverAll           // handle every Ready, then deliver every queued message in order
	opFlush                // handle every node's Ready in full
	opReady                // node A takes its Ready and sends its Messages
	opPersist              // node A persists its taken Ready, then the rest
	opPropose              // propose on the leader (A = 0) or on node A-1
	opDup                  // deliver queued message A and keep it queued
	opDrop                 // drop queued message A
	opCampaign             // node A campaigns
	opPartition            // cut the nodes in bitmask A off from the rest
	opHeal                 // heal every partition
	opCrash                // crash node A
	opRestart              // restart node A from its disk
	opCompact              // node A snapshots its state machine and compacts
	opTransfer             // the leader transfers leadership to node A
	opRead                 // node A asks for a linearizable read
	opSettle               // deliver rounds of messages until the network is quiet
	opStall                // node A stalls for two election timeouts while the others run
	opConfChange           // the leader changes the configuration: A%4 picks how, A/4 the node
	numOps
)

var opNames = [...]string{
	"opDeliver", "opTick", "opDeliverAll", "opFlush", "opReady", "opPersist",
	"opPropose", "opDup", "opDrop", "opCampaign", "opPartition", "opHeal",
	"opCrash", "opRestart", "opCompact", "opTransfer", "opRead", "opSettle",
	"opStall", "opConfChange",
}

func (o op) String() string { return opNames[o] }

// opWeights: how often the generator picks each op.
var opWeights = [numOps]int{
	opDeliver: 10, opTick: 10, opDeliverAll: 20, opFlush: 10, opReady: 6,
	opPersist: 6, opPropose: 15, opDup: 3, opDrop: 4, opCampaign: 16,
	opPartition: 6, opHeal: 3, opCrash: 1, opRestart: 4, opCompact: 2,
	opTransfer: 1, opRead: 3, opSettle: 4, opStall: 2, opConfChange: 3,
}

type step struct {
	Op op
	A  int
}

func (s step) String() string { return fmt.Sprintf("{%v, %d}", s.Op, s.A) }

// propConfig is the configuration of one case.
type propConfig struct {
	Nodes         int
	PreVote       bool
	CheckQuorum   bool
	LeaseRead     bool
	MaxSizePerMsg uint64
	MaxInflight   int
}

// propCase is a whole case: what a regression test replays.
type propCase struct {
	Cfg   propConfig
	Steps []step
}

func (pc propCase) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "propCase{Cfg: %#v, Steps: []step{", pc.Cfg)
	for i, s := range pc.Steps {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.String())
	}
	b.WriteString("}}")
	return strings.ReplaceAll(b.String(), "raft.propConfig", "propConfig")
}

func (pc propConfig) options() func(*Config) {
	return func(c *Config) {
		c.HeartbeatTick = 1
		c.ElectionTick = 5
		c.LeaseDriftTicks = 1
		c.PreVote = pc.PreVote
		c.CheckQuorum = pc.CheckQuorum
		c.LeaseRead = pc.LeaseRead
		c.MaxSizePerMsg = pc.MaxSizePerMsg
		c.MaxInflightMsgs = pc.MaxInflight
	}
}

// propRun is a case in progress.
type propRun struct {
	c     *cluster
	cfg   propConfig
	seq   int // numbers proposals and reads
	steps []step
}

func newPropRun(t tb, cfg propConfig) *propRun {
	return &propRun{c: newCluster(t, cfg.Nodes, cfg.options()), cfg: cfg}
}

func (p *propRun) node(a int) uint64 { return p.c.ids[a%len(p.c.ids)] }

// do runs one step and checks the properties.
func (p *propRun) do(s step) {
	p.c.t.Helper()
	p.steps = append(p.steps, s)
	c := p.c
	switch s.Op {
	case opTick:
		c.tickAll()
	case opStall:
		p.stall(p.node(s.A))
	case opDeliver, opDup, opDrop:
		if len(c.queue) == 0 {
			return
		}
		i := s.A % len(c.queue)
		m := c.queue[i]
		if s.Op != opDup {
			c.queue = append(c.queue[:i:i], c.queue[i+1:]...)
		}
		if s.Op == opDrop {
			if m.Type == MsgSnap && c.nodes[m.From] != nil {
				c.nodes[m.From].ReportSnapshot(m.To, false)
			}
			return
		}
		c.deliverMsg(m)
	case opDeliverAll:
		c.flush()
		msgs := c.queue
		c.queue = nil
		for _, m := range msgs {
			c.deliverMsg(m)
			c.check()
		}
	case opFlush:
		c.flush()
	case opSettle:
		for range 20 {
			c.flush()
			if len(c.queue) == 0 {
				break
			}
			p.do(step{Op: opDeliverAll})
			p.steps = p.steps[:len(p.steps)-1]
		}
	case opReady:
		c.takeReady(p.node(s.A))
	case opPersist:
		c.persist(p.node(s.A))
	case opPropose:
		// A = 0 proposes on the leader, if any; others on node A.
		id := c.leader()
		if s.A > 0 || id == None {
			id = p.node(max(s.A-1, 0))
		}
		if r := c.nodes[id]; r != nil {
			p.seq++
			data := fmt.Appendf(nil, "p%d", p.seq)
			if r.role == Leader {
				_, _, _ = r.Propose(data)
			} else {
				_ = r.ForwardProposal(data, data) // §8: through the leader
			}
		}
	case opCampaign:
		if r := c.nodes[p.node(s.A)]; r != nil {
			r.Campaign()
		}
	case opPartition:
		var in, out []uint64
		for i, id := range c.ids {
			if s.A&(1<<i) != 0 {
				in = append(in, id)
			} else {
				out = append(out, id)
			}
		}
		c.partition(in, out)
	case opHeal:
		c.heal()
	case opCrash:
		if c.nodes[p.node(s.A)] != nil {
			c.crash(p.node(s.A))
		}
	case opRestart:
		c.restart(p.node(s.A))
	case opCompact:
		p.compact(p.node(s.A))
	case opTransfer:
		if l := c.leader(); l != None {
			_ = c.nodes[l].TransferLeadership(p.node(s.A))
		}
	case opConfChange:
		p.confChange(s.A)
	case opRead:
		if r := c.nodes[p.node(s.A)]; r != nil {
			p.seq++
			ctx := fmt.Sprintf("r%d", p.seq)
			c.chk.readRequested(ctx)
			// Alternate: ReadIndex always takes a round, ReadLease may
			// answer from the lease (thesis §6.4, §6.4.1).
			if p.seq%2 == 0 {
				_ = r.ReadLease([]byte(ctx))
			} else {
				_ = r.ReadIndex([]byte(ctx))
			}
		}
	}
	c.check()
}

// confChange has the leader, if any, change the configuration; a change
// it refuses (pending, invalid) is simply not made. A removed node keeps
// running with its log, as an operator's would until it is shut down, and
// may be added back.
func (p *propRun) confChange(a int) {
	l := p.c.leader()
	if l == None {
		return
	}
	r := p.c.nodes[l]
	x := p.node(a / 4)
	var ccs []ConfChange
	switch a % 4 {
	case 0:
		ccs = []ConfChange{{Type: RemoveMember, ID: x}}
	case 1:
		ccs = []ConfChange{{Type: AddVoter, ID: x}} // a learner is promoted at once, a new server staged
	case 2:
		ccs = []ConfChange{{Type: AddLearner, ID: x}}
	case 3:
		// Joint consensus: remove x and promote every learner.
		ccs = []ConfChange{{Type: RemoveMember, ID: x}}
		for _, id := range r.membership.Learners {
			if id != x {
				ccs = append(ccs, ConfChange{Type: AddVoter, ID: id})
			}
		}
	}
	_, _, _ = r.ProposeConfChange(ccs...)
}

// stall stops node id's goroutine for two election timeouts (a GC or VM
// pause): the clock moves on and the other nodes tick, talk and may elect
// a new leader, while id neither ticks nor handles anything; what is sent
// to it waits. A lease must be time, not ticks (thesis §6.4.1).
func (p *propRun) stall(id uint64) {
	c := p.c
	for range 2 * 5 { // propConfig's ElectionTick
		c.clock.now += DefaultConfig(1, nil).TickInterval
		var held []Message
		for _, o := range c.ids {
			if r := c.nodes[o]; r != nil && o != id {
				r.Tick()
			}
		}
		for range 3 {
			for _, o := range c.ids {
				if o != id {
					c.persist(o)
					c.handle(o)
				}
			}
			msgs := c.queue
			c.queue = nil
			for _, m := range msgs {
				if m.To == id || m.From == id {
					held = append(held, m)
				} else {
					c.deliverMsg(m)
				}
			}
			c.check()
		}
		c.queue = append(c.queue, held...)
	}
}

// compact snapshots node id's state machine at its applied index and
// compacts the log up to it (§7).
func (p *propRun) compact(id uint64) {
	r := p.c.nodes[id]
	if r == nil {
		return
	}
	i := p.c.smIndex[id]
	if snap, _ := p.c.stores[id].Snapshot(); i <= snap.Meta.Index {
		return
	}
	if _, err := p.c.stores[id].CreateSnapshot(i, r.confAt(i), fmt.Appendf(nil, "sm@%d", i)); err != nil {
		p.c.t.Fatalf("compact node %d at %d: %v", id, i, err)
	}
}

// finish heals the cluster and requires it to make progress again: a
// leader is elected and a new entry reaches every state machine.
func (p *propRun) finish() {
	c := p.c
	c.t.Helper()
	c.heal()
	for _, id := range c.ids {
		if c.nodes[id] == nil {
			c.start(id)
		}
	}
	c.settle()
	// Propose once in each term until a proposal survives: a leader may
	// still lose its term, and its uncommitted entry, as the dust settles.
	var proposedIn uint64
	for range 40 * 5 {
		if l := c.leader(); l != None && c.nodes[l].term != proposedIn {
			if _, _, err := c.nodes[l].Propose([]byte("final")); err == nil {
				proposedIn = c.nodes[l].term
			}
		}
		c.tick(1)
		if l := c.leader(); proposedIn != 0 && l != None && p.allApplied(c.nodes[l].membership.Members(), "final") {
			return
		}
	}
	var b strings.Builder
	for _, id := range c.ids {
		r := c.nodes[id]
		fmt.Fprintf(&b, "\n  node %d: %s term=%d lead=%d commit=%d applied=%d log=[%s]", id, r.role, r.term, r.lead, r.log.committed, c.smIndex[id], logTermsOf(r))
		if r.role == Leader {
			for pid, pr := range r.prs {
				fmt.Fprintf(&b, "\n    progress %d: %v paused=%t", pid, pr, pr.isPaused())
			}
		}
	}
	c.t.Fatalf("liveness: after healing, the cluster did not commit a new entry everywhere (proposed in term %d):%s", proposedIn, b.String())
}

// allApplied reports whether every node of ids applied data.
func (p *propRun) allApplied(ids []uint64, data string) bool {
	for _, id := range ids {
		found := false
		for _, e := range p.c.applied[id] {
			if string(e.Data) == data {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// runCase replays a recorded case: what regression tests call.
func runCase(t *testing.T, pc propCase) {
	t.Helper()
	p := newPropRun(t, pc.Cfg)
	for _, s := range pc.Steps {
		p.do(s)
	}
	p.finish()
}

func drawConfig(t *rapid.T) propConfig {
	cfg := propConfig{
		Nodes:         rapid.SampledFrom([]int{3, 5}).Draw(t, "nodes"),
		PreVote:       rapid.Bool().Draw(t, "prevote"),
		CheckQuorum:   rapid.Bool().Draw(t, "checkquorum"),
		MaxSizePerMsg: rapid.SampledFrom([]uint64{1 << 20, 1}).Draw(t, "maxsize"),
		MaxInflight:   rapid.SampledFrom([]int{256, 1, 2}).Draw(t, "maxinflight"),
	}
	cfg.LeaseRead = cfg.CheckQuorum && rapid.Bool().Draw(t, "leaseread")
	return cfg
}

func drawStep(t *rapid.T, p *propRun) step {
	total := 0
	for _, w := range opWeights {
		total += w
	}
	n := rapid.IntRange(0, total-1).Draw(t, "op")
	var o op
	for o = 0; n >= opWeights[o]; o++ {
		n -= opWeights[o]
	}
	a := 0
	switch o {
	case opDeliver, opDup, opDrop:
		if len(p.c.queue) > 0 {
			a = rapid.IntRange(0, len(p.c.queue)-1).Draw(t, "msg")
		}
	case opPartition:
		a = rapid.IntRange(1, 1<<len(p.c.ids)-2).Draw(t, "group")
	case opTick, opDeliverAll, opFlush, opHeal, opSettle:
	case opPropose:
		a = rapid.IntRange(0, len(p.c.ids)).Draw(t, "node")
	case opConfChange:
		a = rapid.IntRange(0, 4*len(p.c.ids)-1).Draw(t, "change")
	default:
		a = rapid.IntRange(0, len(p.c.ids)-1).Draw(t, "node")
	}
	return step{o, a}
}

// propertyCheck is the property: random steps keep Figure 3 true, and the
// cluster recovers once healed.
func propertyCheck(t *rapid.T) {
	cfg := drawConfig(t)
	p := newPropRun(t, cfg)
	defer func() {
		if t.Failed() {
			t.Logf("replay: %v", propCase{Cfg: cfg, Steps: p.steps})
		}
	}()
	n := 100 + rapid.IntRange(0, 400).Draw(t, "steps")
	for range n {
		s := drawStep(t, p)
		t.Logf("%v", s)
		p.do(s)
	}
	p.finish()
}

func TestProperty_Figure3_RandomClusters(t *testing.T) {
	rapid.Check(t, propertyCheck)
}
