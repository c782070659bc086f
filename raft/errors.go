package raft

import (
	"errors"
	"fmt"
)

var (
	// ErrNotLeader is returned by Propose on a node that does not lead; the
	// returned error is a *NotLeaderError naming the known leader.
	ErrNotLeader = errors.New("raft: not leader")
	// ErrProposalDropped is returned by Propose while the leader is handing
	// off leadership or holds more uncommitted data than allowed.
	ErrProposalDropped = errors.New("raft: proposal dropped")
	// ErrReadDropped is returned by ReadIndex and ReadLease on a leader
	// that already holds MaxPendingReads reads.
	ErrReadDropped = errors.New("raft: read dropped: too many pending reads")
	// ErrNoLeader is returned by ReadIndex when no leader is known to ask.
	ErrNoLeader = errors.New("raft: no leader known")
	// ErrTransferring is returned by Propose and ProposeConfChange while
	// the leader hands off leadership (thesis §3.10); it is an
	// ErrProposalDropped.
	ErrTransferring = fmt.Errorf("%w: leadership transfer in progress", ErrProposalDropped)
	// ErrTransferTarget is returned by TransferLeadership for a target that
	// is not a voting member or is this node.
	ErrTransferTarget = errors.New("raft: invalid leadership transfer target")
)

// NotLeaderError tells a caller where to go instead (§8: clients are
// redirected to the leader). Leader is None when no leader is known.
type NotLeaderError struct {
	Leader uint64
}

func (e *NotLeaderError) Error() string {
	if e.Leader == None {
		return "raft: not leader (no leader known)"
	}
	return fmt.Sprintf("raft: not leader (leader is %d)", e.Leader)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }
