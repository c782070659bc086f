// Package raft is the Raft consensus protocol as a deterministic state
// machine (Ongaro & Ousterhout 2014; Ongaro's 2014 thesis). It has no
// goroutines, no clock and no I/O: time enters through Tick, messages
// through Step, client work through Propose and ReadIndex, and everything
// the caller must do leaves through Ready and returns through Advance.
// The same inputs always produce the same outputs, so every rule can be
// tested in isolation and every run replayed from a seed.
//
// What it implements, with the section of the paper or thesis each rule
// cites in the code:
//
//   - leader election with randomized timeouts, PreVote and CheckQuorum
//     (§5.2, §5.4.1, thesis §9.6, §6.2, §4.2.3);
//   - log replication with the consistency check, conflict-aware
//     truncation, a conflict-term hint, pipelining and flow control (§5.3);
//   - commitment by majority, only of current-term entries, with a no-op
//     at the start of each term (§5.4.2, §8);
//   - durability before speech: replies that depend on persisted state
//     leave only after it is durable (§5.1), while the leader writes its
//     own log in parallel with replication (thesis §10.2.1);
//   - snapshots and InstallSnapshot (§7);
//   - linearizable reads by ReadIndex, batched per heartbeat round, and
//     optional leases (thesis §6.4, §6.4.1);
//   - leadership transfer (thesis §3.10);
//   - bounded memory: committed entries are handed out only while the
//     state machine keeps up (Config.MaxApplyingBytes, AppliedTo), and a
//     leader holds a bounded number of reads (Config.MaxPendingReads).
//
// A minimal driver loop:
//
//	for {
//		// ... r.Tick() every tick, r.Step(m) for each message received ...
//		if !r.HasReady() {
//			continue
//		}
//		rd := r.Ready()
//		send(rd.Messages)                             // may precede the fsync
//		persist(rd.Snapshot, rd.Entries, rd.HardState) // fsync
//		send(rd.MessagesAfterPersist)
//		apply(rd.CommittedEntries)
//		r.Advance(rd)
//		r.AppliedTo(last(rd.CommittedEntries)) // when applied; may be later
//	}
package raft
