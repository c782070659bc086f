// Package kvload is the client load of the end-to-end suites (e2e,
// e2e/docker): concurrent clients of package client, each with its own
// session, run a random mix of linearizable gets, puts, compare-and-sets,
// transactions over two keys and deletes of a few hot keys, and puts of
// keys written once, while the test changes the cluster. Every call goes
// into a history that porcupine checks against internal/kvmodel's model,
// and every acknowledged write of a key written once must be on every node
// afterwards.
//
// It is a library for tests only.
package kvload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/raftex/raftex/client"
	"github.com/raftex/raftex/internal/e2etest"
	"github.com/raftex/raftex/internal/kvmodel"
	"github.com/raftex/raftex/kvapi"
)

const (
	workers = 4 // concurrent clients
	hotKeys = 4 // keys every worker reads, writes, CASes and deletes
	// opTimeout bounds one call. It outlasts an election, a node's
	// restart, a transfer and a membership change, so that most calls get
	// an answer; a write that gets none is of unknown outcome.
	opTimeout = 20 * time.Second
	// checkTimeout bounds porcupine; running out of it fails the test.
	checkTimeout = 2 * time.Minute
)

// Options are what the suites' loads differ in.
type Options struct {
	// Client is every worker's client's options (credentials, TLS, how
	// soon to give up on a node), and those of Check's final reads.
	Client client.Options
	// Poll bounds WaitWrites and Check's wait for a node to answer.
	Poll e2etest.Poll
	// Stored reads key as node n holds it, for Check. Nil: a
	// linearizable GET through n.
	Stored func(n *e2etest.Node, key string) (e2etest.Response, error)
	// Artifacts returns the directory porcupine's picture of a history
	// that is not linearizable goes to, as history.html; it is called only
	// then. Nil or "": none.
	Artifacts func() string
}

// Load is a running load: its workers and the history they record.
type Load struct {
	t     *testing.T
	o     Options
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup

	writes   atomic.Int64          // acknowledged writes
	answered [workers]atomic.Int64 // per worker, calls that got an answer

	mu      sync.Mutex
	history []porcupine.Operation
	once    map[string]acked // acknowledged writes of keys written once
}

// acked is an acknowledged write of a key: its value and revision.
type acked struct {
	value string
	rev   uint64
}

// Client ids in the history beyond the workers': the test's own
// operations (Record), then the final reads through each node (Check).
const (
	testClient  = workers
	finalReader = workers + 1
)

// Start starts the workers against endpoints. Each worker's client has the
// endpoints in another order, so that the load goes through followers
// (forwarded) as well as through the leader. The load stops when the test
// ends, if not before.
func Start(t *testing.T, endpoints []string, o Options) *Load {
	t.Helper()
	l := &Load{t: t, o: o, start: time.Now(), stop: make(chan struct{}), once: map[string]acked{}}
	seed := rand.Uint64()
	t.Logf("load seed %d", seed)
	for id := range workers {
		rotated := append(append([]string{}, endpoints[id%len(endpoints):]...), endpoints[:id%len(endpoints)]...)
		cl, err := client.New(rotated, o.Client)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(seed, uint64(id)))
		l.wg.Go(func() {
			defer cl.Close()
			l.run(id, cl, rng)
		})
	}
	t.Cleanup(l.Halt) // a test that fails early still stops its workers
	return l
}

// Now is the time in the history: since the load started.
func (l *Load) Now() int64 { return int64(time.Since(l.start)) }

