package node

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/raftex/raftex/raft"
)

// Config configures a node: the core's configuration (raft.Config, whose
// settings keep their one name and default here: cfg.ElectionTick,
// cfg.TickInterval, cfg.LeaseRead, ...) and the runtime's own. Start from
// DefaultConfig; Validate reports the first bad value and changes nothing.
type Config struct {
	// Config is the core's. Start fills in Storage and Applied from the
	// node's store, and Clock with the monotonic clock if nil.
	raft.Config

	// InitialMembership bootstraps a new cluster when the storage holds no
	// state yet; it is ignored on restart.
	InitialMembership raft.Membership
	// Join starts a node whose storage holds no state without
	// InitialMembership: it is not a member yet, never campaigns, and
	// waits as a follower until a leader that added it (AddMember) sends
	// it the log or a snapshot, which tell it the configuration (thesis
	// §4.2.1). Ignored when the storage holds state or InitialMembership
	// is set.
	Join bool

	// SnapshotEntries triggers a snapshot after this many entries were
	// applied since the last one. Default 10,000.
	SnapshotEntries uint64
	// SnapshotBytes triggers a snapshot after this many bytes of entries
	// were applied since the last one. Default 64 MiB.
	SnapshotBytes uint64
	// SnapshotTrailing entries stay in the log after compaction so slow
	// followers catch up from the log, not a snapshot. Default 5,000.
	SnapshotTrailing uint64

	// InboxSize bounds the inbound message queue; messages beyond it are
	// dropped (Raft tolerates loss). Default 4096.
	InboxSize int
	// EventBuffer is the channel size of each Subscribe; events beyond it
	// are dropped and counted. Default 1024.
	EventBuffer int

	// Logger receives structured logs. Default slog.Default().
	Logger *slog.Logger
	// Observer receives measurements (fsync, apply, snapshots); nil for
	// none. package inspect provides a Prometheus one.
	Observer Observer
}

// DefaultConfig returns the recommended configuration for node id: the
// core's defaults (raft.DefaultConfig: 10 ms ticks, heartbeat 50 ms,
// election timeout 150–300 ms, PreVote and CheckQuorum on) and the
// runtime's.
func DefaultConfig(id uint64) Config {
	return Config{
		Config:           raft.DefaultConfig(id, nil),
		SnapshotEntries:  10_000,
		SnapshotBytes:    64 << 20,
		SnapshotTrailing: 5_000,
		InboxSize:        4096,
		EventBuffer:      1024,
	}
}

// Validate reports the first invalid setting: the core's (as
// raft.Config.Validate words it), then the runtime's.
func (c *Config) Validate() error {
	rc := c.Config
	rc.Storage = validateOnly{}
	if rc.LeaseRead && rc.Clock == nil {
		rc.Clock = raft.MonotonicClock() // Start provides it
	}
	if err := rc.Validate(); err != nil {
		return fmt.Errorf("node: config: %w", err)
	}
	switch {
	case c.SnapshotEntries == 0 && c.SnapshotBytes == 0:
		return errors.New("node: config: SnapshotEntries (0) and SnapshotBytes (0) must not both be 0")
	case c.InboxSize <= 0:
		return fmt.Errorf("node: config: InboxSize (%d) must be positive", c.InboxSize)
	case c.EventBuffer <= 0:
		return fmt.Errorf("node: config: EventBuffer (%d) must be positive", c.EventBuffer)
	}
	if len(c.InitialMembership.Voters) > 0 {
		if err := c.InitialMembership.Validate(); err != nil {
			return fmt.Errorf("node: config: InitialMembership: %w", err)
		}
	}
	return nil
}

// raftConfig is the core's configuration over s, with the state machine
// at applied.
func (c *Config) raftConfig(s raft.Storage, applied uint64) raft.Config {
	rc := c.Config
	rc.Storage = s
	rc.Applied = applied
	if rc.Clock == nil {
		rc.Clock = raft.MonotonicClock()
	}
	return rc
}

// validateOnly stands in for the storage while Validate checks the core's
// settings; it is never read.
type validateOnly struct{ raft.Storage }

// Observer receives the runtime's measurements. Calls come from the
// node's goroutines and must return quickly.
type Observer interface {
	// ObserveFsync: one durable write of a Ready batch.
	ObserveFsync(d time.Duration, entries int, bytes int)
	// ObserveApply: one batch of entries applied to the state machine.
	ObserveApply(d time.Duration, entries int)
	// ObserveProposal: a proposal finished, successfully or not.
	ObserveProposal(ok bool)
	// ObserveSnapshot: a snapshot was taken (installed=false) or installed
	// from the leader (installed=true).
	ObserveSnapshot(installed bool, d time.Duration, bytes int64)
	// ObserveEvent: every event the node publishes, from its start (before
	// any Subscribe could) to its stop, on the publishing goroutine.
	ObserveEvent(e raft.Event)
}
