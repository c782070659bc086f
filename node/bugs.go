package node

// plantedBugs are deliberate violations of the Ready contract in the
// runtime, each behind its own switch, so tests can show that the
// simulator, which drives this package's Machine, catches them. They can
// only be switched on in binaries built with the raftbugs tag (see
// bugs_raftbugs.go); in every other build they stay false.
type plantedBugs struct {
	// AckBeforeFsync sends the messages that speak of a write (votes,
	// AppendEntries acknowledgements) before the write is durable (§5.1,
	// Ready rule 3).
	AckBeforeFsync bool
	// ReadBeforeApplied answers a read once its read index is confirmed,
	// without waiting for the state machine to apply through it (Ready
	// rule 4, thesis §6.4).
	ReadBeforeApplied bool
	// ResolveIgnoringTerm resolves a proposal with the result of whatever
	// entry applied at its index, even another leader's (§5.3: an entry
	// is identified by its index and term).
	ResolveIgnoringTerm bool
}

var bugs plantedBugs
