package kv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftex/raftex/kvapi"
	"github.com/raftex/raftex/raft"
)

func (a *applier) txn(t kvapi.Txn) (*kvapi.TxnResponse, Result) {
	a.t.Helper()
	c, err := a.s.TxnCommand(t)
	if err != nil {
		a.t.Fatal(err)
	}
	res := a.apply(c)
	if res.Err != nil {
		a.t.Fatalf("txn: %v", res.Err)
	}
	return res.Txn, res
}

// listAll pages through prefix with the given page size.
func listAll(s *Store, prefix string, limit int, between func()) []kvapi.KeyValue {
	var all []kvapi.KeyValue
	var after []byte
	for {
		page := s.List([]byte(prefix), kvapi.ListOptions{StartAfter: after, Limit: limit})
		all = append(all, page.KVs...)
		if !page.More {
			return all
		}
		after = page.KVs[len(page.KVs)-1].Key
		between()
	}
}

// TestList_MatchesModel checks ranges and prefix deletes against a map
// under random sets, deletes, prefix deletes and transactions.
func TestList_MatchesModel(t *testing.T) {
	a := newApplier(t)
	model := map[string]string{}
	rng := rand.New(rand.NewPCG(1, 2))
	keys := func() string { return fmt.Sprintf("%c/%c%d", 'a'+rng.IntN(3), 'a'+rng.IntN(3), rng.IntN(5)) }
	for step := range 2000 {
		switch k := keys(); rng.IntN(10) {
		case 0:
			p := k[:rng.IntN(len(k))]
			res := a.apply(DeletePrefix([]byte(p)))
			n := 0
			for key := range model {
				if strings.HasPrefix(key, p) {
					delete(model, key)
					n++
				}
			}
			if res.Err != nil || res.Count != uint64(n) {
				t.Fatalf("delete prefix %q = %+v, want count %d", p, res, n)
			}
		case 1, 2:
			a.apply(del(k))
			delete(model, k)
		case 3:
			k2 := keys()
			a.txn(kvapi.Txn{Success: []kvapi.Op{kvapi.Put(k, []byte("t")), kvapi.Delete(k2)}})
			model[k] = "t"
			delete(model, k2)
		default:
			v := fmt.Sprint(step)
			a.apply(set(k, v))
			model[k] = v
		}
		prefix := keys()[:rng.IntN(4)]
		var want []string
		for key := range model {
			if strings.HasPrefix(key, prefix) {
				want = append(want, key+"="+model[key])
			}
		}
		slices.Sort(want)
		var got []string
		for _, kv := range listAll(a.s, prefix, 1+rng.IntN(4), func() {}) {
			got = append(got, string(kv.Key)+"="+string(kv.Value))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: list %q = %v, want %v", step, prefix, got, want)
		}
	}
}

// TestList_PaginationUnderWritesNeverSkipsOrRepeats: writes between
// pages never make a listing repeat a key or skip one that existed
// throughout.
func TestList_PaginationUnderWritesNeverSkipsOrRepeats(t *testing.T) {
	a := newApplier(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		a.apply(set(fmt.Sprintf("p/%03d", i), "v"))
	}
	for round := range 50 {
		stable := map[string]bool{}
		for _, kv := range a.s.List([]byte("p/"), kvapi.ListOptions{Limit: kvapi.MaxListLimit}).KVs {
			stable[string(kv.Key)] = true
		}
		got := listAll(a.s, "p/", 7, func() {
			for range 5 { // keys come and go between pages
				k := fmt.Sprintf("p/%03d", rng.IntN(300))
				delete(stable, k)
				if rng.IntN(2) == 0 {
					a.apply(set(k, "w"))
				} else {
					a.apply(del(k))
				}
			}
		})
		for i := 1; i < len(got); i++ {
			if bytes.Compare(got[i-1].Key, got[i].Key) >= 0 {
				t.Fatalf("round %d: %q then %q: repeated or out of order", round, got[i-1].Key, got[i].Key)
			}
		}
		seen := map[string]bool{}
		for _, kv := range got {
			seen[string(kv.Key)] = true
		}
		for k := range stable {
			if !seen[k] {
				t.Fatalf("round %d: skipped %q, present throughout", round, k)
			}
		}
	}
}

