package docker

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
	workers = 4 // concurrent clients, each with its own session
	hotKeys = 4 // keys every worker reads, writes, CASes and deletes
	// opTimeout bounds one client call. Long enough to outlast an
	// election and a node's restart, so that most calls get an answer; a
	// write that does not is of unknown outcome.
	opTimeout = 20 * time.Second
	// checkTimeout bounds porcupine; running out of it fails the test.
	checkTimeout = 2 * time.Minute
)

// workload is a concurrent client load on a cluster, recording a history
// of every call: its input, when it was called and returned, and what it
// returned (or that it returned nothing: a write of unknown outcome).
type workload struct {
	t     *testing.T
	c     *cluster
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup

	writes   atomic.Int64          // acknowledged writes
	answered [workers]atomic.Int64 // per worker, calls that got an answer

	mu      sync.Mutex
	history []porcupine.Operation
	unique  map[string]acked // acknowledged writes of keys written once
}

type acked struct {
	value string
	rev   uint64
}

// startWorkload starts the workers. Each has its own client (its own
// session) with the endpoints in another order, so the load goes through
// followers (forwarded) as well as through the leader.
func startWorkload(t *testing.T, c *cluster) *workload {
	t.Helper()
	w := &workload{t: t, c: c, start: time.Now(), stop: make(chan struct{}), unique: map[string]acked{}}
	eps := c.endpoints()
	seed := rand.Uint64()
	t.Logf("workload seed %d", seed)
	for id := range workers {
		rotated := append(append([]string{}, eps[id%len(eps):]...), eps[:id%len(eps)]...)
		cl, err := client.New(rotated, client.Options{
			// A frozen node answers nothing: give up on it soon after
			// the servers' own request timeout would have answered 503.
			AttemptTimeout: requestTimeout + time.Second,
			MaxBackoff:     500 * time.Millisecond,
			Username:       workloadUser, Password: workloadPassword,
			TLS: certTLS,
		})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(seed, uint64(id)))
		w.wg.Go(func() {
			defer cl.Close()
			w.run(id, cl, rng)
		})
	}
	t.Cleanup(w.halt) // a test that fails early still stops its workers
	return w
}

func (w *workload) now() int64 { return int64(time.Since(w.start)) }