// run is one worker: a loop of random operations until the load stops.
func (l *Load) run(id int, cl *client.Client, rng *rand.Rand) {
	lastRev := map[string]uint64{} // per key, the revision this worker saw last
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		default:
		}
		in := kvmodel.Input{Key: fmt.Sprintf("hot/%d", rng.IntN(hotKeys)), Value: fmt.Sprintf("w%d.%d", id, i)}
		switch p := rng.IntN(100); {
		case p < 40:
			in.Kind = kvmodel.Get
		case p < 65:
			in.Kind = kvmodel.Put
		case p < 75:
			in.Kind, in.Expect = kvmodel.CAS, lastRev[in.Key]
		case p < 80: // a compare-and-set over two keys: one transaction
			other := fmt.Sprintf("hot/%d", rng.IntN(hotKeys))
			in.Kind, in.Keys, in.Key = kvmodel.Txn, []string{in.Key}, ""
			if other != in.Keys[0] {
				in.Keys = append(in.Keys, other)
			}
			for _, k := range in.Keys {
				in.Expects = append(in.Expects, lastRev[k])
			}
		case p < 85:
			in.Kind = kvmodel.Delete
		default: // a key written once: its write must be on every node afterwards
			in.Kind, in.Key = kvmodel.Put, fmt.Sprintf("once/w%d/%d", id, i)
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		call := l.Now()
		out, err := exec(ctx, cl, in)
		ret := l.Now()
		cancel()
		switch {
		case errors.Is(err, client.ErrUnavailable) && in.Kind == kvmodel.Get:
			continue // a read without an answer had no effect
		case errors.Is(err, client.ErrUnavailable):
			out, ret = kvmodel.Output{Unknown: true}, kvmodel.Never
		case err != nil:
			l.t.Errorf("worker %d: %v: %v", id, in, err)
			return
		case in.Kind != kvmodel.Get && !out.Mismatch && (in.Kind != kvmodel.Txn || out.Succeeded):
			l.writes.Add(1)
		}
		if !out.Unknown {
			l.answered[id].Add(1)
			switch in.Kind {
			case kvmodel.Txn:
				for i, k := range in.Keys {
					if out.Succeeded {
						lastRev[k] = out.Rev
					} else if i < len(out.Reads) {
						lastRev[k] = out.Reads[i].Rev
					}
				}
			case kvmodel.Delete:
				lastRev[in.Key] = 0
			default:
				lastRev[in.Key] = out.Rev
			}
		}
		l.mu.Lock()
		l.history = append(l.history, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
		if in.Kind == kvmodel.Put && !out.Unknown && strings.HasPrefix(in.Key, "once/") {
			l.once[in.Key] = acked{in.Value, out.Rev}
		}
		l.mu.Unlock()
	}
}

// exec runs one operation through the client.
func exec(ctx context.Context, cl *client.Client, in kvmodel.Input) (kvmodel.Output, error) {
	switch in.Kind {
	case kvmodel.Get:
		v, rev, err := cl.Get(ctx, in.Key, kvapi.WithConsistency(kvapi.Linearizable))
		if errors.Is(err, kvapi.ErrNotFound) {
			return kvmodel.Output{}, nil
		}
		return kvmodel.Output{Found: true, Value: string(v), Rev: rev}, err
	case kvmodel.Put:
		rev, err := cl.Set(ctx, in.Key, []byte(in.Value))
		return kvmodel.Output{Rev: rev}, err
	case kvmodel.CAS:
		rev, err := cl.Set(ctx, in.Key, []byte(in.Value), kvapi.WithCAS(in.Expect))
		var mismatch *kvapi.CASMismatchError
		if errors.As(err, &mismatch) {
			return kvmodel.Output{Mismatch: true, Rev: mismatch.Revision}, nil
		}
		return kvmodel.Output{Rev: rev}, err
	case kvmodel.Delete:
		deleted, rev, err := cl.Delete(ctx, in.Key)
		return kvmodel.Output{Deleted: deleted, Rev: rev}, err
	case kvmodel.Txn:
		var t kvapi.Txn
		for i, k := range in.Keys {
			t.Compare = append(t.Compare, kvapi.RevisionIs(k, in.Expects[i]))
			t.Success = append(t.Success, kvapi.Put(k, []byte(in.Value)))
			t.Failure = append(t.Failure, kvapi.Get(k))
		}
		resp, err := cl.Txn(ctx, t)
		out := kvmodel.Output{Rev: resp.Revision, Succeeded: resp.Succeeded}
		if err == nil && !resp.Succeeded {
			out.Reads = []kvmodel.Read{}
			for _, r := range resp.Results {
				out.Reads = append(out.Reads, kvmodel.Read{Found: r.Found, Value: string(r.Value), Rev: r.Revision})
			}
		}
		return out, err
	}
	panic(in)
}

// Record adds an operation the test made itself to the history, with
// times from Now (ret kvmodel.Never: its outcome is unknown).
func (l *Load) Record(in kvmodel.Input, out kvmodel.Output, call, ret int64) {
	l.record(testClient, in, out, call, ret)
}

