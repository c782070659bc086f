package tcp

import (
	"errors"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestValidate(t *testing.T) {
	good := Config{ID: 1, ClusterID: "c", ListenAddr: ":0", Peers: map[uint64]string{2: "h:1"}}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	if err := DefaultConfig().Validate(); err == nil {
		t.Fatalf("DefaultConfig without ID validates")
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string // the bad value, named in the error
	}{
		{"no id", func(c *Config) { c.ID = 0 }, "ID must not be 0"},
		{"no cluster", func(c *Config) { c.ClusterID = "" }, `cluster id ""`},
		{"long cluster", func(c *Config) { c.ClusterID = strings.Repeat("x", 256) }, "1 to 255 bytes"},
		{"no listen address", func(c *Config) { c.ListenAddr = "" }, "listen address"},
		{"small frames", func(c *Config) { c.MaxFrameSize = 1000 }, "max frame size 1000"},
		{"huge frames", func(c *Config) { c.MaxFrameSize = 2 << 30 }, "max frame size 2147483648"},
		{"negative queue", func(c *Config) { c.QueueSize = -1 }, "queue size -1"},
		{"negative timeout", func(c *Config) { c.WriteTimeout = -time.Second }, "write timeout -1s"},
		{"backoff inverted", func(c *Config) { c.BackoffMin, c.BackoffMax = time.Second, time.Millisecond }, "backoff min 1s"},
		{"peer zero", func(c *Config) { c.Peers = map[uint64]string{0: "h:1"} }, `peer id 0 (address "h:1")`},
		{"peer self", func(c *Config) { c.Peers = map[uint64]string{1: "h:1"} }, "peer 1"},
		{"peer without address", func(c *Config) { c.Peers = map[uint64]string{3: ""} }, "peer 3 has no address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig naming %q", err, tt.want)
			}
		})
	}
}

// TestBackoff: the pause before attempt n is lo·2^(n-1) capped at hi,
// jittered into its upper half, whatever the jitter draws.
func TestBackoff(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		lo := time.Duration(rapid.Int64Range(1, int64(time.Second)).Draw(t, "lo"))
		hi := lo + time.Duration(rapid.Int64Range(0, int64(time.Minute)).Draw(t, "extra"))
		n := rapid.IntRange(1, 200).Draw(t, "n")
		pick := rapid.Float64Range(0, 1).Draw(t, "jitter")
		got := backoff(n, lo, hi, func(k int64) int64 { return min(k-1, int64(pick*float64(k))) })
		d := hi
		if n < 64 && float64(lo)*float64(uint64(1)<<(n-1)) < float64(hi) {
			d = lo << (n - 1)
		}
		if got < d/2 || got > d {
			t.Fatalf("backoff(%d, %s, %s) = %s, want within [%s, %s]", n, lo, hi, got, d/2, d)
		}
	})
}
