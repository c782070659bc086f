package node

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/raftex/raftex/raft"
)

// Config configures a node. Start from DefaultConfig; Validate reports the
// first bad value and changes nothing.
type Config struct {
	// ID of this node; never 0.
	ID uint64
	// InitialMembership bootstraps a new cluster when the storage holds no
	// state yet; it is ignored on restart.
	InitialMembership raft.Membership

	// TickInterval is the length of one core tick. Default 10 ms.
	TickInterval time.Duration
	// HeartbeatTicks between leader heartbeats. Default 5 (50 ms).
	HeartbeatTicks int
	// ElectionTicks is the minimum election timeout; each timeout is drawn
	// from [ElectionTicks, 2*ElectionTicks). Default 15 (150–300 ms).
	ElectionTicks int
	// PreVote and CheckQuorum: see raft.Config. Both default to true.
	PreVote     bool
	CheckQuorum bool
	// LeaseRead lets ReadLease serve reads under the leader's lease
	// (thesis §6.4.1). Default false.
	LeaseRead bool
	// MaxSizePerMsg and MaxInflightMsgs: see raft.Config.
	MaxSizePerMsg   uint64
	MaxInflightMsgs int

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

// DefaultConfig returns the recommended configuration for node id.
func DefaultConfig(id uint64) Config {
	return Config{
		ID:               id,
		TickInterval:     10 * time.Millisecond,
		HeartbeatTicks:   5,
		ElectionTicks:    15,
		PreVote:          true,
		CheckQuorum:      true,
		MaxSizePerMsg:    1 << 20,
		MaxInflightMsgs:  256,
		SnapshotEntries:  10_000,
		SnapshotBytes:    64 << 20,
		SnapshotTrailing: 5_000,
		InboxSize:        4096,
		EventBuffer:      1024,
	}
}

// Validate reports the first invalid setting.
func (c *Config) Validate() error {
	switch {
	case c.ID == raft.None:
		return errors.New("node: config: ID (0) must not be 0")
	case c.TickInterval <= 0:
		return fmt.Errorf("node: config: TickInterval (%s) must be positive", c.TickInterval)
	case c.HeartbeatTicks <= 0:
		return fmt.Errorf("node: config: HeartbeatTicks (%d) must be positive", c.HeartbeatTicks)
	case c.ElectionTicks <= c.HeartbeatTicks:
		return fmt.Errorf("node: config: election timeout (%s) must be longer than heartbeat (%s)",
			time.Duration(c.ElectionTicks)*c.TickInterval, time.Duration(c.HeartbeatTicks)*c.TickInterval)
	case c.SnapshotEntries == 0 && c.SnapshotBytes == 0:
		return errors.New("node: config: SnapshotEntries (0) and SnapshotBytes (0) must not both be 0")
	case c.InboxSize <= 0:
		return fmt.Errorf("node: config: InboxSize (%d) must be positive", c.InboxSize)
	case c.EventBuffer <= 0:
		return fmt.Errorf("node: config: EventBuffer (%d) must be positive", c.EventBuffer)
	case c.MaxInflightMsgs <= 0:
		return fmt.Errorf("node: config: MaxInflightMsgs (%d) must be positive", c.MaxInflightMsgs)
	case c.MaxSizePerMsg == 0:
		return errors.New("node: config: MaxSizePerMsg (0) must be positive")
	case c.LeaseRead && !c.CheckQuorum:
		// A lease relies on followers refusing votes while they hear from
		// the leader (thesis §6.4.1, §4.2.3).
		return errors.New("node: config: LeaseRead (true) requires CheckQuorum (false)")
	}
	if len(c.InitialMembership.Voters) > 0 {
		if err := c.InitialMembership.Validate(); err != nil {
			return fmt.Errorf("node: config: InitialMembership: %w", err)
		}
	}
	return nil
}

func (c *Config) raftConfig(s raft.Storage, applied uint64) raft.Config {
	rc := raft.DefaultConfig(c.ID, s)
	rc.Applied = applied
	rc.TickInterval = c.TickInterval
	rc.Clock = raft.MonotonicClock()
	rc.HeartbeatTick = c.HeartbeatTicks
	rc.ElectionTick = c.ElectionTicks
	rc.PreVote = c.PreVote
	rc.CheckQuorum = c.CheckQuorum
	rc.LeaseRead = c.LeaseRead
	rc.MaxSizePerMsg = c.MaxSizePerMsg
	rc.MaxInflightMsgs = c.MaxInflightMsgs
	return rc
}

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
