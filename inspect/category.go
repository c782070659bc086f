package inspect

import (
	"fmt"
	"strings"

	"github.com/raftex/raftex/raft"
)

// Categories is a set of event categories. Its pointer is a flag.Value, so
// `flag.Var(&cats, "events", ...)` parses "state,rpc".
type Categories uint8

const (
	// CategoryState: role, term, leader, election, vote, step-down,
	// leadership transfer, configuration change and node start/stop
	// events.
	CategoryState Categories = 1 << iota
	// CategoryRPC: messages sent and received.
	CategoryRPC
	// CategoryCommit: commit index advances and applied batches.
	CategoryCommit
	// CategorySnapshot: snapshots taken, sent, restored and installed.
	CategorySnapshot

	// AllCategories is every category.
	AllCategories = CategoryState | CategoryRPC | CategoryCommit | CategorySnapshot
)

var categoryNames = []struct {
	c    Categories
	name string
}{
	{CategoryState, "state"}, {CategoryRPC, "rpc"},
	{CategoryCommit, "commit"}, {CategorySnapshot, "snapshot"},
}

// ParseCategories parses a comma-separated list of category names (state,
// rpc, commit, snapshot, or all). The empty string means all categories.
func ParseCategories(s string) (Categories, error) {
	if strings.TrimSpace(s) == "" {
		return AllCategories, nil
	}
	var cs Categories
	for name := range strings.SplitSeq(s, ",") {
		c, err := parseCategory(strings.ToLower(strings.TrimSpace(name)))
		if err != nil {
			return 0, err
		}
		cs |= c
	}
	return cs, nil
}

func parseCategory(name string) (Categories, error) {
	if name == "all" {
		return AllCategories, nil
	}
	for _, cn := range categoryNames {
		if cn.name == name {
			return cn.c, nil
		}
	}
	return 0, fmt.Errorf("inspect: unknown event category %q (want state, rpc, commit, snapshot or all)", name)
}

// String lists the categories in c, comma-separated ("all" for every one).
func (c Categories) String() string {
	if c == AllCategories {
		return "all"
	}
	var names []string
	for _, cn := range categoryNames {
		if c&cn.c != 0 {
			names = append(names, cn.name)
		}
	}
	return strings.Join(names, ",")
}

// Set parses s as ParseCategories does; it makes *Categories a flag.Value.
func (c *Categories) Set(s string) error {
	cs, err := ParseCategories(s)
	if err != nil {
		return err
	}
	*c = cs
	return nil
}

// Has reports whether c includes every category of o.
func (c Categories) Has(o Categories) bool { return c&o == o }

// CategoryOf returns the category an event kind belongs to (0 for a kind this
// package does not know).
func CategoryOf(k raft.EventKind) Categories {
	switch k {
	case raft.EventMessageSent, raft.EventMessageReceived:
		return CategoryRPC
	case raft.EventCommitAdvanced, raft.EventApplied:
		return CategoryCommit
	case raft.EventSnapshotSent, raft.EventSnapshotRestored,
		raft.EventSnapshotTaken, raft.EventSnapshotInstalled:
		return CategorySnapshot
	case raft.EventRoleChanged, raft.EventTermChanged, raft.EventElectionTimeout,
		raft.EventVoteGranted, raft.EventVoteRejected, raft.EventElectionWon,
		raft.EventLeaderChanged, raft.EventStepDown, raft.EventLeadershipTransfer,
		raft.EventNodeStarted, raft.EventNodeStopped,
		raft.EventMemberAdded, raft.EventMemberPromoted, raft.EventMemberRemoved,
		raft.EventConfChanged, raft.EventLeadershipTransferAborted:
		return CategoryState
	}
	return 0
}

// IsHeartbeat reports whether e is a heartbeat or heartbeat reply crossing
// the wire. An AppendEntries with no entries is not a heartbeat.
func IsHeartbeat(e raft.Event) bool {
	return (e.Kind == raft.EventMessageSent || e.Kind == raft.EventMessageReceived) && e.MsgType.IsHeartbeat()
}

// Filter selects events by category, with heartbeats hidden unless
// Heartbeats is set. The zero Filter passes nothing.
type Filter struct {
	Categories Categories
	Heartbeats bool
}

// Allows reports whether e passes the filter.
func (f Filter) Allows(e raft.Event) bool {
	c := CategoryOf(e.Kind)
	return c != 0 && f.Categories.Has(c) && (f.Heartbeats || !IsHeartbeat(e))
}
