package sim

import (
	"fmt"

	"github.com/raftex/raftex/raft"
)

// checker holds the omniscient view of the run and checks, at every Ready
// of every node (so after every step), the properties of Figure 3 and the
// promises behind them:
//
//  1. Election Safety: at most one leader per term (a leadership whose
//     term a crash took before it was durable or spoken in never existed).
//  2. Leader Append-Only: a leader never overwrites or deletes entries of
//     its log; it only appends entries of its term.
//  3. Log Matching: two logs with an entry of the same index and term
//     hold the same entries up through it. Each entry is identified by a
//     hash chained over its log prefix, so one lookup per entry checks
//     the whole prefix. An entry exists once it is durable or has been
//     sent; one that a crash took before either never existed (a single
//     voter that lost its new term that way wins the same term again,
//     and may write other entries in it).
//  4. Leader Completeness: a leader holds every entry committed in an
//     earlier term (an entry a node reported committed while in term t
//     was committed in term t or earlier).
//  5. State Machine Safety: no two nodes apply different entries at an
//     index, and their state machines agree after applying it.
//
// Behind them, the rule that makes 4 hold across leader changes: a leader
// commits by counting replicas only an entry of its own term (§5.4.2,
// Figure 8).
//
// and besides: no two different entries are ever committed at one index;
// a node's commit index never decreases while it runs and never passes its
// log; it applies nothing past its commit index, in order; it never
// removes a committed entry or, in the term it acknowledged them in, an
// entry it acknowledged to the leader (§5.3); a node votes for at most one
// candidate per term (§5.2); and what a node said survives its crash: its
// term, its vote and the entries it acknowledged are on its disk when it
// restarts (§5.1).
type checker struct {
	s *sim
	// leaders[term] is the leader of term.
	leaders map[uint64]uint64
	// chains identifies every entry ever in a log by (index, term):
	// durable somewhere, or sent to another node.
	chains map[[2]uint64]uint64
	// committed[i] is the entry known committed at index i (term 0:
	// unknown).
	committed []logPos
	// commitReports[t] is the highest index a node reported committed
	// while in term t.
	commitReports []uint64
	// appliedAt[i] is the entry applied at index i and the state after.
	appliedAt []appliedRec
	// votes[{voter, term}] is the candidate voter granted its vote to.
	votes map[[2]uint64]uint64
	acks  []ack
	nodes []*nodeView
}

// logPos is an entry's term and the hash of the log prefix through it.
type logPos struct {
	index, term, chain uint64
}

// appliedRec is the entry applied at an index (entry: known) and the
// state machine's hash after it (stateSet: known; a restored snapshot
// tells the state without the entry).
type appliedRec struct {
	term, data, state uint64
	entry, stateSet   bool
}

// ack is an entry whose outcome a client was told.
type ack struct {
	index, term, data uint64
}

// nodeView is what the checker tracks of one node, across its crashes.
type nodeView struct {
	log shadowLog
	// term and role as of the node's last Ready; leaderTerm is the term it
	// led in at its last Ready (0: it did not lead).
	term       uint64
	role       raft.Role
	leaderTerm uint64
	// commit is the node's commit index in this incarnation.
	commit uint64
	// spokenTerm is the highest term of a message the node sent (pre-votes
	// aside: they speak of a term not adopted); spokenVote the candidate
	// it voted for in that term, if any (itself, when it campaigned).
	spokenTerm, spokenVote uint64
	// durable is the hard state of the last completed write.
	durable raft.HardState
	// ack is the highest entry the node acknowledged to the leader of
	// ackTerm: its log matches the leader's through it (§5.3).
	ack     logPos
	ackTerm uint64
	// unconfirmed are the entries of this incarnation's log neither
	// durable nor sent yet, by (index, term): a crash forgets them.
	unconfirmed map[[2]uint64]uint64
}

// shadowLog mirrors a node's log (stable and unstable) from the entries
// and snapshots its Readys hand out: base is the entry before the first.
type shadowLog struct {
	base logPos
	ents []logPos
}

func (l *shadowLog) last() uint64 { return l.base.index + uint64(len(l.ents)) }

// at returns the entry at i; ok is false outside [base, last].
func (l *shadowLog) at(i uint64) (logPos, bool) {
	switch {
	case i == l.base.index:
		return l.base, true
	case i < l.base.index || i > l.last():
		return logPos{}, false
	}
	return l.ents[i-l.base.index-1], true
}

