package raft

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
// a lease (thesis §6.4.1) when LeaseRead is on: after a quorum confirms a
// round started at tick t, no other leader can be elected before
// t + ElectionTick on any clock that runs at our speed; LeaseDriftTicks
// absorbs bounded drift. Only ReadLease answers from the lease; ReadIndex
// always takes a round, so it stays safe whatever the clocks do.

type readRequest struct {
	ctx   []byte
	from  uint64 // None: asked of this node
	index uint64
	// lease: the caller accepts an answer from the lease (ReadLease).
	lease bool
}

type readRound struct {
	seq       uint64
	startTick uint64
	reqs      []readRequest
}

type readIndexState struct {
	seq    uint64 // last round started
	rounds []*readRound
	// open is the round started since the last Ready: its heartbeats have
	// not left yet, so new reads may still join it.
	open *readRound
	// held are reads waiting for the leader's first commit in its term.
	held       []readRequest
	leaseUntil uint64
	// leaseRevoked: TimeoutNow was sent (a transfer's voters ignore their
	// leases), so no round may extend the lease again this term.
	leaseRevoked bool
}

func (s *readIndexState) reset() { *s = readIndexState{} }

func (s *readIndexState) revokeLease() {
	s.leaseUntil = 0
	s.leaseRevoked = true
}

// expire drops rounds older than an election timeout: a leader that has not
// confirmed them by now has likely lost its majority, and their callers
// time out and retry.
func (s *readIndexState) expire(now, electionTick uint64) {
	i := 0
	for i < len(s.rounds) && s.rounds[i].startTick+electionTick < now {
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
		r.leaderRead(req)
		return nil
	}
	if r.lead == None {
		return ErrNoLeader
	}
	r.send(Message{Type: MsgReadIndex, To: r.lead, Context: req.ctx})
	return nil
}

func (r *Raft) leaderRead(req readRequest) {
	if !r.committedInTerm() {
		r.reads.held = append(r.reads.held, req)
		return
	}
	req.index = r.log.committed
	if len(r.membership.Voters) == 1 || (req.lease && r.cfg.LeaseRead && r.ticks < r.reads.leaseUntil) {
		r.releaseRead(req)
		return
	}
	round := r.reads.open
	if round == nil {
		round = r.startReadRound()
	}
	round.reqs = append(round.reqs, req)
}

// startReadRound begins a heartbeat round.
func (r *Raft) startReadRound() *readRound {
	r.reads.seq++
	round := &readRound{seq: r.reads.seq, startTick: r.ticks}
	r.reads.rounds = append(r.reads.rounds, round)
	r.reads.open = round
	r.bcastHeartbeat(round.seq)
	return round
}

// confirmReadRounds releases every round a majority has acknowledged.
func (r *Raft) confirmReadRounds() {
	acked := quorumIndex(r.membership.Voters, func(id uint64) uint64 {
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
		for _, req := range round.reqs {
			r.releaseRead(req)
		}
		if r.cfg.LeaseRead && !r.reads.leaseRevoked {
			r.reads.leaseUntil = max(r.reads.leaseUntil, round.startTick+uint64(r.cfg.ElectionTick-r.cfg.LeaseDriftTicks))
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
	for _, req := range held {
		r.leaderRead(req)
	}
}
