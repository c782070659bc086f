// Package loadgen drives a key-value store with a workload and measures
// it: throughput, latency percentiles from an HDR histogram, and errors by
// kind. `raftex bench` runs it against a raftex cluster, and the comparison
// harness (bench/compare) runs the very same code against raftex and etcd,
// so both systems see the same load.
//
// Each of Config.Clients goroutines runs one operation at a time, each
// under its own Config.Timeout, until Config.Duration has passed (an
// operation in flight then still finishes and counts) or Config.Ops
// operations were started in all.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Errors of a Config or a workload word.
var (
	// ErrConfig: Validate refused the configuration; the error says which
	// setting and carries its value.
	ErrConfig = errors.New("loadgen: invalid config")
	// ErrWorkload: not a workload (put, get or mixed:G/P).
	ErrWorkload = errors.New("loadgen: invalid workload")
)

// Op is what one operation does.
type Op string

const (
	// Put writes a key.
	Put Op = "put"
	// Get reads a key.
	Get Op = "get"
)

// Target is the store under load. Its methods are called from
// Config.Clients goroutines at once, each with a context that ends at the
// operation's timeout.
type Target interface {
	Put(ctx context.Context, key string, value []byte) error
	// Get reports whether the key was found; an absent key is no error.
	Get(ctx context.Context, key string) (found bool, err error)
	// ErrorKind names the kind of err for the report ("timeout",
	// "unavailable", ...); TimeoutKind when err is ctx's deadline.
	ErrorKind(err error) string
}

// TimeoutKind is the error kind of an operation its timeout ended.
const TimeoutKind = "timeout"

// Workload is the mix of operations: the percentage of gets, the rest
// puts. It is written put (0 % gets), get (100 %) or mixed:G/P, the
// percentages of gets and puts (mixed:90/10 is 90 % gets).
type Workload struct{ GetPercent int }

// ParseWorkload parses put, get or mixed:G/P (G + P = 100).
func ParseWorkload(s string) (Workload, error) {
	switch s {
	case "put":
		return Workload{0}, nil
	case "get":
		return Workload{100}, nil
	}
	mix, ok := strings.CutPrefix(s, "mixed:")
	g, p, ok2 := strings.Cut(mix, "/")
	if !ok || !ok2 {
		return Workload{}, fmt.Errorf("%w: %q: want put, get or mixed:G/P (percent of gets and of puts, like mixed:90/10)", ErrWorkload, s)
	}
	gets, err1 := strconv.Atoi(g)
	puts, err2 := strconv.Atoi(p)
	if err1 != nil || err2 != nil || gets < 0 || puts < 0 || gets+puts != 100 {
		return Workload{}, fmt.Errorf("%w: %q: the percentages of gets and puts must be whole numbers adding up to 100", ErrWorkload, s)
	}
	return Workload{gets}, nil
}

func (w Workload) String() string {
	switch w.GetPercent {
	case 0:
		return "put"
	case 100:
		return "get"
	}
	return fmt.Sprintf("mixed:%d/%d", w.GetPercent, 100-w.GetPercent)
}

// Gets reports whether the workload reads.
func (w Workload) Gets() bool { return w.GetPercent > 0 }

// Config is a run. Exactly one of Duration and Ops is set.
type Config struct {
	Workload Workload
	// Clients run operations at once, each one at a time.
	Clients int
	// Duration: start operations until this much time has passed.
	Duration time.Duration
	// Ops: start this many operations in all.
	Ops int64
	// Timeout bounds each operation.
	Timeout time.Duration
	// KeySize and ValueSize are in bytes; keys are KeyPrefix followed by
	// a zero-padded number below Keys (the key space).
	KeySize, ValueSize, Keys int
	// Sequential takes the keys in order (key i for the i-th operation,
	// modulo Keys) instead of at random: Ops = Keys writes every key once.
	Sequential bool
	// Seed makes the random choices (keys, the mix) repeatable.
	Seed uint64
	// Progress, if set, is called about every ProgressEvery with the
	// operations finished so far, and once at the end.
	Progress func(finished int64, elapsed time.Duration)
}

// KeyPrefix starts every key.
const KeyPrefix = "bench/"

// ProgressEvery is how often Config.Progress is called.
const ProgressEvery = 100 * time.Millisecond

// DefaultConfig is 16 clients putting 16-byte keys and 128-byte values
// over 1,000 keys for 10 s, 10 s per operation at most.
func DefaultConfig() Config {
	return Config{Clients: 16, Duration: 10 * time.Second, Timeout: 10 * time.Second,
		KeySize: 16, ValueSize: 128, Keys: 1000}
}

