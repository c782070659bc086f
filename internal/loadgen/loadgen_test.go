package loadgen

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake is a Target on virtual time: each operation takes its latency,
// unless it fails with err, or blocks until its context ends.
type fake struct {
	latency time.Duration
	err     error
	block   bool

	mu        sync.Mutex
	keys      []string
	ops       map[Op]int
	stored    map[string]bool
	deadlines []time.Duration // of each operation's context, from its start
}

func (f *fake) do(ctx context.Context, op Op, key string) error {
	f.mu.Lock()
	if f.ops == nil {
		f.ops, f.stored = map[Op]int{}, map[string]bool{}
	}
	f.ops[op]++
	f.keys = append(f.keys, key)
	if d, ok := ctx.Deadline(); ok {
		f.deadlines = append(f.deadlines, time.Until(d))
	}
	f.mu.Unlock()
	if f.block {
		<-ctx.Done()
		return ctx.Err()
	}
	time.Sleep(f.latency)
	return f.err
}

func (f *fake) Put(ctx context.Context, key string, _ []byte) error {
	err := f.do(ctx, Put, key)
	if err == nil {
		f.mu.Lock()
		f.stored[key] = true
		f.mu.Unlock()
	}
	return err
}

func (f *fake) Get(ctx context.Context, key string) (bool, error) {
	err := f.do(ctx, Get, key)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stored[key], err
}

func (f *fake) ErrorKind(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return TimeoutKind
	}
	return "refused"
}

func config(mut func(*Config)) Config {
	c := DefaultConfig()
	c.Clients, c.Duration, c.Ops = 4, 0, 100
	mut(&c)
	return c
}

func TestParseWorkload(t *testing.T) {
	for s, want := range map[string]int{"put": 0, "get": 100, "mixed:90/10": 90, "mixed:0/100": 0, "mixed:50/50": 50} {
		w, err := ParseWorkload(s)
		if err != nil || w.GetPercent != want {
			t.Errorf("ParseWorkload(%q) = %d, %v; want %d", s, w.GetPercent, err, want)
		}
	}
	for _, s := range []string{"", "PUT", "mixed", "mixed:90", "mixed:90/20", "mixed:-10/110", "mixed:a/b", "scan"} {
		if _, err := ParseWorkload(s); !errors.Is(err, ErrWorkload) || !strings.Contains(err.Error(), s) {
			t.Errorf("ParseWorkload(%q) = %v, want ErrWorkload naming it", s, err)
		}
	}
	if got := (Workload{90}).String(); got != "mixed:90/10" {
		t.Errorf("String = %q", got)
	}
}

func TestValidateNamesTheValue(t *testing.T) {
	for name, tc := range map[string]struct {
		mut  func(*Config)
		want string
	}{
		"no clients":     {func(c *Config) { c.Clients = 0 }, "clients (0)"},
		"both ends":      {func(c *Config) { c.Duration = time.Second }, "duration (1s) and ops (100)"},
		"neither end":    {func(c *Config) { c.Ops = 0 }, "duration (0s) and ops (0)"},
		"no timeout":     {func(c *Config) { c.Timeout = 0 }, "timeout (0s)"},
		"no keys":        {func(c *Config) { c.Keys = 0 }, "keys (0)"},
		"negative value": {func(c *Config) { c.ValueSize = -1 }, "value size (-1)"},
		"short keys":     {func(c *Config) { c.KeySize, c.Keys = 8, 1000 }, "key size (8) cannot name 1000 keys: they need 9 bytes"},
	} {
		err := config(tc.mut).Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrConfig with %q", name, err, tc.want)
		}
	}
	if err := config(func(*Config) {}).Validate(); err != nil {
		t.Errorf("the default config: %v", err)
	}
}

func TestKeysHaveTheirSize(t *testing.T) {
	c := config(func(c *Config) { c.KeySize, c.Keys = 16, 1000 })
	for _, i := range []int{0, 7, 999} {
		if k := c.Key(i); len(k) != 16 || !strings.HasPrefix(k, KeyPrefix) {
			t.Errorf("Key(%d) = %q, want 16 bytes starting %q", i, k, KeyPrefix)
		}
	}
	if c.Key(7) != "bench/0000000007" {
		t.Errorf("Key(7) = %q", c.Key(7))
	}
}

// --ops runs exactly that many operations, and their latencies are what
// the target took.
func TestOpsRunsThatMany(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fake{latency: 3 * time.Millisecond}
		res, err := Run(t.Context(), f, config(func(c *Config) { c.Ops = 103 }))
		if err != nil {
			t.Fatal(err)
		}
		if res.Succeeded() != 103 || f.ops[Put] != 103 || res.Failed() != 0 {
			t.Fatalf("succeeded %d, target saw %d, failed %d; want 103, 103, 0", res.Succeeded(), f.ops[Put], res.Failed())
		}
		s := Summarize(res.Latency[Put])
		if s.P50 != 3*time.Millisecond || s.Max != 3*time.Millisecond {
			t.Errorf("p50 %s, max %s; want 3ms (virtual time)", s.P50, s.Max)
		}
		// 4 clients, 103 operations of 3 ms: 26 rounds.
		if res.Elapsed != 26*3*time.Millisecond {
			t.Errorf("elapsed %s, want 78ms", res.Elapsed)
		}
	})
}

