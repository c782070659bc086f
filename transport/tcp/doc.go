// Package tcp is a transport.Transport over TCP, speaking the frames drawn
// in package transport.
//
// # Streams
//
// Each node dials one persistent message stream to each peer and writes
// its messages there; the peer only reads it (so a pair of nodes shares
// two connections, one per direction). A dial opens with a handshake (the
// dialer's hello names the cluster, itself and the node it means to
// reach); the acceptor refuses another cluster, an unknown or own id, or a
// hello meant for another node, and both sides log the refusal as an
// error.
//
// # TLS
//
// With Config.TLS every connection is mutual TLS (1.3, 1.2 at least)
// before its first frame: plaintext, or a certificate chain the CA does not
// verify, fails the handshake and is refused. Then the acceptor checks that
// the dialer's certificate names the node its hello claims, and the dialer
// that the acceptor's names the node it dialed (TLS.VerifyPeer), so a
// connection is bound to one node, and a message on it claiming another
// sender closes it. Refusal reasons go to the dialer and never name this
// node's cluster id.
//
// Send never blocks: it puts each message on its peer's queue (QueueSize
// messages) and drops it, counted in Stats.Dropped, if the queue is full.
// One sender goroutine per peer takes what is queued, encodes as much as
// is waiting into one buffer and writes it with a single write. A failed
// dial or write drops the messages in hand, reports the peer unreachable,
// and the next message redials after a capped exponential backoff with
// jitter (BackoffMin doubling up to BackoffMax); meanwhile messages queue,
// and drop once the queue is full.
//
// # Snapshots
//
// A MsgSnap goes on a connection of its own (one at a time per peer) so
// heartbeats keep flowing: the MsgSnap with the snapshot's meta, the body
// read from the SnapshotSource in chunks of 256 KiB, and the body's
// length; the receiver answers whether its Handler stored it, and the
// sender reports that with Handler.ReportSnapshot. The receiver's Handler
// reads the body from an io.Reader that pulls chunks off the connection as
// it goes, so neither side holds more than a chunk, and TCP's flow control
// slows the sender to the pace of the receiver's disk.
//
// # Bad input
//
// A frame that is oversized, of another version, of unknown kind, fails
// its checksum or does not decode, or a message that claims another
// sender, closes that one connection with a warning in the log; the
// transport goes on serving every other connection.
//
// # Goroutines
//
//   - accept: one; owns the listener; starts a reader per connection;
//     ends when Stop closes the listener.
//   - reader: one per inbound connection; owns it; answers the hello,
//     then delivers messages (or receives one snapshot) until the peer
//     closes it, a frame is bad, or Stop or RemovePeer closes it.
//   - sender: one per peer; owns the peer's outbound message connection,
//     backoff and batch buffer; ends when the peer's context is canceled
//     (Stop, RemovePeer, AddPeer with a new address).
//   - snapshot: at most one per peer while a snapshot is streamed; owns
//     its connection and the body; ends with the stream, or when Stop or
//     RemovePeer closes its connection.
//
// Stop closes the listener and every connection, cancels every peer and
// waits for all of them; no Handler call happens after Stop returns.
package tcp