func newChecker(s *sim, n int) *checker {
	c := &checker{s: s, leaders: map[uint64]uint64{}, chains: map[[2]uint64]uint64{}, votes: map[[2]uint64]uint64{}}
	for range n {
		c.nodes = append(c.nodes, &nodeView{})
	}
	return c
}

func (c *checker) fail(check, format string, args ...any) {
	c.s.fail(check, fmt.Sprintf(format, args...))
}

func (c *checker) view(n *node) *nodeView { return c.nodes[n.id-1] }

func grow[T any](s []T, i uint64) []T {
	for uint64(len(s)) <= i {
		var zero T
		s = append(s, zero)
	}
	return s
}

// dataHash is FNV-1a of b.
func dataHash(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h
}

// chain identifies an entry by its term, its data and the entry before it.
func chain(prev, term, data uint64) uint64 {
	h := uint64(14695981039346656037)
	for _, v := range [...]uint64{prev, term, data} {
		for range 8 {
			h = (h ^ v&0xff) * 1099511628211
			v >>= 8
		}
	}
	return h
}

// ready checks a Ready as it leaves node n's core.
func (c *checker) ready(n *node, rd *raft.Ready) {
	v := c.view(n)
	for _, e := range rd.Events {
		if e.Kind == raft.EventRoleChanged && e.Role == raft.Leader {
			c.electionSafety(e.Term, e.Node)
		}
		v.term, v.role = e.Term, e.Role
	}
	if !rd.HardState.IsEmpty() {
		v.term = rd.HardState.Term
	}
	// continuing: the node led in this term at its last Ready too, so
	// everything since happened while it led.
	continuing := v.role == raft.Leader && v.leaderTerm == v.term
	if rd.Snapshot != nil {
		c.installSnapshot(n, v, rd.Snapshot.Meta, continuing)
	}
	if len(rd.Entries) > 0 {
		c.appendEntries(n, v, rd.Entries, continuing)
	}
	if !rd.HardState.IsEmpty() {
		c.hardState(n, v, rd.HardState, continuing)
	}
	if v.role == raft.Leader && !continuing {
		c.leaderCompleteness(n, v)
	}
	v.leaderTerm = 0
	if v.role == raft.Leader {
		v.leaderTerm = v.term
	}
}

// electionSafety: at most one leader can be elected in a given term (§5.2).
func (c *checker) electionSafety(term, id uint64) {
	if prev, ok := c.leaders[term]; ok && prev != id {
		c.fail("Election Safety", "nodes %d and %d are both leaders of term %d", prev, id, term)
		return
	}
	c.leaders[term] = id
}

func (c *checker) installSnapshot(n *node, v *nodeView, meta raft.SnapshotMeta, continuing bool) {
	switch {
	case continuing:
		c.fail("Leader Append-Only", "leader %d of term %d installed a snapshot at %d", n.id, v.term, meta.Index)
		return
	case meta.Index < v.commit:
		c.fail("Committed entries kept", "node %d installed a snapshot at %d, below its commit index %d", n.id, meta.Index, v.commit)
		return
	case v.ackTerm == v.term && meta.Index < v.ack.index:
		c.fail("Acknowledged entries kept", "node %d acknowledged entries through %d in term %d, then installed a snapshot at %d in that term", n.id, v.ack.index, v.term, meta.Index)
		return
	}
	ch, ok := c.chains[[2]uint64{meta.Index, meta.Term}]
	if !ok {
		c.fail("Log Matching", "node %d installed a snapshot at %d/%d, an entry no log ever held", n.id, meta.Index, meta.Term)
		return
	}
	v.log = shadowLog{base: logPos{meta.Index, meta.Term, ch}}
}

