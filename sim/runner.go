package sim

import (
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/raftex/raftex/internal/kvmodel"
	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage/vfs"
)

// Result is the outcome of one run.
type Result struct {
	Seed   uint64
	Nodes  int
	Faults Faults
	// Violation is the first property the run broke; nil if it passed.
	Violation *Violation
	// TraceHash summarizes everything that happened: the same Options
	// always give the same hash.
	TraceHash uint64
	Stats     Stats
	// ops is the history checked for linearizability.
	ops []porcupine.Operation
}

// Violation is a broken property.
type Violation struct {
	// Check names the property (Figure 3's names where they apply).
	Check  string
	Detail string
	// At is the virtual time it was detected.
	At time.Duration
}

func (v *Violation) Error() string {
	return fmt.Sprintf("%s violated at %.6fs: %s", v.Check, v.At.Seconds(), v.Detail)
}

// Stats count what a run did.
type Stats struct {
	// SimTime is the virtual time the run lasted.
	SimTime time.Duration
	// Ops counts the client operations begun; Checked those that entered
	// the linearizability check.
	Ops, Checked int
	Messages     int
	// FaultsInjected counts every fault: each message dropped, duplicated,
	// delayed or reordered, and each partition, crash, pause, clock skew,
	// slow disk and leadership transfer.
	FaultsInjected int
	Crashes        int
	// Snapshots counts the snapshots installed from a leader (§7).
	Snapshots int
	// ConfChanges counts the configuration changes the Member fault
	// proposed that committed (thesis §4), those the leader made by
	// itself (promotions, leaving joint consensus) aside.
	ConfChanges int
	// Auth: the run had auth enabled by an administrator; Logins counts
	// the clients' logins that got a token, Refused the requests a node
	// answered 401 (anonymous once auth was on, or a token expired).
	Auth            bool
	Logins, Refused int
	// Watched counts the watch events delivered and checked; WatchResets
	// the listings watchers took after their start was compacted.
	Watched, WatchResets int
	// Terms is the highest term any node reached; Commit the highest
	// commit index.
	Terms, Commit uint64
}

// Failed reports whether the run broke a property.
func (r *Result) Failed() bool { return r.Violation != nil }

// Repro is the command that replays the run.
func (r *Result) Repro() string {
	return fmt.Sprintf("go test ./sim -run TestSim -seed=%d -nodes=%d -faults=%s", r.Seed, r.Nodes, r.Faults)
}

// sim is one run: the virtual clock and everything it drives. It is
// single-threaded; nothing in it reads the wall clock, starts a goroutine
// or ranges over a map in a way that changes what happens.
type sim struct {
	opts Options
	p    params

	now time.Duration
	q   eventQueue

	membership raft.Membership
	nodes      []*node
	net        *network
	faults     *injector
	clients    *clients
	watches    *watches
	chk        *checker
	tr         *tracer

	stats     Stats
	ops       []porcupine.Operation
	violation *Violation
	done      bool
}

// Run runs one simulation and checks it: the safety properties after
// every step, then liveness once the faults stop, then the
// linearizability of the client history.
func Run(opts Options) (res *Result) {
	if opts.CheckTimeout == 0 {
		opts.CheckTimeout = 60 * time.Second
	}
	res = &Result{Seed: opts.Seed, Nodes: opts.Nodes, Faults: opts.Faults}
	if err := opts.validate(); err != nil {
		res.Violation = &Violation{Check: "Options", Detail: err.Error()}
		return res
	}
	s := newSim(opts)
	defer func() {
		if r := recover(); r != nil {
			s.fail("Panic", fmt.Sprintf("%v\n%s", r, debug.Stack()))
		}
		s.fillResult(res)
	}()
	s.run()
	return res
}

