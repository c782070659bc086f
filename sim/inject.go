package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	nodepkg "github.com/raftex/raftex/node"
	"github.com/raftex/raftex/raft"
)

// injector schedules the faults that are events (partitions, crashes,
// pauses, clock skew, slow disks, leadership transfers): each kind is a
// Poisson process at its rate while the fault phase lasts. The message
// faults are drawn by the network per message.
type injector struct {
	s   *sim
	rng *rand.Rand
	// on: the fault phase lasts.
	on bool
	// partition counts partitions; a heal is for the partition it was
	// scheduled with (a new partition replaces the one in force).
	partition int
}

func newInjector(s *sim) *injector {
	return &injector{s: s, rng: rand.New(rand.NewPCG(s.opts.Seed, streamFaults)), on: true}
}

// start begins each fault's Poisson process.
func (in *injector) start() {
	f := in.s.opts.Faults
	for _, k := range []struct {
		rate   float64
		inject func()
	}{
		{f.Partition, func() { in.split(false) }},
		{f.OneWay, func() { in.split(true) }},
		{f.Crash, in.crash},
		{f.Pause, in.pause},
		{f.Skew, in.skew},
		{f.SlowDisk, in.slowDisk},
		{f.SlowFSM, in.slowFSM},
		{f.Transfer, in.transfer},
		{f.Member, in.member},
	} {
		if k.rate > 0 {
			in.every(k.rate, k.inject)
		}
	}
}

func (in *injector) every(rate float64, inject func()) {
	d := time.Duration(-math.Log(1-in.rng.Float64()) / rate * float64(time.Second))
	in.s.after(d, func() {
		if !in.on {
			return
		}
		in.s.stats.FaultsInjected++
		inject()
		in.every(rate, inject)
	})
}

func (in *injector) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(in.rng.Int64N(int64(hi-lo)+1))
}