func (c *checker) appendEntries(n *node, v *nodeView, ents []raft.Entry, continuing bool) {
	first, last := ents[0].Index, v.log.last()
	switch {
	case first > last+1:
		c.fail("Log Matching", "node %d appended entry %d after its last entry %d", n.id, first, last)
		return
	case first <= v.log.base.index:
		c.fail("Committed entries kept", "node %d appended entry %d over its snapshot at %d", n.id, first, v.log.base.index)
		return
	}
	if first <= last {
		// Entries [first, last] are removed.
		switch {
		case continuing:
			c.fail("Leader Append-Only", "leader %d of term %d removed entries %d..%d of its log", n.id, v.term, first, last)
			return
		case first <= v.commit:
			c.fail("Committed entries kept", "node %d removed entries %d..%d, committed through %d", n.id, first, last, v.commit)
			return
		case v.ackTerm == v.term && first <= v.ack.index:
			c.fail("Acknowledged entries kept", "node %d removed entries %d..%d in term %d, after acknowledging them through %d to that term's leader (§5.3: only conflicting entries are removed)", n.id, first, last, v.term, v.ack.index)
			return
		}
		if v.role == raft.Leader {
			for i := first; i <= last; i++ {
				if p, _ := v.log.at(i); p.term == v.term {
					c.fail("Leader Append-Only", "leader %d of term %d removed entry %d of its own term", n.id, v.term, i)
					return
				}
			}
		}
		v.log.ents = v.log.ents[:first-v.log.base.index-1]
	}
	prev, _ := v.log.at(first - 1)
	for _, e := range ents {
		if continuing && e.Term != v.term {
			c.fail("Leader Append-Only", "leader %d of term %d appended entry %d of term %d", n.id, v.term, e.Index, e.Term)
			return
		}
		p := logPos{e.Index, e.Term, chain(prev.chain, e.Term, dataHash(e.Data))}
		if !c.logMatching(n, p) {
			return
		}
		v.log.ents = append(v.log.ents, p)
		prev = p
	}
}

// logMatching checks p against the entry recorded at its index and term,
// and records it as unconfirmed until it is durable or sent (confirm): if
// they differ, two logs hold the same (index, term) with different
// prefixes.
func (c *checker) logMatching(n *node, p logPos) bool {
	key := [2]uint64{p.index, p.term}
	v := c.view(n)
	ch, ok := c.chains[key]
	if !ok {
		ch, ok = v.unconfirmed[key]
	}
	if ok && ch != p.chain {
		c.fail("Log Matching", "node %d holds an entry at %d/%d whose log prefix differs from another log's entry at %d/%d", n.id, p.index, p.term, p.index, p.term)
		return false
	}
	if _, known := c.chains[key]; !known {
		if v.unconfirmed == nil {
			v.unconfirmed = map[[2]uint64]uint64{}
		}
		v.unconfirmed[key] = p.chain
	}
	return true
}

// confirm records the entries of n's log at the indexes and terms of ents
// as existing: durable, or sent.
func (c *checker) confirm(n *node, ents []raft.Entry) {
	v := c.view(n)
	for _, e := range ents {
		key := [2]uint64{e.Index, e.Term}
		ch, ok := v.unconfirmed[key]
		if !ok {
			continue
		}
		delete(v.unconfirmed, key)
		if prev, known := c.chains[key]; known && prev != ch {
			c.fail("Log Matching", "node %d holds an entry at %d/%d whose log prefix differs from another log's entry at %d/%d", n.id, e.Index, e.Term, e.Index, e.Term)
			return
		}
		c.chains[key] = ch
	}
}

func (c *checker) hardState(n *node, v *nodeView, hs raft.HardState, continuing bool) {
	switch {
	case continuing && hs.Commit > v.commit && c.termAt(v, hs.Commit) != v.term:
		c.fail("Commit by counting replicas", "leader %d of term %d committed through entry %d of term %d: only entries of the current term are committed by counting replicas (§5.4.2)", n.id, v.term, hs.Commit, c.termAt(v, hs.Commit))
		return
	case hs.Commit < v.commit:
		c.fail("Commit monotonic", "node %d commit index went from %d down to %d", n.id, v.commit, hs.Commit)
		return
	case hs.Commit > v.log.last():
		c.fail("Commit within log", "node %d commit index %d is past its last entry %d", n.id, hs.Commit, v.log.last())
		return
	}
	for i := max(v.commit+1, v.log.base.index+1); i <= hs.Commit; i++ {
		p, _ := v.log.at(i)
		c.committed = grow(c.committed, i)
		switch k := c.committed[i]; {
		case k.term == 0:
			c.committed[i] = p
		case k.chain != p.chain:
			c.fail("State Machine Safety", "node %d committed entry %d/%d, but entry %d/%d was committed at that index before", n.id, i, p.term, i, k.term)
			return
		}
	}
	v.commit = hs.Commit
	c.committed = grow(c.committed, hs.Commit)
	c.commitReports = grow(c.commitReports, hs.Term)
	c.commitReports[hs.Term] = max(c.commitReports[hs.Term], hs.Commit)
}

