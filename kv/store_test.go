package kv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/raftex/raftex/raft"
)

// applier feeds commands to a store at increasing log indexes.
type applier struct {
	t     *testing.T
	s     *Store
	index uint64
}

func newApplier(t *testing.T) *applier { return &applier{t: t, s: New(Config{})} }

func (a *applier) apply(c Command) Result {
	a.t.Helper()
	a.index++
	res, ok := a.s.Apply(raft.Entry{Index: a.index, Term: 1, Data: c.Encode()}).(Result)
	if !ok {
		a.t.Fatalf("Apply returned %T", res)
	}
	return res
}

func set(key, value string) Command {
	return Command{Op: OpSet, Key: []byte(key), Value: []byte(value)}
}

func del(key string) Command { return Command{Op: OpDelete, Key: []byte(key)} }

func (a *applier) mustGet(key, want string, wantRev uint64) {
	a.t.Helper()
	v, rev, ok := a.s.Get([]byte(key))
	if !ok || string(v) != want || rev != wantRev {
		a.t.Fatalf("Get(%q) = %q rev %d ok=%t, want %q rev %d", key, v, rev, ok, want, wantRev)
	}
}

func (a *applier) mustAbsent(key string) {
	a.t.Helper()
	if v, _, ok := a.s.Get([]byte(key)); ok {
		a.t.Fatalf("Get(%q) = %q, want absent", key, v)
	}
}

func TestSetGetDelete(t *testing.T) {
	a := newApplier(t)
	if res := a.apply(set("a", "1")); res.Err != nil || res.Revision != 1 {
		t.Fatalf("set = %+v", res)
	}
	a.apply(set("b", "2"))
	a.mustGet("a", "1", 1)
	a.mustGet("b", "2", 2)
	if res := a.apply(set("a", "3")); res.Revision != 3 {
		t.Fatalf("overwrite revision = %d, want the log index 3", res.Revision)
	}
	a.mustGet("a", "3", 3)
	if res := a.apply(del("a")); !res.Deleted || res.Revision != 4 {
		t.Fatalf("delete = %+v", res)
	}
	a.mustAbsent("a")
	if res := a.apply(del("a")); res.Deleted {
		t.Fatalf("second delete = %+v, want Deleted=false", res)
	}
	if a.s.Len() != 1 || a.s.AppliedIndex() != 5 {
		t.Fatalf("Len=%d applied=%d", a.s.Len(), a.s.AppliedIndex())
	}
}

func TestKeysAreArbitraryBytes(t *testing.T) {
	a := newApplier(t)
	key := string([]byte{0xff, 0x00, '/', 'x', 0x80})
	a.apply(set(key, "v"))
	a.mustGet(key, "v", 1)
	a.apply(set("a/b/c", "slashes"))
	a.mustGet("a/b/c", "slashes", 2)
}

func TestCompareAndSet(t *testing.T) {
	a := newApplier(t)
	casSet := func(key, value string, rev uint64) Command {
		c := set(key, value)
		c.CAS, c.Revision = true, rev
		return c
	}
	// cas=0: only if absent.
	if res := a.apply(casSet("k", "v1", 0)); res.Err != nil {
		t.Fatalf("create-if-absent: %v", res.Err)
	}
	res := a.apply(casSet("k", "v2", 0))
	var mismatch *CASMismatchError
	if !errors.As(res.Err, &mismatch) || mismatch.Revision != 1 || !errors.Is(res.Err, ErrCASMismatch) {
		t.Fatalf("create over existing = %+v, want mismatch at revision 1", res)
	}
	a.mustGet("k", "v1", 1)
	if res := a.apply(casSet("k", "v3", 1)); res.Err != nil || res.Revision != 3 {
		t.Fatalf("cas with current revision = %+v", res)
	}
	a.mustGet("k", "v3", 3)
	// After a delete the key reads as revision 0 for CAS.
	a.apply(del("k"))
	if res := a.apply(casSet("k", "v4", 3)); !errors.Is(res.Err, ErrCASMismatch) || res.Revision != 0 {
		t.Fatalf("cas on deleted key with old revision = %+v, want mismatch at 0", res)
	}
	if res := a.apply(casSet("k", "v5", 0)); res.Err != nil {
		t.Fatalf("cas=0 after delete: %v", res.Err)
	}
	// Conditional delete.
	d := del("k")
	d.CAS, d.Revision = true, 99
	if res := a.apply(d); !errors.Is(res.Err, ErrCASMismatch) {
		t.Fatalf("conditional delete with wrong revision = %+v", res)
	}
	a.mustGet("k", "v5", 6)
}

