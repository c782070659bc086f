package raft

import (
	"fmt"
	"slices"
)

// Configuration changes in the core (thesis §4). A configuration entry
// carries the whole new Membership; a server uses the latest one in its
// log, committed or not (§4.1), so the configuration changes when an
// entry is written, not when it commits, and changes back when the entry
// is truncated.

// confAt is the configuration in force from a log index on.
type confAt struct {
	index uint64
	m     Membership
}

// catchupRound is one round of a staging learner's catch-up (thesis
// §4.2.1): the round ends when the learner holds end, the last index of
// the leader's log when the round began at tick start.
type catchupRound struct {
	end, start uint64
}

// loadConfs sets the configuration from base, the one of the snapshot (or
// bootstrap), and the configuration entries in the log after it.
func (r *Raft) loadConfs(base Membership) error {
	first, last := r.log.firstIndex(), r.log.lastIndex()
	r.confs = []confAt{{index: first - 1, m: base.Clone()}}
	r.membership = r.confs[0].m
	if last < first {
		return nil
	}
	ents, err := r.log.slice(first, last+1, ^uint64(0))
	if err != nil {
		return fmt.Errorf("raft: reading the log for configuration entries: %w", err)
	}
	for _, e := range ents {
		if e.Type == EntryConfChange {
			if next, err := r.membership.AfterEntry(e); err == nil {
				r.confs = append(r.confs, confAt{index: e.Index, m: next})
				r.membership = next
			}
		}
	}
	r.pruneConfs()
	return nil
}

// resetConfs makes m, the configuration of a snapshot at index, the only
// one (§7: the snapshot replaces the whole log).
func (r *Raft) resetConfs(index uint64, m Membership) {
	r.confs = []confAt{{index: index, m: m.Clone()}}
	r.setMembership(index, r.confs[0].m, "restored from a snapshot (§7)", false)
}

// logWritten updates the configuration for ents, just written to the log
// from ents[0].Index on: a configuration entry at or after that index that
// was replaced is rolled back (thesis §4.1), and each new one takes effect.
func (r *Raft) logWritten(ents []Entry) {
	if len(ents) == 0 {
		return
	}
	from := ents[0].Index
	n := len(r.confs)
	for n > 1 && r.confs[n-1].index >= from {
		n--
	}
	if n < len(r.confs) {
		r.confs = r.confs[:n]
		r.setMembership(from, r.confs[n-1].m, "rolled back: configuration entry truncated (thesis §4.1)", true)
	}
	for _, e := range ents {
		if e.Type != EntryConfChange {
			continue
		}
		next, err := r.membership.AfterEntry(e)
		if err != nil {
			r.emit(Event{Kind: EventConfChanged, Index: e.Index, Reason: "entry ignored: " + err.Error()})
			continue
		}
		r.confs = append(r.confs, confAt{index: e.Index, m: next})
		r.setMembership(e.Index, next, "", true)
	}
	r.pruneConfs()
}

// pruneConfs forgets the configurations superseded by one at or below the
// applied index: no truncation reaches below the commit index, and the
// configuration at the applied index is the one a snapshot records.
func (r *Raft) pruneConfs() {
	k := 0
	for k+1 < len(r.confs) && r.confs[k+1].index <= r.log.applied {
		k++
	}
	r.confs = r.confs[k:]
}

// lastConfIndex is the index of the latest configuration entry (or of the
// snapshot whose configuration is in force).
func (r *Raft) lastConfIndex() uint64 { return r.confs[len(r.confs)-1].index }

// setMembership puts next in force, from the entry at index, and narrates
// the difference (member by member when members is set); reason, when
// set, says why it changed.
func (r *Raft) setMembership(index uint64, next Membership, reason string, members bool) {
	prev := r.membership
	r.membership = next
	if prev.IsEmpty() {
		// A joining server learns the configuration: nobody was added.
		members = false
	}
	for _, id := range next.Members() {
		if !members {
			break
		}
		switch {
		case !prev.Contains(id) && next.IsVoter(id):
			r.emit(Event{Kind: EventMemberAdded, Peer: id, Index: index, Reason: "voter"})
		case !prev.Contains(id) && next.IsStaging(id):
			r.emit(Event{Kind: EventMemberAdded, Peer: id, Index: index, Reason: "learner (promoted once caught up)"})
		case !prev.Contains(id):
			r.emit(Event{Kind: EventMemberAdded, Peer: id, Index: index, Reason: "learner"})
		case prev.IsLearner(id) && next.IsVoter(id):
			r.emit(Event{Kind: EventMemberPromoted, Peer: id, Index: index})
		}
	}
	for _, id := range prev.Members() {
		if members && !next.Contains(id) {
			r.emit(Event{Kind: EventMemberRemoved, Peer: id, Index: index})
		}
	}
	switch {
	case reason != "":
	case next.Joint() && !prev.Joint():
		reason = "joint consensus entered (thesis §4.3)"
	case prev.Joint() && !next.Joint():
		reason = "joint consensus left (thesis §4.3)"
	default:
		reason = "configuration entry appended (thesis §4.1)"
	}
	r.emit(Event{Kind: EventConfChanged, Index: index, Reason: reason})

	switch r.role {
	case Leader:
		r.updateProgress()
	case Candidate, PreCandidate:
		if !r.promotable() {
			r.becomeFollower(r.term, None)
		}
	}
}