func (c *checker) termAt(v *nodeView, i uint64) uint64 {
	p, _ := v.log.at(i)
	return p.term
}

// leaderCompleteness checks a new leader's log against the highest index
// known committed in an earlier term.
func (c *checker) leaderCompleteness(n *node, v *nodeView) {
	var i uint64
	for t := uint64(0); t < v.term && t < uint64(len(c.commitReports)); t++ {
		i = max(i, c.commitReports[t])
	}
	// The highest such index whose entry the checker knows (a node that
	// reported it from a snapshot did not show the entry).
	for ; i > v.log.base.index; i-- {
		k := c.committed[i]
		if k.term == 0 {
			continue
		}
		if p, ok := v.log.at(i); !ok || p.chain != k.chain {
			c.fail("Leader Completeness", "leader %d of term %d lacks entry %d/%d committed in an earlier term (its log ends at %d)", n.id, v.term, i, k.term, v.log.last())
		}
		return
	}
}

// sent checks a message as it leaves node n.
func (c *checker) sent(n *node, m raft.Message) {
	v := c.view(n)
	switch m.Type {
	case raft.MsgPreVote, raft.MsgPreVoteResp:
		return
	case raft.MsgVote:
		c.speak(v, m.Term, m.From)
		return
	}
	c.speak(v, m.Term, 0)
	if m.Type == raft.MsgApp {
		c.confirm(n, m.Entries)
	}
	switch {
	case m.Type == raft.MsgVoteResp && !m.Reject:
		key := [2]uint64{m.From, m.Term}
		if prev, ok := c.votes[key]; ok && prev != m.To {
			c.fail("One vote per term", "node %d voted for %d and for %d in term %d (§5.2)", m.From, prev, m.To, m.Term)
			return
		}
		c.votes[key] = m.To
		v.spokenVote = m.To
	case m.Type == raft.MsgAppResp && !m.Reject && m.Term == v.term && m.Index > 0:
		c.acknowledge(n, v, m)
	}
}

func (c *checker) speak(v *nodeView, term, vote uint64) {
	if term > v.spokenTerm {
		v.spokenTerm, v.spokenVote = term, 0
	}
	if vote != 0 && term == v.spokenTerm {
		v.spokenVote = vote
	}
}

// acknowledge records a successful AppendEntries reply: the node's log
// matches the leader's through m.Index, so it must hold those entries.
func (c *checker) acknowledge(n *node, v *nodeView, m raft.Message) {
	p, ok := v.log.at(m.Index)
	if !ok && m.Index > v.log.base.index {
		c.fail("Acknowledged entries kept", "node %d acknowledged entries through %d in term %d, but its log ends at %d", n.id, m.Index, m.Term, v.log.last())
		return
	}
	if !ok {
		p = logPos{index: m.Index}
	}
	if m.Term > v.ackTerm || m.Index > v.ack.index {
		v.ack, v.ackTerm = p, m.Term
	}
}

// persisted records a completed write.
func (c *checker) persisted(n *node, rd raft.Ready) {
	if !rd.HardState.IsEmpty() {
		c.view(n).durable = rd.HardState
	}
	c.confirm(n, rd.Entries)
}

// applied checks an entry node n applied; first reports whether no node
// applied that index before.
func (c *checker) applied(n *node, e raft.Entry) (first bool) {
	v := c.view(n)
	if e.Index > v.commit {
		c.fail("Apply only committed", "node %d applied entry %d past its commit index %d", n.id, e.Index, v.commit)
		return false
	}
	c.appliedAt = grow(c.appliedAt, e.Index)
	a := &c.appliedAt[e.Index]
	data := dataHash(e.Data)
	first = !a.entry
	if first {
		a.term, a.data, a.entry = e.Term, data, true
	} else if a.term != e.Term || a.data != data {
		c.fail("State Machine Safety", "node %d applied entry %d of term %d, another node applied a different entry of term %d there", n.id, e.Index, e.Term, a.term)
		return false
	}
	c.sameState(n, a, e.Index)
	return first
}

// restored checks a state machine restored from the snapshot at index.
func (c *checker) restored(n *node, index uint64) {
	c.appliedAt = grow(c.appliedAt, index)
	c.sameState(n, &c.appliedAt[index], index)
}

