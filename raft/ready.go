package raft

// Ready is the core's output: everything the caller must do, in one batch.
// Get it with Raft.Ready when Raft.HasReady reports true, do the work, then
// call Raft.Advance(rd). The rules, in order:
//
//  1. Messages may be sent at once, even before step 2 finishes. They are
//     the leader's AppendEntries, heartbeats and snapshots, which depend
//     only on state already durable (thesis §10.2.1: the leader writes its
//     log in parallel with replicating it), and a follower's requests to
//     the leader (forwarded proposals and reads). While step 2 runs,
//     TakeMessages hands out more of them as they are produced. Unless
//     the Ready installs a Snapshot, CommittedEntries may be applied at
//     once too: they are committed and already durable here, so a busy
//     node applies one batch while it writes the next.
//  2. If MustSync, persist durably (fsync) Snapshot if it is set, then
//     Entries, then HardState if it is not empty. A Snapshot's body travels out of band
//     (Snapshot.Data may be nil): the runtime stores the body it received
//     before stepping the InstallSnapshot message, so here it only makes
//     the snapshot the log's base. Entries replace any stored entry at or
//     after Entries[0].Index (§5.3). A Snapshot replaces the whole log and
//     the state machine must be restored from it before CommittedEntries
//     are applied (§7).
//  3. Only after step 2 is durable: send MessagesAfterPersist (votes and
//     AppendEntries replies, §5.1: never speak of state that is not yet
//     on disk), then, if the Ready installs a Snapshot, restore the state
//     machine from it and apply CommittedEntries after it. Entries apply
//     in log order, each once.
//  4. A ReadState may be served once the state machine has applied through
//     its Index (thesis §6.4).
//  5. Call Advance(rd). Between Ready and Advance the caller may keep
//     calling Tick, Step, Propose and ReadIndex (their output goes into the
//     next Ready), but not Ready itself.
//  6. Once the state machine has applied CommittedEntries, report it with
//     AppliedTo — right after step 3, or later from another goroutine's
//     progress. The core hands out more committed entries only while
//     those not yet reported stay under Config.MaxApplyingBytes.
//
// Events are observations only; handle them whenever convenient.
type Ready struct {
	// HardState to persist; empty when unchanged since the last Ready.
	HardState HardState
	// Entries to append to stable storage.
	Entries []Entry
	// Snapshot to install, received from the leader (§7); nil if none.
	Snapshot *Snapshot
	// Messages that may be sent before persisting (rule 1).
	Messages []Message
	// MessagesAfterPersist must be sent only after persisting (rule 3).
	MessagesAfterPersist []Message
	// CommittedEntries to apply to the state machine, in order; all are
	// committed and already durable on this node (rule 1).
	CommittedEntries []Entry
	// ReadStates are linearizable reads confirmed by a quorum.
	ReadStates []ReadState
	// ProposalResults answer ForwardProposal: where the leader appended
	// the proposals, or why it did not. They may be acted on at once.
	ProposalResults []ProposalResult
	// Events that happened since the last Ready.
	Events []Event

	mustSync bool
}

// ReadState is a read confirmed safe (thesis §6.4): once the state machine
// has applied through Index, a read of it is linearizable for the request
// identified by RequestCtx.
type ReadState struct {
	Index      uint64
	RequestCtx []byte
}

// IsEmpty reports whether rd asks nothing of the caller.
func (rd *Ready) IsEmpty() bool {
	return rd.HardState.IsEmpty() && len(rd.Entries) == 0 && rd.Snapshot == nil &&
		len(rd.Messages) == 0 && len(rd.MessagesAfterPersist) == 0 &&
		len(rd.CommittedEntries) == 0 && len(rd.ReadStates) == 0 && len(rd.ProposalResults) == 0 && len(rd.Events) == 0
}

// MustSync reports whether step 2 has anything that must be durable before
// the node speaks again: entries, a snapshot, or a new term or vote (§5.1:
// currentTerm, votedFor and the log are the persistent state). A HardState
// whose only change is Commit need not be synced: the caller may skip it
// or write it with the next sync, since a lost commit index is learned
// again from the leader.
func (rd *Ready) MustSync() bool { return rd.mustSync }