// updateProgress gives the leader a Progress for each new member (thesis
// §4.1). Those of removed members stay until the configuration that
// removes them commits (dropRemoved): until then the leader keeps
// replicating to them, so that a removed server learns of its removal
// and stays out (§4.2.3) instead of campaigning in vain.
func (r *Raft) updateProgress() {
	last := r.log.lastIndex()
	for _, id := range r.membership.Members() {
		pr := r.prs[id]
		if pr == nil {
			pr = newProgress(last+1, r.cfg.MaxInflightMsgs, false)
			// A new member has not had an election timeout to answer in.
			pr.RecentActive = true
			r.prs[id] = pr
		}
		pr.IsLearner = r.membership.IsLearner(id)
	}
	r.setReplicas()
	if t := r.leadTransferee; t != None && !r.membership.IsVoter(t) {
		r.abortTransfer("the target is no longer a voter")
	}
}

// afterCommit runs when the leader's commit index advanced: it tells the
// followers, then acts on a committed configuration. A leader that is not
// in it steps down (thesis §4.2.2: it managed the cluster until C_new
// committed, without counting itself); a committed joint configuration is
// left for C_new (§4.3).
func (r *Raft) afterCommit() {
	r.bcastAppend()
	r.pruneConfs()
	if r.role != Leader || r.lastConfIndex() > r.log.committed {
		return
	}
	r.dropRemoved()
	if !r.membership.IsVoter(r.id) {
		r.stepDown("removed from the configuration, which is now committed (thesis §4.2.2)")
		return
	}
	if r.membership.Joint() {
		r.appendConf(r.membership.leaveJoint())
	}
}

// maybePromote promotes a staging learner that has caught up (thesis
// §4.2.1): replication proceeds in rounds, each bringing the learner up to
// the leader's last index as of the round's start; when a round takes
// less than an election timeout, the learner is close enough to vote
// without costing availability. A slower round starts another; there is
// no limit on rounds, the learner just stays a learner.
func (r *Raft) maybePromote() {
	if len(r.membership.Staging) == 0 || r.leadTransferee != None || r.confChangeAllowed() != nil {
		return
	}
	if r.catchups == nil {
		r.catchups = map[uint64]*catchupRound{}
	}
	for _, id := range r.membership.Staging {
		pr, c := r.prs[id], r.catchups[id]
		switch {
		case pr == nil:
		case c == nil:
			r.catchups[id] = &catchupRound{end: r.log.lastIndex(), start: r.ticks}
		case pr.Match < c.end:
		case r.ticks-c.start < uint64(r.cfg.ElectionTick):
			next, err := r.membership.apply([]ConfChange{{Type: AddVoter, ID: id}})
			if err == nil {
				delete(r.catchups, id)
				r.appendConf(next)
				return // one change at a time
			}
		default:
			*c = catchupRound{end: r.log.lastIndex(), start: r.ticks}
		}
	}
}

// dropRemoved forgets the progress of servers the committed configuration
// does not have.
func (r *Raft) dropRemoved() {
	for id := range r.prs {
		if id != r.id && !r.membership.Contains(id) {
			delete(r.prs, id)
			delete(r.catchups, id)
		}
	}
	for id := range r.forwarded {
		if !r.membership.Contains(id) {
			delete(r.forwarded, id)
		}
	}
	r.setReplicas()
}

// setReplicas lists the ids of prs but ours, sorted.
func (r *Raft) setReplicas() {
	r.replicas = r.replicas[:0]
	for id := range r.prs {
		if id != r.id {
			r.replicas = append(r.replicas, id)
		}
	}
	slices.Sort(r.replicas)
}

// soleVoter reports whether this node is the configuration's only voter.
func (r *Raft) soleVoter() bool {
	return !r.membership.Joint() && len(r.membership.Voters) == 1 && r.membership.Voters[0] == r.id
}
