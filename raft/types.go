package raft

import (
	"bytes"
	"fmt"
	"slices"
)

// None is the zero node id: no vote cast, no leader known.
const None uint64 = 0

// Role is the part a node plays in its current term (§5.1, thesis §9.6 for
// PreCandidate).
type Role uint8

const (
	Follower Role = iota
	PreCandidate
	Candidate
	Leader
)

var roleNames = [...]string{"follower", "precandidate", "candidate", "leader"}

func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// EntryType tells the runtime what an entry carries.
type EntryType uint8

const (
	// EntryNormal carries an application command for the state machine.
	EntryNormal EntryType = iota
	// EntryNoop is the empty entry a new leader appends to commit entries of
	// earlier terms (§5.4.2, §8). The state machine never sees it.
	EntryNoop
	// EntryConfChange carries a configuration (thesis §4.1): Data is the
	// whole new Membership (Membership.Marshal), which takes effect on each
	// server as soon as the entry is in its log. The state machine never
	// sees it.
	EntryConfChange
)

func (t EntryType) String() string {
	switch t {
	case EntryNormal:
		return "normal"
	case EntryNoop:
		return "noop"
	case EntryConfChange:
		return "confchange"
	}
	return fmt.Sprintf("entrytype(%d)", uint8(t))
}

// Entry is one slot of the replicated log (§5.3).
type Entry struct {
	Term  uint64
	Index uint64
	Type  EntryType
	Data  []byte
}

// entryOverhead approximates the fixed bytes of an entry on the wire; it is
// what flow control adds to len(Data) when it sizes a message.
const entryOverhead = 24

func (e Entry) size() uint64 { return uint64(len(e.Data)) + entryOverhead }

func entriesSize(ents []Entry) uint64 {
	var n uint64
	for _, e := range ents {
		n += e.size()
	}
	return n
}

// HardState is the state a node must persist before it answers any RPC
// (§5.1, Figure 2 "Persistent state on all servers"). Commit is persisted too
// so a restarted node can re-apply committed entries without waiting for a
// leader; losing it is harmless.
type HardState struct {
	Term   uint64
	Vote   uint64
	Commit uint64
}

// IsEmpty reports whether h is the zero HardState.
func (h HardState) IsEmpty() bool { return h == HardState{} }

// Membership is the cluster configuration as one value (thesis §4): the
// ids of the voting members and of the learners (members that receive the
// log but do not vote or count toward any quorum, §4.2.1). During joint
// consensus (§4.3) Outgoing holds the voters of C_old and Voters those of
// C_new: elections and commitment then need a majority of each. Staging
// are the learners the leader promotes to voters once they have caught
// up (§4.2.1). Contexts holds each member's opaque ConfChange.Context
// (package node: its peer address), so that it travels with the
// configuration in entries and snapshots.
//
// All id lists are kept sorted; Voters, Learners and Outgoing\Voters are
// disjoint and Staging is a subset of Learners. Configuration changes
// replace the whole value; the zero value is the configuration of a
// server that joins and does not know it yet.
type Membership struct {
	Voters   []uint64
	Learners []uint64
	Outgoing []uint64
	Staging  []uint64
	Contexts map[uint64][]byte
}

// NewMembership returns a Membership of the given voters (copied and sorted).
func NewMembership(voters ...uint64) Membership {
	v := slices.Clone(voters)
	slices.Sort(v)
	return Membership{Voters: v}
}

func has(ids []uint64, id uint64) bool {
	_, ok := slices.BinarySearch(ids, id)
	return ok
}

// IsVoter reports whether id votes: it is a voter of C_new or, during
// joint consensus, of C_old.
func (m Membership) IsVoter(id uint64) bool { return has(m.Voters, id) || has(m.Outgoing, id) }

// IsLearner reports whether id is a non-voting member.
func (m Membership) IsLearner(id uint64) bool { return has(m.Learners, id) }

// IsStaging reports whether id is a learner the leader promotes once it
// has caught up.
func (m Membership) IsStaging(id uint64) bool { return has(m.Staging, id) }

// Contains reports whether id is a member of either kind.
func (m Membership) Contains(id uint64) bool { return m.IsVoter(id) || m.IsLearner(id) }

// Joint reports whether m is a joint configuration C_old,new (§4.3).
func (m Membership) Joint() bool { return len(m.Outgoing) > 0 }

// IsEmpty reports whether m has no member at all.
func (m Membership) IsEmpty() bool {
	return len(m.Voters) == 0 && len(m.Learners) == 0 && len(m.Outgoing) == 0
}

// Members returns every member id, voters (of C_new, then of C_old only)
// first, then learners.
func (m Membership) Members() []uint64 {
	out := make([]uint64, 0, len(m.Voters)+len(m.Outgoing)+len(m.Learners))
	out = append(out, m.Voters...)
	for _, id := range m.Outgoing {
		if !has(m.Voters, id) {
			out = append(out, id)
		}
	}
	return append(out, m.Learners...)
}

