package raft

import "fmt"

// checker checks, after every step of a cluster, the five properties of
// Figure 3 and the rules the core's own correctness rests on:
//
//   - Election Safety: at most one leader is elected in a term.
//   - Leader Append-Only: a leader never overwrites or deletes entries in
//     its log during its term; it only appends.
//   - Log Matching: if two logs hold an entry with the same index and term,
//     the logs are identical up to it. Checked inductively: every (index,
//     term) pair ever seen anywhere has one content and one previous term.
//   - Leader Completeness: an entry committed in term T is in the log of
//     every leader of a term after T. Checked for actual leaders, and for
//     every node that could still become one: any node whose log (in
//     memory or on disk) is at least as up-to-date (§5.4.1) as the
//     persisted logs of a majority could win an election, so it must hold
//     every committed entry (Figure 8: "if S1 crashes, S5 could be
//     elected" is already the violation).
//   - State Machine Safety: no two state machines apply different entries
//     at one index, and only committed entries are applied, in order.
//   - commit never decreases: on a running node, and in what it persisted.
//   - Match soundness: while a follower is in its leader's term, its log
//     holds the leader's entries up to the leader's Match for it (what
//     commitment counts, §5.3).
//   - Linearizable reads: a ReadState's index is at least every commit
//     index known anywhere when the read was requested (thesis §6.4).
//
// It holds a cluster's history; it fails the test at the first violation.
type checker struct {
	c *cluster
	// leaders maps a term to the node that led it.
	leaders map[uint64]uint64
	// seen maps every (index, term) ever seen to the entry's content.
	seen map[[2]uint64]entryRec
	// committed maps an index to the entry committed there and the
	// lowest term of any node that knew it committed.
	committed map[uint64]commitRec
	// sm maps an index to the entry some state machine applied there.
	sm map[uint64]entryRec
	// newlyApplied are entries applied since the last check.
	newlyApplied []appliedRec
	leaderLogs   map[uint64]leaderLog
	commit       map[uint64]uint64 // running node → last commit seen
	storedCommit map[uint64]uint64 // node → last commit persisted
	readFloor    map[string]uint64 // read ctx → commit index at request
	maxIndex     uint64            // highest committed index recorded
}

type entryRec struct {
	prevTerm uint64
	typ      EntryType
	data     string
}

type commitRec struct {
	term   uint64
	typ    EntryType
	data   string
	inTerm uint64
}

type appliedRec struct {
	id uint64
	e  Entry
}

type leaderLog struct {
	term, first uint64
	terms       []uint64
}

func newChecker(c *cluster) *checker {
	return &checker{
		c: c, leaders: map[uint64]uint64{}, seen: map[[2]uint64]entryRec{},
		committed: map[uint64]commitRec{}, sm: map[uint64]entryRec{},
		leaderLogs: map[uint64]leaderLog{}, commit: map[uint64]uint64{},
		storedCommit: map[uint64]uint64{}, readFloor: map[string]uint64{},
	}
}

func (k *checker) fail(format string, args ...any) {
	k.c.t.Helper()
	k.c.t.Fatalf("property violated: "+format, args...)
}

func (k *checker) crashed(id uint64) {
	delete(k.leaderLogs, id)
	delete(k.commit, id)
	// A leadership whose term a crash took before it was durable never
	// spoke (§5.1: the leader's messages wait for its term), so it never
	// existed: a single voter (a configuration of one, thesis §4) wins
	// at once, and may lose its new term that way and vote in it again.
	// Nor did the entries it wrote in that term, which only it held: a
	// log that still holds one (a planted bug let it out) records it
	// again at the next check.
	durable := k.c.stores[id].HardState().Term
	for term, l := range k.leaders {
		if l == id && term > durable {
			delete(k.leaders, term)
			for key := range k.seen {
				if key[1] == term {
					delete(k.seen, key)
				}
			}
		}
	}
}

func (k *checker) restarted(id uint64) {
	delete(k.commit, id)
}