func TestList_OptionsAndRevision(t *testing.T) {
	a := newApplier(t)
	a.apply(set("a", "1"))
	a.apply(set("b/\xff", "2"))
	a.apply(set("b/x", "3"))
	a.apply(set("c", "4"))
	res := a.s.List([]byte("b/"), kvapi.ListOptions{KeysOnly: true})
	// Byte order: "b/x" < "b/\xff".
	if len(res.KVs) != 2 || res.More || res.Revision != 4 || res.KVs[0].Value != nil ||
		string(res.KVs[0].Key) != "b/x" || string(res.KVs[1].Key) != "b/\xff" {
		t.Fatalf("list b/ = %+v", res)
	}
	if res := a.s.List(nil, kvapi.ListOptions{Limit: 2}); len(res.KVs) != 2 || !res.More {
		t.Fatalf("limit 2 = %+v", res)
	}
	if res := a.s.List(nil, kvapi.ListOptions{StartAfter: []byte("a")}); len(res.KVs) != 3 || string(res.KVs[0].Key) != "b/x" {
		t.Fatalf("after a = %+v", res)
	}
}

// TestList_PageIsBoundedByBytes: a page of large values ends at about
// kvapi.MaxListBytes (with More, at least one key), so a listing cannot
// hold a node's memory to its key limit's worth of the largest values;
// paging still returns every key, and keys alone fit one page.
func TestList_PageIsBoundedByBytes(t *testing.T) {
	a := newApplier(t)
	big := strings.Repeat("v", DefaultMaxValueSize)
	const n = 10
	for i := range n {
		a.apply(set(fmt.Sprintf("big/%d", i), big))
	}
	page := a.s.List([]byte("big/"), kvapi.ListOptions{})
	size := 0
	for _, kv := range page.KVs {
		size += len(kv.Key) + len(kv.Value)
	}
	if !page.More || len(page.KVs) == 0 || len(page.KVs) >= n || size > kvapi.MaxListBytes+DefaultMaxValueSize+16 {
		t.Fatalf("first page: %d keys, %d bytes, more %v; want a page that ends near %d bytes", len(page.KVs), size, page.More, kvapi.MaxListBytes)
	}
	if all := listAll(a.s, "big/", 0, func() {}); len(all) != n {
		t.Fatalf("paging listed %d keys, want %d", len(all), n)
	}
	if keys := a.s.List([]byte("big/"), kvapi.ListOptions{KeysOnly: true}); len(keys.KVs) != n || keys.More {
		t.Fatalf("keys only: %d keys, more %v", len(keys.KVs), keys.More)
	}
}

func TestTxn_ComparesAndBranches(t *testing.T) {
	a := newApplier(t)
	a.apply(set("x", "1")) // rev 1
	cases := []struct {
		name string
		cmp  kvapi.Compare
		want bool
	}{
		{"revision holds", kvapi.RevisionIs("x", 1), true},
		{"revision differs", kvapi.RevisionIs("x", 2), false},
		{"absent is revision 0", kvapi.RevisionIs("nope", 0), true},
		{"value holds", kvapi.ValueIs("x", []byte("1")), true},
		{"value differs", kvapi.ValueIs("x", []byte("2")), false},
		{"value of an absent key", kvapi.ValueIs("nope", nil), false},
		{"exists", kvapi.Exists("x", true), true},
		{"absent", kvapi.Exists("nope", false), true},
		{"not absent", kvapi.Exists("x", false), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, _ := a.txn(kvapi.Txn{Compare: []kvapi.Compare{c.cmp},
				Success: []kvapi.Op{kvapi.Get("x")}, Failure: []kvapi.Op{kvapi.Get("nope")}})
			if resp.Succeeded != c.want || len(resp.Results) != 1 || resp.Results[0].Found != c.want {
				t.Fatalf("got %+v, want succeeded=%t", resp, c.want)
			}
		})
	}
}

