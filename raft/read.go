package raft

import "time"

// Linearizable reads without writing to the log (thesis §6.4, ReadIndex):
//
//  1. The leader waits until an entry of its term is committed (its no-op),
//     so its commit index is the cluster's.
//  2. It records the commit index as the read index.
//  3. It confirms it is still leader with one round of heartbeats; every
//     read that arrives before the round's heartbeats leave joins it.
//  4. Once a majority acknowledged the round, the read may be served as
//     soon as the state machine has applied through the read index.
//
// Heartbeat rounds are numbered. A reply to round n proves the follower
// accepted us as leader after round n began, so it confirms every round
// up to n. Periodic heartbeats are rounds too, which also gives the leader
// a lease (thesis §6.4.1) when LeaseRead is on: a follower that
// acknowledged a round started at time t heard from us after t, and will
// not vote for another candidate within ElectionTick of its ticks after
// that. So once a quorum confirms the round, no other leader can be
// elected before t + (ElectionTick − LeaseDriftTicks) × TickInterval,
// measured on our monotonic Clock (see Config.LeaseRead for the
// assumption). The lease is time, not ticks: a leader whose goroutine
// stalled resumes with few ticks counted but its clock moved on, so a
// stall only shortens the lease. Only ReadLease answers from the lease;
// ReadIndex always takes a round, so it stays safe whatever the clocks
// do.

type readRequest struct {
	ctx   []byte
	from  uint64 // None: asked of this node
	index uint64
	// lease: the caller accepts an answer from the lease (ReadLease).
	lease bool
}

type readRound struct {
	seq       uint64
	startTick uint64        // for expiry, which only needs ticks
	startTime time.Duration // on Config.Clock, for the lease; LeaseRead only
	reqs      []readRequest
}

type readIndexState struct {
	seq    uint64 // last round started
	rounds []*readRound
	// open is the round started since the last Ready: its heartbeats have
	// not left yet, so new reads may still join it.
	open *readRound
	// held are reads waiting for the leader's first commit in its term.
	held []readRequest
	// pending counts the requests held and in rounds (MaxPendingReads).
	pending int
	// leaseUntil is the end of the lease on Config.Clock.
	leaseUntil time.Duration
	// leaseUntilTick is where the planted bug LeaseInTicks ends it.
	leaseUntilTick uint64
	// leaseRevoked: TimeoutNow was sent (a transfer's voters ignore their
	// leases), so no round may extend the lease again this term.
	leaseRevoked bool
}

func (s *readIndexState) reset() { *s = readIndexState{} }

func (s *readIndexState) revokeLease() {
	s.leaseUntil, s.leaseUntilTick = 0, 0
	s.leaseRevoked = true
}

// expire drops rounds older than an election timeout: a leader that has not
// confirmed them by now has likely lost its majority, and their callers
// time out and retry.
func (s *readIndexState) expire(now, electionTick uint64) {
	i := 0
	for i < len(s.rounds) && s.rounds[i].startTick+electionTick < now {
		s.pending -= len(s.rounds[i].reqs)
		i++
	}
	s.rounds = s.rounds[i:]
}

// ReadIndex requests a linearizable read (thesis §6.4). The answer arrives
// as a ReadState carrying ctx in a later Ready. On a follower the request
// goes to the leader; it returns ErrNoLeader when none is known. A request
// may be lost (a message dropped, leadership lost): callers time out.
func (r *Raft) ReadIndex(ctx []byte) error { return r.requestRead(readRequest{ctx: ctx}) }

// requestRead serves req on the leader, or asks the leader for it. A
// follower's MsgReadIndex always takes a round on the leader: the lease is
// the leader's clock, not the follower's.
func (r *Raft) requestRead(req readRequest) error {
	if r.role == Leader {
		if r.reads.pending >= r.cfg.MaxPendingReads {
			return ErrReadDropped
		}
		r.leaderRead(req)
		return nil
	}
	if r.lead == None {
		return ErrNoLeader
	}
	r.send(Message{Type: MsgReadIndex, To: r.lead, Context: req.ctx})
	return nil
}

// leaderRead serves req now or queues it, counting it against
// MaxPendingReads until it is released or expires.
func (r *Raft) leaderRead(req readRequest) {
	if !r.committedInTerm() {
		r.reads.held = append(r.reads.held, req)
		r.reads.pending++
		return
	}
	req.index = r.log.committed
	if r.soleVoter() || (req.lease && r.leaseHolds()) {
		r.releaseRead(req)
		return
	}
	round := r.reads.open
	if round == nil {
		round = r.startReadRound()
	}
	round.reqs = append(round.reqs, req)
	r.reads.pending++
}

// leaseHolds reports whether the leader lease covers this instant (thesis
// §6.4.1), read fresh from the clock.
func (r *Raft) leaseHolds() bool {
	if !r.cfg.LeaseRead || r.reads.leaseRevoked {
		return false
	}
	if bugs.LeaseInTicks {
		return r.ticks < r.reads.leaseUntilTick
	}
	return r.cfg.Clock.Now() < r.reads.leaseUntil
}

// leaseDuration is how long after a confirmed round starts the lease runs.
func (r *Raft) leaseDuration() time.Duration {
	return time.Duration(r.cfg.ElectionTick-r.cfg.LeaseDriftTicks) * r.cfg.TickInterval
}

// startReadRound begins a heartbeat round.
func (r *Raft) startReadRound() *readRound {
	r.reads.seq++
	round := &readRound{seq: r.reads.seq, startTick: r.ticks}
	if r.cfg.LeaseRead {
		round.startTime = r.cfg.Clock.Now()
	}
	r.reads.rounds = append(r.reads.rounds, round)
	r.reads.open = round
	r.bcastHeartbeat(round.seq)
	return round
}

// confirmReadRounds releases every round a majority has acknowledged.
func (r *Raft) confirmReadRounds() {
	acked := r.membership.quorumIndex(func(id uint64) uint64 {
		if id == r.id {
			return r.reads.seq
		}
		if pr := r.prs[id]; pr != nil {
			return pr.ReadAcked
		}
		return 0
	})
	i := 0
	for ; i < len(r.reads.rounds) && r.reads.rounds[i].seq <= acked; i++ {
		round := r.reads.rounds[i]
		r.reads.pending -= len(round.reqs)
		for _, req := range round.reqs {
			r.releaseRead(req)
		}
		if r.cfg.LeaseRead && !r.reads.leaseRevoked {
			r.reads.leaseUntil = max(r.reads.leaseUntil, round.startTime+r.leaseDuration())
			r.reads.leaseUntilTick = max(r.reads.leaseUntilTick, round.startTick+uint64(r.cfg.ElectionTick-r.cfg.LeaseDriftTicks))
		}
		if round == r.reads.open {
			r.reads.open = nil
		}
	}
	r.reads.rounds = r.reads.rounds[i:]
}

func (r *Raft) releaseRead(req readRequest) {
	if req.from == None {
		r.readStates = append(r.readStates, ReadState{Index: req.index, RequestCtx: req.ctx})
		return
	}
	r.send(Message{Type: MsgReadIndexResp, To: req.from, Index: req.index, Context: req.ctx})
}

// releaseHeldReads serves the reads that waited for the no-op to commit.
func (r *Raft) releaseHeldReads() {
	held := r.reads.held
	r.reads.held = nil
	r.reads.pending -= len(held)
	for _, req := range held {
		r.leaderRead(req)
	}
}
