package raft

// Role changes happen here and only here: each sets the role, its step and
// tick functions, and the state that belongs to the role, together.

func (r *Raft) setTerm(term, from uint64) {
	if term == r.term {
		return
	}
	r.term = term
	r.vote = None
	r.emit(Event{Kind: EventTermChanged, Peer: from})
}

func (r *Raft) setLeader(lead uint64) {
	if lead == r.lead {
		return
	}
	r.lead = lead
	r.emit(Event{Kind: EventLeaderChanged, Peer: lead})
}

func (r *Raft) setRole(role Role) {
	prev := r.role
	r.role = role
	switch role {
	case Leader:
		r.step, r.tick = r.stepLeader, r.tickHeartbeat
	case Follower:
		r.step, r.tick = r.stepFollower, r.tickElection
	default:
		r.step, r.tick = r.stepCandidate, r.tickElection
	}
	if prev != role || role != Follower {
		r.emit(Event{Kind: EventRoleChanged, PrevRole: prev})
	}
}

// resetTimers restarts both clocks and draws a fresh randomized election
// timeout in [ElectionTick, 2*ElectionTick) (§5.2: randomized timeouts make
// split votes rare and resolve them quickly).
func (r *Raft) resetTimers() {
	r.electionElapsed = 0
	r.heartbeatElapsed = 0
	r.randomizedElectionTimeout = r.cfg.ElectionTick + r.rand.IntN(r.cfg.ElectionTick)
	r.leadTransferee = None
	r.votes = make(map[uint64]bool)
	r.prs = nil
	r.replicas = nil
	r.reads.reset()
	r.pendingBcast = false
	r.uncommitted = 0
	r.catchups = nil
}

func (r *Raft) becomeFollower(term, lead uint64) {
	r.setTerm(term, lead)
	r.resetTimers()
	r.setLeader(lead)
	r.setRole(Follower)
}

// adoptTerm makes this node a follower, leader unknown, of the higher term
// that from's message carried (§5.1).
func (r *Raft) adoptTerm(term, from uint64) {
	r.setTerm(term, from)
	r.becomeFollower(term, None)
}

func (r *Raft) becomePreCandidate() {
	// Thesis §9.6: the pre-candidate neither raises its term nor votes.
	r.resetTimers()
	r.setLeader(None)
	r.setRole(PreCandidate)
}

func (r *Raft) becomeCandidate() {
	// §5.2: increment currentTerm, vote for self.
	r.setTerm(r.term+1, r.id)
	r.resetTimers()
	r.vote = r.id
	r.setLeader(None)
	r.setRole(Candidate)
}

func (r *Raft) becomeLeader() {
	r.resetTimers()
	r.setLeader(r.id)
	r.setRole(Leader)
	r.prs = make(map[uint64]*Progress, len(r.membership.Voters)+len(r.membership.Learners))
	last := r.log.lastIndex()
	for _, id := range r.membership.Members() {
		// Figure 2: nextIndex initialized to leader last log index + 1,
		// matchIndex to 0.
		r.prs[id] = newProgress(last+1, r.cfg.MaxInflightMsgs, r.membership.IsLearner(id))
	}
	r.setReplicas()
	if self := r.prs[r.id]; self != nil {
		// Thesis §6.2: only members heard from in this term count as
		// active for CheckQuorum; the leader has heard from itself.
		self.RecentActive = true
		self.becomeReplicate()
		self.maybeUpdate(r.log.persistedIndex())
	}
	// §5.4.2, §8: a new leader commits an entry of its own term at once,
	// which commits everything before it and lets reads proceed.
	r.appendEntry(Entry{Term: r.term, Index: last + 1, Type: EntryNoop})
}
