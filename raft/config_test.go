package raft

import (
	"errors"
	"strings"
	"testing"
)

// Config.Validate: the first invalid setting, with its value; nothing
// changed.
func TestConfig_ValidateErrorsCarryTheValues(t *testing.T) {
	st := NewMemoryStorage(NewMembership(1))
	for _, tc := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.ID = 0 }, "raft: config: ID must not be 0"},
		{func(c *Config) { c.Storage = nil }, "raft: config: Storage must be set"},
		{func(c *Config) { c.HeartbeatTick = -1 }, "raft: config: HeartbeatTick (-1) must be positive"},
		{func(c *Config) { c.ElectionTick = 5 }, "raft: config: ElectionTick (5) must be greater than HeartbeatTick (5)"},
		{func(c *Config) { c.MaxInflightMsgs = 0 }, "raft: config: MaxInflightMsgs (0) must be positive"},
		{func(c *Config) { c.MaxSizePerMsg = 0 }, "raft: config: MaxSizePerMsg must be positive"},
		{func(c *Config) { c.LeaseRead, c.CheckQuorum = true, false }, "raft: config: LeaseRead requires CheckQuorum"},
		{func(c *Config) { c.LeaseRead, c.LeaseDriftTicks = true, 15 }, "raft: config: LeaseDriftTicks (15) must be in [1, ElectionTick=15)"},
		// A drift bound below one tick is unsafe: ticks of two nodes are
		// out of phase, so a follower may vote a tick before the lease ends.
		{func(c *Config) { c.LeaseRead, c.Clock, c.LeaseDriftTicks = true, &fakeClock{}, 0 }, "raft: config: LeaseDriftTicks (0) must be in [1, ElectionTick=15)"},
		{func(c *Config) { c.LeaseRead, c.Clock = true, nil }, "raft: config: LeaseRead requires a Clock"},
		{func(c *Config) { c.TickInterval = 0 }, "raft: config: TickInterval (0s) must be positive"},
		{func(c *Config) { c.MaxApplyingBytes = 0 }, "raft: config: MaxApplyingBytes must be positive"},
		{func(c *Config) { c.MaxPendingReads = -1 }, "raft: config: MaxPendingReads (-1) must be positive"},
	} {
		cfg := DefaultConfig(1, st)
		tc.set(&cfg)
		before := cfg
		err := cfg.Validate()
		if err == nil || err.Error() != tc.want {
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
		if cfg != before {
			t.Errorf("Validate changed the config")
		}
		if _, err := New(cfg); err == nil || err.Error() != tc.want {
			t.Errorf("New() = %v, want %q", err, tc.want)
		}
	}
	cfg := DefaultConfig(1, st)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DefaultConfig is invalid: %v", err)
	}
}

// failingStorage fails InitialState, as a broken disk would.
type failingStorage struct{ *MemoryStorage }

func (failingStorage) InitialState() (HardState, Membership, error) {
	return HardState{}, Membership{}, errors.New("disk on fire")
}

// New reports storage it cannot start from.
func TestConfig_NewRejectsBadStorage(t *testing.T) {
	_, err := New(DefaultConfig(1, failingStorage{NewMemoryStorage(NewMembership(1))}))
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("New over a failing storage: %v", err)
	}
	_, err = New(DefaultConfig(1, NewMemoryStorage(Membership{Learners: []uint64{1}})))
	expectEq(t, "error for a membership without voters", err.Error(), "raft: membership has no voters")

	st := storeWith(voters3, HardState{Term: 1, Commit: 5}, 1, 1)
	_, err = New(DefaultConfig(1, st))
	expectEq(t, "error for a commit past the log", err.Error(), "raft: hard state commit 5 is past the last stored index 2 (lost log entries?)")
}

// A restarted core resumes from storage: term, vote and commit, and hands
// out again the committed entries the state machine had not applied.
func TestConfig_RestartResumesFromStorage(t *testing.T) {
	st := storeWith(voters3, HardState{Term: 3, Vote: 2, Commit: 3}, 1, 2, 3, 3)
	n := newTestNode(t, 1, st, func(c *Config) { c.Applied = 1 })
	expectEq(t, "term", n.term, 3)
	expectEq(t, "vote", n.vote, 2)
	rd := n.ready()
	expectEq(t, "entries to apply again", len(rd.CommittedEntries), 2)
	expectEq(t, "first of them", rd.CommittedEntries[0].Index, 2)
	expectEq(t, "events on start", len(rd.Events), 0)
}

// Without Config.Rand the timeouts come from a source seeded by the ID:
// the same node draws the same timeouts in every run.
func TestConfig_DefaultRandIsReproducible(t *testing.T) {
	draw := func() []int {
		r, err := New(DefaultConfig(7, NewMemoryStorage(NewMembership(7, 8, 9))))
		must(t, err)
		var out []int
		for range 5 {
			r.resetTimers()
			out = append(out, r.randomizedElectionTimeout)
		}
		return out
	}
	a, b := draw(), draw()
	for i := range a {
		expectEq(t, "timeout", a[i], b[i])
	}
}
