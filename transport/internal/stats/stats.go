// Package stats counts a transport's traffic for transport.Stats.
package stats

import (
	"sync/atomic"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
)

// Counters is safe for concurrent use; the zero value is ready.
type Counters struct {
	sent, received           [256]atomic.Uint64 // by raft.MessageType
	bytesSent, bytesReceived atomic.Uint64
	dropped                  atomic.Uint64
}

// Sent counts one message of type t and its bytes on the wire.
func (c *Counters) Sent(t raft.MessageType, bytes int) {
	c.sent[t].Add(1)
	c.bytesSent.Add(uint64(bytes))
}

// Received counts one message of type t and its bytes on the wire.
func (c *Counters) Received(t raft.MessageType, bytes int) {
	c.received[t].Add(1)
	c.bytesReceived.Add(uint64(bytes))
}

// SentBytes counts bytes that are not a message (snapshot bodies).
func (c *Counters) SentBytes(n int) { c.bytesSent.Add(uint64(n)) }

// ReceivedBytes counts bytes that are not a message (snapshot bodies).
func (c *Counters) ReceivedBytes(n int) { c.bytesReceived.Add(uint64(n)) }

// Dropped counts n dropped messages.
func (c *Counters) Dropped(n int) { c.dropped.Add(uint64(n)) }

// Stats returns a copy of the counters; the maps hold only non-zero types.
func (c *Counters) Stats() transport.Stats {
	s := transport.Stats{
		MessagesSent:     map[raft.MessageType]uint64{},
		MessagesReceived: map[raft.MessageType]uint64{},
		BytesSent:        c.bytesSent.Load(),
		BytesReceived:    c.bytesReceived.Load(),
		Dropped:          c.dropped.Load(),
	}
	for t := range c.sent {
		if n := c.sent[t].Load(); n > 0 {
			s.MessagesSent[raft.MessageType(t)] = n
		}
		if n := c.received[t].Load(); n > 0 {
			s.MessagesReceived[raft.MessageType(t)] = n
		}
	}
	return s
}
