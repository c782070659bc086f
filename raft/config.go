package raft

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Clock reads a monotonic clock: the time since an arbitrary origin, never
// going back. The core reads it for one thing only, the leader lease
// (thesis §6.4.1): time that guards safety is measured, never counted in
// ticks, because a stalled process loses ticks but not time.
type Clock interface {
	Now() time.Duration
}

// MonotonicClock returns a Clock over the process's monotonic clock.
func MonotonicClock() Clock { return monotonic{start: time.Now()} }

type monotonic struct{ start time.Time }

func (m monotonic) Now() time.Duration { return time.Since(m.start) }

// Config configures one core. Start from DefaultConfig; Validate reports the
// first bad value without changing anything.
type Config struct {
	// ID of this node; never None.
	ID uint64
	// Storage is the stable log the core reads (see Storage).
	Storage Storage
	// Applied is the index the state machine already reflects at start
	// (the restored snapshot's index, or more); committed entries after it
	// are handed out again.
	Applied uint64

	// TickInterval is the real time between two calls of Tick. The core
	// does not keep time with it; it only turns ElectionTick and
	// LeaseDriftTicks into the lease's duration. Default 10 ms.
	TickInterval time.Duration
	// HeartbeatTick is the number of ticks between leader heartbeats.
	// Default 5 (50 ms at the runtime's 10 ms tick, as in the seed).
	HeartbeatTick int
	// ElectionTick is the minimum election timeout in ticks; each timeout
	// is drawn at random from [ElectionTick, 2*ElectionTick) (§5.2).
	// Default 15 (150–300 ms at a 10 ms tick).
	ElectionTick int

	// Rand drives the randomized election timeouts. Nil means a source
	// seeded from ID, so runs are reproducible.
	Rand *rand.Rand

	// PreVote makes a node ask whether it could win before it raises its
	// term (thesis §9.6). Default true.
	PreVote bool
	// CheckQuorum makes a leader step down when it has not heard from a
	// quorum for ElectionTick ticks, and makes followers that heard from a
	// leader within ElectionTick ignore vote requests (thesis §6.2,
	// §4.2.3). Default true.
	CheckQuorum bool
	// LeaseRead makes the leader keep a lease (thesis §6.4.1) from which
	// ReadLease answers without a heartbeat round; ReadIndex always takes
	// one. Requires CheckQuorum and Clock. Off by default, because a lease
	// rests on an assumption about time that raftex cannot check: over
	// one election timeout (ElectionTick × TickInterval) no node's clock
	// runs faster than another's by more than (LeaseDriftTicks − 1) ×
	// TickInterval, and no node calls Tick more often than every
	// TickInterval. (A node that stalls ticks less: that only delays its
	// vote, which is safe.)
	LeaseRead bool
	// LeaseDriftTicks shortens the lease, in ticks: one tick absorbs the
	// phase between two nodes' tickers (a follower may count its first
	// tick right after it heard the leader, and so vote one tick early),
	// the rest absorbs the drift of their clocks. At least 1. Default 2
	// (10 ms of drift per 150 ms at the default timing).
	LeaseDriftTicks int
	// Clock is the monotonic clock the lease is measured with; required
	// with LeaseRead. Use MonotonicClock(), or virtual time in a
	// simulation.
	Clock Clock

	// MaxSizePerMsg caps the bytes of entries in one AppendEntries. Default
	// 1 MiB.
	MaxSizePerMsg uint64
	// MaxInflightMsgs caps the AppendEntries pipelined to one follower
	// before an acknowledgement. Default 256.
	MaxInflightMsgs int
	// MaxUncommittedBytes caps the bytes of entries the leader has
	// accepted and not yet handed out to apply (in CommittedEntries);
	// Propose returns ErrProposalDropped beyond it.
	// Zero means no limit. Default 64 MiB.
	MaxUncommittedBytes uint64
	// MaxApplyingBytes caps the bytes of committed entries handed out in
	// CommittedEntries and not yet reported applied with AppliedTo: a slow
	// state machine holds committed entries back in the log (on disk)
	// instead of in memory, and, through MaxUncommittedBytes, stops the
	// leader from taking proposals. Entries are handed out while the
	// bytes applying are below the cap, so it may be passed by one entry.
	// Default 64 MiB.
	MaxApplyingBytes uint64
	// MaxPendingReads caps the read requests a leader holds (waiting for
	// its first commit of the term, or for their heartbeat round); beyond
	// it ReadIndex returns ErrReadDropped and followers' requests are
	// dropped (they time out). Default 4096.
	MaxPendingReads int
}

// DefaultConfig returns the recommended configuration for node id reading
// storage s.
func DefaultConfig(id uint64, s Storage) Config {
	return Config{
		ID:                  id,
		Storage:             s,
		TickInterval:        10 * time.Millisecond,
		HeartbeatTick:       5,
		ElectionTick:        15,
		PreVote:             true,
		CheckQuorum:         true,
		LeaseDriftTicks:     2,
		MaxSizePerMsg:       1 << 20,
		MaxInflightMsgs:     256,
		MaxUncommittedBytes: 64 << 20,
		MaxApplyingBytes:    64 << 20,
		MaxPendingReads:     4096,
	}
}

// Validate reports the first invalid setting; it changes nothing.
func (c *Config) Validate() error {
	switch {
	case c.ID == None:
		return errors.New("raft: config: ID must not be 0")
	case c.Storage == nil:
		return errors.New("raft: config: Storage must be set")
	case c.TickInterval <= 0:
		return fmt.Errorf("raft: config: TickInterval (%s) must be positive", c.TickInterval)
	case c.HeartbeatTick <= 0:
		return fmt.Errorf("raft: config: HeartbeatTick (%d) must be positive", c.HeartbeatTick)
	case c.ElectionTick <= c.HeartbeatTick:
		return fmt.Errorf("raft: config: ElectionTick (%d) must be greater than HeartbeatTick (%d)", c.ElectionTick, c.HeartbeatTick)
	case c.MaxInflightMsgs <= 0:
		return fmt.Errorf("raft: config: MaxInflightMsgs (%d) must be positive", c.MaxInflightMsgs)
	case c.MaxSizePerMsg == 0:
		return errors.New("raft: config: MaxSizePerMsg must be positive")
	case c.LeaseRead && !c.CheckQuorum:
		return errors.New("raft: config: LeaseRead requires CheckQuorum")
	case c.LeaseRead && (c.LeaseDriftTicks < 1 || c.LeaseDriftTicks >= c.ElectionTick):
		// Below one tick a follower whose ticker runs out of phase with
		// ours may vote before our lease ends.
		return fmt.Errorf("raft: config: LeaseDriftTicks (%d) must be in [1, ElectionTick=%d)", c.LeaseDriftTicks, c.ElectionTick)
	case c.LeaseRead && c.Clock == nil:
		return errors.New("raft: config: LeaseRead requires a Clock")
	case c.MaxApplyingBytes == 0:
		return errors.New("raft: config: MaxApplyingBytes must be positive")
	case c.MaxPendingReads <= 0:
		return fmt.Errorf("raft: config: MaxPendingReads (%d) must be positive", c.MaxPendingReads)
	}
	return nil
}
