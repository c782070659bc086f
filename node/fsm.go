package node

import (
	"io"

	"github.com/raftex/raftex/raft"
)

// FSM is the replicated state machine the node drives.
//
// Threading: Apply, Snapshot and Restore are called from one goroutine (the
// apply goroutine), in log order, never concurrently with each other. A
// snapshot's WriteTo runs on another goroutine, concurrently with later
// Apply calls: Snapshot must capture a point-in-time view cheaply (copy on
// write) so a long write never stalls applying. A slow Apply delays only
// the Propose and Read calls waiting for it, never heartbeats; Stop waits
// for a running Apply or WriteTo to return.
type FSM interface {
	// Apply applies a committed entry (Type raft.EntryNormal) and returns
	// the result handed to whoever proposed it. It must be deterministic:
	// every node applies the same entries in the same order. e.Data is
	// shared with the log: read it, keep it, but never modify it.
	Apply(e raft.Entry) any
	// Snapshot captures the state after the last applied entry.
	Snapshot() (FSMSnapshot, error)
	// Restore replaces the whole state with a snapshot body written by
	// FSMSnapshot.WriteTo.
	Restore(r io.Reader) error
}

// FSMSnapshot is a point-in-time view of an FSM being written out.
type FSMSnapshot interface {
	// WriteTo streams the state to w.
	WriteTo(w io.Writer) (int64, error)
	// Release frees the view; called once WriteTo has returned.
	Release()
}
