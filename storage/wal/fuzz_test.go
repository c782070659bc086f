package wal

import (
	"errors"
	"io"
	"testing"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage/vfs"
)

// validSegment is a small log's only segment: a header and a few batches.
func validSegment(t testing.TB) []byte {
	fs := vfs.NewMem()
	w := mustOpen(t, fs, Options{})
	must(t, w.Bootstrap(raft.NewMembership(1, 2, 3)))
	must(t, w.Save(raft.HardState{Term: 1, Vote: 1}, ents(1, 4, 1)))
	must(t, w.Save(raft.HardState{Term: 2, Commit: 2}, ents(3, 5, 2)))
	must(t, w.Compact(2))
	must(t, w.Reset(9, 3))
	must(t, w.Save(raft.HardState{}, ents(10, 11, 3)))
	w.Close()
	data, err := fs.ReadFile(dir + "/" + segmentName(1, 1))
	must(t, err)
	return data
}

// FuzzDecodeRecord: any bytes decode to valid records then a clear
// error, never a panic or a loop, and every payload decoder copes with
// whatever a matching CRC lets through.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(validSegment(f))
	f.Add([]byte{})
	f.Add(appendUints(nil, TypeCommit, 9))
	f.Add(appendMembership(nil, raft.NewMembership(1, 2)))
	f.Fuzz(func(t *testing.T, data []byte) {
		off := int64(0)
		for {
			r, err := DecodeRecord(data, off)
			if err != nil {
				var re *RecordError
				if !errors.As(err, &re) || re.Offset != off || re.Error() == "" {
					t.Fatalf("offset %d: error %v is not a *RecordError at the offset", off, err)
				}
				return
			}
			if r.End() <= off || r.End() > int64(len(data)) {
				t.Fatalf("record at %d ends at %d of %d", off, r.End(), len(data))
			}
			decodeHeader(r.Payload)
			decodeEntry(r.Payload)
			decodeHardState(r.Payload)
			decodeMark(r.Payload)
			decodeMembership(r.Payload)
			decodeCommit(r.Payload)
			off = r.End()
		}
	})
}

// FuzzRecover: Open over a segment of arbitrary bytes either refuses with
// an error or recovers a log that works: it reads, takes writes and opens
// again to the same state. Dump never fails on it.
func FuzzRecover(f *testing.F) {
	seg := validSegment(f)
	f.Add(seg)
	f.Add(seg[:len(seg)-5])
	f.Add(append(seg[:len(seg):len(seg)], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
	f.Add([]byte("not a log"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := vfs.NewMem()
		must(t, fs.MkdirAll(dir))
		must(t, fs.WriteFile(dir+"/"+segmentName(1, 1), data))
		if err := Dump(fs, dir, io.Discard); err != nil {
			t.Fatalf("Dump: %v", err)
		}
		w, err := Open(fs, dir, Options{})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		got := stateOf(t, w)
		must(t, w.Save(raft.HardState{Term: 99}, ents(w.LastIndex()+1, w.LastIndex()+3, 99)))
		got2 := stateOf(t, w)
		w.Close()
		w2, err := Open(fs, dir, Options{})
		if err != nil {
			t.Fatalf("reopen after recovering %v: %v", got, err)
		}
		if again := stateOf(t, w2); again != got2 {
			t.Fatalf("reopen: %v, want %v", again, got2)
		}
	})
}
