package raft

// stepFollower handles messages of the current term on a follower.
func (r *Raft) stepFollower(m Message) {
	switch m.Type {
	case MsgApp:
		r.heardFromLeader(m.From)
		r.handleAppendEntries(m)
	case MsgHeartbeat:
		r.heardFromLeader(m.From)
		r.handleHeartbeat(m)
	case MsgSnap:
		r.heardFromLeader(m.From)
		r.handleSnapshot(m)
	case MsgTimeoutNow:
		// Thesis §3.10: the leader asks us to campaign now, skipping
		// PreVote and the lease check of the voters.
		r.emit(Event{Kind: EventElectionTimeout, Term: r.term + 1, Reason: "leadership transfer"})
		r.hup(true)
	case MsgReadIndexResp:
		if !m.Reject {
			r.readStates = append(r.readStates, ReadState{Index: m.Index, RequestCtx: m.Context})
		}
	case MsgReadIndex:
		r.send(Message{Type: MsgReadIndexResp, To: m.From, Reject: true, Context: m.Context})
	case MsgProp:
		r.rejectProp(m)
	}
}

// stepCandidate handles messages of the current term on a candidate or
// pre-candidate.
func (r *Raft) stepCandidate(m Message) {
	switch m.Type {
	case MsgApp, MsgHeartbeat, MsgSnap:
		// §5.2: a candidate that hears from a leader of its term returns
		// to follower.
		r.becomeFollower(m.Term, m.From)
		r.stepFollower(m)
	case MsgVoteResp:
		if r.role == Candidate {
			r.poll(m.From, !m.Reject)
		}
	case MsgPreVoteResp:
		if r.role == PreCandidate {
			r.poll(m.From, !m.Reject)
		}
	case MsgReadIndex:
		r.send(Message{Type: MsgReadIndexResp, To: m.From, Reject: true, Context: m.Context})
	case MsgProp:
		r.rejectProp(m)
	}
}

func (r *Raft) heardFromLeader(lead uint64) {
	r.electionElapsed = 0
	r.setLeader(lead)
}

// handleAppendEntries is the receiver side of AppendEntries (§5.3).
func (r *Raft) handleAppendEntries(m Message) {
	if m.Index < r.log.committed {
		// Everything up to committed already matches the leader; tell it
		// so instead of re-checking a stale message.
		r.send(Message{Type: MsgAppResp, To: m.From, Index: r.log.committed})
		return
	}
	if last, written, ok := r.log.maybeAppend(m.Index, m.LogTerm, m.Commit, m.Entries); ok {
		r.logWritten(written)
		r.send(Message{Type: MsgAppResp, To: m.From, Index: last})
		return
	}
	hint, hintTerm := r.log.conflictHint(m.Index)
	r.send(Message{Type: MsgAppResp, To: m.From, Index: m.Index, Reject: true, RejectHint: hint, LogTerm: hintTerm})
}

// handleHeartbeat learns the commit index (the leader sends at most what
// it knows we hold) and acknowledges the read round.
func (r *Raft) handleHeartbeat(m Message) {
	r.log.commitTo(min(m.Commit, r.log.lastIndex()))
	r.send(Message{Type: MsgHeartbeatResp, To: m.From, ReadRound: m.ReadRound})
}

// handleSnapshot is the receiver side of InstallSnapshot (§7).
func (r *Raft) handleSnapshot(m Message) {
	if m.Snapshot == nil {
		return
	}
	s := *m.Snapshot
	if r.restore(s) {
		r.emit(Event{Kind: EventSnapshotRestored, Peer: m.From, Index: s.Meta.Index})
		r.send(Message{Type: MsgAppResp, To: m.From, Index: r.log.lastIndex()})
		return
	}
	r.send(Message{Type: MsgAppResp, To: m.From, Index: r.log.committed})
}

// restore installs s unless the log already covers it. §7: "If existing log
// entry has same index and term as snapshot's last included entry, retain
// log entries following it"; otherwise discard the entire log.
func (r *Raft) restore(s Snapshot) bool {
	if s.Meta.Index <= r.log.committed {
		return false
	}
	if r.log.matchTerm(s.Meta.Index, s.Meta.Term) {
		r.log.commitTo(s.Meta.Index)
		return false
	}
	r.log.restore(s)
	r.resetConfs(s.Meta.Index, s.Meta.Membership)
	return true
}