func (k *checker) applied(id uint64, e Entry) {
	k.newlyApplied = append(k.newlyApplied, appliedRec{id, e})
}

// readRequested records the commit index the read must reflect.
func (k *checker) readRequested(ctx string) {
	floor := uint64(0)
	for _, r := range k.c.nodes {
		if r != nil {
			floor = max(floor, r.log.committed)
		}
	}
	k.readFloor[ctx] = floor
}

func (k *checker) readStates(id uint64, rs []ReadState) {
	for _, s := range rs {
		if floor, ok := k.readFloor[string(s.RequestCtx)]; ok && s.Index < floor {
			k.fail("linearizable read (thesis §6.4): node %d read %q at index %d, but %d was committed when it was requested", id, s.RequestCtx, s.Index, floor)
		}
	}
}

// logOf returns r's log as the core sees it: the index of its first
// entry, the term before it, and the entries.
func logOf(r *Raft) (first, prevTerm uint64, ents []Entry) {
	first = r.log.firstIndex()
	prevTerm, err := r.log.term(first - 1)
	if err != nil {
		panic(fmt.Sprintf("term of %d before first index: %v", first-1, err))
	}
	ents, err = r.log.slice(first, r.log.lastIndex()+1, ^uint64(0))
	if err != nil {
		panic(err)
	}
	return first, prevTerm, ents
}

func (k *checker) check() {
	k.c.t.Helper()
	type view struct {
		r           *Raft
		first, prev uint64
		ents        []Entry
	}
	var views []view
	for _, id := range k.c.ids {
		r := k.c.nodes[id]
		if r == nil {
			continue
		}
		if err := r.log.check(); err != nil {
			k.fail("node %d: %v", id, err)
		}
		first, prev, ents := logOf(r)
		views = append(views, view{r, first, prev, ents})
		k.checkCommitMonotonic(id, r)
		k.checkLogMatching(id, prev, ents)
		k.recordCommitted(id, r, first, ents)
	}
	k.checkApplied()
	k.checkElectable()
	for _, v := range views {
		if v.r.role != Leader {
			continue
		}
		k.checkElectionSafety(v.r)
		k.checkAppendOnly(v.r, v.first, v.ents)
		k.checkLeaderCompleteness(v.r, v.first, v.ents)
		for _, f := range views {
			if f.r != v.r {
				k.checkMatch(v.r, v.first, v.ents, f.r, f.first, f.ents)
			}
		}
	}
}

func (k *checker) checkCommitMonotonic(id uint64, r *Raft) {
	if prev, ok := k.commit[id]; ok && r.log.committed < prev {
		k.fail("commit never decreases: node %d commit went from %d to %d", id, prev, r.log.committed)
	}
	k.commit[id] = r.log.committed
	hs := k.c.stores[id].HardState()
	if hs.Commit < k.storedCommit[id] {
		k.fail("commit never decreases: node %d persisted commit %d after %d", id, hs.Commit, k.storedCommit[id])
	}
	k.storedCommit[id] = hs.Commit
}

func (k *checker) checkLogMatching(id, prev uint64, ents []Entry) {
	for _, e := range ents {
		rec := entryRec{prevTerm: prev, typ: e.Type, data: string(e.Data)}
		key := [2]uint64{e.Index, e.Term}
		if old, ok := k.seen[key]; ok && old != rec {
			k.fail("Log Matching: node %d holds entry %d/%d as %+v, seen before as %+v", id, e.Index, e.Term, rec, old)
		} else if !ok {
			k.seen[key] = rec
		}
		prev = e.Term
	}
}