// run is one worker: a loop of random operations until the workload stops.
func (w *workload) run(id int, cl *client.Client, rng *rand.Rand) {
	lastRev := map[string]uint64{} // per key, the revision this worker saw last
	for i := 0; ; i++ {
		select {
		case <-w.stop:
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
		call := w.now()
		out, err := w.exec(ctx, cl, in)
		ret := w.now()
		cancel()
		switch {
		case errors.Is(err, client.ErrUnavailable) && in.Kind == kvmodel.Get:
			continue // a read without an answer had no effect
		case errors.Is(err, client.ErrUnavailable):
			out, ret = kvmodel.Output{Unknown: true}, kvmodel.Never
		case err != nil:
			w.t.Errorf("worker %d: %v: %v", id, in, err)
			return
		case in.Kind != kvmodel.Get && !out.Mismatch && (in.Kind != kvmodel.Txn || out.Succeeded):
			w.writes.Add(1)
		}
		if !out.Unknown {
			w.answered[id].Add(1)
			switch {
			case in.Kind == kvmodel.Txn:
				for i, k := range in.Keys {
					if out.Succeeded {
						lastRev[k] = out.Rev
					} else if i < len(out.Reads) {
						lastRev[k] = out.Reads[i].Rev
					}
				}
			case in.Kind == kvmodel.Delete:
				lastRev[in.Key] = 0
			default:
				lastRev[in.Key] = out.Rev
			}
		}
		w.mu.Lock()
		w.history = append(w.history, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
		if in.Kind == kvmodel.Put && !out.Unknown && strings.HasPrefix(in.Key, "once/") {
			w.unique[in.Key] = acked{in.Value, out.Rev}
		}
		w.mu.Unlock()
	}
}

// exec runs one operation through the client.
func (w *workload) exec(ctx context.Context, cl *client.Client, in kvmodel.Input) (kvmodel.Output, error) {
	switch in.Kind {
	case kvmodel.Get:
		v, rev, err := cl.Get(ctx, in.Key)
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

// Client ids in the history beyond the workers': the final reads through
// each node, then the test's own requests.
const (
	finalReader = workers
	testClient  = workers + 3
)

// record adds an operation the test made itself to the history.
func (w *workload) record(client int, in kvmodel.Input, out kvmodel.Output, call, ret int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.history = append(w.history, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// acknowledged returns how many writes have been acknowledged so far.
func (w *workload) acknowledged() int64 { return w.writes.Load() }

// waitWrites waits until n more writes than at the call are acknowledged
// and every worker has had an answer: none is stuck on a node that is
// down, cut off or frozen.
func (w *workload) waitWrites(n int64, why string) {
	w.t.Helper()
	want := w.writes.Load() + n
	var answered [workers]int64
	for i := range answered {
		answered[i] = w.answered[i].Load()
	}
	poll.Until(w.t, fmt.Sprintf("%d more writes acknowledged and an answer to every worker (%s)", n, why), func() error {
		if got := w.writes.Load(); got < want {
			return fmt.Errorf("%d of %d writes", got, want)
		}
		for i := range answered {
			if w.answered[i].Load() == answered[i] {
				return fmt.Errorf("worker %d has had no answer", i)
			}
		}
		return nil
	})
}

// halt stops the workers and waits for their calls in flight to end.
func (w *workload) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

// check stops the workload, then checks, with every node up: every
// acknowledged write of a key written once is on every node, with its
// revision; a linearizable read of each hot key through each node; and the
// whole history is linearizable.
func (w *workload) check() {
	w.t.Helper()
	w.halt()
	if w.t.Failed() {
		return
	}
	c := w.c
	c.leader(c.nodes...) // every node ready: caught up with the leader
	w.mu.Lock()
	unique := w.unique
	w.mu.Unlock()
	for _, m := range c.nodes {
		for key, a := range unique {
			r, err := m.Get("/v1/kv/" + key + "?consistency=stale")
			if err != nil {
				w.t.Fatalf("reading %s on %s: %v", key, m.Name, err)
			}
			if rev := r.Header.Get("Raftex-Revision"); r.Code != http.StatusOK || string(r.Body) != a.value || rev != strconv.FormatUint(a.rev, 10) {
				w.t.Errorf("acknowledged write %s=%s at revision %d: on %s it is %d %q revision %q",
					key, a.value, a.rev, m.Name, r.Code, r.Body, rev)
			}
		}
	}
	for i, m := range c.nodes {
		cl, err := client.New([]string{m.ClientAddr}, client.Options{Username: workloadUser, Password: workloadPassword, TLS: certTLS})
		if err != nil {
			w.t.Fatal(err)
		}
		for k := range hotKeys {
			in := kvmodel.Input{Kind: kvmodel.Get, Key: fmt.Sprintf("hot/%d", k)}
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			call := w.now()
			out, err := w.exec(ctx, cl, in)
			ret := w.now()
			cancel()
			if err != nil {
				w.t.Fatalf("final read of %s through %s: %v", in.Key, m.Name, err)
			}
			w.record(finalReader+i, in, out, call, ret)
		}
		cl.Close()
	}
	w.checkHistory()
}

func (w *workload) checkHistory() {
	w.t.Helper()
	unknown := 0
	for _, op := range w.history {
		if op.Output.(kvmodel.Output).Unknown {
			unknown++
		}
	}
	started := time.Now()
	res, info, err := kvmodel.CheckVerbose(w.history, checkTimeout)
	w.t.Logf("history: %d operations, %d writes acknowledged, %d of unknown outcome, %d keys written once; porcupine: %s in %s",
		len(w.history), w.writes.Load(), unknown, len(w.unique), res, time.Since(started).Round(time.Millisecond))
	if err == nil {
		return
	}
	w.t.Error(err)
	if dir := artifactDir(w.t); dir != "" {
		path := filepath.Join(dir, "history.html")
		if err := kvmodel.Visualize(info, path); err != nil {
			w.t.Logf("visualizing the history: %v", err)
		} else {
			w.t.Logf("porcupine's visualization: %s", path)
		}
	}
}

// artifactDir is $RAFTEX_ARTIFACTS/docker/<test>, made; "" without
// RAFTEX_ARTIFACTS.
func artifactDir(t *testing.T) string { return e2etest.ArtifactDir(t, "docker", shortName(t.Name())) }
