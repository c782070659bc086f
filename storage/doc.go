// Package storage is raftex's durable storage: it implements raft.Storage
// over a write-ahead log (package wal) and snapshot files (package snap),
// through a file-system seam (package vfs) that tests and the simulator
// replace with a disk that crashes.
//
// A store's directory holds
//
//	DIR/wal/   segments of the log and hard state (see package wal)
//	DIR/snap/  snapshot files (see package snap)
//
// Durability: every write method returns only once what it wrote is on
// disk (fsync), so a node that restarts finds exactly the term, vote, log
// and latest snapshot it had acknowledged (§5.1). Options.UnsafeNoSync
// gives that up, for benchmarks only.
//
// On Open the newest valid snapshot is loaded. A damaged one is reported
// (logged, renamed to .broken) and skipped only when an older valid one and
// the log still cover the state; otherwise Open refuses to start. A
// snapshot whose installation a crash interrupted (committed, but the log
// never reset to it) is discarded: the leader sends it again.
package storage