func newSim(opts Options) *sim {
	s := &sim{opts: opts, p: drawParams(opts.Seed), tr: newTracer(opts.Trace)}
	s.stats.Auth = s.p.auth
	ids := make([]uint64, opts.Nodes)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	s.membership = raft.NewMembership(ids...)
	if s.p.oneVoter && len(ids) > 1 {
		// One voter and learners: it wins its elections alone, so only
		// durability before speech keeps the learners' logs consistent
		// with it across its crashes (§5.1).
		s.membership = raft.Membership{Voters: ids[:1], Learners: ids[1:]}
	}
	s.net = newNetwork(s, opts.Nodes)
	s.faults = newInjector(s)
	s.clients = newClients(s)
	s.watches = newWatches(s)
	s.chk = newChecker(s, opts.Nodes)
	for _, id := range ids {
		s.nodes = append(s.nodes, newNode(s, id, newDisk(vfs.NewMem())))
	}
	return s
}

func (s *sim) run() {
	if s.tr.on() {
		s.tr.printf(0, "replay: %s", (&Result{Seed: s.opts.Seed, Nodes: s.opts.Nodes, Faults: s.opts.Faults}).Repro())
		s.tr.printf(0, "params: %v", s.p)
	}
	for _, n := range s.nodes {
		if err := n.start(); err != nil {
			s.fail("Start", fmt.Sprintf("node %d: %v", n.id, err))
			return
		}
	}
	s.faults.start()
	s.clients.start()
	s.watches.start()
	s.after(s.p.faultPhase, s.stopFaults)
	for !s.done && s.violation == nil && s.q.len() > 0 {
		ev := s.q.pop()
		s.now = ev.at
		ev.fn()
	}
	if s.violation == nil {
		s.finalChecks()
	}
}

// stopFaults ends the fault phase and starts watching liveness: within
// livenessBound a leader must be elected and every pending operation
// completed, then within convergeBound every node must apply the whole
// committed log.
func (s *sim) stopFaults() {
	s.faults.stop()
	s.clients.stopped = true
	healed := s.now
	var live time.Duration
	var watch func()
	watch = func() {
		switch {
		case live == 0 && s.leader() != nil && s.clients.pending() == 0:
			live = s.now
			s.tr.printf(s.now, "LIVE    leader n%d elected and every operation completed %v after the faults stopped", s.leader().id, s.now-healed)
		case live == 0 && s.now-healed > livenessBound:
			s.fail("Liveness", fmt.Sprintf("%v after the faults stopped: %s", livenessBound, s.stuck()))
			return
		case live != 0 && s.converged():
			s.done = true
			return
		case live != 0 && s.now-live > convergeBound:
			s.fail("Liveness", fmt.Sprintf("nodes did not catch up within %v: %s", convergeBound, s.stuck()))
			return
		}
		s.after(tickInterval, watch)
	}
	s.after(0, watch)
}

// leader returns the up node that leads in the highest term of any leader,
// unless an up member of its configuration knows a higher term (then it is
// about to be deposed), or nil. A server removed from the configuration
// may know a higher term that no member hears of (thesis §4.2.3: a removed
// server that missed its removal campaigns in vain); it deposes no one, and
// the leader must still restore the initial configuration, which re-adds
// it.
func (s *sim) leader() *node {
	var l *node
	for _, n := range s.nodes {
		if n.state == up && n.core.Role() == raft.Leader && (l == nil || n.core.Term() > l.core.Term()) {
			l = n
		}
	}
	if l == nil {
		return nil
	}
	m := l.core.Membership()
	for _, n := range s.nodes {
		if n.state == up && m.Contains(n.id) && n.core.Term() > l.core.Term() {
			return nil
		}
	}
	return l
}

// converged reports whether every node has applied the leader's whole
// log, all of it committed.
func (s *sim) converged() bool {
	l := s.leader()
	if l == nil {
		return false
	}
	ls := l.core.Status()
	if ls.Commit != ls.LastIndex || ls.PendingConfIndex != 0 ||
		!slices.Equal(ls.Membership.Voters, s.membership.Voters) || !slices.Equal(ls.Membership.Learners, s.membership.Learners) {
		return false // the initial configuration is not restored yet
	}
	for _, n := range s.nodes {
		if n.state != up || n.appliedIndex() != ls.Commit || n.inflight != nil || len(n.applyQ) > 0 {
			return false
		}
	}
	return true
}