// Context returns the context the change that added id carried.
func (m Membership) Context(id uint64) []byte { return m.Contexts[id] }

// Quorum is the number of voters that forms a majority of Voters (§5.2).
// During joint consensus a decision needs a majority of Outgoing too; use
// HasQuorum.
func (m Membership) Quorum() int { return len(m.Voters)/2 + 1 }

// HasQuorum reports whether the voters for which ok is true form a
// majority of Voters and, during joint consensus, of Outgoing (§4.3).
func (m Membership) HasQuorum(ok func(id uint64) bool) bool {
	return majority(m.Voters, ok) && (!m.Joint() || majority(m.Outgoing, ok))
}

func majority(ids []uint64, ok func(id uint64) bool) bool {
	n := 0
	for _, id := range ids {
		if ok(id) {
			n++
		}
	}
	return n >= len(ids)/2+1
}

// quorumIndex returns the highest value reached by a majority of Voters
// and, during joint consensus, of Outgoing (§5.3, §4.3).
func (m Membership) quorumIndex(value func(id uint64) uint64) uint64 {
	v := quorumIndex(m.Voters, value)
	if m.Joint() {
		v = min(v, quorumIndex(m.Outgoing, value))
	}
	return v
}

// Clone returns a deep copy.
func (m Membership) Clone() Membership {
	c := Membership{
		Voters: slices.Clone(m.Voters), Learners: slices.Clone(m.Learners),
		Outgoing: slices.Clone(m.Outgoing), Staging: slices.Clone(m.Staging),
	}
	if len(m.Contexts) > 0 {
		c.Contexts = make(map[uint64][]byte, len(m.Contexts))
		for id, ctx := range m.Contexts {
			c.Contexts[id] = slices.Clone(ctx)
		}
	}
	return c
}

// Equal reports whether m and o are the same configuration.
func (m Membership) Equal(o Membership) bool {
	if !slices.Equal(m.Voters, o.Voters) || !slices.Equal(m.Learners, o.Learners) ||
		!slices.Equal(m.Outgoing, o.Outgoing) || !slices.Equal(m.Staging, o.Staging) ||
		len(m.Contexts) != len(o.Contexts) {
		return false
	}
	for id, ctx := range m.Contexts {
		if oc, ok := o.Contexts[id]; !ok || !bytes.Equal(ctx, oc) {
			return false
		}
	}
	return true
}

// Validate checks the invariants: at least one voter, sorted, no zero id,
// no duplicates, no id both voter and learner, staging ids are learners,
// contexts belong to members.
func (m Membership) Validate() error {
	if len(m.Voters) == 0 {
		return fmt.Errorf("raft: membership has no voters")
	}
	check := func(ids []uint64, what string) error {
		for i, id := range ids {
			if id == None {
				return fmt.Errorf("raft: membership %s contain the reserved id 0", what)
			}
			if i > 0 && ids[i-1] >= id {
				return fmt.Errorf("raft: membership %s %v are not sorted and unique", what, ids)
			}
		}
		return nil
	}
	for _, l := range []struct {
		ids  []uint64
		what string
	}{{m.Voters, "voters"}, {m.Learners, "learners"}, {m.Outgoing, "outgoing voters"}, {m.Staging, "staging learners"}} {
		if err := check(l.ids, l.what); err != nil {
			return err
		}
	}
	for _, id := range m.Learners {
		if m.IsVoter(id) {
			return fmt.Errorf("raft: node %d is both voter and learner", id)
		}
	}
	for _, id := range m.Staging {
		if !m.IsLearner(id) {
			return fmt.Errorf("raft: staging node %d is not a learner", id)
		}
	}
	for id := range m.Contexts {
		if !m.Contains(id) {
			return fmt.Errorf("raft: membership has a context for node %d, not a member", id)
		}
	}
	return nil
}

func (m Membership) String() string {
	s := fmt.Sprintf("voters=%v", m.Voters)
	if m.Joint() {
		s += fmt.Sprintf(" outgoing=%v", m.Outgoing)
	}
	if len(m.Learners) > 0 {
		s += fmt.Sprintf(" learners=%v", m.Learners)
	}
	if len(m.Staging) > 0 {
		s += fmt.Sprintf(" staging=%v", m.Staging)
	}
	return s
}

// SnapshotMeta describes a snapshot: the last log entry it replaces and the
// membership in force at that entry (§7).
type SnapshotMeta struct {
	Index      uint64
	Term       uint64
	Membership Membership
}

// Snapshot is a compacted prefix of the log (§7). Data is opaque to the
// core. It may be nil when the runtime moves the snapshot body out of band:
// the TCP transport streams it from the snapshot file instead of holding it
// in memory.
type Snapshot struct {
	Meta SnapshotMeta
	Data []byte
}

// IsEmpty reports whether s describes no snapshot.
func (s Snapshot) IsEmpty() bool { return s.Meta.Index == 0 }
