package raft

import (
	"errors"
	"fmt"
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

// ProposeConfChange appends a configuration entry carrying ccs and returns
// its index and term. The new configuration takes effect on each server as
// soon as the entry is in its log (thesis §4.1). One change of at most one
// voter is applied as is (§4.1); several voter changes go through joint
// consensus (§4.3), which the leader enters with this entry and leaves by
// itself once it commits.
func (r *Raft) ProposeConfChange(ccs ...ConfChange) (index, term uint64, err error) {
	return 0, 0, errors.New("raft: ProposeConfChange: not implemented yet")
}
