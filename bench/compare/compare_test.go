package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftex/raftex/internal/loadgen"
)

func TestMedian(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median of 3 = %v", got)
	}
	if got := median([]time.Duration{4, 1, 3, 2}); got != 2 {
		t.Errorf("median of 4 = %v, want the mean of the middle two (2)", got)
	}
	if got := median([]float64(nil)); got != 0 {
		t.Errorf("median of none = %v", got)
	}
}

// The table holds the median of each system's rounds, the ratio of the
// medians, a ratio below 1 in bold.
func TestTable(t *testing.T) {
	var samples []sample
	for round, tput := range []float64{1000, 1200, 1100} {
		samples = append(samples,
			sample{System: "raftex", Workload: "put", Clients: 16, Round: round, Throughput: tput, P50: 2 * time.Millisecond, P99: 7700 * time.Microsecond},
			sample{System: "etcd", Workload: "put", Clients: 16, Round: round, Throughput: 2 * tput, P50: 3 * time.Millisecond, P99: 12 * time.Millisecond})
	}
	rows := table(samples, []loadgen.Workload{{GetPercent: 0}}, []int{16})
	if len(rows) != 1 || rows[0].Raftex.Throughput != 1100 || rows[0].Ratio != 0.5 || rows[0].RaftexN != 3 {
		t.Fatalf("rows %+v", rows)
	}
	var b bytes.Buffer
	printTable(&b, rows)
	want := "| workload | raftex | etcd | ratio |\n|---|---|---|---|\n" +
		"| put, 16 clients | 1,100/s (p50 2 ms, p99 7.7 ms) | 2,200/s (p50 3 ms, p99 12 ms) | **0.50** |\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestThousands(t *testing.T) {
	for x, want := range map[float64]string{0: "0", 999.6: "1,000", 12092: "12,092", 1234567: "1,234,567"} {
		if got := thousands(x); got != want {
			t.Errorf("thousands(%v) = %q, want %q", x, got, want)
		}
	}
}

func TestQuickIsShort(t *testing.T) {
	o, err := parseOptions([]string{"--quick"}, io.Discard)
	if err != nil || o.rounds != 1 || o.duration != 500*time.Millisecond || len(o.clients) != 3 {
		t.Errorf("--quick: %+v, %v", o, err)
	}
	if _, err := parseOptions([]string{"--clients", "1,x"}, io.Discard); err == nil || !strings.Contains(err.Error(), `"1,x"`) {
		t.Errorf("--clients 1,x: %v", err)
	}
}

// The plot is drawn for either format, and another is refused.
func TestDrawPlot(t *testing.T) {
	rows := []row{
		{Workload: "put", Clients: 1, Raftex: figures{1000, time.Millisecond, 5 * time.Millisecond}, Etcd: figures{900, 2 * time.Millisecond, 9 * time.Millisecond}},
		{Workload: "get", Clients: 1, Raftex: figures{3000, time.Millisecond / 3, time.Millisecond}, Etcd: figures{4000, time.Millisecond / 4, time.Millisecond}},
	}
	dir := t.TempDir()
	for _, name := range []string{"p.png", "p.svg"} {
		path := filepath.Join(dir, name)
		if err := drawPlot(path, rows); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() < 1000 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := drawPlot(filepath.Join(dir, "p.gif"), rows); err == nil {
		t.Error("a .gif was accepted")
	}
}