// pick chooses a node in state st, the leader one time in three (the
// interesting victim), or nil if none is in that state.
func (in *injector) pick(st nodeState) *node {
	if l := in.s.leader(); l != nil && l.state == st && in.rng.IntN(3) == 0 {
		return l
	}
	var cands []*node
	for _, n := range in.s.nodes {
		if n.state == st {
			cands = append(cands, n)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return cands[in.rng.IntN(len(cands))]
}

func (in *injector) note(format string, args ...any) {
	s := in.s
	s.tr.add(trFault, uint64(len(format)))
	if s.tr.on() {
		s.tr.printf(s.now, "FAULT   "+format, args...)
	}
}

// split partitions the nodes into a minority and a majority, the leader
// in the minority half of the time; oneWay cuts only the links from the
// minority to the majority, or the other way.
func (in *injector) split(oneWay bool) {
	s := in.s
	n := len(s.nodes)
	if n < 2 {
		return
	}
	ids := make([]uint64, n)
	for i, p := range in.rng.Perm(n) {
		ids[i] = uint64(p + 1)
	}
	if l := s.leader(); l != nil && in.rng.IntN(2) == 0 {
		for i, id := range ids {
			if id == l.id {
				ids[0], ids[i] = ids[i], ids[0]
			}
		}
	}
	k := 1 + in.rng.IntN(max(1, (n-1)/2)) // minority size
	minority, majority := ids[:k], ids[k:]
	s.net.heal()
	from, to := minority, majority
	if oneWay && in.rng.IntN(2) == 0 {
		from, to = majority, minority
	}
	for _, a := range from {
		for _, b := range to {
			s.net.cut[a][b] = true
			if !oneWay {
				s.net.cut[b][a] = true
			}
		}
	}
	in.partition++
	gen := in.partition
	d := in.between(200*time.Millisecond, 5*time.Second)
	if oneWay {
		in.note("one-way partition %v ↛ %v for %v", from, to, d)
	} else {
		in.note("partition %v | %v for %v", minority, majority, d)
	}
	s.after(d, func() {
		if in.on && in.partition == gen {
			s.net.heal()
			in.note("partition healed")
		}
	})
}

// crash cuts a node's power now, or arms it to lose power while its next
// write (or next write of a term or vote) is in flight.
func (in *injector) crash() {
	n := in.pick(up)
	if n == nil {
		return
	}
	switch in.rng.IntN(3) {
	case 0:
		in.crashAt(n, 0)
	case 1:
		n.crashArmed = crashAny
		in.note("n%d will crash during its next fsync", n.id)
	default:
		n.crashArmed = crashVote
		in.note("n%d will crash during its next fsync of a term or vote", n.id)
	}
}

// crashAt crashes n after d, then restarts it 0.05–3 s later.
func (in *injector) crashAt(n *node, d time.Duration) {
	s := in.s
	inc := n.inc
	s.after(d, func() {
		if !in.on || n.inc != inc || n.state == down {
			return
		}
		s.stats.Crashes++
		downFor := in.between(50*time.Millisecond, 3*time.Second)
		in.note("n%d crashes (write in flight: %t), restarts in %v", n.id, n.inflight != nil, downFor)
		n.crash()
		inc := n.inc
		s.after(downFor, func() {
			if n.inc == inc && n.state == down {
				in.restart(n)
			}
		})
	})
}

func (in *injector) restart(n *node) {
	in.note("n%d restarts", n.id)
	if err := n.start(); err != nil {
		in.s.fail("Recovery", fmt.Sprintf("node %d cannot restart from its disk: %v", n.id, err))
		return
	}
	if in.s.tr.on() {
		st := n.core.Status()
		in.s.tr.printf(in.s.now, "FAULT   n%d recovered term=%d vote=%d commit=%d log=%d..%d, state machine at %d", n.id, st.Term, st.Vote, st.Commit, st.FirstIndex, st.LastIndex, n.appliedIndex())
	}
}

func (in *injector) pause() {
	n := in.pick(up)
	if n == nil {
		return
	}
	d := in.between(50*time.Millisecond, 2*time.Second)
	in.note("n%d paused for %v", n.id, d)
	n.pause()
	inc := n.inc
	in.s.after(d, func() {
		if n.inc == inc && n.state == paused {
			in.note("n%d resumes with %d inputs waiting", n.id, len(n.backlog[fromRuntime])+len(n.backlog[fromPeer])+len(n.backlog[fromClient]))
			n.resume()
		}
	})
}

// skew changes a node's clock rate: in [0.7, 1.3], or, with the leader
// lease on, within its drift bound ([0.975, 1.025]: two clocks then part
// by at most 7.5 ms over a 150 ms election timeout, less than the lease's
// margin, LeaseDriftTicks−1 = 1 tick of 10 ms; see raft.Config.LeaseRead).
func (in *injector) skew() {
	n := in.s.nodes[in.rng.IntN(len(in.s.nodes))]
	x := in.rng.Float64()
	if in.s.p.leaseRead {
		n.setRate(0.975 + 0.05*x)
	} else {
		n.setRate(0.7 + 0.6*x)
	}
	in.note("n%d clock runs at %.3fx", n.id, n.rate)
}

func (in *injector) slowDisk() {
	n := in.s.nodes[in.rng.IntN(len(in.s.nodes))]
	d := in.between(500*time.Millisecond, 5*time.Second)
	n.slowUntil = in.s.now + d
	n.slowLatency = in.between(20*time.Millisecond, 400*time.Millisecond)
	in.note("n%d disk slow (fsync ~%v) for %v", n.id, n.slowLatency, d)
}

// slowFSM makes a node's state machine take 2–20 ms per entry for
// 0.5–5 s: committed entries back up, and back-pressure must bound them
// (raft.Config.MaxApplyingBytes) without stopping heartbeats.
func (in *injector) slowFSM() {
	n := in.s.nodes[in.rng.IntN(len(in.s.nodes))]
	d := in.between(500*time.Millisecond, 5*time.Second)
	n.fsmSlowUntil = in.s.now + d
	n.fsmDelay = in.between(2*time.Millisecond, 20*time.Millisecond)
	in.note("n%d state machine slow (%v per entry) for %v", n.id, n.fsmDelay, d)
}

func (in *injector) transfer() {
	l := in.s.leader()
	if l == nil || l.state != up || len(in.s.nodes) < 2 {
		return
	}
	to := uint64(1 + in.rng.IntN(len(in.s.nodes)))
	in.note("ask leader n%d to transfer leadership to n%d", l.id, to)
	s := in.s
	l.input(func() {
		l.m.TransferLeadership(to, func(err error) {
			if s.tr.on() {
				s.tr.printf(s.now, "FAULT   leadership transfer from n%d to n%d ended: %v", l.id, to, err)
			}
		})
	})
}

// member has the leader change the configuration (Faults.Member).
func (in *injector) member() {
	l := in.s.leader()
	if l == nil || l.state != up {
		return
	}
	m := l.core.Membership()
	var absent []uint64
	for _, n := range in.s.nodes {
		if !m.Contains(n.id) {
			absent = append(absent, n.id)
		}
	}
	pick := func(ids []uint64) uint64 { return ids[in.rng.IntN(len(ids))] }
	var ccs []raft.ConfChange
	switch k := in.rng.IntN(5); {
	case k == 0 && len(m.Voters) > 2, k == 0 && len(m.Learners) > 0:
		victims := m.Learners
		if len(m.Voters) > 2 {
			victims = m.Members()
		}
		ccs = []raft.ConfChange{{Type: raft.RemoveMember, ID: pick(victims)}}
	case k == 1 && len(absent) > 0:
		ccs = []raft.ConfChange{{Type: raft.AddVoter, ID: pick(absent)}}
	case k == 2 && len(absent) > 0:
		ccs = []raft.ConfChange{{Type: raft.AddLearner, ID: pick(absent)}}
	case k == 3 && len(m.Learners) > 0:
		ccs = []raft.ConfChange{{Type: raft.AddVoter, ID: pick(m.Learners)}}
	case k == 4 && len(m.Learners) > 0 && len(m.Voters) > 1:
		// Two voter changes at once: joint consensus (§4.3).
		ccs = []raft.ConfChange{{Type: raft.AddVoter, ID: pick(m.Learners)}, {Type: raft.RemoveMember, ID: pick(m.Voters)}}
	default:
		return
	}
	in.propose(l, ccs)
}

// propose has leader l propose ccs; the outcome goes into the trace.
func (in *injector) propose(l *node, ccs []raft.ConfChange) {
	s := in.s
	in.note("ask leader n%d to change the configuration %v: %v", l.id, l.core.Membership(), ccs)
	l.input(func() {
		l.m.ProposeConfChange(ccs, &nodepkg.Proposal{Done: func(_ any, err error) {
			if err == nil {
				s.stats.ConfChanges++
			}
			if s.tr.on() {
				s.tr.printf(s.now, "FAULT   configuration change %v by n%d: %v", ccs, l.id, err)
			}
		}})
	})
}

// restoreMembership, after the faults stop, brings the configuration back
// to the initial one a change at a time, so that every node must converge.
func (in *injector) restoreMembership() {
	s := in.s
	if s.done || s.failed() {
		return
	}
	defer s.after(10*tickInterval, in.restoreMembership)
	l := s.leader()
	if l == nil || l.state != up {
		return
	}
	m := l.core.Membership()
	if m.Joint() || l.core.PendingConfIndex() != 0 || len(m.Staging) > 0 {
		return
	}
	for _, id := range s.membership.Members() {
		switch {
		case s.membership.IsVoter(id) && !m.IsVoter(id):
			in.propose(l, []raft.ConfChange{{Type: raft.AddVoter, ID: id}})
		case s.membership.IsLearner(id) && m.IsVoter(id):
			// No demotion: out, then back in as a learner.
			in.propose(l, []raft.ConfChange{{Type: raft.RemoveMember, ID: id}})
		case s.membership.IsLearner(id) && !m.IsLearner(id):
			in.propose(l, []raft.ConfChange{{Type: raft.AddLearner, ID: id}})
		default:
			continue
		}
		return
	}
}

// stop ends the fault phase: every link heals, every node comes back up
// with a healthy disk and clock, and nothing new is injected.
func (in *injector) stop() {
	in.on = false
	s := in.s
	s.net.heal()
	in.note("faults stop: network healed, every node up")
	for _, n := range s.nodes {
		n.crashArmed = crashNone
		n.slowUntil, n.fsmSlowUntil = 0, 0
		n.setRate(1)
		switch n.state {
		case down:
			in.restart(n)
		case paused:
			n.resume()
		}
		if s.failed() {
			return
		}
	}
	if s.opts.Faults.Member > 0 {
		in.restoreMembership()
	}
}