// Validate reports the first setting out of range; it changes nothing.
func (c Config) Validate() error {
	switch {
	case c.Clients < 1:
		return fmt.Errorf("%w: clients (%d) must be at least 1", ErrConfig, c.Clients)
	case (c.Duration > 0) == (c.Ops > 0):
		return fmt.Errorf("%w: exactly one of duration (%s) and ops (%d) must be set", ErrConfig, c.Duration, c.Ops)
	case c.Duration < 0 || c.Ops < 0:
		return fmt.Errorf("%w: duration (%s) and ops (%d) must not be negative", ErrConfig, c.Duration, c.Ops)
	case c.Timeout <= 0:
		return fmt.Errorf("%w: timeout (%s) must be positive", ErrConfig, c.Timeout)
	case c.Keys < 1:
		return fmt.Errorf("%w: keys (%d) must be at least 1", ErrConfig, c.Keys)
	case c.ValueSize < 0:
		return fmt.Errorf("%w: value size (%d) must not be negative", ErrConfig, c.ValueSize)
	case c.Workload.GetPercent < 0 || c.Workload.GetPercent > 100:
		return fmt.Errorf("%w: the workload's gets (%d %%) must be between 0 and 100 %%", ErrConfig, c.Workload.GetPercent)
	}
	if need := len(KeyPrefix) + digits(c.Keys-1); c.KeySize < need {
		return fmt.Errorf("%w: key size (%d) cannot name %d keys: they need %d bytes (%q and %d digits)",
			ErrConfig, c.KeySize, c.Keys, need, KeyPrefix, digits(c.Keys-1))
	}
	return nil
}

func digits(n int) int { return len(strconv.Itoa(n)) }

// Key is the i-th key of c's key space: KeyPrefix and i, zero-padded to
// KeySize bytes.
func (c Config) Key(i int) string {
	return fmt.Sprintf("%s%0*d", KeyPrefix, c.KeySize-len(KeyPrefix), i)
}

// Fill is the run that writes every key of c's key space once, in order,
// with c's clients, value size and timeout: a get workload then finds its
// keys.
func (c Config) Fill() Config {
	f := c
	f.Workload, f.Sequential, f.Duration, f.Ops, f.Progress = Workload{0}, true, 0, int64(c.Keys), nil
	return f
}

// Result is what a run measured.
type Result struct {
	Config Config
	// Elapsed runs from the start to the end of the last operation.
	Elapsed time.Duration
	// Latency of the operations that succeeded, by Op, in microseconds.
	Latency map[Op]*hdrhistogram.Histogram
	// Errors counts the failed operations by kind; Examples holds the
	// first error of each kind.
	Errors   map[string]int64
	Examples map[string]string
	// NotFound counts the gets that found no key (they succeeded).
	NotFound int64
}

// Succeeded is the number of operations that succeeded.
func (r *Result) Succeeded() int64 {
	var n int64
	for _, h := range r.Latency {
		n += h.TotalCount()
	}
	return n
}

// Failed is the number of operations that failed.
func (r *Result) Failed() int64 {
	var n int64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// Throughput is the operations that succeeded per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Succeeded()) / r.Elapsed.Seconds()
}

// ErrorKinds lists the kinds of the errors, the most frequent first.
func (r *Result) ErrorKinds() []string {
	kinds := slices.Sorted(maps.Keys(r.Errors))
	slices.SortStableFunc(kinds, func(a, b string) int { return int(r.Errors[b] - r.Errors[a]) })
	return kinds
}

// highest is the largest latency the histograms hold; longer ones are
// recorded as this.
const highest = time.Hour

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, highest.Microseconds(), 3)
}

// Run runs c against t until it is done or ctx ends; the operations in
// flight when ctx ends are not counted.
func Run(ctx context.Context, t Target, c Config) (*Result, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	r := &runner{cfg: c, target: t, res: &Result{Config: c,
		Latency: map[Op]*hdrhistogram.Histogram{}, Errors: map[string]int64{}, Examples: map[string]string{}}}
	start := time.Now()
	if c.Duration > 0 {
		r.deadline = start.Add(c.Duration)
	}
	stopProgress := r.reportProgress(start)
	var wg sync.WaitGroup
	for i := range c.Clients {
		wg.Go(func() { r.client(ctx, uint64(i)) })
	}
	wg.Wait()
	r.res.Elapsed = time.Since(start)
	stopProgress()
	return r.res, nil
}

type runner struct {
	cfg      Config
	target   Target
	deadline time.Time    // zero with Ops
	started  atomic.Int64 // operations started (and the next sequential key)
	finished atomic.Int64
	mu       sync.Mutex // guards res
	res      *Result
}

// client runs operations one at a time until the run is over.
func (r *runner) client(ctx context.Context, id uint64) {
	rng := rand.New(rand.NewPCG(r.cfg.Seed, id))
	value := make([]byte, r.cfg.ValueSize)
	for i := range value {
		value[i] = 'a' + byte(rng.IntN(26))
	}
	for ctx.Err() == nil {
		n := r.started.Add(1) - 1
		if r.cfg.Ops > 0 && n >= r.cfg.Ops || !r.deadline.IsZero() && !time.Now().Before(r.deadline) {
			return
		}
		k := int(n % int64(r.cfg.Keys))
		if !r.cfg.Sequential {
			k = rng.IntN(r.cfg.Keys)
		}
		op := Put
		if rng.IntN(100) < r.cfg.Workload.GetPercent {
			op = Get
		}
		r.one(ctx, op, r.cfg.Key(k), value)
		r.finished.Add(1)
	}
}

