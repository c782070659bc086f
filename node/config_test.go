package node

import (
	"strings"
	"testing"
	"time"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage"
	"github.com/raftex/raftex/storage/vfs"
	"github.com/raftex/raftex/transport/mem"
)

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := DefaultConfig(1)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.SnapshotEntries != 10_000 {
		t.Fatalf("SnapshotEntries defaults to %d, want 10,000", cfg.SnapshotEntries)
	}
}

// Validate's errors name the setting and carry its value.
func TestConfigValidateNamesBadValues(t *testing.T) {
	for _, tc := range []struct {
		set  func(*Config)
		want []string
	}{
		{func(c *Config) { c.ID = 0 }, []string{"ID", "0"}},
		{func(c *Config) { c.TickInterval = -time.Millisecond }, []string{"TickInterval", "-1ms"}},
		{func(c *Config) { c.HeartbeatTick = 0 }, []string{"HeartbeatTick", "(0)"}},
		{func(c *Config) { c.ElectionTick = 5 }, []string{"ElectionTick (5)", "HeartbeatTick (5)"}},
		{func(c *Config) { c.LeaseRead, c.LeaseDriftTicks = true, 0 }, []string{"LeaseDriftTicks (0)"}},
		{func(c *Config) { c.MaxApplyingBytes = 0 }, []string{"MaxApplyingBytes"}},
		{func(c *Config) { c.SnapshotEntries, c.SnapshotBytes = 0, 0 }, []string{"SnapshotEntries", "SnapshotBytes"}},
		{func(c *Config) { c.InboxSize = -3 }, []string{"InboxSize", "(-3)"}},
		{func(c *Config) { c.EventBuffer = 0 }, []string{"EventBuffer", "(0)"}},
		{func(c *Config) { c.MaxInflightMsgs = 0 }, []string{"MaxInflightMsgs", "(0)"}},
		{func(c *Config) { c.MaxSizePerMsg = 0 }, []string{"MaxSizePerMsg"}},
		{func(c *Config) { c.LeaseRead, c.CheckQuorum = true, false }, []string{"LeaseRead", "CheckQuorum"}},
		{func(c *Config) { c.InitialMembership = raft.Membership{Voters: []uint64{1, 1}} }, []string{"InitialMembership"}},
	} {
		cfg := DefaultConfig(1)
		tc.set(&cfg)
		before := cfg
		err := cfg.Validate()
		if err == nil {
			t.Errorf("Validate accepted %+v", cfg)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Validate: %q does not mention %q", err, w)
			}
		}
		if cfg.InitialMembership.String() != before.InitialMembership.String() || cfg.ID != before.ID {
			t.Errorf("Validate changed the config")
		}
	}
}

func TestStartEmptyStorageNeedsMembership(t *testing.T) {
	bubble(t, func(t *testing.T) {
		store, err := storage.Open(vfs.NewMem(), "/data", storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		tr := mem.NewNetwork(1).Transport(1)
		if _, err := Start(DefaultConfig(1), &logFSM{}, store, tr); err == nil || !strings.Contains(err.Error(), "InitialMembership") {
			t.Fatalf("Start over empty storage without a membership: %v", err)
		}
	})
}
