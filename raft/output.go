package raft

// HasReady reports whether Ready has anything for the caller. It is false
// while a Ready is outstanding (handed out, not yet advanced).
func (r *Raft) HasReady() bool {
	if r.readyOutstanding {
		return false
	}
	return r.pendingBcast ||
		len(r.log.unstable.nextEntries()) > 0 || r.log.unstable.nextSnapshot() != nil ||
		len(r.msgs) > 0 || len(r.msgsAfterPersist) > 0 || len(r.proposalResults) > 0 ||
		r.log.hasNextCommitted() || len(r.readStates) > 0 || len(r.events) > 0 ||
		r.hardState() != r.prevHardState
}

// Ready returns the work accumulated since the last Advance; see Ready for
// what the caller must do with it. Calling Ready again before Advance is a
// programming error and panics.
func (r *Raft) Ready() Ready {
	if r.readyOutstanding {
		panic("raft: Ready called before Advance of the previous Ready")
	}
	r.flushAppends()
	r.reads.open = nil // its heartbeats leave with this Ready
	if c := r.log.committed; c != r.prevHardState.Commit {
		r.emit(Event{Kind: EventCommitAdvanced, PrevIndex: r.prevHardState.Commit, Index: c})
	}
	rd := Ready{
		Entries:              r.log.unstable.nextEntries(),
		Snapshot:             r.log.unstable.nextSnapshot(),
		Messages:             r.msgs,
		MessagesAfterPersist: r.msgsAfterPersist,
		CommittedEntries:     r.log.nextCommitted(),
		ReadStates:           r.readStates,
		ProposalResults:      r.proposalResults,
		Events:               r.events,
	}
	if hs := r.hardState(); hs != r.prevHardState {
		rd.mustSync = hs.Term != r.prevHardState.Term || hs.Vote != r.prevHardState.Vote
		rd.HardState = hs
		r.prevHardState = hs
		if rd.mustSync {
			r.syncTerm = hs.Term
		}
	}
	rd.mustSync = rd.mustSync || len(rd.Entries) > 0 || rd.Snapshot != nil
	r.log.unstable.acceptInProgress()
	r.log.handOut(rd.CommittedEntries)
	// The caller owns what it was handed; start anew, sized like this
	// batch so a busy node grows each slice once per Ready.
	r.msgs = make([]Message, 0, len(rd.Messages))
	r.msgsAfterPersist = make([]Message, 0, len(rd.MessagesAfterPersist))
	r.events = make([]Event, 0, len(rd.Events))
	r.readStates = nil
	r.proposalResults = nil
	r.readyOutstanding = true
	r.mustSyncOut = rd.MustSync()
	r.unsyncedTicks = 0
	return rd
}

// TakeMessages returns the messages that may be sent at once (Ready rule 1:
// the leader's AppendEntries, heartbeats and snapshots, a follower's
// forwarded proposals and reads) produced since the
// last Ready or TakeMessages, including AppendEntries carrying entries
// proposed since then. It may be called at any time, also while a Ready is
// outstanding: a runtime calls it while the leader's fsync is in flight, so
// a slow disk delays neither heartbeats nor replication (thesis §10.2.1).
// Messages that must wait for persistence never come out here.
func (r *Raft) TakeMessages() []Message {
	r.flushAppends()
	if len(r.msgs) == 0 {
		return nil
	}
	r.reads.open = nil // its heartbeats leave now
	msgs := r.msgs
	r.msgs = nil
	return msgs
}

// Advance tells the core that the caller has done everything rd asked
// (rules 1–4 of Ready). The leader now counts its own log as durable
// toward commit (thesis §10.2.1), and messages of a term made durable by
// rd may leave at once.
func (r *Raft) Advance(rd Ready) {
	if !r.readyOutstanding {
		panic("raft: Advance without an outstanding Ready")
	}
	r.readyOutstanding = false
	r.mustSyncOut = false
	r.unsyncedTicks = 0
	if r.syncTerm != 0 {
		r.stableTerm = max(r.stableTerm, r.syncTerm)
		r.syncTerm = 0
	}
	if rd.Snapshot != nil {
		r.log.unstable.stableSnapTo(rd.Snapshot.Meta.Index)
	}
	if n := len(rd.Entries); n > 0 {
		last := rd.Entries[n-1]
		r.log.unstable.stableTo(last.Index, last.Term)
	}
	if r.role == Leader {
		r.reduceUncommitted(rd.CommittedEntries)
		if self := r.prs[r.id]; self != nil && self.maybeUpdate(r.log.persistedIndex()) && r.maybeCommit() {
			r.afterCommit()
		}
	}
}

// AppliedTo tells the core that the state machine applied every entry
// handed out through index. It may be called at any time, also long after
// the Ready that carried the entries was advanced: a runtime that applies
// on another goroutine reports as it goes, and the core hands out more
// committed entries only while those not yet applied stay under
// Config.MaxApplyingBytes.
func (r *Raft) AppliedTo(index uint64) { r.log.appliedTo(index) }

// Status is a snapshot of a core's state for monitoring.
type Status struct {
	ID      uint64
	Role    Role
	Term    uint64
	Vote    uint64
	Leader  uint64
	Commit  uint64
	Applied uint64
	// Applying is the last index handed out to apply (Applied ≤
	// Applying ≤ Commit); ApplyingBytes the size of the entries after
	// Applied handed out, which MaxApplyingBytes bounds.
	Applying      uint64
	ApplyingBytes uint64
	FirstIndex    uint64
	LastIndex     uint64
	Membership    Membership
	// Progress of every member, on the leader only.
	Progress map[uint64]Progress
	// LeadTransferee is the target of a leadership transfer in progress.
	LeadTransferee uint64
	// PendingConfIndex is the index of the latest configuration entry
	// when it is not committed yet (0: none), thesis §4.1.
	PendingConfIndex uint64
}

// Status returns the current state. It allocates; call it for monitoring,
// not on every step.
func (r *Raft) Status() Status {
	s := Status{
		ID: r.id, Role: r.role, Term: r.term, Vote: r.vote, Leader: r.lead,
		Commit: r.log.committed, Applied: r.log.applied,
		Applying: r.log.applying, ApplyingBytes: r.log.applyingBytes,
		FirstIndex: r.log.firstIndex(), LastIndex: r.log.lastIndex(),
		Membership: r.membership.Clone(), LeadTransferee: r.leadTransferee,
	}
	s.PendingConfIndex = r.PendingConfIndex()
	if r.role == Leader {
		s.Progress = make(map[uint64]Progress, len(r.prs))
		for id, pr := range r.prs {
			p := *pr
			p.inflights = inflights{}
			s.Progress[id] = p
		}
	}
	return s
}
