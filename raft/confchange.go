package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// ConfChangeType says what one ConfChange does to the configuration
// (thesis §4).
type ConfChangeType uint8

const (
	// AddLearner adds a member that receives the log but neither votes
	// nor counts toward any quorum (thesis §4.2.1), and stays so.
	AddLearner ConfChangeType = iota + 1
	// AddVoter promotes a learner to voter; a server that is not yet a
	// member joins as a learner that the leader promotes once it has
	// caught up (thesis §4.2.1).
	AddVoter
	// RemoveMember removes a voter or a learner (thesis §4.2.2).
	RemoveMember
)

func (t ConfChangeType) String() string {
	switch t {
	case AddLearner:
		return "add-learner"
	case AddVoter:
		return "add-voter"
	case RemoveMember:
		return "remove"
	}
	return fmt.Sprintf("confchange(%d)", uint8(t))
}

// ConfChange is one change of the configuration. Context is opaque to the
// core; it is kept with the member in the Membership (package node puts
// the member's peer address there) and replaced by a later change that
// carries one.
type ConfChange struct {
	Type    ConfChangeType
	ID      uint64
	Context []byte
}

var (
	// ErrConfChangePending is returned by ProposeConfChange while an
	// earlier configuration entry is not committed yet (thesis §4.1: one
	// change at a time), and is wrapped with the reason.
	ErrConfChangePending = errors.New("raft: a configuration change is pending")
	// ErrInvalidConfChange is returned, wrapped with the reason, for a
	// change that names no member to remove, adds a member twice, would
	// leave no voter, and the like.
	ErrInvalidConfChange = errors.New("raft: invalid configuration change")
)

// ProposeConfChange appends a configuration entry carrying the
// configuration that ccs make of the current one, and returns its index
// and term. The new configuration takes effect on each server as soon as
// the entry is in its log, committed or not (thesis §4.1). A change of at
// most one voter is applied as is (§4.1); several voter changes go through
// joint consensus (§4.3): this entry enters C_old,new, and the leader
// appends C_new by itself once it commits.
//
// It refuses (ErrConfChangePending) while an earlier configuration entry
// is not committed, and until the leader has committed an entry of its own
// term: a new leader may not know yet that the previous leader's change
// was superseded (the single-server change bug, raft-dev 2015, thesis
// §4.1 errata). Invalid changes fail with ErrInvalidConfChange naming the
// reason; during a transfer, ErrTransferring.
func (r *Raft) ProposeConfChange(ccs ...ConfChange) (index, term uint64, err error) {
	if r.role != Leader {
		return 0, 0, &NotLeaderError{Leader: r.lead}
	}
	if r.leadTransferee != None {
		return 0, 0, ErrTransferring
	}
	if err := r.confChangeAllowed(); err != nil {
		return 0, 0, err
	}
	next, err := r.membership.apply(ccs)
	if err != nil {
		return 0, 0, err
	}
	return r.appendConf(next), r.term, nil
}

// confChangeAllowed reports why the leader may not start a configuration
// change now, if it may not.
func (r *Raft) confChangeAllowed() error {
	if i := r.lastConfIndex(); i > r.log.committed && !bugs.ConcurrentConfChanges {
		return fmt.Errorf("%w: the configuration entry at index %d is not committed yet (thesis §4.1: one change at a time)", ErrConfChangePending, i)
	}
	if r.membership.Joint() {
		return fmt.Errorf("%w: the cluster is leaving joint consensus (thesis §4.3)", ErrConfChangePending)
	}
	if !r.committedInTerm() {
		return fmt.Errorf("%w: the leader has not committed an entry of its term yet", ErrConfChangePending)
	}
	return nil
}

// appendConf appends a configuration entry of next and returns its index.
func (r *Raft) appendConf(next Membership) uint64 {
	i := r.log.lastIndex() + 1
	r.appendEntry(Entry{Term: r.term, Index: i, Type: EntryConfChange, Data: next.Marshal()})
	return i
}