func (l *Load) record(client int, in kvmodel.Input, out kvmodel.Output, call, ret int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.history = append(l.history, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// Acknowledged returns how many writes have been acknowledged so far.
func (l *Load) Acknowledged() int64 { return l.writes.Load() }

// WaitWrites waits until n more writes than at the call are acknowledged
// and every worker has had an answer: none is stuck on a node that is
// down, cut off or frozen.
func (l *Load) WaitWrites(n int64, why string) {
	l.t.Helper()
	want := l.writes.Load() + n
	var answered [workers]int64
	for i := range answered {
		answered[i] = l.answered[i].Load()
	}
	l.o.Poll.Until(l.t, fmt.Sprintf("%d more writes acknowledged and an answer to every worker (%s)", n, why), func() error {
		if got := l.writes.Load(); got < want {
			return fmt.Errorf("%d of %d writes", got, want)
		}
		for i := range answered {
			if l.answered[i].Load() == answered[i] {
				return fmt.Errorf("worker %d has had no answer", i)
			}
		}
		return nil
	})
}

// Halt stops the workers and waits for their calls in flight to end.
func (l *Load) Halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// Check halts the load, then checks, unless the test has failed already:
// every acknowledged write of a key written once is on each of nodes, with
// its revision (read with Options.Stored); a linearizable read of each hot
// key through each node joins the history; and the whole history is
// linearizable.
func (l *Load) Check(nodes ...*e2etest.Node) {
	l.t.Helper()
	l.Halt()
	if l.t.Failed() {
		return
	}
	stored := l.o.Stored
	if stored == nil {
		stored = func(n *e2etest.Node, key string) (e2etest.Response, error) { return n.Get("/v1/kv/" + key) }
	}
	for i, n := range nodes {
		l.o.Poll.Until(l.t, n.Name+" holds every acknowledged write", func() error {
			for key, w := range l.once {
				r, err := stored(n, key)
				if err != nil {
					return err
				}
				if r.Code == http.StatusServiceUnavailable {
					// No answer (a node just restarted, an election):
					// asked again; only a wrong answer stops the wait.
					return fmt.Errorf("%s through %s: %d %s", key, n.Name, r.Code, r.Body)
				}
				if rev := r.Header.Get("Raftex-Revision"); r.Code != http.StatusOK || string(r.Body) != w.value || rev != strconv.FormatUint(w.rev, 10) {
					return e2etest.StopPolling(fmt.Errorf("acknowledged write %s=%s at revision %d: on %s it is %d %q revision %q",
						key, w.value, w.rev, n.Name, r.Code, r.Body, rev))
				}
			}
			return nil
		})
		cl, err := client.New([]string{n.ClientAddr}, l.o.Client)
		if err != nil {
			l.t.Fatal(err)
		}
		for k := range hotKeys {
			in := kvmodel.Input{Kind: kvmodel.Get, Key: fmt.Sprintf("hot/%d", k)}
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			call := l.Now()
			out, err := exec(ctx, cl, in)
			ret := l.Now()
			cancel()
			if err != nil {
				cl.Close()
				l.t.Fatalf("final read of %s through %s: %v", in.Key, n.Name, err)
			}
			l.record(finalReader+i, in, out, call, ret)
		}
		cl.Close()
	}
	l.checkHistory()
}

func (l *Load) checkHistory() {
	l.t.Helper()
	unknown := 0
	for _, op := range l.history {
		if op.Output.(kvmodel.Output).Unknown {
			unknown++
		}
	}
	started := time.Now()
	res, info, err := kvmodel.CheckVerbose(l.history, checkTimeout)
	l.t.Logf("history: %d operations, %d writes acknowledged, %d of unknown outcome, %d keys written once; porcupine: %s in %s",
		len(l.history), l.writes.Load(), unknown, len(l.once), res, time.Since(started).Round(time.Millisecond))
	if err == nil {
		return
	}
	l.t.Error(err)
	if l.o.Artifacts == nil {
		return
	}
	if dir := l.o.Artifacts(); dir != "" {
		path := filepath.Join(dir, "history.html")
		if err := kvmodel.Visualize(info, path); err != nil {
			l.t.Logf("visualizing the history: %v", err)
		} else {
			l.t.Logf("porcupine's visualization: %s", path)
		}
	}
}