func TestValidation(t *testing.T) {
	a := newApplier(t)
	cases := []struct {
		cmd  Command
		want error
	}{
		{set("", "v"), ErrKeyEmpty},
		{set(string(make([]byte, MaxKeySize+1)), "v"), ErrKeyTooLong},
		{Command{Op: OpSet, Key: []byte("k"), Value: make([]byte, DefaultMaxValueSize+1)}, ErrValueTooBig},
	}
	for _, c := range cases {
		if res := a.apply(c.cmd); !errors.Is(res.Err, c.want) {
			t.Errorf("apply(key %d bytes, value %d bytes) = %v, want %v", len(c.cmd.Key), len(c.cmd.Value), res.Err, c.want)
		}
	}
	if a.s.Len() != 0 {
		t.Fatalf("invalid commands changed the store: %d keys", a.s.Len())
	}
	if err := ValidateKey(make([]byte, MaxKeySize)); err != nil {
		t.Fatalf("key of exactly MaxKeySize: %v", err)
	}
	res := a.s.Apply(raft.Entry{Index: 100, Data: []byte{9, 9, 9}}).(Result)
	if !errors.Is(res.Err, ErrBadCommand) {
		t.Fatalf("garbage command = %v, want ErrBadCommand", res.Err)
	}
}

// TestSession_6_3_DuplicateAppliesOnce: thesis §6.3, a request retried with
// the same client id and sequence number returns the first result and does
// not apply again.
func TestSession_6_3_DuplicateAppliesOnce(t *testing.T) {
	a := newApplier(t)
	w := set("x", "from-client")
	w.ClientID, w.Seq = "c1", 1
	first := a.apply(w)
	a.apply(set("x", "someone-else")) // index 2
	again := a.apply(w)               // the retry, e.g. after a leader change
	if again != first {
		t.Fatalf("retry result %+v, want the original %+v", again, first)
	}
	a.mustGet("x", "someone-else", 2)

	// A CAS retried after it succeeded must not report a mismatch.
	c := set("y", "v")
	c.CAS, c.Revision, c.ClientID, c.Seq = true, 0, "c1", 2
	if res := a.apply(c); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := a.apply(c); res.Err != nil {
		t.Fatalf("retried CAS = %v, want the original success", res.Err)
	}
}

func TestSessionForgetsOnlyBeyondWindow(t *testing.T) {
	a := newApplier(t)
	for seq := uint64(1); seq <= 3*SessionWindow; seq++ {
		c := set("k", fmt.Sprint(seq))
		c.ClientID, c.Seq = "c", seq
		a.apply(c)
	}
	old := set("k", "stale")
	old.ClientID, old.Seq = "c", 1
	if res := a.apply(old); !errors.Is(res.Err, ErrSessionStale) {
		t.Fatalf("retry of a forgotten request = %+v, want ErrSessionStale", res)
	}
	recent := set("k", "dup")
	recent.ClientID, recent.Seq = "c", 3*SessionWindow
	if res := a.apply(recent); res.Err != nil || res.Revision != 3*SessionWindow {
		t.Fatalf("retry of the latest request = %+v, want its original revision", res)
	}
	a.mustGet("k", fmt.Sprint(3*SessionWindow), 3*SessionWindow)
}