// one runs an operation under its timeout and records it.
func (r *runner) one(ctx context.Context, op Op, key string, value []byte) {
	octx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	start := time.Now()
	found, err := true, error(nil)
	if op == Put {
		err = r.target.Put(octx, key, value)
	} else {
		found, err = r.target.Get(octx, key)
	}
	d := time.Since(start)
	if ctx.Err() != nil {
		return // the run was cut short, not the operation
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		kind := r.target.ErrorKind(err)
		if octx.Err() == context.DeadlineExceeded {
			kind = TimeoutKind
		}
		if r.res.Errors[kind] == 0 {
			r.res.Examples[kind] = err.Error()
		}
		r.res.Errors[kind]++
		return
	}
	if !found {
		r.res.NotFound++
	}
	h := r.res.Latency[op]
	if h == nil {
		h = newHistogram()
		r.res.Latency[op] = h
	}
	h.RecordValue(min(d, highest).Microseconds())
}

// reportProgress calls Config.Progress every ProgressEvery until the
// returned function is called, which reports once more and waits for it.
func (r *runner) reportProgress(start time.Time) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(ProgressEvery)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				r.cfg.Progress(r.finished.Load(), time.Since(start))
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		r.cfg.Progress(r.finished.Load(), time.Since(start))
	}
}

// Summary is one histogram's figures, durations rounded to three
// significant digits.
type Summary struct {
	Count                          int64
	Mean, P50, P90, P99, P999, Max time.Duration
}

// Summarize reads h's percentiles.
func Summarize(h *hdrhistogram.Histogram) Summary {
	us := func(v int64) time.Duration { return Round(time.Duration(v) * time.Microsecond) }
	return Summary{Count: h.TotalCount(), Mean: Round(time.Duration(h.Mean() * float64(time.Microsecond))),
		P50: us(h.ValueAtQuantile(50)), P90: us(h.ValueAtQuantile(90)), P99: us(h.ValueAtQuantile(99)),
		P999: us(h.ValueAtQuantile(99.9)), Max: us(h.Max())}
}

// Round rounds d to three significant digits: 162.115418ms is 162ms,
// 7.7012ms is 7.7ms, 845.3µs is 845µs.
func Round(d time.Duration) time.Duration {
	unit := time.Duration(1)
	for unit < time.Hour && d >= unit*1000 {
		unit *= 10
	}
	return d.Round(unit)
}

// Report is a Result as `raftex bench -o json` prints it: latencies in
// milliseconds (to the microsecond).
type Report struct {
	Workload    string               `json:"workload"`
	Clients     int                  `json:"clients"`
	KeySize     int                  `json:"key_size"`
	ValueSize   int                  `json:"value_size"`
	Keys        int                  `json:"keys"`
	Sequential  bool                 `json:"sequential_keys"`
	Timeout     float64              `json:"timeout_ms"`
	Elapsed     float64              `json:"elapsed_s"`
	Ops         int64                `json:"ops"`
	Throughput  float64              `json:"ops_per_s"`
	Latency     map[Op]LatencyReport `json:"latency"`
	NotFound    int64                `json:"not_found"`
	Failed      int64                `json:"failed"`
	Errors      map[string]int64     `json:"errors"`
	Examples    map[string]string    `json:"error_examples"`
	Consistency string               `json:"consistency,omitempty"`
}

// LatencyReport is a Summary in milliseconds.
type LatencyReport struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

// Report returns r for JSON.
func (r *Result) Report() Report {
	c := r.Config
	rep := Report{Workload: c.Workload.String(), Clients: c.Clients, KeySize: c.KeySize, ValueSize: c.ValueSize,
		Keys: c.Keys, Sequential: c.Sequential, Timeout: ms(c.Timeout), Elapsed: roundTo(r.Elapsed.Seconds(), 1e3),
		Ops: r.Succeeded(), Throughput: roundTo(r.Throughput(), 10), Latency: map[Op]LatencyReport{},
		NotFound: r.NotFound, Failed: r.Failed(), Errors: r.Errors, Examples: r.Examples}
	for op, h := range r.Latency {
		s := Summarize(h)
		rep.Latency[op] = LatencyReport{Count: s.Count, Mean: ms(s.Mean), P50: ms(s.P50), P90: ms(s.P90),
			P99: ms(s.P99), P999: ms(s.P999), Max: ms(s.Max)}
	}
	return rep
}

func ms(d time.Duration) float64 { return roundTo(float64(d)/float64(time.Millisecond), 1e3) }

func roundTo(x, scale float64) float64 {
	return float64(int64(x*scale+0.5)) / scale
}