// apply returns the configuration ccs make of m, or why they cannot.
func (m Membership) apply(ccs []ConfChange) (Membership, error) {
	invalid := func(format string, args ...any) (Membership, error) {
		return Membership{}, fmt.Errorf("%w: %s", ErrInvalidConfChange, fmt.Sprintf(format, args...))
	}
	if len(ccs) == 0 {
		return invalid("no change")
	}
	next := m.Clone()
	seen := map[uint64]bool{}
	voterChanges := 0
	for _, cc := range ccs {
		if cc.ID == None {
			return invalid("id 0 is reserved")
		}
		if seen[cc.ID] {
			return invalid("node %d is named twice", cc.ID)
		}
		seen[cc.ID] = true
		switch cc.Type {
		case AddLearner, AddVoter:
			switch {
			case next.IsVoter(cc.ID):
				return invalid("node %d is already a voter", cc.ID)
			case cc.Type == AddLearner && next.IsLearner(cc.ID):
				return invalid("node %d is already a learner", cc.ID)
			case cc.Type == AddVoter && next.IsLearner(cc.ID):
				// Promotion (thesis §4.2.1).
				next.Learners = remove(next.Learners, cc.ID)
				next.Staging = remove(next.Staging, cc.ID)
				next.Voters = insert(next.Voters, cc.ID)
				voterChanges++
			default:
				// A new server joins as a learner; AddVoter has the leader
				// promote it once it has caught up (§4.2.1).
				next.Learners = insert(next.Learners, cc.ID)
				if cc.Type == AddVoter {
					next.Staging = insert(next.Staging, cc.ID)
				}
			}
			if cc.Context != nil {
				if next.Contexts == nil {
					next.Contexts = map[uint64][]byte{}
				}
				next.Contexts[cc.ID] = slices.Clone(cc.Context)
			}
		case RemoveMember:
			switch {
			case next.IsVoter(cc.ID):
				next.Voters = remove(next.Voters, cc.ID)
				voterChanges++
			case next.IsLearner(cc.ID):
				next.Learners = remove(next.Learners, cc.ID)
				next.Staging = remove(next.Staging, cc.ID)
			default:
				return invalid("node %d is not a member", cc.ID)
			}
			delete(next.Contexts, cc.ID)
		default:
			return invalid("unknown change type %d", cc.Type)
		}
	}
	if len(next.Voters) == 0 {
		return invalid("no voter would be left")
	}
	if voterChanges > 1 {
		next.Outgoing = slices.Clone(m.Voters) // enter C_old,new (§4.3)
		// The voters leaving still vote in C_old,new: keep their contexts
		// (peer addresses) until C_new, which drops them (leaveJoint).
		for _, id := range next.Outgoing {
			if c, ok := m.Contexts[id]; ok && !has(next.Voters, id) {
				if next.Contexts == nil {
					next.Contexts = map[uint64][]byte{}
				}
				next.Contexts[id] = slices.Clone(c)
			}
		}
	}
	if len(next.Contexts) == 0 {
		next.Contexts = nil
	}
	return next, nil
}

// leaveJoint is C_new of the joint configuration m (§4.3).
func (m Membership) leaveJoint() Membership {
	next := m.Clone()
	next.Outgoing = nil
	for id := range next.Contexts {
		if !next.Contains(id) {
			delete(next.Contexts, id)
		}
	}
	return next
}

// AfterEntry returns the configuration in force after the configuration
// entry e, m being the one in force before it. An entry that does not
// decode, breaks the invariants, or is not a legal step from m (more than
// one voter changed outside joint consensus, §4.1; a joint configuration
// whose C_old is not m, or a C_new that is not the joint one's, §4.3) is
// ignored, with the reason: every server sees the same entries after the
// same configuration, so every server ignores it alike. Package node's
// applier tracks the configuration of its state machine with it.
func (m Membership) AfterEntry(e Entry) (Membership, error) {
	next, err := UnmarshalMembership(e.Data)
	if err != nil {
		return m, err
	}
	if err := next.Validate(); err != nil {
		return m, err
	}
	switch {
	case m.Joint():
		if next.Joint() || !slices.Equal(next.Voters, m.Voters) {
			return m, fmt.Errorf("%w: entry %d does not leave joint consensus to C_new", ErrInvalidConfChange, e.Index)
		}
	case next.Joint():
		if !slices.Equal(next.Outgoing, m.Voters) {
			return m, fmt.Errorf("%w: entry %d enters joint consensus from another configuration", ErrInvalidConfChange, e.Index)
		}
	case len(m.Voters) > 0 && voterDiff(m.Voters, next.Voters) > 1:
		return m, fmt.Errorf("%w: entry %d changes more than one voter without joint consensus", ErrInvalidConfChange, e.Index)
	}
	return next, nil
}

