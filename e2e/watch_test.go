package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/raftex/raftex/client"
	"github.com/raftex/raftex/internal/e2etest"
	"github.com/raftex/raftex/kvapi"
)

// watchLog is what one client.Watch delivered.
type watchLog struct {
	mu     sync.Mutex
	events []kvapi.Event
}

func (w *watchLog) last() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.events) == 0 {
		return 0
	}
	return w.events[len(w.events)-1].Revision
}

// TestWatchesAcrossKillsPausesAndLeaderChanges: watchers of a prefix,
// each starting on a follower (one of them bound to it), while writers set keys, run multi-key
// compare-and-set transactions and delete by prefix; meanwhile the watched
// follower is killed, the leader is killed, a node is paused (SIGSTOP: cut
// off, as by a partition) and everything restarts, with a history of 50
// revisions so restarts compact watches. Every watcher must see each
// acknowledged change once, in revision order (or a listing after it),
// and end with the prefix's committed state.
func TestWatchesAcrossKillsPausesAndLeaderChanges(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, "--watch-history", "50")
	lead := c.Leader()
	followers := c.Followers(lead)
	watched := followers[0]
	endpoints := func(first *e2etest.Node) []string {
		eps := []string{first.ClientAddr}
		for _, o := range c.Others(first) {
			eps = append(eps, o.ClientAddr)
		}
		return eps
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Three watchers may move to any node; the last one knows only the
	// watched follower, so it waits through its restart and resumes there
	// (with Last-Event-ID, or a listing if the restarted node's history no
	// longer reaches back).
	logs := make([]*watchLog, 4)
	var watching sync.WaitGroup
	for i := range logs {
		logs[i] = &watchLog{}
		eps := endpoints(watched)
		if i == len(logs)-1 {
			eps = eps[:1]
		}
		wc, err := client.New(eps, client.Options{MaxBackoff: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer wc.Close()
		events := wc.Watch(ctx, "w/", 1)
		watching.Go(func() {
			for ev := range events {
				if ev.Err != nil {
					t.Errorf("watcher %d: %v", i, ev.Err)
					continue
				}
				logs[i].mu.Lock()
				logs[i].events = append(logs[i].events, ev)
				logs[i].mu.Unlock()
			}
		})
	}

	cl, err := client.New(c.Endpoints(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	type change struct{ key, value string } // value "": deleted
	var (
		mu     sync.Mutex
		acked  = map[uint64][]change{}
		maxRev uint64
	)
	ack := func(rev uint64, ch ...change) {
		mu.Lock()
		defer mu.Unlock()
		acked[rev] = ch
		maxRev = max(maxRev, rev)
	}
	wctx, stopWriting := context.WithCancel(ctx)
	var writers sync.WaitGroup
	for w := range 2 {
		writers.Go(func() {
			for i := 0; wctx.Err() == nil; i++ {
				key, value := fmt.Sprintf("w/%d/%d", w, i%20), fmt.Sprintf("v%d.%d", w, i)
				octx, ocancel := context.WithTimeout(wctx, 20*time.Second)
				rev, err := cl.Set(octx, key, []byte(value))
				ocancel()
				if err == nil {
					ack(rev, change{key, value})
				}
			}
		})
	}
	writers.Go(func() { // transactions and prefix deletes
		for i := 0; wctx.Err() == nil; i++ {
			octx, ocancel := context.WithTimeout(wctx, 20*time.Second)
			_, arev, aerr := cl.Get(octx, "w/t/a")
			_, brev, berr := cl.Get(octx, "w/t/b")
			if (aerr == nil || errors.Is(aerr, kvapi.ErrNotFound)) && (berr == nil || errors.Is(berr, kvapi.ErrNotFound)) {
				v := fmt.Sprintf("t%d", i)
				resp, err := cl.Txn(octx, kvapi.Txn{
					Compare: []kvapi.Compare{kvapi.RevisionIs("w/t/a", arev), kvapi.RevisionIs("w/t/b", brev)},
					Success: []kvapi.Op{kvapi.Put("w/t/a", []byte(v)), kvapi.Put("w/t/b", []byte(v))},
				})
				if err == nil && resp.Succeeded {
					ack(resp.Revision, change{"w/t/a", v}, change{"w/t/b", v})
				}
			}
			if i%5 == 4 {
				if rev, err := cl.Set(octx, "w/tmp/x", []byte("x")); err == nil {
					ack(rev, change{"w/tmp/x", "x"})
				}
				if n, rev, err := cl.DeletePrefix(octx, "w/tmp/", false); err == nil && n == 1 {
					ack(rev, change{"w/tmp/x", ""})
				}
			}
			ocancel()
		}
	})

	progress := func(what string) {
		t.Helper()
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		soon.Until(t, what, func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(acked) < n+30 {
				return fmt.Errorf("%d writes acknowledged", len(acked))
			}
			return nil
		})
	}
	progress("writes before the faults")
	c.Kill(watched) // the watchers move to another node
	progress("writes with the watched follower down")
	c.Restart(watched)
	old := c.Leader()
	c.Kill(old) // a leader change
	progress("writes after the leader was killed")
	c.Restart(old)
	paused := c.Followers(c.Leader())[0]
	paused.Proc.Freeze(t) // cut off, as by a partition
	progress("writes while a follower is paused")
	paused.Proc.Signal(t, syscall.SIGCONT)
	progress("writes after it came back")
	stopWriting()
	writers.Wait()

	// A write given up on may still apply: the state compared is the one
	// at a listing's revision, after a last write.
	end, err := cl.Set(ctx, "w/end", []byte("end"))
	if err != nil {
		t.Fatal(err)
	}
	ack(end, change{"w/end", "end"})
	final, err := cl.List(ctx, "w/", kvapi.ListOptions{Limit: kvapi.MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	soon.Until(t, "every watcher caught up", func() error {
		for i, l := range logs {
			if got := l.last(); got < max(end, lastPrefixRevision(final)) {
				return fmt.Errorf("watcher %d at revision %d, the last write at %d", i, got, end)
			}
		}
		return nil
	})
	cancel()
	watching.Wait()

	want := map[string]string{}
	for _, kv := range final.KVs {
		want[string(kv.Key)] = string(kv.Value)
	}
	for i, l := range logs {
		view := map[string]string{}
		var last uint64
		resets := []uint64{}
		seen := map[uint64]kvapi.Event{}
		for _, ev := range l.events {
			if ev.Revision <= last && !(ev.Reset && ev.Revision == last) {
				t.Fatalf("watcher %d: revision %d after %d: out of order or repeated", i, ev.Revision, last)
			}
			if ev.Reset {
				view = map[string]string{}
				resets = append(resets, ev.Revision)
			} else {
				seen[ev.Revision] = ev
			}
			last = ev.Revision
			if ev.Revision > final.Revision {
				continue // after the listing compared with
			}
			for _, ch := range ev.Changes {
				if ch.Type == kvapi.ChangeDelete {
					delete(view, string(ch.Key))
				} else {
					view[string(ch.Key)] = string(ch.Value)
				}
			}
		}
		for rev, changes := range acked {
			ev, ok := seen[rev]
			if !ok {
				if !slices.ContainsFunc(resets, func(r uint64) bool { return r >= rev }) {
					t.Errorf("watcher %d never got acknowledged revision %d (%v) and no listing covers it", i, rev, changes)
				}
				continue
			}
			var got []string
			for _, ch := range ev.Changes {
				got = append(got, string(ch.Key)+"="+string(ch.Value))
			}
			var exp []string
			for _, ch := range changes {
				exp = append(exp, ch.key+"="+ch.value)
			}
			if strings.Join(got, " ") != strings.Join(exp, " ") {
				t.Errorf("watcher %d: revision %d delivered %v, acknowledged %v", i, rev, got, exp)
			}
		}
		if fmt.Sprint(view) != fmt.Sprint(want) {
			t.Errorf("watcher %d ends with %v, the cluster has %v", i, view, want)
		}
		t.Logf("watcher %d: %d events, %d listings after compaction", i, len(seen), len(resets))
	}
}

func lastPrefixRevision(l kvapi.ListResult) uint64 {
	var r uint64
	for _, kv := range l.KVs {
		r = max(r, kv.Revision)
	}
	return r
}

// TestWatchCompacted410: a watch from before the node's history answers
// 410 with the compact revision, and client.Watch gets past it with a
// listing.
func TestWatchCompacted410(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, "--watch-history", "5")
	nd := c.Nodes[0]
	for i := range 10 {
		nd.Put(t, fmt.Sprintf("c/%d", i), "v")
	}
	r := must(t, http.MethodGet, nd.URL("/v1/watch?prefix=c/&from_revision=1"), nil)
	if err := r.Want(http.StatusGone); err != nil {
		t.Fatal(err)
	}
	f := r.Fields(t)
	if f["code"] != "compacted" || f["compact_revision"] == nil {
		t.Fatalf("410 body %v", f)
	}
	cl, err := client.New([]string{nd.ClientAddr}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), startDeadline)
	defer cancel()
	events := cl.Watch(ctx, "c/", 1)
	reset := <-events
	if !reset.Reset || len(reset.Changes) != 10 {
		t.Fatalf("first event %+v, want a listing of the 10 keys", reset)
	}
	rev := nd.Put(t, "c/new", "n")
	if ev := <-events; ev.Revision != rev || ev.Reset || string(ev.Changes[0].Key) != "c/new" {
		t.Fatalf("after the listing: %+v, want c/new at %d", ev, rev)
	}
}
