package node

import "errors"

var (
	// ErrStopped is returned by every call on a node that is stopping or
	// stopped. A proposal that fails with it may or may not have been
	// committed.
	ErrStopped = errors.New("node: stopped")
	// ErrLeadershipLost is returned when this node stopped leading before a
	// proposal or read finished. A proposal that fails with it may or may
	// not have been committed (retry with the same client session to stay
	// exactly-once).
	ErrLeadershipLost = errors.New("node: leadership lost before the request finished")
	// ErrStorageFailed is returned after a write to the node's storage
	// failed: the node stops, since it cannot keep Raft's promises (§5.1).
	ErrStorageFailed = errors.New("node: storage failed")
	// ErrReadLost is returned when a read request found no answer within
	// two election timeouts (its messages were lost); retry.
	ErrReadLost = errors.New("node: read index request lost")
	// ErrApplyOrder is why the node stops when the core hands its state
	// machine an entry out of log order: a bug, never a condition to
	// retry.
	ErrApplyOrder = errors.New("node: entries applied out of log order")
	// ErrNotCommitted is returned for a proposal whose log index was
	// taken by another leader's entry: it is certainly not applied, and
	// may be proposed again.
	ErrNotCommitted = errors.New("node: proposal overwritten by another leader's entry (not applied)")
	// ErrForwardLost is returned for a proposal forwarded to the leader
	// whose answer never came (or came after its entry was applied): it
	// may or may not have been committed (retry with the same client
	// session to stay exactly-once).
	ErrForwardLost = errors.New("node: the leader's answer to a forwarded proposal was lost")
)

// Not-leader and no-leader errors are the core's: errors.Is(err,
// raft.ErrNotLeader) with errors.As(err, **raft.NotLeaderError) for the
// leader hint, and raft.ErrNoLeader.
