package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/node"
	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage"
	"github.com/raftex/raftex/storage/vfs"
	"github.com/raftex/raftex/transport/mem"
)

// BenchmarkWatchFanout: 1,000 watchers of one prefix on one node, over
// HTTP on loopback, each reading its event stream; an op is one write
// (4 writers at once) delivered to every watcher. It reports the events
// delivered per second (watchers × writes / time until the last watcher
// got the last write) and the memory each open watch costs, both ends of
// the connection together (the clients run in this process).
//
//	go test -run '^$' -bench BenchmarkWatchFanout -benchtime 2000x ./server/
func BenchmarkWatchFanout(b *testing.B) {
	const watchers = 1000
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := storage.Open(vfs.NewMem(), "/n1", storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	cfg := node.DefaultConfig(1)
	cfg.InitialMembership = raft.NewMembership(1)
	cfg.Logger = quiet
	st := kv.New(kv.Config{})
	n, err := node.Start(cfg, st, store, mem.NewNetwork(1).Transport(1))
	if err != nil {
		b.Fatal(err)
	}
	defer n.Stop()
	s := New(Config{Node: n, KV: st, Logger: quiet})
	srv := httptest.NewUnstartedServer(s)
	srv.Config = s.HTTPServer()
	srv.Config.Handler = s
	srv.Start()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Read(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Write(ctx, kv.Command{Op: kv.OpSet, Key: []byte("warm"), Value: []byte("up")}); err != nil {
		b.Fatal(err)
	}

	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse + ms.StackInuse
	}
	before := heap()
	from := st.AppliedIndex() + 1
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: watchers, MaxConnsPerHost: 0}}
	defer hc.CloseIdleConnections()
	var got atomic.Int64 // events received, all watchers
	var connected, finished sync.WaitGroup
	want := int64(b.N)
	wctx, stopWatch := context.WithCancel(context.Background())
	for range watchers {
		connected.Add(1)
		finished.Add(1)
		go func() {
			defer finished.Done()
			req, _ := http.NewRequestWithContext(wctx, http.MethodGet, fmt.Sprintf("%s/v1/watch?prefix=fan/&from_revision=%d", srv.URL, from), nil)
			resp, err := hc.Do(req)
			connected.Done()
			if err != nil {
				return
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			var mine int64
			for mine < want {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if strings.HasPrefix(line, "id: ") {
					mine++
					got.Add(1)
				}
			}
		}()
	}
	connected.Wait()
	perWatcher := float64(heap()-before) / watchers

	b.ResetTimer()
	start := time.Now()
	var writers sync.WaitGroup
	var next atomic.Int64
	for range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := next.Add(1); i <= want; i = next.Add(1) {
				if _, err := s.Write(ctx, kv.Command{Op: kv.OpSet, Key: fmt.Appendf(nil, "fan/%d", i%100), Value: []byte("value")}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	writers.Wait()
	for got.Load() < want*watchers && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if got.Load() < want*watchers {
		b.Fatalf("delivered %d of %d events", got.Load(), want*watchers)
	}
	b.ReportMetric(float64(want*watchers)/elapsed.Seconds(), "events/s")
	b.ReportMetric(perWatcher, "B/watcher")
	stopWatch()
	finished.Wait()
}