// TestTxn_MultiKeyCASIsAtomic: a compare-and-set over several keys is one
// revision, and its gets see the writes before them.
func TestTxn_MultiKeyCASIsAtomic(t *testing.T) {
	a := newApplier(t)
	a.apply(set("acct/a", "10"))
	a.apply(set("acct/b", "5"))
	resp, res := a.txn(kvapi.Txn{
		Compare: []kvapi.Compare{kvapi.RevisionIs("acct/a", 1), kvapi.RevisionIs("acct/b", 2)},
		Success: []kvapi.Op{kvapi.Put("acct/a", []byte("7")), kvapi.Put("acct/b", []byte("8")), kvapi.Get("acct/a"), kvapi.Delete("acct/c")},
	})
	if !resp.Succeeded || resp.Revision != 3 || res.Revision != 3 {
		t.Fatalf("txn = %+v", resp)
	}
	want := []kvapi.OpResult{{Kind: kvapi.OpPut, Revision: 3}, {Kind: kvapi.OpPut, Revision: 3},
		{Kind: kvapi.OpGet, Found: true, Value: []byte("7"), Revision: 3}, {Kind: kvapi.OpDelete}}
	if fmt.Sprint(resp.Results) != fmt.Sprint(want) {
		t.Fatalf("results %+v, want %+v", resp.Results, want)
	}
	a.mustGet("acct/b", "8", 3)
	// The same CAS again fails as a whole.
	resp, _ = a.txn(kvapi.Txn{
		Compare: []kvapi.Compare{kvapi.RevisionIs("acct/a", 1), kvapi.RevisionIs("acct/b", 3)},
		Success: []kvapi.Op{kvapi.Put("acct/b", []byte("x"))},
	})
	if resp.Succeeded || len(resp.Results) != 0 {
		t.Fatalf("stale CAS = %+v", resp)
	}
	a.mustGet("acct/b", "8", 3)
}

// TestTxn_ExactlyOnceInSession: thesis §6.3, a retried transaction
// returns its first outcome (also after a snapshot) and does not run
// again; so does a prefix delete's count.
func TestTxn_ExactlyOnceInSession(t *testing.T) {
	a := newApplier(t)
	id := a.register()
	a.apply(set("n", "0"))
	c, err := a.s.TxnCommand(kvapi.Txn{Compare: []kvapi.Compare{kvapi.ValueIs("n", []byte("0"))},
		Success: []kvapi.Op{kvapi.Put("n", []byte("1")), kvapi.Get("n")}})
	if err != nil {
		t.Fatal(err)
	}
	c = inSession(c, id, 1)
	first := a.apply(c)
	a.apply(set("p/1", "x"))
	a.apply(set("p/2", "x"))
	dp := inSession(DeletePrefix([]byte("p/")), id, 2)
	if res := a.apply(dp); res.Count != 2 {
		t.Fatalf("delete prefix = %+v", res)
	}
	a.apply(set("n", "0"))

	snap, err := a.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{a.s, restore(t, buf.Bytes())} {
		a.s = s
		again := a.apply(c)
		if !again.Txn.Succeeded || fmt.Sprint(again.Txn) != fmt.Sprint(first.Txn) {
			t.Fatalf("retry = %+v, want the first outcome %+v", again.Txn, first.Txn)
		}
		if res := a.apply(dp); res.Count != 2 {
			t.Fatalf("retried delete prefix = %+v, want count 2", res)
		}
		a.mustGet("n", "0", 7)
	}
}

func restore(t *testing.T, b []byte) *Store {
	t.Helper()
	s := New(Config{})
	if err := s.Restore(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTxn_Validation(t *testing.T) {
	a := newApplier(t)
	ops := make([]kvapi.Op, kvapi.MaxTxnOps+1)
	for i := range ops {
		ops[i] = kvapi.Get("k")
	}
	if _, err := a.s.TxnCommand(kvapi.Txn{Success: ops}); !errors.Is(err, ErrTxnTooBig) {
		t.Fatalf("too many ops: %v", err)
	}
	if _, err := a.s.TxnCommand(kvapi.Txn{Success: []kvapi.Op{kvapi.Get("")}}); !errors.Is(err, ErrKeyEmpty) {
		t.Fatalf("empty key: %v", err)
	}
	if _, err := decodeTxn([]byte{1, 9, 1, 'k', 0, 0, 0}); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("bad compare kind: %v", err)
	}
}

func next(t *testing.T, w *Watcher) kvapi.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // never wait: the event must be there
	ev, err := w.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ev
}

