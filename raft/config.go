package raft

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

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
	// one. Off by default: lease reads are safe only while clocks run
	// within LeaseDriftTicks of each other over an election timeout.
	// Requires CheckQuorum.
	LeaseRead bool
	// LeaseDriftTicks is subtracted from the lease to absorb clock drift
	// between nodes. Default 2 (13% of the default election timeout).
	LeaseDriftTicks int

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
}

// DefaultConfig returns the recommended configuration for node id reading
// storage s.
func DefaultConfig(id uint64, s Storage) Config {
	return Config{
		ID:                  id,
		Storage:             s,
		HeartbeatTick:       5,
		ElectionTick:        15,
		PreVote:             true,
		CheckQuorum:         true,
		LeaseDriftTicks:     2,
		MaxSizePerMsg:       1 << 20,
		MaxInflightMsgs:     256,
		MaxUncommittedBytes: 64 << 20,
	}
}

// Validate reports the first invalid setting; it changes nothing.
func (c *Config) Validate() error {
	switch {
	case c.ID == None:
		return errors.New("raft: config: ID must not be 0")
	case c.Storage == nil:
		return errors.New("raft: config: Storage must be set")
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
	case c.LeaseRead && (c.LeaseDriftTicks < 0 || c.LeaseDriftTicks >= c.ElectionTick):
		return fmt.Errorf("raft: config: LeaseDriftTicks (%d) must be in [0, ElectionTick=%d)", c.LeaseDriftTicks, c.ElectionTick)
	}
	return nil
}
