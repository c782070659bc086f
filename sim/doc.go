// Package sim is raftex's deterministic simulator: whole clusters of 3, 5
// or 7 nodes built from the code users run (the raft core; package node's
// Ready step machine, applier and request registry; package server's
// retry policy; the storage WAL and snapshots over an in-memory disk that
// can lose power; the kv state machine; the transport's wire codec),
// driven single-threaded on virtual time by one seed, under every fault
// at once, and checked after every step. Only the clock, the network and
// the disk are simulated.
//
// One run (Run):
//
//  1. Fault phase (5–16 s of virtual time, drawn from the seed): clients
//     issue put, get (linearizable or under the leader's lease), delete
//     and compare-and-set on a few keys through nodes of their choice,
//     with timeouts and retries in exactly-once sessions, while faults hit
//     the network (drop, duplicate, delay, reorder, symmetric and one-way
//     partitions), the nodes (crash and restart from what the disk kept,
//     pause, clock skew, a slow state machine) and the disks (slow
//     fsync). Each node runs node.Machine: its durable write takes virtual
//     time, and the core keeps taking ticks and messages meanwhile.
//  2. Liveness: the faults stop, every node comes back; within ten
//     election timeouts a leader must be elected and every pending
//     operation completed, then every node must apply the whole log.
//  3. The end: the state machines agree, no acknowledged write was lost,
//     and porcupine finds the client history linearizable.
//
// The checker (checks.go) runs at every Ready: Figure 3's Election
// Safety, Leader Append-Only, Log Matching, Leader Completeness and State
// Machine Safety, and the promises behind them (see checker).
//
// Determinism: all randomness comes from PCG streams of the seed; the
// event queue orders by (virtual time, sequence number); no goroutine,
// wall clock or map order reaches a run. A run folds every step into a
// trace hash, and two runs of one seed must agree on it. A failing run
// prints the command that replays it (Result.Repro) and SaveArtifacts
// writes its readable trace and, for a history that is not linearizable,
// porcupine's visualisation. docs/testing.md has the rest.
package sim
