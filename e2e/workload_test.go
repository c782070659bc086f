package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
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

// A load of concurrent clients through any member while the cluster
// changes, recording a history for porcupine (as e2e/docker's workload
// does for container faults): puts, CASes and linearizable gets of a few
// hot keys, and writes of keys written once, whose acknowledged values
// must be on every member afterwards.
const (
	loadWorkers = 4
	loadHotKeys = 4
	// loadOpTimeout outlasts an election, a transfer and a change, so most
	// calls get an answer; a write that does not is of unknown outcome.
	loadOpTimeout = 20 * time.Second
)

type load struct {
	t     *testing.T
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup

	writes atomic.Int64 // acknowledged writes

	mu      sync.Mutex
	history []porcupine.Operation
	once    map[string]ackedWrite // acknowledged writes of keys written once
}

type ackedWrite struct {
	value string
	rev   uint64
}

// startLoad starts the workers against endpoints, each client with its
// own session and the endpoints in another order, so the writes go through
// followers (forwarded) as well as the leader. More endpoints come with
// widen, for members added later.
func startLoad(t *testing.T, endpoints []string) *load {
	t.Helper()
	l := &load{t: t, start: time.Now(), stop: make(chan struct{}), once: map[string]ackedWrite{}}
	seed := rand.Uint64()
	t.Logf("load seed %d", seed)
	for id := range loadWorkers {
		rotated := append(append([]string{}, endpoints[id%len(endpoints):]...), endpoints[:id%len(endpoints)]...)
		cl, err := client.New(rotated, client.Options{AttemptTimeout: 6 * time.Second, MaxBackoff: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(seed, uint64(id)))
		l.wg.Go(func() {
			defer cl.Close()
			l.run(id, cl, rng)
		})
	}
	t.Cleanup(l.halt)
	return l
}

func (l *load) now() int64 { return int64(time.Since(l.start)) }

func (l *load) run(id int, cl *client.Client, rng *rand.Rand) {
	lastRev := map[string]uint64{}
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		default:
		}
		in := kvmodel.Input{Key: fmt.Sprintf("hot/%d", rng.IntN(loadHotKeys)), Value: fmt.Sprintf("w%d.%d", id, i)}
		switch p := rng.IntN(100); {
		case p < 40:
			in.Kind = kvmodel.Get
		case p < 65:
			in.Kind = kvmodel.Put
		case p < 80:
			in.Kind, in.Expect = kvmodel.CAS, lastRev[in.Key]
		default:
			in.Kind, in.Key = kvmodel.Put, fmt.Sprintf("once/w%d/%d", id, i)
		}
		ctx, cancel := context.WithTimeout(context.Background(), loadOpTimeout)
		call := l.now()
		out, err := loadExec(ctx, cl, in)
		ret := l.now()
		cancel()
		switch {
		case errors.Is(err, client.ErrUnavailable) && in.Kind == kvmodel.Get:
			continue // a read without an answer had no effect
		case errors.Is(err, client.ErrUnavailable):
			out, ret = kvmodel.Output{Unknown: true}, kvmodel.Never
		case err != nil:
			l.t.Errorf("worker %d: %v: %v", id, in, err)
			return
		case in.Kind != kvmodel.Get && !out.Mismatch:
			l.writes.Add(1)
		}
		if !out.Unknown {
			lastRev[in.Key] = out.Rev
		}
		l.mu.Lock()
		l.history = append(l.history, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
		if !out.Unknown && strings.HasPrefix(in.Key, "once/") {
			l.once[in.Key] = ackedWrite{in.Value, out.Rev}
		}
		l.mu.Unlock()
	}
}

func loadExec(ctx context.Context, cl *client.Client, in kvmodel.Input) (kvmodel.Output, error) {
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
	}
	panic(in)
}

// waitWrites waits until n more writes than now are acknowledged.
func (l *load) waitWrites(n int64, why string) {
	l.t.Helper()
	want := l.writes.Load() + n
	soon.Until(l.t, fmt.Sprintf("%d more writes acknowledged (%s)", n, why), func() error {
		if got := l.writes.Load(); got < want {
			return fmt.Errorf("%d of %d", got, want)
		}
		return nil
	})
}

func (l *load) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// check stops the load, then checks that every acknowledged write of a
// key written once is on each of members with its revision, reads every
// hot key linearizably through each, and checks the whole history with
// porcupine.
func (l *load) check(members ...*e2etest.Node) {
	l.t.Helper()
	l.halt()
	if l.t.Failed() {
		return
	}
	for _, m := range members {
		soon.Until(l.t, m.Name+" holds every acknowledged write", func() error {
			for key, a := range l.once {
				r, err := m.Get("/v1/kv/" + key)
				if err != nil {
					return err
				}
				if rev := r.Header.Get("Raftex-Revision"); r.Code != http.StatusOK || string(r.Body) != a.value || rev != strconv.FormatUint(a.rev, 10) {
					return e2etest.StopPolling(fmt.Errorf("acknowledged write %s=%s at revision %d: on %s it is %d %q revision %q",
						key, a.value, a.rev, m.Name, r.Code, r.Body, rev))
				}
			}
			return nil
		})
		cl, err := client.New([]string{m.ClientAddr}, client.Options{})
		if err != nil {
			l.t.Fatal(err)
		}
		for k := range loadHotKeys {
			in := kvmodel.Input{Kind: kvmodel.Get, Key: fmt.Sprintf("hot/%d", k)}
			ctx, cancel := context.WithTimeout(context.Background(), loadOpTimeout)
			call := l.now()
			out, err := loadExec(ctx, cl, in)
			ret := l.now()
			cancel()
			if err != nil {
				l.t.Fatalf("final read of %s through %s: %v", in.Key, m.Name, err)
			}
			l.history = append(l.history, porcupine.Operation{ClientId: loadWorkers, Input: in, Call: call, Output: out, Return: ret})
		}
		cl.Close()
	}
	unknown := 0
	for _, op := range l.history {
		if op.Output.(kvmodel.Output).Unknown {
			unknown++
		}
	}
	res, err := kvmodel.Check(l.history, 2*time.Minute)
	l.t.Logf("history: %d operations, %d writes acknowledged, %d of unknown outcome, %d keys written once; porcupine: %s",
		len(l.history), l.writes.Load(), unknown, len(l.once), res)
	if err != nil {
		l.t.Error(err)
	}
}
