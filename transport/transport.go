package transport

import (
	"io"

	"github.com/raftex/raftex/raft"
)

// Handler receives what a Transport delivers. The runtime implements it.
//
// Threading: every method may be called from any transport goroutine and
// concurrently; none may block for long (the runtime queues and returns)
// and none may call the transport's Stop (Stop waits for them). No method
// is called after Stop returns.
type Handler interface {
	// Deliver hands an inbound message to the node.
	Deliver(m raft.Message)
	// ReceiveSnapshot is called for an inbound InstallSnapshot (MsgSnap)
	// whose body arrives as a stream. The handler stores the body, then
	// delivers m itself. body is valid only during the call. An error
	// means the body was not stored; the sender is told it failed.
	ReceiveSnapshot(m raft.Message, body io.Reader) error
	// ReportUnreachable tells the node that sending to peer id failed.
	ReportUnreachable(id uint64)
	// ReportSnapshot tells the node that streaming a snapshot to peer id
	// ended, successfully or not.
	ReportSnapshot(id uint64, ok bool)
}

// SnapshotSource opens the body of a snapshot the node is sending.
// Implemented by the runtime over its snapshot files.
type SnapshotSource interface {
	// OpenSnapshot returns the body of the snapshot described by meta and
	// its size in bytes. The caller closes it.
	OpenSnapshot(meta raft.SnapshotMeta) (io.ReadCloser, int64, error)
}

// Transport sends and receives raft messages for one node.
type Transport interface {
	// Start begins accepting and sending: h receives inbound traffic and
	// src supplies snapshot bodies to send. It may be called once; it
	// returns ErrStarted after a first Start and ErrStopped after Stop.
	Start(h Handler, src SnapshotSource) error
	// Send queues messages for their destinations and returns at once: it
	// never blocks the caller. A message whose peer queue is full is
	// dropped and counted (Raft tolerates loss). A MsgSnap's body is
	// streamed from the SnapshotSource, never held whole in memory
	// (Snapshot.Data is not sent), and its outcome is reported with
	// Handler.ReportSnapshot.
	//
	// Ownership: the transport may read the messages' Entries, Data and
	// Context until they are written out; the caller must not modify them
	// after Send (the core never does: log entries are immutable).
	Send(msgs []raft.Message)
	// AddPeer makes peer id reachable at addr (replacing an older addr).
	AddPeer(id uint64, addr string)
	// RemovePeer forgets peer id and closes its connections.
	RemovePeer(id uint64)
	// Stats returns counters of the traffic so far.
	Stats() Stats
	// Stop closes every connection and returns once every goroutine of
	// the transport has ended and no Handler call is in progress. Later
	// calls do nothing; Send after Stop drops.
	Stop() error
}

// Stats counts traffic by message type. Safe to read after Stats returns;
// the maps are copies.
type Stats struct {
	MessagesSent     map[raft.MessageType]uint64
	MessagesReceived map[raft.MessageType]uint64
	// BytesSent and BytesReceived count encoded bytes, snapshot bodies
	// included.
	BytesSent     uint64
	BytesReceived uint64
	// Dropped counts messages dropped because a peer queue was full, the
	// peer was unknown or unreachable, or (transport/mem) a fault said so.
	Dropped uint64
}