func (k *checker) recordCommitted(id uint64, r *Raft, first uint64, ents []Entry) {
	for _, e := range ents {
		if e.Index > r.log.committed {
			break
		}
		rec, ok := k.committed[e.Index]
		if !ok {
			k.committed[e.Index] = commitRec{term: e.Term, typ: e.Type, data: string(e.Data), inTerm: r.term}
			k.maxIndex = max(k.maxIndex, e.Index)
			continue
		}
		if rec.term != e.Term || rec.data != string(e.Data) {
			k.fail("State Machine Safety: index %d was committed with term %d, node %d has it committed with term %d", e.Index, rec.term, id, e.Term)
		}
		if r.term < rec.inTerm {
			rec.inTerm = r.term
			k.committed[e.Index] = rec
		}
	}
}

func (k *checker) checkApplied() {
	for _, a := range k.newlyApplied {
		e := a.e
		c, ok := k.committed[e.Index]
		if !ok || c.term != e.Term || c.data != string(e.Data) {
			k.fail("State Machine Safety: node %d applied %d/%d %q, which is not the committed entry (%+v, known %t)", a.id, e.Index, e.Term, e.Data, c, ok)
		}
		rec := entryRec{prevTerm: e.Term, typ: e.Type, data: string(e.Data)}
		if old, ok := k.sm[e.Index]; ok && old != rec {
			k.fail("State Machine Safety: node %d applied %+v at %d, another node applied %+v", a.id, rec, e.Index, old)
		}
		k.sm[e.Index] = rec
	}
	k.newlyApplied = k.newlyApplied[:0]
}

func (k *checker) checkElectionSafety(r *Raft) {
	if l, ok := k.leaders[r.term]; ok && l != r.id {
		k.fail("Election Safety: nodes %d and %d both lead term %d", l, r.id, r.term)
	}
	k.leaders[r.term] = r.id
}

func (k *checker) checkAppendOnly(r *Raft, first uint64, ents []Entry) {
	terms := make([]uint64, len(ents))
	for i, e := range ents {
		terms[i] = e.Term
	}
	old, ok := k.leaderLogs[r.id]
	if ok && old.term == r.term {
		oldLast := old.first + uint64(len(old.terms)) - 1
		if newLast := first + uint64(len(terms)) - 1; newLast < oldLast {
			k.fail("Leader Append-Only: leader %d of term %d shrank its log from %d to %d", r.id, r.term, oldLast, newLast)
		}
		for i := max(first, old.first); i <= oldLast; i++ {
			if ot, nt := old.terms[i-old.first], terms[i-first]; ot != nt {
				k.fail("Leader Append-Only: leader %d of term %d changed entry %d from term %d to %d", r.id, r.term, i, ot, nt)
			}
		}
	}
	k.leaderLogs[r.id] = leaderLog{term: r.term, first: first, terms: terms}
}

func (k *checker) checkLeaderCompleteness(r *Raft, first uint64, ents []Entry) {
	last := first + uint64(len(ents)) - 1
	for i := first; i <= k.maxIndex; i++ {
		c, ok := k.committed[i]
		if !ok || c.inTerm >= r.term {
			continue
		}
		if i > last {
			k.fail("Leader Completeness: leader %d of term %d lacks entry %d committed in term %d (its log ends at %d)", r.id, r.term, i, c.inTerm, last)
		}
		if t := ents[i-first].Term; t != c.term {
			k.fail("Leader Completeness: leader %d of term %d has term %d at %d, committed with term %d in term %d", r.id, r.term, t, i, c.term, c.inTerm)
		}
	}
}

// checkMatch: a follower in the leader's term holds the leader's entries
// up to Match (it acknowledged them only once durable, and nothing in that
// term may remove them).
func (k *checker) checkMatch(l *Raft, lfirst uint64, lents []Entry, f *Raft, ffirst uint64, fents []Entry) {
	pr := l.prs[f.id]
	if pr == nil || f.term != l.term {
		return
	}
	flast := ffirst + uint64(len(fents)) - 1
	if llast := lfirst + uint64(len(lents)) - 1; pr.Match > llast {
		k.fail("Match soundness: leader %d (term %d) has match %d for node %d, past its own last index %d", l.id, l.term, pr.Match, f.id, llast)
	}
	if pr.Match > flast {
		k.fail("Match soundness: leader %d (term %d) has match %d for node %d, whose log ends at %d", l.id, l.term, pr.Match, f.id, flast)
	}
	for i := max(lfirst, ffirst); i <= pr.Match; i++ {
		if lt, ft := lents[i-lfirst].Term, fents[i-ffirst].Term; lt != ft {
			k.fail("Match soundness: leader %d (term %d) has match %d for node %d, but at %d their terms are %d and %d", l.id, l.term, pr.Match, f.id, i, lt, ft)
		}
	}
}