func TestWatch_DeliversThePrefixInOrder(t *testing.T) {
	a := newApplier(t)
	a.apply(set("w/old", "0")) // 1
	w, err := a.s.Watch([]byte("w/"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	a.apply(set("other", "x"))                                                                                   // 2: not watched
	a.apply(set("w/a", "1"))                                                                                     // 3
	a.apply(del("w/missing"))                                                                                    // 4: changes nothing
	a.apply(set("w/\xfe", "bin"))                                                                                // 5
	a.apply(DeletePrefix([]byte("w/")))                                                                          // 6: three keys
	a.txn(kvapi.Txn{Success: []kvapi.Op{kvapi.Put("w/b", []byte("2")), kvapi.Put("zz", nil), kvapi.Get("w/b")}}) // 7
	want := []string{
		"3 [{put w/a 1}]",
		"5 [{put w/\xfe bin}]",
		"6 [{delete w/a } {delete w/old } {delete w/\xfe }]",
		"7 [{put w/b 2}]",
	}
	for _, wnt := range want {
		ev := next(t, w)
		var parts []string
		for _, c := range ev.Changes {
			parts = append(parts, fmt.Sprintf("{%s %s %s}", c.Type, c.Key, c.Value))
		}
		if got := fmt.Sprintf("%d [%s]", ev.Revision, strings.Join(parts, " ")); got != wnt {
			t.Fatalf("event %q, want %q", got, wnt)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.Next(ctx); err != context.Canceled {
		t.Fatalf("Next with nothing more = %v", err)
	}
}

// TestWatch_CompactedBeyondTheHistory: the history keeps HistoryCount
// revisions; a watch from before answers 410's error, and so does a
// watcher that fell behind.
func TestWatch_CompactedBeyondTheHistory(t *testing.T) {
	a := &applier{t: t, s: New(Config{HistoryCount: 3})}
	slow, err := a.s.Watch([]byte("k"), 1)
	if err != nil {
		t.Fatal(err)
	}
	idle, err := a.s.Watch([]byte("idle/"), 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := idle.Next(ctx); err != context.Canceled { // the idle watcher is waiting
		t.Fatalf("idle watcher: %v", err)
	}
	for i := range 5 {
		a.apply(set("k", fmt.Sprint(i)))
		if _, err := idle.Next(ctx); err != context.Canceled { // woken, it looks
			t.Fatalf("idle watcher: %v", err)
		}
	}
	var ce *kvapi.CompactedError
	if _, err := slow.Next(context.Background()); !errors.As(err, &ce) || ce.CompactRevision != 2 {
		t.Fatalf("slow watcher: %v, want compacted at 2", err)
	}
	if _, err := a.s.Watch(nil, 2); !errors.Is(err, kvapi.ErrCompacted) {
		t.Fatalf("watch from 2: %v", err)
	}
	w, err := a.s.Watch(nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, w); ev.Revision != 3 {
		t.Fatalf("from 3: %+v", ev)
	}
	// An idle watcher that kept up is not cut off by other keys' churn.
	for i := range 5 {
		a.apply(set("k", fmt.Sprint(i)))
		if _, err := idle.Next(ctx); err != context.Canceled {
			t.Fatalf("idle watcher: %v", err)
		}
	}
	a.apply(set("idle/x", "1"))
	if ev := next(t, idle); ev.Revision != 11 {
		t.Fatalf("idle watcher: %+v", ev)
	}
}

// TestWatch_SnapshotInstallCompacts: installing a snapshot skips changes:
// running watchers end with the compacted error.
func TestWatch_SnapshotInstallCompacts(t *testing.T) {
	leader := newApplier(t)
	for i := range 10 {
		leader.apply(set(fmt.Sprint("k", i), "v"))
	}
	snap, _ := leader.s.Snapshot()
	var buf bytes.Buffer
	snap.WriteTo(&buf)
	follower := newApplier(t)
	follower.apply(set("k0", "v"))
	w, err := follower.s.Watch(nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := follower.s.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	var ce *kvapi.CompactedError
	if _, err := w.Next(context.Background()); !errors.As(err, &ce) || ce.CompactRevision != 10 || !strings.Contains(ce.Reason, "snapshot") {
		t.Fatalf("after the install: %v", err)
	}
	if _, err := follower.s.Watch(nil, 11); err != nil {
		t.Fatalf("a watch after the snapshot: %v", err)
	}
}

func TestWatch_BoundedPerNode(t *testing.T) {
	s := New(Config{MaxWatchers: 2})
	w1, _ := s.Watch(nil, 1)
	w2, _ := s.Watch(nil, 1)
	if _, err := s.Watch(nil, 1); !errors.Is(err, ErrTooManyWatchers) {
		t.Fatalf("third watcher: %v", err)
	}
	w1.Close()
	w1.Close() // idempotent
	if _, err := s.Watch(nil, 1); err != nil {
		t.Fatalf("after a close: %v", err)
	}
	w2.Close()
}

func TestHistory_BoundedByBytes(t *testing.T) {
	a := &applier{t: t, s: New(Config{HistoryBytes: 3 * (changeOverhead + 101)})}
	for range 10 {
		a.apply(set("k", strings.Repeat("v", 100)))
	}
	if got := a.s.CompactRevision(); got != 7 {
		t.Fatalf("compact revision %d, want 7 (three revisions kept)", got)
	}
}

// BenchmarkWatchFanout: 1,000 watchers of one prefix on one store, each
// a goroutine taking events as a watch stream's handler does; an op is one
// applied write delivered to every watcher. It reports the events
// delivered per second and the memory of a watcher with its goroutine.
//
//	go test -run '^$' -bench BenchmarkWatchFanout -benchtime 20000x ./kv/
func BenchmarkWatchFanout(b *testing.B) {
	const watchers = 1000
	s := New(Config{})
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse + ms.StackInuse
	}
	before := heap()
	var got atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	want := int64(b.N)
	for range watchers {
		w, err := s.Watch([]byte("fan/"), 1)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Close()
			for mine := int64(0); mine < want; mine++ {
				if _, err := w.Next(ctx); err != nil {
					return
				}
				got.Add(1)
			}
		}()
	}
	perWatcher := float64(heap()-before) / watchers
	value := []byte("value")
	b.ResetTimer()
	start := time.Now()
	for i := range want {
		s.Apply(raft.Entry{Index: uint64(i + 1), Data: set(fmt.Sprintf("fan/%d", i%100), string(value)).Encode()})
	}
	for got.Load() < want*watchers {
		runtime.Gosched()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	wg.Wait()
	b.ReportMetric(float64(want*watchers)/elapsed.Seconds(), "events/s")
	b.ReportMetric(perWatcher, "B/watcher")
}

// TestList_ConcurrentWithApply: pages read while another goroutine
// applies sets, deletes and prefix deletes never repeat a key nor skip
// one that no write touches (run with -race in CI).
func TestList_ConcurrentWithApply(t *testing.T) {
	s := New(Config{})
	index := uint64(0)
	apply := func(c Command) {
		index++
		s.Apply(raft.Entry{Index: index, Data: c.Encode()})
	}
	for i := range 300 {
		apply(set(fmt.Sprintf("p/stable/%03d", i), "v"))
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(5, 6))
		for {
			select {
			case <-done:
				return
			default:
			}
			k := fmt.Sprintf("p/churn/%03d", rng.IntN(100))
			switch rng.IntN(10) {
			case 0:
				apply(DeletePrefix([]byte("p/churn/0")))
			case 1, 2, 3:
				apply(del(k))
			default:
				apply(set(k, "w"))
			}
		}
	})
	for range 200 {
		got := listAll(s, "p/", 7, func() {})
		stable := 0
		for i := range got {
			if i > 0 && bytes.Compare(got[i-1].Key, got[i].Key) >= 0 {
				t.Fatalf("%q then %q: repeated or out of order", got[i-1].Key, got[i].Key)
			}
			if bytes.HasPrefix(got[i].Key, []byte("p/stable/")) {
				stable++
			}
		}
		if stable != 300 {
			t.Fatalf("a listing has %d of the 300 keys no write touches", stable)
		}
	}
	close(done)
	wg.Wait()
}
