package raft

import (
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
)

func (t EntryType) String() string {
	switch t {
	case EntryNormal:
		return "normal"
	case EntryNoop:
		return "noop"
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

// Membership is the cluster configuration as one value: the ids of the
// voting members and of the learners (members that receive the log but do
// not vote or count toward any quorum). Both lists are kept sorted and
// disjoint. Membership changes (thesis §4) replace the whole value.
type Membership struct {
	Voters   []uint64
	Learners []uint64
}

// NewMembership returns a Membership of the given voters (copied and sorted).
func NewMembership(voters ...uint64) Membership {
	v := slices.Clone(voters)
	slices.Sort(v)
	return Membership{Voters: v}
}

// IsVoter reports whether id votes.
func (m Membership) IsVoter(id uint64) bool {
	_, ok := slices.BinarySearch(m.Voters, id)
	return ok
}

// IsLearner reports whether id is a non-voting member.
func (m Membership) IsLearner(id uint64) bool {
	_, ok := slices.BinarySearch(m.Learners, id)
	return ok
}

// Contains reports whether id is a member of either kind.
func (m Membership) Contains(id uint64) bool { return m.IsVoter(id) || m.IsLearner(id) }

// Members returns every member id, voters first.
func (m Membership) Members() []uint64 {
	out := make([]uint64, 0, len(m.Voters)+len(m.Learners))
	out = append(out, m.Voters...)
	return append(out, m.Learners...)
}

// Quorum is the number of voters that forms a majority (§5.2).
func (m Membership) Quorum() int { return len(m.Voters)/2 + 1 }

// Clone returns a deep copy.
func (m Membership) Clone() Membership {
	return Membership{Voters: slices.Clone(m.Voters), Learners: slices.Clone(m.Learners)}
}

// Equal reports whether m and o have the same members.
func (m Membership) Equal(o Membership) bool {
	return slices.Equal(m.Voters, o.Voters) && slices.Equal(m.Learners, o.Learners)
}

// Validate checks the invariants: at least one voter, sorted, no zero id,
// no duplicates, no id in both lists.
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
	if err := check(m.Voters, "voters"); err != nil {
		return err
	}
	if err := check(m.Learners, "learners"); err != nil {
		return err
	}
	for _, id := range m.Learners {
		if m.IsVoter(id) {
			return fmt.Errorf("raft: node %d is both voter and learner", id)
		}
	}
	return nil
}

func (m Membership) String() string {
	if len(m.Learners) == 0 {
		return fmt.Sprintf("voters=%v", m.Voters)
	}
	return fmt.Sprintf("voters=%v learners=%v", m.Voters, m.Learners)
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