func (c *checker) sameState(n *node, a *appliedRec, index uint64) {
	h := n.kv.Hash()
	switch {
	case !a.stateSet:
		a.state, a.stateSet = h, true
	case a.state != h:
		c.fail("State Machine Safety", "node %d's state machine at index %d differs from another node's there", n.id, index)
	}
}

// acked records an entry whose outcome was sent to a client: it must
// survive everything (checked at the end of the run).
func (c *checker) acked(e raft.Entry) {
	c.acks = append(c.acks, ack{index: e.Index, term: e.Term, data: dataHash(e.Data)})
}

// started checks a node that (re)started from its disk, and resets the
// view of its log to what the disk holds.
func (c *checker) started(n *node) error {
	v := c.view(n)
	hs, _, err := n.store.InitialState()
	if err != nil {
		return err
	}
	switch {
	case hs.Term < v.spokenTerm && v.spokenVote != 0:
		c.fail("Durable before speech", "node %d restarted in term %d, but it had voted for %d in term %d (§5.1)", n.id, hs.Term, v.spokenVote, v.spokenTerm)
	case hs.Term < v.spokenTerm:
		c.fail("Durable before speech", "node %d restarted in term %d, but it had sent messages in term %d (§5.1)", n.id, hs.Term, v.spokenTerm)
	case hs.Term == v.spokenTerm && v.spokenVote != 0 && hs.Vote != v.spokenVote:
		c.fail("Durable before speech", "node %d restarted with vote %d in term %d, but it had voted for %d (§5.1)", n.id, hs.Vote, hs.Term, v.spokenVote)
	case hs.Term < v.durable.Term || (hs.Term == v.durable.Term && v.durable.Vote != 0 && hs.Vote != v.durable.Vote):
		c.fail("Durable hard state", "node %d restarted with term %d vote %d, but term %d vote %d was durable", n.id, hs.Term, hs.Vote, v.durable.Term, v.durable.Vote)
	}
	// A term the node led in but never made durable (nor spoke in: checked
	// above) is forgotten with the crash, like its unconfirmed entries: no
	// one heard of that leadership, and another node may win the term.
	for t, id := range c.leaders {
		if id == n.id && t > hs.Term {
			delete(c.leaders, t)
		}
	}
	if err := c.reloadLog(n, v); err != nil {
		return err
	}
	if hs.Term == v.ackTerm && v.ack.index > v.log.base.index {
		if p, ok := v.log.at(v.ack.index); !ok || p.term != v.ack.term {
			c.fail("Durable before speech", "node %d restarted without entry %d/%d it had acknowledged in term %d (its log ends at %d)", n.id, v.ack.index, v.ack.term, v.ackTerm, v.log.last())
		}
	}
	st := n.core.Status()
	if applied := n.appliedIndex(); st.Commit < applied || st.Applied != applied {
		c.fail("Apply only committed", "node %d restarted with its state machine at %d (its newest snapshot), but its core at commit %d, applied %d: it would apply those entries again", n.id, applied, st.Commit, st.Applied)
	}
	v.term, v.role, v.leaderTerm = hs.Term, raft.Follower, 0
	v.commit = st.Commit
	v.durable = hs
	return nil
}

// reloadLog rebuilds the view of n's log from its store.
func (c *checker) reloadLog(n *node, v *nodeView) error {
	first, _ := n.store.FirstIndex()
	last, _ := n.store.LastIndex()
	base := logPos{index: first - 1}
	if base.index > 0 {
		t, err := n.store.Term(base.index)
		if err != nil {
			return err
		}
		base.term = t
		ch, ok := c.chains[[2]uint64{base.index, t}]
		if !ok {
			c.fail("Log Matching", "node %d recovered a log starting after %d/%d, an entry no log ever held", n.id, base.index, t)
			return nil
		}
		base.chain = ch
	}
	v.log = shadowLog{base: base}
	v.unconfirmed = nil // what a crash took never existed
	if last < first {
		return nil
	}
	ents, err := n.store.Entries(first, last+1, ^uint64(0))
	if err != nil {
		return err
	}
	prev := base
	for _, e := range ents {
		p := logPos{e.Index, e.Term, chain(prev.chain, e.Term, dataHash(e.Data))}
		if !c.logMatching(n, p) {
			return nil
		}
		v.log.ents = append(v.log.ents, p)
		prev = p
	}
	c.confirm(n, ents) // on disk
	return nil
}