// TestSessionExpiresByLogPosition: expiry depends only on log indexes, so
// every node expires the same sessions at the same entry.
func TestSessionExpiresByLogPosition(t *testing.T) {
	s := New(Config{SessionTTL: 10})
	w := set("k", "v")
	w.ClientID, w.Seq = "c", 1
	s.Apply(raft.Entry{Index: 1, Data: w.Encode()})
	s.Apply(raft.Entry{Index: sessionSweepEvery, Data: set("o", "v").Encode()})
	if _, ok := s.sessions["c"]; ok {
		t.Fatal("session idle for more than its TTL survived the sweep")
	}
	s.Apply(raft.Entry{Index: sessionSweepEvery + 1, Data: w.Encode()})
	if v, rev, _ := s.Get([]byte("k")); string(v) != "v" || rev != sessionSweepEvery+1 {
		t.Fatalf("after expiry the request applies anew: rev=%d", rev)
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	a := newApplier(t)
	for i := range 100 {
		c := set(fmt.Sprintf("key-%03d", i), fmt.Sprintf("value-%d", i))
		c.ClientID, c.Seq = fmt.Sprintf("client-%d", i%3), uint64(i)
		a.apply(c)
	}
	a.apply(del("key-050"))
	snap, err := a.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after the snapshot must not leak into it (copy-on-write).
	a.apply(set("after", "x"))
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	restored := New(Config{})
	if err := restored.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := restored.Get([]byte("after")); ok {
		t.Fatal("snapshot includes a write applied after it was taken")
	}
	if restored.Len() != 99 || restored.AppliedIndex() != 101 {
		t.Fatalf("restored Len=%d applied=%d, want 99 and 101", restored.Len(), restored.AppliedIndex())
	}
	a.s.Apply(raft.Entry{Index: 103, Data: del("after").Encode()}) // back to the snapshot's content
	if restored.Hash() != a.s.Hash() {
		t.Fatal("restored state differs from the original")
	}
	// Sessions survive: a retry after restore returns the original result.
	c := set("key-001", "retry")
	c.ClientID, c.Seq = "client-1", 1
	res := restored.Apply(raft.Entry{Index: 102, Data: c.Encode()}).(Result)
	if res.Revision != 2 {
		t.Fatalf("retry after restore = %+v, want original revision 2", res)
	}
}

func TestRestoreRejectsGarbage(t *testing.T) {
	s := New(Config{})
	s.Apply(raft.Entry{Index: 1, Data: set("keep", "me").Encode()})
	var good bytes.Buffer
	snap, _ := s.Snapshot()
	snap.WriteTo(&good)
	inputs := map[string][]byte{
		"empty":     nil,
		"garbage":   []byte("definitely not a snapshot"),
		"truncated": good.Bytes()[:good.Len()-3],
	}
	for name, in := range inputs {
		if err := s.Restore(bytes.NewReader(in)); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: Restore = %v, want ErrBadSnapshot", name, err)
		}
	}
	if v, _, ok := s.Get([]byte("keep")); !ok || string(v) != "me" {
		t.Fatal("a failed Restore changed the state")
	}
}

// TestSnapshotMillionKeys streams a snapshot of 1,000,000 keys through a
// pipe (never whole in memory) and restores it.
func TestSnapshotMillionKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000,000 keys take a few seconds; run without -short")
	}
	const n = 1_000_000
	s := New(Config{})
	for i := range n {
		s.Apply(raft.Entry{Index: uint64(i + 1), Data: set(fmt.Sprintf("k%07d", i), "v").Encode()})
	}
	snap, _ := s.Snapshot()
	pr, pw := io.Pipe()
	go func() {
		_, err := snap.WriteTo(pw)
		pw.CloseWithError(err)
	}()
	restored := New(Config{})
	if err := restored.Restore(pr); err != nil {
		t.Fatal(err)
	}
	if restored.Len() != n || restored.Hash() != s.Hash() {
		t.Fatalf("restored %d keys, hash equal=%t", restored.Len(), restored.Hash() == s.Hash())
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(set("k", "v").Encode())
	c := set("a/b", "x")
	c.CAS, c.Revision, c.ClientID, c.Seq = true, 7, "client", 9
	f.Add(c.Encode())
	f.Add([]byte{1, 1, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("error %v does not wrap ErrBadCommand", err)
			}
			return
		}
		again, err := DecodeCommand(c.Encode())
		if err != nil || !bytes.Equal(again.Key, c.Key) || !bytes.Equal(again.Value, c.Value) || again.Seq != c.Seq {
			t.Fatalf("re-encoding changed the command: %+v vs %+v (%v)", again, c, err)
		}
	})
}

func TestMembersArePublishedAndSnapshotted(t *testing.T) {
	a := newApplier(t)
	info := MemberInfo{PeerAddr: "127.0.0.1:7002", ClientAddr: "127.0.0.1:8002"}
	if res := a.apply(PublishMember(2, info)); res.Err != nil {
		t.Fatal(res.Err)
	}
	if got, ok := a.s.Member(2); !ok || got != info {
		t.Fatalf("Member(2) = %+v %t", got, ok)
	}
	if a.s.Len() != 0 {
		t.Fatal("member info leaked into the key space")
	}
	snap, _ := a.s.Snapshot()
	var buf bytes.Buffer
	snap.WriteTo(&buf)
	restored := New(Config{})
	if err := restored.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if got, _ := restored.Member(2); got != info {
		t.Fatalf("restored member = %+v", got)
	}
	bad := Command{Op: OpMember, Key: []byte("x"), Value: []byte("{}")}
	if res := a.apply(bad); !errors.Is(res.Err, ErrBadCommand) {
		t.Fatalf("bad member id = %v", res.Err)
	}
}