// voterDiff counts the ids in exactly one of a and b.
func voterDiff(a, b []uint64) int {
	n := 0
	for _, id := range a {
		if !has(b, id) {
			n++
		}
	}
	for _, id := range b {
		if !has(a, id) {
			n++
		}
	}
	return n
}

func insert(ids []uint64, id uint64) []uint64 {
	i, ok := slices.BinarySearch(ids, id)
	if ok {
		return ids
	}
	return slices.Insert(ids, i, id)
}

func remove(ids []uint64, id uint64) []uint64 {
	i, ok := slices.BinarySearch(ids, id)
	if !ok {
		return ids
	}
	out := slices.Delete(ids, i, i+1)
	if len(out) == 0 {
		return nil
	}
	return out
}

// Extended reports whether m holds more than voters and learners (joint
// consensus, staging learners, contexts): the encodings that predate
// membership changes carry only those two lists, and append Marshal's
// bytes when Extended.
func (m Membership) Extended() bool {
	return len(m.Outgoing) > 0 || len(m.Staging) > 0 || len(m.Contexts) > 0
}

// membershipVersion is the first byte of Membership.Marshal.
const membershipVersion = 1

// Marshal encodes m: a version byte, then Voters, Learners, Outgoing and
// Staging as a uvarint count and uvarint ids each, then the contexts as a
// count and (id, length, bytes) in id order. It is the payload of a
// configuration entry, and storage and transport carry it to keep what
// their older encodings lack.
func (m Membership) Marshal() []byte {
	buf := []byte{membershipVersion}
	for _, ids := range [][]uint64{m.Voters, m.Learners, m.Outgoing, m.Staging} {
		buf = binary.AppendUvarint(buf, uint64(len(ids)))
		for _, id := range ids {
			buf = binary.AppendUvarint(buf, id)
		}
	}
	ids := make([]uint64, 0, len(m.Contexts))
	for id := range m.Contexts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	buf = binary.AppendUvarint(buf, uint64(len(ids)))
	for _, id := range ids {
		buf = binary.AppendUvarint(buf, id)
		buf = binary.AppendUvarint(buf, uint64(len(m.Contexts[id])))
		buf = append(buf, m.Contexts[id]...)
	}
	return buf
}

// UnmarshalMembership decodes what Marshal encoded.
func UnmarshalMembership(p []byte) (Membership, error) {
	bad := func(what string) (Membership, error) {
		return Membership{}, fmt.Errorf("raft: bad membership encoding: %s", what)
	}
	if len(p) == 0 || p[0] != membershipVersion {
		return bad("unknown version")
	}
	p = p[1:]
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, false
		}
		p = p[n:]
		return v, true
	}
	var lists [4][]uint64
	for i := range lists {
		n, ok := uvarint()
		if !ok || n > uint64(len(p)) {
			return bad("id list cut short")
		}
		for range n {
			id, ok := uvarint()
			if !ok {
				return bad("id cut short")
			}
			lists[i] = append(lists[i], id)
		}
	}
	m := Membership{Voters: lists[0], Learners: lists[1], Outgoing: lists[2], Staging: lists[3]}
	n, ok := uvarint()
	if !ok || n > uint64(len(p)) {
		return bad("contexts cut short")
	}
	for range n {
		id, ok1 := uvarint()
		l, ok2 := uvarint()
		if !ok1 || !ok2 || l > uint64(len(p)) {
			return bad("context cut short")
		}
		if m.Contexts == nil {
			m.Contexts = make(map[uint64][]byte, n)
		}
		m.Contexts[id] = slices.Clone(p[:l])
		p = p[l:]
	}
	if len(p) != 0 {
		return bad("trailing bytes")
	}
	return m, nil
}
