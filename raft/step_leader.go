package raft

import "errors"

// stepLeader handles messages of the current term on the leader.
func (r *Raft) stepLeader(m Message) {
	pr := r.prs[m.From]
	if pr == nil {
		return // not a member
	}
	pr.RecentActive = true
	switch m.Type {
	case MsgAppResp:
		r.handleAppendResponse(m, pr)
	case MsgHeartbeatResp:
		r.handleHeartbeatResponse(m, pr)
	case MsgProp:
		r.handleProp(m)
	case MsgReadIndex:
		// Beyond MaxPendingReads the follower's read is dropped; it
		// times out there and is retried.
		if r.reads.pending < r.cfg.MaxPendingReads {
			r.leaderRead(readRequest{ctx: m.Context, from: m.From})
		}
	}
}

// handleAppendResponse advances or rewinds the follower's progress (§5.3:
// "if AppendEntries fails because of log inconsistency: decrement nextIndex
// and retry"; with the conflict hint it skips a whole term at a time).
func (r *Raft) handleAppendResponse(m Message, pr *Progress) {
	if m.Reject {
		if pr.maybeDecrTo(m.Index, r.nextAfterReject(m)) {
			if pr.State == StateReplicate {
				pr.becomeProbe()
			}
			r.sendAppend(m.From)
		}
		return
	}
	wasPaused := pr.isPaused()
	if !pr.maybeUpdate(m.Index) {
		return
	}
	switch {
	case pr.State == StateProbe:
		pr.becomeReplicate()
	case pr.State == StateSnapshot && pr.Match >= pr.PendingSnapshot:
		pr.becomeProbe()
		pr.becomeReplicate()
	case pr.State == StateReplicate:
		pr.inflights.freeLE(m.Index)
	}
	if r.maybeCommit() {
		r.afterCommit()
	} else if wasPaused {
		r.sendAppend(m.From)
	}
	// Keep the pipeline full while there is more to send.
	for r.maybeSendAppend(m.From, false) {
	}
	if m.From == r.leadTransferee && pr.Match == r.log.lastIndex() {
		r.sendTimeoutNow(m.From)
	}
}

// nextAfterReject turns the follower's conflict hint into the next index
// to try: after the last entry of the conflicting term if we have that
// term, else the first index of the term on the follower.
func (r *Raft) nextAfterReject(m Message) uint64 {
	if m.LogTerm == 0 {
		return m.RejectHint
	}
	for i := min(m.Index, r.log.lastIndex()); i >= r.log.firstIndex(); i-- {
		t := r.log.termOrZero(i)
		if t == m.LogTerm {
			return i + 1
		}
		if t < m.LogTerm {
			break
		}
	}
	return m.RejectHint
}

func (r *Raft) handleHeartbeatResponse(m Message, pr *Progress) {
	pr.ProbeSent = false
	if pr.State == StateReplicate && pr.inflights.full() {
		// The follower answers but its pipeline has not drained for a
		// heartbeat round: its AppendEntries may all have been lost, and
		// nothing else would ever be sent to it. Let one more out; if the
		// earlier ones were lost, the follower rejects it and we probe.
		pr.inflights.freeFirst()
	}
	if pr.Match < r.log.lastIndex() {
		r.sendAppend(m.From)
	}
	if m.ReadRound > pr.ReadAcked {
		pr.ReadAcked = m.ReadRound
		r.confirmReadRounds()
	}
}

// maybeCommit sets the commit index to the highest index stored on a
// majority, if that entry is from the current term (§5.3, §5.4.2).
func (r *Raft) maybeCommit() bool {
	mci := r.membership.quorumIndex(func(id uint64) uint64 {
		if pr := r.prs[id]; pr != nil {
			return pr.Match
		}
		return 0
	})
	wasReady := r.committedInTerm()
	var ok bool
	if bugs.CommitOldTerm {
		// Planted bug (Figure 8): count replicas of any term.
		ok = mci > r.log.committed
		if ok {
			r.log.commitTo(mci)
		}
	} else {
		ok = r.log.maybeCommit(mci, r.term)
	}
	if !ok {
		return false
	}
	if !wasReady && r.committedInTerm() {
		r.releaseHeldReads()
	}
	return true
}