// stuck describes why the cluster is not live.
func (s *sim) stuck() string {
	desc := fmt.Sprintf("%d operations pending;", s.clients.pending())
	for _, n := range s.nodes {
		if n.state != up {
			desc += fmt.Sprintf(" n%d %v;", n.id, n.state)
			continue
		}
		st := n.core.Status()
		desc += fmt.Sprintf(" n%d %s term=%d lead=%d commit=%d applied=%d last=%d;", n.id, st.Role, st.Term, st.Leader, st.Commit, n.appliedIndex(), st.LastIndex)
	}
	return desc
}

// finalChecks run once the cluster converged: the state machines agree,
// no acknowledged write was lost, every watcher got every committed change
// of its prefix, and the history is linearizable.
func (s *sim) finalChecks() {
	want := s.nodes[0].kv.Hash()
	for _, n := range s.nodes[1:] {
		if h := n.kv.Hash(); h != want {
			s.fail("State Machine Safety", fmt.Sprintf("after converging at index %d, n%d's state differs from n1's", n.appliedIndex(), n.id))
			return
		}
	}
	for _, a := range s.chk.acks {
		if int(a.index) >= len(s.chk.appliedAt) {
			s.fail("Acknowledged write kept", fmt.Sprintf("entry %d/%d was acknowledged to a client but never applied", a.index, a.term))
			return
		}
		if r := s.chk.appliedAt[a.index]; !r.entry || r.term != a.term || r.data != a.data {
			s.fail("Acknowledged write kept", fmt.Sprintf("entry %d/%d was acknowledged to a client, but entry %d/%d is applied there", a.index, a.term, a.index, r.term))
			return
		}
	}
	if s.watches.final(); s.failed() {
		return
	}
	s.ops = operations(s.clients.history, s.clients.outcomes)
	s.stats.Checked = len(s.ops)
	if _, err := kvmodel.Check(s.ops, s.opts.CheckTimeout); err != nil {
		s.fail("Linearizability", err.Error())
	}
}

// fail records the first violation and stops the run.
func (s *sim) fail(check, detail string) {
	if s.violation != nil {
		return
	}
	s.violation = &Violation{Check: check, Detail: detail, At: s.now}
	s.tr.printf(s.now, "VIOLATION %s: %s", check, detail)
}

func (s *sim) failed() bool { return s.violation != nil }

func (s *sim) fillResult(res *Result) {
	res.Violation = s.violation
	res.TraceHash = s.tr.hash
	s.stats.SimTime = s.now
	for _, v := range s.chk.nodes {
		s.stats.Terms = max(s.stats.Terms, v.term)
		s.stats.Commit = max(s.stats.Commit, v.commit)
	}
	res.Stats = s.stats
	res.ops = s.ops
	s.tr.printf(s.now, "END     %+v violation: %v", s.stats, s.violation)
}

func (s *sim) node(id uint64) *node { return s.nodes[id-1] }

// at schedules fn at virtual time t; after schedules it d from now.
func (s *sim) at(t time.Duration, fn func()) { s.q.push(t, fn) }

func (s *sim) after(d time.Duration, fn func()) { s.q.push(s.now+d, fn) }

// later runs fn on node id after d, as an input of its current
// incarnation (void if it restarts meanwhile).
func (s *sim) later(d time.Duration, id uint64, fn func(n *node)) {
	n := s.node(id)
	inc := n.inc
	s.after(d, func() {
		if n.inc == inc {
			n.input(func() { fn(n) })
		}
	})
}

// faults are the rates in force: the options' during the fault phase,
// none after.
func (s *sim) msgFaults() Faults {
	if s.faults.on {
		return s.opts.Faults
	}
	return Faults{}
}

func (st nodeState) String() string {
	switch st {
	case up:
		return "up"
	case paused:
		return "paused"
	}
	return "down"
}
