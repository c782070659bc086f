package raft

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// tb is what the harness needs from *testing.T, *testing.B and *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

// cluster is a small deterministic harness: cores over MemoryStorage, a
// queue of in-flight messages, and a Ready loop that follows the contract
// exactly (send Messages, persist, send MessagesAfterPersist, apply,
// Advance). Tests drive it step by step like a transcript.
//
// A node's Ready is normally handled in one go (handle). The property test
// also splits it (takeReady, then persist later) to exercise the parallel
// leader write (thesis §10.2.1) and crashes between the two halves.
type cluster struct {
	t     tb
	ids   []uint64
	opts  []func(*Config)
	nodes map[uint64]*Raft
	// stores is each node's disk; it survives crashes.
	stores map[uint64]*MemoryStorage
	// pending is a Ready taken (its Messages sent) but not yet persisted.
	pending map[uint64]*Ready
	// applied is what each node's state machine applied since it was
	// last restored (from a snapshot, at a restart or InstallSnapshot);
	// smIndex is the index that state machine reflects.
	applied map[uint64][]Entry
	smIndex map[uint64]uint64
	reads   map[uint64][]ReadState
	results map[uint64][]ProposalResult
	events  map[uint64][]Event
	// queue holds messages sent and not yet delivered.
	queue []Message
	// cut[{from,to}] drops messages on that link.
	cut map[[2]uint64]bool
	// drop, when set, drops the messages it returns true for.
	drop func(Message) bool
	// vanish, when set, loses the messages it returns true for without
	// even an InstallSnapshot's report to its sender.
	vanish func(Message) bool
	// chk, when set, checks the properties of Figure 3 after every step.
	chk *checker
	// trace, when set, records every message delivered.
	trace *[]string
	// clock is the cluster's time: tickAll advances it by one tick. A
	// test stalls a node by advancing it without ticking that node.
	clock *fakeClock
}

// fakeClock is a virtual monotonic clock (Config.Clock).
type fakeClock struct{ now time.Duration }

func (f *fakeClock) Now() time.Duration { return f.now }

func newCluster(t tb, n int, opts ...func(*Config)) *cluster {
	t.Helper()
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	return newClusterWithStores(t, ids, func(uint64) *MemoryStorage {
		return NewMemoryStorage(NewMembership(ids...))
	}, opts...)
}

// newClusterWithStores starts nodes ids over the storages mk returns: the
// way a test gives each node a prepared log (Figure 7).
func newClusterWithStores(t tb, ids []uint64, mk func(id uint64) *MemoryStorage, opts ...func(*Config)) *cluster {
	t.Helper()
	c := &cluster{
		t: t, ids: ids, opts: opts,
		nodes: map[uint64]*Raft{}, stores: map[uint64]*MemoryStorage{},
		pending: map[uint64]*Ready{},
		applied: map[uint64][]Entry{}, smIndex: map[uint64]uint64{},
		reads: map[uint64][]ReadState{}, events: map[uint64][]Event{},
		results: map[uint64][]ProposalResult{},
		cut:     map[[2]uint64]bool{}, clock: &fakeClock{},
	}
	c.chk = newChecker(c)
	for _, id := range ids {
		c.stores[id] = mk(id)
		c.start(id)
	}
	return c
}

