package raft

// plantedBugs are deliberate violations of the paper, each behind its own
// switch, so tests can show that the property tests and the simulator catch
// them. They can only be switched on in binaries built with the raftbugs
// tag (see bugs_raftbugs.go); in every other build they stay false.
type plantedBugs struct {
	// CommitOldTerm commits entries of earlier terms by counting replicas,
	// the mistake of Figure 8 (§5.4.2).
	CommitOldTerm bool
	// SkipElectionRestriction grants votes without the §5.4.1 up-to-date
	// check.
	SkipElectionRestriction bool
	// VoteBeforePersist sends vote replies before the vote is durable
	// (§5.1).
	VoteBeforePersist bool
	// ApplyUncommitted hands entries to the state machine before they are
	// committed (§5.3).
	ApplyUncommitted bool
	// LeadBeforePersist lets a leader send before its term and vote are
	// durable (§5.1), as a single voter that wins at once would.
	LeadBeforePersist bool
	// LeaseInTicks measures the leader lease in ticks instead of on the
	// clock (thesis §6.4.1): a stalled leader keeps a lease that ended.
	LeaseInTicks bool
	// TruncateMatchingSuffix lets a stale AppendEntries cut off matching
	// entries that follow it (§5.3 rule 3).
	TruncateMatchingSuffix bool
	// ConcurrentConfChanges lets the leader start a configuration change
	// while an earlier one is uncommitted (thesis §4.1: one at a time),
	// so two changes of one voter each add up to two: majorities of the
	// configurations before and after need not overlap.
	ConcurrentConfChanges bool
}

var bugs plantedBugs
