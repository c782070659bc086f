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
	// ApplyBeforeFsync hands committed entries to the state machine
	// before the write of their Ready is durable (Ready rule 3).
	ApplyBeforeFsync bool
}

var bugs plantedBugs
