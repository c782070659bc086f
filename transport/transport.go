// Package transport moves raft messages between nodes. It defines the
// Transport interface the runtime (package node) drives; transport/tcp
// implements it over TCP and transport/mem in memory for tests.
package transport

import (
	"io"

	"github.com/raftex/raftex/raft"
)

// Handler receives what a Transport delivers. The runtime implements it.
//
// Threading: every method may be called from any transport goroutine and
// concurrently; none may block for long (the runtime queues and returns).
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
	// src supplies snapshot bodies to send.
	Start(h Handler, src SnapshotSource) error
	// Send queues messages for their destinations and returns at once: it
	// never blocks the caller. A message whose peer queue is full is
	// dropped and counted (Raft tolerates loss). A MsgSnap's body is
	// streamed from the SnapshotSource, never held whole in memory.
	Send(msgs []raft.Message)
	// AddPeer makes peer id reachable at addr (replacing an older addr).
	AddPeer(id uint64, addr string)
	// RemovePeer forgets peer id and closes its connections.
	RemovePeer(id uint64)
	// Stats returns counters of the traffic so far.
	Stats() Stats
	// Stop closes every connection and returns once every goroutine of
	// the transport has ended.
	Stop() error
}

// Stats counts traffic by message type. Safe to read after Stats returns;
// the maps are copies.
type Stats struct {
	MessagesSent     map[raft.MessageType]uint64
	MessagesReceived map[raft.MessageType]uint64
	BytesSent        uint64
	BytesReceived    uint64
	// Dropped counts messages dropped because a peer queue was full or the
	// peer was unreachable.
	Dropped uint64
}