// start (re)creates node id from its storage, as after a restart: the
// state machine is restored from the stored snapshot.
func (c *cluster) start(id uint64) {
	c.t.Helper()
	cfg := DefaultConfig(id, c.stores[id])
	cfg.Rand = rand.New(rand.NewPCG(id, 42))
	cfg.Clock = c.clock
	snap, _ := c.stores[id].Snapshot()
	cfg.Applied = snap.Meta.Index
	for _, o := range c.opts {
		o(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		c.t.Fatalf("New(%d): %v", id, err)
	}
	c.nodes[id] = r
	c.applied[id] = nil
	c.smIndex[id] = cfg.Applied
	if c.chk != nil {
		c.chk.restarted(id)
	}
}

// handle runs one Ready of node id through the contract.
func (c *cluster) handle(id uint64) bool {
	if !c.takeReady(id) {
		return false
	}
	c.persist(id)
	return true
}

// takeReady takes node id's Ready and sends its Messages: the half that
// may run before the disk write (rule 1 of Ready).
func (c *cluster) takeReady(id uint64) bool {
	r := c.nodes[id]
	if r == nil || c.pending[id] != nil || !r.HasReady() {
		return false
	}
	rd := r.Ready()
	c.pending[id] = &rd
	c.queue = append(c.queue, rd.Messages...)
	c.events[id] = append(c.events[id], rd.Events...)
	c.results[id] = append(c.results[id], rd.ProposalResults...)
	return true
}

// persist finishes node id's pending Ready: persist, send
// MessagesAfterPersist, apply, Advance (rules 2–5 of Ready).
func (c *cluster) persist(id uint64) bool {
	c.t.Helper()
	rd := c.pending[id]
	if rd == nil {
		return false
	}
	delete(c.pending, id)
	st := c.stores[id]
	if rd.Snapshot != nil {
		if err := st.ApplySnapshot(*rd.Snapshot); err != nil {
			c.t.Fatalf("node %d: apply snapshot: %v", id, err)
		}
		// The state machine is replaced by the snapshot (§7).
		c.applied[id] = nil
		c.smIndex[id] = rd.Snapshot.Meta.Index
	}
	if err := st.Append(rd.Entries); err != nil {
		c.t.Fatalf("node %d: append: %v", id, err)
	}
	if !rd.HardState.IsEmpty() {
		st.SetHardState(rd.HardState)
	}
	c.queue = append(c.queue, rd.MessagesAfterPersist...)
	for _, e := range rd.CommittedEntries {
		if e.Index != c.smIndex[id]+1 {
			c.t.Fatalf("node %d applied entry %d after %d: entries must be applied in order", id, e.Index, c.smIndex[id])
		}
		c.smIndex[id] = e.Index
		c.applied[id] = append(c.applied[id], e)
		if c.chk != nil {
			c.chk.applied(id, e)
		}
	}
	c.reads[id] = append(c.reads[id], rd.ReadStates...)
	if c.chk != nil {
		c.chk.readStates(id, rd.ReadStates)
	}
	c.nodes[id].Advance(*rd)
	c.nodes[id].AppliedTo(c.smIndex[id])
	return true
}

// flush handles every node's Ready until none has any, without delivering.
func (c *cluster) flush() {
	for progress := true; progress; {
		progress = false
		for _, id := range c.ids {
			if c.nodes[id] == nil {
				continue
			}
			if c.persist(id) || c.handle(id) {
				progress = true
			}
		}
	}
	c.check()
}

func (c *cluster) check() {
	if c.chk != nil {
		c.chk.check()
	}
}

// deliver delivers the queued messages once (new ones stay queued).
func (c *cluster) deliver() int {
	c.flush()
	msgs := c.queue
	c.queue = nil
	n := 0
	for _, m := range msgs {
		if c.deliverMsg(m) {
			n++
		}
	}
	c.flush()
	return n
}

// deliverMsg steps m into its destination unless the network drops it. An
// InstallSnapshot's fate is reported to its sender, as the runtime's
// transport does.
func (c *cluster) deliverMsg(m Message) bool {
	c.t.Helper()
	if c.vanish != nil && c.vanish(m) {
		return false
	}
	to := c.nodes[m.To]
	lost := to == nil || c.cut[[2]uint64{m.From, m.To}] || (c.drop != nil && c.drop(m))
	if m.Type == MsgSnap {
		if from := c.nodes[m.From]; from != nil {
			from.ReportSnapshot(m.To, !lost)
		}
	}
	if lost {
		return false
	}
	if c.trace != nil {
		*c.trace = append(*c.trace, m.String())
	}
	if err := to.Step(m); err != nil {
		c.t.Fatalf("step %v: %v", m, err)
	}
	return true
}

// settle delivers messages until the network is quiet.
func (c *cluster) settle() {
	c.t.Helper()
	for i := 0; ; i++ {
		if i > 10000 {
			c.t.Fatalf("cluster did not settle")
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
		c.tickAll()
		c.settle()
	}
}

// tickAll ticks every live node once, delivering nothing; the clock moves
// one tick (at the default TickInterval).
func (c *cluster) tickAll() {
	c.clock.now += DefaultConfig(1, nil).TickInterval
	for _, id := range c.ids {
		if r := c.nodes[id]; r != nil {
			r.Tick()
		}
	}
	c.check()
}

// campaign makes id start an election and settles.
func (c *cluster) campaign(id uint64) {
	c.nodes[id].Campaign()
	c.settle()
}

// leader returns the live leader of the highest term, or None.
func (c *cluster) leader() uint64 {
	var lead uint64
	for _, id := range c.ids {
		if r := c.nodes[id]; r != nil && r.role == Leader {
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

// partition cuts every link between the groups.
func (c *cluster) partition(groups ...[]uint64) {
	c.heal()
	for i, g := range groups {
		for j, h := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					c.cut[[2]uint64{a, b}] = true
				}
			}
		}
	}
}

func (c *cluster) heal() { c.cut = map[[2]uint64]bool{} }

// crash stops id. Its disk keeps what was persisted; a Ready taken but not
// persisted is lost, while the messages it already sent stay on the wire.
func (c *cluster) crash(id uint64) {
	c.nodes[id] = nil
	delete(c.pending, id)
	if c.chk != nil {
		c.chk.crashed(id)
	}
}

// restart crashes id if it is running and starts it again from its disk.
func (c *cluster) restart(id uint64) {
	c.t.Helper()
	if c.nodes[id] != nil {
		c.crash(id)
	}
	c.start(id)
}

// take removes and returns the queued messages that match f.
func (c *cluster) take(f func(Message) bool) []Message {
	c.flush()
	var out []Message
	c.queue = slices.DeleteFunc(c.queue, func(m Message) bool {
		if f(m) {
			out = append(out, m)
			return true
		}
		return false
	})
	return out
}

// queued renders the queued messages, one per line, for transcripts.
func (c *cluster) queued() string {
	c.flush()
	return renderMsgs(c.queue)
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

// logTerms returns the term of every entry in node id's log, from its
// first index, as "t t t".
func (c *cluster) logTerms(id uint64) string {
	return logTermsOf(c.nodes[id])
}

func logTermsOf(r *Raft) string {
	var b strings.Builder
	for i := r.log.firstIndex(); i <= r.log.lastIndex(); i++ {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d", r.log.termOrZero(i))
	}
	return b.String()
}

func renderMsgs(ms []Message) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func isType(ts ...MessageType) func(Message) bool {
	return func(m Message) bool { return slices.Contains(ts, m.Type) }
}

// --- single-core transcripts ---------------------------------------------

// testNode is one core over its own MemoryStorage, driven by hand: the
// test plays every other node by writing their messages.
type testNode struct {
	*Raft
	t     *testing.T
	st    *MemoryStorage
	clock *fakeClock
}

// logTerms is a Storage option: entries 1..n with the given terms.
func storeWith(voters []uint64, hs HardState, terms ...uint64) *MemoryStorage {
	st := NewMemoryStorage(NewMembership(voters...))
	ents := make([]Entry, len(terms))
	for i, tm := range terms {
		ents[i] = Entry{Index: uint64(i + 1), Term: tm, Data: fmt.Appendf(nil, "%d/%d", i+1, tm)}
	}
	if err := st.Append(ents); err != nil {
		panic(err)
	}
	st.SetHardState(hs)
	return st
}

func newTestNode(t *testing.T, id uint64, st *MemoryStorage, opts ...func(*Config)) *testNode {
	t.Helper()
	cfg := DefaultConfig(id, st)
	cfg.Rand = rand.New(rand.NewPCG(id, 42))
	clock := &fakeClock{}
	cfg.Clock = clock
	for _, o := range opts {
		o(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testNode{Raft: r, t: t, st: st, clock: clock}
}

// step feeds messages into the core; the test fails on an error.
func (n *testNode) step(ms ...Message) {
	n.t.Helper()
	for _, m := range ms {
		if m.To == None {
			m.To = n.id
		}
		if err := n.Step(m); err != nil {
			n.t.Fatalf("Step(%v): %v", m, err)
		}
	}
}

// ready takes the Ready, persists it to the node's storage and advances.
func (n *testNode) ready() Ready {
	n.t.Helper()
	if !n.HasReady() {
		return Ready{}
	}
	rd := n.Ready()
	if rd.Snapshot != nil {
		if err := n.st.ApplySnapshot(*rd.Snapshot); err != nil {
			n.t.Fatal(err)
		}
	}
	if err := n.st.Append(rd.Entries); err != nil {
		n.t.Fatal(err)
	}
	if !rd.HardState.IsEmpty() {
		n.st.SetHardState(rd.HardState)
	}
	n.Advance(rd)
	if k := len(rd.CommittedEntries); k > 0 {
		n.AppliedTo(rd.CommittedEntries[k-1].Index)
	}
	return rd
}

// sent returns every message of the next Ready, persisting it, in the
// order the contract sends them.
func (n *testNode) sent() string {
	n.t.Helper()
	rd := n.ready()
	return renderMsgs(append(slices.Clone(rd.Messages), rd.MessagesAfterPersist...))
}

// tickN ticks the core n times, its clock moving a tick each time.
func (n *testNode) tickN(k int) {
	for range k {
		n.clock.now += n.cfg.TickInterval
		n.Tick()
	}
}

// becomeLeaderAt makes a node the leader of term (as if it won an
// election) and flushes the resulting Ready.
func (n *testNode) becomeLeaderAt(term uint64) {
	n.t.Helper()
	n.becomeFollower(term-1, None)
	n.becomeCandidate()
	n.becomeLeader()
	n.ready()
}

func expectMsgs(t *testing.T, got string, want ...string) {
	t.Helper()
	w := ""
	for _, s := range want {
		w += s + "\n"
	}
	if got != w {
		t.Fatalf("messages:\n got:\n%s want:\n%s", got, w)
	}
}

func expectEq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}