// logEnd is the last index and term of a log, for the §5.4.1 comparison.
type logEnd struct{ index, term uint64 }

func (a logEnd) atLeastAsUpToDate(b logEnd) bool {
	return a.term > b.term || (a.term == b.term && a.index >= b.index)
}

func storedEnd(st *MemoryStorage) logEnd {
	last, _ := st.LastIndex()
	term, err := st.Term(last)
	if err != nil {
		panic(err)
	}
	return logEnd{last, term}
}

// checkElectable: every node that could win an election holds every
// committed entry. A node could win if its log is at least as up-to-date
// as the persisted logs of a quorum of the configuration it counts votes
// in (the latest in its log, thesis §4.1) (of both during joint consensus, §4.3); a node's disk is
// all it votes with after a crash.
func (k *checker) checkElectable() {
	disks := map[uint64]logEnd{}
	for _, id := range k.c.ids {
		disks[id] = storedEnd(k.c.stores[id])
	}
	// Whether id may campaign at all is not asked: a log at least as
	// up-to-date as a quorum's must hold every committed entry anyway,
	// which checks more.
	electable := func(id uint64, e logEnd, m Membership) bool {
		return m.HasQuorum(func(v uint64) bool {
			d, ok := disks[v]
			return ok && e.atLeastAsUpToDate(d)
		})
	}
	for _, id := range k.c.ids {
		st := k.c.stores[id]
		if e := storedEnd(st); electable(id, e, storedConf(st)) {
			k.checkHolds(id, "on disk", e.index, func(i uint64) (uint64, bool) {
				t, err := st.Term(i)
				return t, err == nil
			})
		}
		if r := k.c.nodes[id]; r != nil {
			if e := (logEnd{r.log.lastIndex(), r.log.lastTerm()}); electable(id, e, r.membership) {
				k.checkHolds(id, "in memory", e.index, func(i uint64) (uint64, bool) {
					t, err := r.log.term(i)
					return t, err == nil
				})
			}
		}
	}
}

// storedConf is the configuration a node restarted from st would use: the
// snapshot's, then every configuration entry of the stored log.
func storedConf(st *MemoryStorage) Membership {
	_, m, _ := st.InitialState()
	first, _ := st.FirstIndex()
	last, _ := st.LastIndex()
	if last < first {
		return m
	}
	ents, err := st.Entries(first, last+1, ^uint64(0))
	if err != nil {
		panic(err)
	}
	for _, e := range ents {
		if e.Type == EntryConfChange {
			m, _ = m.AfterEntry(e)
		}
	}
	return m
}

// checkHolds: the log ending at last holds every committed entry; term
// gives an entry's term, or false for an entry compacted into a snapshot
// (which holds only committed entries).
func (k *checker) checkHolds(id uint64, where string, last uint64, term func(uint64) (uint64, bool)) {
	for i := uint64(1); i <= k.maxIndex; i++ {
		c, ok := k.committed[i]
		if !ok {
			continue
		}
		if i > last {
			k.fail("Leader Completeness: node %d could be elected with its log %s, which ends at %d and lacks committed entry %d", id, where, last, i)
		}
		if t, ok := term(i); ok && t != c.term {
			k.fail("Leader Completeness: node %d could be elected with its log %s, which has term %d at %d, committed with term %d", id, where, t, i, c.term)
		}
	}
}
