// Package mem is an in-memory network of transports for tests: no
// sockets, every fault drawn from one seed, and it runs inside
// testing/synctest bubbles (delays are time timers, so virtual time drives
// them).
//
//	net := mem.NewNetwork(seed)
//	t1 := net.Transport(1) // a transport.Transport for node 1
//	net.Partition([]uint64{1}, []uint64{2, 3})
//	net.SetDropRate(0.1)
//	net.Heal()
//
// Every message is encoded with the transport codec when sent and decoded
// when delivered, so no two nodes share memory and the codec is exercised
// by every test that uses this network.
//
// # Faults
//
// Partition, Cut, SetDropRate, SetDuplicateRate, SetDelay and SetReorder
// apply to messages sent after the call; a partition or cut also drops
// messages still in flight when their delivery time comes. The random
// choices of each directed link come from its own generator seeded from
// the network's seed and the link, so one node's traffic does not change
// the faults another link sees.
//
// Unlike transport/tcp, every node of the network is reachable without
// AddPeer (its address is ignored); RemovePeer(id) drops traffic to id
// and refuses traffic from it until AddPeer(id, ...). A node that is not
// started, stopped or refusing counts as down: the sender's Handler gets
// ReportUnreachable, as a refused dial would give.
//
// # Goroutines
//
// Each Transport starts, once started:
//   - link: one per destination it has sent to; owns that link's queue
//     and the messages waiting for their delivery time; delivers them
//     by calling the receiver's Handler; ends when the sender stops or
//     removes the peer.
//   - snapshot: one per MsgSnap delivered; reads the body from the
//     sender's SnapshotSource into the receiver's ReceiveSnapshot, then
//     reports to the sender; ends with the call.
//   - report: a short one that reports a MsgSnap lost before it reached
//     its link (queue full, a fault) with ReportSnapshot(to, false).
//
// Stop waits for all of them, and for every call into its own Handler
// made by other transports' goroutines; no Handler call is made after
// Stop returns. Locks are never held while calling a Handler.
package mem