// reduceUncommitted stops counting ents, committed and now handed out to
// be applied, against MaxUncommittedBytes.
func (r *Raft) reduceUncommitted(ents []Entry) {
	r.uncommitted -= min(r.uncommitted, entriesSize(ents))
}

// committedInTerm reports whether an entry of the current term is
// committed, after which the leader knows the full commit index (§8).
func (r *Raft) committedInTerm() bool {
	return r.log.termOrZero(r.log.committed) == r.term
}

// bcastAppend sends AppendEntries to every follower that is not paused.
func (r *Raft) bcastAppend() {
	for _, id := range r.replicas {
		r.sendAppend(id)
	}
}

// flushAppends sends the entries proposed since the last Ready, as many
// as flow control allows.
func (r *Raft) flushAppends() {
	if !r.pendingBcast || r.role != Leader {
		r.pendingBcast = false
		return
	}
	r.pendingBcast = false
	for _, id := range r.replicas {
		for r.maybeSendAppend(id, false) {
		}
	}
}

func (r *Raft) sendAppend(to uint64) { r.maybeSendAppend(to, true) }

// maybeSendAppend sends one AppendEntries to follower to, or InstallSnapshot
// if it needs compacted entries (§7). With sendIfEmpty false it sends only
// when there are entries to carry. It reports whether it sent.
func (r *Raft) maybeSendAppend(to uint64, sendIfEmpty bool) bool {
	pr := r.prs[to]
	if pr == nil || pr.isPaused() {
		return false
	}
	prevIndex := pr.Next - 1
	prevTerm, errTerm := r.log.term(prevIndex)
	ents, errEnts := r.log.entries(pr.Next, r.cfg.MaxSizePerMsg)
	if errTerm != nil || errEnts != nil {
		return r.sendSnapshot(to, pr)
	}
	if len(ents) == 0 && !sendIfEmpty {
		return false
	}
	r.send(Message{Type: MsgApp, To: to, Index: prevIndex, LogTerm: prevTerm, Entries: ents, Commit: r.log.committed})
	if n := len(ents); n > 0 {
		pr.sentEntries(ents[n-1].Index)
	} else if pr.State == StateProbe {
		pr.ProbeSent = true
	}
	return true
}

func (r *Raft) sendSnapshot(to uint64, pr *Progress) bool {
	snap, err := r.log.storage.Snapshot()
	if err != nil || snap.IsEmpty() {
		if err != nil && !errors.Is(err, ErrUnavailable) {
			panic(err)
		}
		return false // not available yet; try again later
	}
	pr.becomeSnapshot(snap.Meta.Index)
	r.emit(Event{Kind: EventSnapshotSent, Peer: to, Index: snap.Meta.Index})
	r.send(Message{Type: MsgSnap, To: to, Snapshot: &snap})
	return true
}

// bcastHeartbeat sends a heartbeat carrying read round round to every
// follower (§5.2: leaders send periodic heartbeats to maintain authority).
func (r *Raft) bcastHeartbeat(round uint64) {
	for _, id := range r.replicas {
		// The follower may not hold entries past Match; never tell it to
		// commit beyond them.
		commit := min(r.prs[id].Match, r.log.committed)
		r.send(Message{Type: MsgHeartbeat, To: id, Commit: commit, ReadRound: round})
	}
}

// sendTimeoutNow tells the transfer target to campaign (thesis §3.10). Its
// voters will ignore their leases for it, so ours no longer holds: from
// now until the end of our term, ReadLease takes a heartbeat round too
// (thesis §6.4.1).
func (r *Raft) sendTimeoutNow(to uint64) {
	r.reads.revokeLease()
	r.send(Message{Type: MsgTimeoutNow, To: to})
}