// --duration starts operations until it has passed; those in flight finish
// and count.
func TestDurationStopsStartingOperations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fake{latency: 30 * time.Millisecond}
		res, err := Run(t.Context(), f, config(func(c *Config) { c.Ops, c.Duration = 0, 100*time.Millisecond }))
		if err != nil {
			t.Fatal(err)
		}
		// Each client starts at 0, 30, 60 and 90 ms: 4 operations each.
		if res.Succeeded() != 16 || res.Elapsed != 120*time.Millisecond {
			t.Errorf("%d operations in %s, want 16 in 120ms", res.Succeeded(), res.Elapsed)
		}
	})
}

// Every operation runs under its own timeout, and one it ends is a
// timeout error, never a latency.
func TestTimeoutPerOperation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fake{block: true}
		res, err := Run(t.Context(), f, config(func(c *Config) { c.Ops, c.Timeout = 10, 250*time.Millisecond }))
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors[TimeoutKind] != 10 || res.Succeeded() != 0 {
			t.Fatalf("errors %v, succeeded %d; want 10 timeouts", res.Errors, res.Succeeded())
		}
		for _, d := range f.deadlines {
			if d != 250*time.Millisecond {
				t.Fatalf("an operation's deadline was %s away, want 250ms", d)
			}
		}
		if !strings.Contains(res.Examples[TimeoutKind], "deadline exceeded") {
			t.Errorf("example %q", res.Examples[TimeoutKind])
		}
	})
}

// Errors are counted by the target's kinds, with the first of each kind.
func TestErrorsByKind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fake{latency: time.Millisecond, err: errors.New("no such thing")}
		res, _ := Run(t.Context(), f, config(func(c *Config) { c.Ops = 20 }))
		if res.Errors["refused"] != 20 || res.Examples["refused"] != "no such thing" || res.Failed() != 20 {
			t.Errorf("errors %v examples %v", res.Errors, res.Examples)
		}
		if got := res.ErrorKinds(); len(got) != 1 || got[0] != "refused" {
			t.Errorf("kinds %v", got)
		}
	})
}

// A mixed workload runs both operations in about its proportion; a fill
// writes every key once, so the gets that follow find theirs.
func TestMixedWorkloadAfterFill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fake{latency: time.Millisecond}
		c := config(func(c *Config) { c.Keys, c.Ops, c.Workload = 50, 1000, Workload{90} })
		if res, err := Run(t.Context(), f, c.Fill()); err != nil || res.Succeeded() != 50 {
			t.Fatalf("fill: %v, %v", res, err)
		}
		if len(f.stored) != 50 {
			t.Fatalf("the fill wrote %d distinct keys, want 50", len(f.stored))
		}
		res, err := Run(t.Context(), f, c)
		if err != nil {
			t.Fatal(err)
		}
		gets, puts := res.Latency[Get].TotalCount(), res.Latency[Put].TotalCount()
		if gets+puts != 1000 || gets < 850 || gets > 950 || res.NotFound != 0 {
			t.Errorf("%d gets, %d puts, %d not found; want about 900 and 100, none missing", gets, puts, res.NotFound)
		}
	})
}

// Progress is reported while the run goes and once at its end, with every
// operation.
func TestProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls []int64
		f := &fake{latency: 10 * time.Millisecond}
		_, err := Run(t.Context(), f, config(func(c *Config) {
			c.Ops, c.Clients = 100, 1
			c.Progress = func(n int64, _ time.Duration) { calls = append(calls, n) }
		}))
		if err != nil {
			t.Fatal(err)
		}
		// 1 s of operations: a report every 100 ms, then the last.
		if len(calls) < 10 || calls[len(calls)-1] != 100 {
			t.Errorf("progress %v", calls)
		}
	})
}

// A run whose context ends stops, and what was in flight does not count.
func TestCancelledRunStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		f := &fake{block: true}
		res, err := Run(ctx, f, config(func(c *Config) { c.Ops, c.Timeout = 0, time.Hour; c.Duration = time.Hour }))
		if err != nil {
			t.Fatal(err)
		}
		if res.Failed() != 0 || res.Succeeded() != 0 {
			t.Errorf("errors %v, succeeded %d: a cut-short operation counted", res.Errors, res.Succeeded())
		}
	})
}

func TestRound(t *testing.T) {
	for in, want := range map[time.Duration]string{
		162115418 * time.Nanosecond: "162ms",
		7701200 * time.Nanosecond:   "7.7ms",
		845300 * time.Nanosecond:    "845µs",
		1234567890:                  "1.23s",
		999 * time.Nanosecond:       "999ns",
		0:                           "0s",
	} {
		if got := Round(in).String(); got != want {
			t.Errorf("Round(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestReport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fake{latency: 1500 * time.Microsecond}
		res, _ := Run(t.Context(), f, config(func(c *Config) { c.Ops, c.Clients = 10, 1 }))
		rep := res.Report()
		if rep.Ops != 10 || rep.Latency[Put].P99 != 1.5 || rep.Elapsed != 0.015 || rep.Throughput != 666.7 || rep.Workload != "put" {
			t.Errorf("report %+v", rep)
		}
	})
}
