package wal

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage/vfs"
)

// batchOf returns n entries of size bytes from index next.
func batchOf(next uint64, n, size int, data []byte) []raft.Entry {
	es := make([]raft.Entry, n)
	for i := range es {
		es[i] = raft.Entry{Index: next + uint64(i), Term: 1, Data: data[:size]}
	}
	return es
}

// BenchmarkAppend measures Save with fsync on the real disk side by side
// with the raw limit: the same bytes (entries, hard state and commit
// record, encoded as Save encodes them) appended to a plain file with one
// fsync per batch. Each iteration does one of each, alternating, so both
// see the same disk weather. Reported: entries/s and MB/s of entry data
// for each, and wal/raw in percent.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{128, 4096} {
		for _, n := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("size=%d/batch=%d", size, n), func(b *testing.B) {
				benchAppend(b, size, n)
			})
		}
	}
}

func benchAppend(b *testing.B, size, n int) {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	w, err := Open(vfs.OS(), b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	raw := appendHardState(nil, raft.HardState{Term: 1, Vote: 1, Commit: 1})
	for _, e := range batchOf(1, n, size, data) {
		raw = appendEntry(raw, e)
	}
	raw = appendUints(raw, TypeCommit, 0)
	f, err := vfs.OS().Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	hs := raft.HardState{Term: 1, Vote: 1}
	next := uint64(1)
	var walTime, rawTime time.Duration
	for b.Loop() {
		t0 := time.Now()
		hs.Commit = next - 1
		if err := w.Save(hs, batchOf(next, n, size, data)); err != nil {
			b.Fatal(err)
		}
		next += uint64(n)
		t1 := time.Now()
		if _, err := f.Write(raw); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		walTime, rawTime = walTime+t1.Sub(t0), rawTime+time.Since(t1)
	}
	ents := float64(b.N * n)
	b.ReportMetric(ents/walTime.Seconds(), "wal-entries/s")
	b.ReportMetric(ents/rawTime.Seconds(), "raw-entries/s")
	b.ReportMetric(ents*float64(size)/walTime.Seconds()/1e6, "wal-MB/s")
	b.ReportMetric(ents*float64(size)/rawTime.Seconds()/1e6, "raw-MB/s")
	b.ReportMetric(100*rawTime.Seconds()/walTime.Seconds(), "wal/raw-%")
}

// BenchmarkRecover measures Open of a log of 1,000,000 entries of 128 B
// (about 155 MB in three segments) with the files in the page cache.
func BenchmarkRecover(b *testing.B) {
	dir := b.TempDir()
	w, err := Open(vfs.OS(), dir, Options{UnsafeNoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	const total, batch = 1_000_000, 1000
	data := make([]byte, 128)
	for next := uint64(1); next <= total; next += batch {
		if err := w.Save(raft.HardState{Term: 1, Vote: 1, Commit: next - 1}, batchOf(next, batch, 128, data)); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	for b.Loop() {
		w, err := Open(vfs.OS(), dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if w.LastIndex() != total {
			b.Fatalf("recovered %d entries", w.LastIndex())
		}
		w.Close()
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
