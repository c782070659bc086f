package kv

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/raftex/raftex/kvapi"
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
	var mismatch *kvapi.CASMismatchError
	if !errors.As(res.Err, &mismatch) || mismatch.Revision != 1 || !errors.Is(res.Err, kvapi.ErrCASMismatch) {
		t.Fatalf("create over existing = %+v, want mismatch at revision 1", res)
	}
	a.mustGet("k", "v1", 1)
	if res := a.apply(casSet("k", "v3", 1)); res.Err != nil || res.Revision != 3 {
		t.Fatalf("cas with current revision = %+v", res)
	}
	a.mustGet("k", "v3", 3)
	// After a delete the key reads as revision 0 for CAS.
	a.apply(del("k"))
	if res := a.apply(casSet("k", "v4", 3)); !errors.Is(res.Err, kvapi.ErrCASMismatch) || res.Revision != 0 {
		t.Fatalf("cas on deleted key with old revision = %+v, want mismatch at 0", res)
	}
	if res := a.apply(casSet("k", "v5", 0)); res.Err != nil {
		t.Fatalf("cas=0 after delete: %v", res.Err)
	}
	// Conditional delete.
	d := del("k")
	d.CAS, d.Revision = true, 99
	if res := a.apply(d); !errors.Is(res.Err, kvapi.ErrCASMismatch) {
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

// register applies a RegisterClient entry and returns the session's
// client id.
func (a *applier) register() uint64 {
	a.t.Helper()
	res := a.apply(Register())
	if res.Err != nil || res.Revision != a.index {
		a.t.Fatalf("register = %+v, want the client id %d (its log index)", res, a.index)
	}
	return res.Revision
}

func inSession(c Command, id, seq uint64) Command {
	c.ClientID, c.Seq = id, seq
	return c
}

// TestSession_6_3_RegisterAssignsLogIndex: thesis §6.3, RegisterClient
// returns the index of its log entry as the client id, so ids are unique
// and the same on every node.
func TestSession_6_3_RegisterAssignsLogIndex(t *testing.T) {
	a := newApplier(t)
	a.apply(set("x", "1"))
	if id := a.register(); id != 2 {
		t.Fatalf("client id %d, want 2", id)
	}
	if id := a.register(); id != 3 {
		t.Fatalf("second client id %d, want 3", id)
	}
	if a.s.Len() != 1 {
		t.Fatal("registering wrote a key")
	}
}

// TestSession_6_3_DuplicateAppliesOnce: thesis §6.3, a request retried with
// the same client id and sequence number returns the first result and does
// not apply again.
func TestSession_6_3_DuplicateAppliesOnce(t *testing.T) {
	a := newApplier(t)
	id := a.register()
	w := inSession(set("x", "from-client"), id, 1)
	first := a.apply(w)
	a.apply(set("x", "someone-else"))
	again := a.apply(w) // the retry, e.g. after a leader change
	if again != first {
		t.Fatalf("retry result %+v, want the original %+v", again, first)
	}
	a.mustGet("x", "someone-else", 3)

	// A CAS retried after it succeeded must not report a mismatch.
	c := set("y", "v")
	c.CAS, c.Revision = true, 0
	c = inSession(c, id, 2)
	if res := a.apply(c); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := a.apply(c); res.Err != nil {
		t.Fatalf("retried CAS = %v, want the original success", res.Err)
	}
}

// TestSession_6_3_UnknownSessionIsRefused: a client id that no register
// entry created is refused, and nothing is applied.
func TestSession_6_3_UnknownSessionIsRefused(t *testing.T) {
	a := newApplier(t)
	a.apply(set("k", "v")) // index 1: not a register entry
	for _, id := range []uint64{1, 99} {
		if res := a.apply(inSession(set("k", "other"), id, 1)); !errors.Is(res.Err, ErrSessionExpired) {
			t.Fatalf("write in unregistered session %d = %+v, want ErrSessionExpired", id, res)
		}
	}
	a.mustGet("k", "v", 1)
}

// TestSession_6_3_ExpiredSessionIsNotRecreated: a retry delayed past its
// session's expiry is refused, not applied a second time; the client then
// registers anew.
func TestSession_6_3_ExpiredSessionIsNotRecreated(t *testing.T) {
	s := New(Config{SessionTTL: 10})
	apply := func(index uint64, c Command) Result {
		return s.Apply(raft.Entry{Index: index, Data: c.Encode()}).(Result)
	}
	apply(1, Register())
	w := inSession(set("k", "v"), 1, 1)
	if res := apply(2, w); res.Err != nil || res.Revision != 2 {
		t.Fatalf("write = %+v", res)
	}
	apply(3, set("k", "overwritten"))
	// Unused from index 2 to 13 > 2+TTL: expired, swept or not.
	if res := apply(13, w); !errors.Is(res.Err, ErrSessionExpired) {
		t.Fatalf("retry after the expiry = %+v, want ErrSessionExpired", res)
	}
	if v, rev, _ := s.Get([]byte("k")); string(v) != "overwritten" || rev != 3 {
		t.Fatalf("the late retry applied again: %q at %d", v, rev)
	}
	// Within the TTL the session lives, also across a sweep.
	apply(sessionSweepEvery-5, Register())
	apply(sessionSweepEvery, set("o", "v"))
	if res := apply(sessionSweepEvery+1, inSession(set("n", "v"), sessionSweepEvery-5, 1)); res.Err != nil {
		t.Fatalf("write in a live session across a sweep: %v", res.Err)
	}
	if s.sessions.get(1) != nil {
		t.Fatal("the sweep kept an expired session")
	}
}

// TestSession_SeqReusedForAnotherCommand: a sequence number reused with a
// different command gets ErrSeqReused, not the other command's result,
// and applies nothing; the same command still gets its result.
func TestSession_SeqReusedForAnotherCommand(t *testing.T) {
	a := newApplier(t)
	id := a.register()
	first := a.apply(inSession(set("k", "v"), id, 1))
	for name, other := range map[string]Command{
		"other value": set("k", "w"),
		"other key":   set("j", "v"),
		"other op":    del("k"),
		"cas":         {Op: OpSet, Key: []byte("k"), Value: []byte("v"), CAS: true},
	} {
		if res := a.apply(inSession(other, id, 1)); !errors.Is(res.Err, ErrSeqReused) {
			t.Errorf("%s with a used sequence number = %+v, want ErrSeqReused", name, res)
		}
	}
	a.mustGet("k", "v", first.Revision)
	a.mustAbsent("j")
	if res := a.apply(inSession(set("k", "v"), id, 1)); res != first {
		t.Fatalf("the retry itself = %+v, want %+v", res, first)
	}
}

func TestSessionForgetsOnlyBeyondWindow(t *testing.T) {
	a := newApplier(t)
	id := a.register()
	for seq := uint64(1); seq <= 3*SessionWindow; seq++ {
		a.apply(inSession(set("k", fmt.Sprint(seq)), id, seq))
	}
	if res := a.apply(inSession(set("k", "1"), id, 1)); !errors.Is(res.Err, ErrSessionStale) {
		t.Fatalf("retry of a forgotten request = %+v, want ErrSessionStale", res)
	}
	last := fmt.Sprint(3 * SessionWindow)
	if res := a.apply(inSession(set("k", last), id, 3*SessionWindow)); res.Err != nil || res.Revision != 3*SessionWindow+1 {
		t.Fatalf("retry of the latest request = %+v, want its original revision", res)
	}
	a.mustGet("k", last, 3*SessionWindow+1)
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	a := newApplier(t)
	ids := []uint64{a.register(), a.register(), a.register()}
	legacy := v1Commands(t)
	a.apply(legacy[2]) // a version-1 session write: a legacy session
	for i := range 100 {
		c := set(fmt.Sprintf("key-%03d", i), fmt.Sprintf("value-%d", i))
		a.apply(inSession(c, ids[i%3], uint64(i)))
	}
	a.apply(del("key-050"))
	a.apply(PublishMember(1, MemberInfo{PeerAddr: "p", ClientAddr: "c"}))
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
	if restored.Len() != 100 || restored.AppliedIndex() != 106 {
		t.Fatalf("restored Len=%d applied=%d, want 100 and 106", restored.Len(), restored.AppliedIndex())
	}
	a.s.Apply(raft.Entry{Index: 108, Data: del("after").Encode()}) // back to the snapshot's content
	if restored.Hash() != a.s.Hash() {
		t.Fatal("restored state differs from the original")
	}
	if m, _ := restored.Member(1); m.ClientAddr != "c" {
		t.Fatalf("member after restore = %+v", m)
	}
	// Sessions survive: a retry after restore returns the original result,
	// a reused sequence number is still caught (the digest survived), and
	// the legacy session still answers its retry.
	apply := func(index uint64, c Command) Result {
		return restored.Apply(raft.Entry{Index: index, Data: c.Encode()}).(Result)
	}
	if res := apply(107, inSession(set("key-001", "value-1"), ids[1], 1)); res.Revision != 6 || res.Err != nil {
		t.Fatalf("retry after restore = %+v, want original revision 6", res)
	}
	if res := apply(108, inSession(set("key-001", "other"), ids[1], 1)); !errors.Is(res.Err, ErrSeqReused) {
		t.Fatalf("reused sequence number after restore = %+v, want ErrSeqReused", res)
	}
	if res := apply(109, legacy[2]); res.Revision != 4 {
		t.Fatalf("legacy retry after restore = %+v, want its original revision 4", res)
	}
}

// v1Commands returns the version-1 commands of testdata/commands-v1.hex,
// written by the encoder before sessions were registered: the first 7 are
// the log behind testdata/snapshot-v1.bin, the last 3 a tail after it.
func v1Commands(t *testing.T) []Command {
	t.Helper()
	b, err := os.ReadFile("testdata/commands-v1.hex")
	if err != nil {
		t.Fatal(err)
	}
	var cmds []Command
	for _, line := range strings.Fields(string(b)) {
		data, err := hex.DecodeString(line)
		if err != nil {
			t.Fatal(err)
		}
		c, err := DecodeCommand(data)
		if err != nil {
			t.Fatalf("version-1 command %s: %v", line, err)
		}
		if c.legacyID != "" && !bytes.Equal(c.Encode(), data) {
			t.Fatalf("version-1 session command %s re-encodes as %x", line, c.Encode())
		}
		cmds = append(cmds, c)
	}
	return cmds
}

// TestUpgradeFromV1: a node upgraded in place restores its version-1
// snapshot and applies the version-1 commands after it in its log as the
// old version did (legacy sessions answer retries with the original
// result), reaching the state a node that applied the whole log reaches.
func TestUpgradeFromV1(t *testing.T) {
	cmds := v1Commands(t)
	if len(cmds) != 10 {
		t.Fatalf("%d version-1 commands, want 10", len(cmds))
	}
	replayed := New(Config{})
	var results []Result
	for i, c := range cmds {
		results = append(results, replayed.Apply(raft.Entry{Index: uint64(i + 1), Data: c.Encode()}).(Result))
	}
	snap, err := os.ReadFile("testdata/snapshot-v1.bin")
	if err != nil {
		t.Fatal(err)
	}
	upgraded := New(Config{})
	if err := upgraded.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatalf("restoring a version-1 snapshot: %v", err)
	}
	if upgraded.AppliedIndex() != 7 {
		t.Fatalf("applied %d, want 7", upgraded.AppliedIndex())
	}
	for i, c := range cmds[7:] {
		index := uint64(8 + i)
		if res := upgraded.Apply(raft.Entry{Index: index, Data: c.Encode()}).(Result); res != results[7+i] {
			t.Fatalf("entry %d after the snapshot = %+v, the full replay gave %+v", index, res, results[7+i])
		}
	}
	if upgraded.Hash() != replayed.Hash() || upgraded.Len() != 4 {
		t.Fatalf("upgraded %d keys, hash equal=%t", upgraded.Len(), upgraded.Hash() == replayed.Hash())
	}
	if results[7].Revision != 3 || results[9].Revision != 9 {
		t.Fatalf("legacy retries = %+v and %+v, want the original revisions 3 and 9", results[7], results[9])
	}
	if m, ok := upgraded.Member(1); !ok || m.PeerAddr != "127.0.0.1:7001" {
		t.Fatalf("member 1 after the upgrade = %+v %t", m, ok)
	}
	if v, _, _ := upgraded.Get([]byte{0xff, 0, 'b'}); string(v) != "bin" {
		t.Fatalf("binary key = %q", v)
	}
	// The version-1 state in the new format restores the same.
	again := New(Config{})
	s, _ := upgraded.Snapshot()
	var buf bytes.Buffer
	s.WriteTo(&buf)
	if err := again.Restore(&buf); err != nil || again.Hash() != upgraded.Hash() || len(again.legacy) != 3 {
		t.Fatalf("re-snapshotted: %v, %d legacy sessions", err, len(again.legacy))
	}
}

// rawSnapshot builds a version-2 snapshot by hand: each section is a tag
// and its payload, in one chunk.
func rawSnapshot(sections ...[]byte) []byte {
	b := []byte(snapshotMagic)
	for _, sec := range sections {
		b = append(b, sec[0])
		if len(sec) > 1 {
			b = binary.AppendUvarint(b, uint64(len(sec)-1))
			b = append(b, sec[1:]...)
		}
		b = append(b, 0)
	}
	return append(b, tagEnd)
}

func TestRestoreRejectsGarbage(t *testing.T) {
	s := New(Config{})
	s.Apply(raft.Entry{Index: 1, Data: set("keep", "me").Encode()})
	var good bytes.Buffer
	snap, _ := s.Snapshot()
	snap.WriteTo(&good)
	v1, err := os.ReadFile("testdata/snapshot-v1.bin")
	if err != nil {
		t.Fatal(err)
	}
	meta := []byte{tagMeta, 5}
	item := []byte{tagItems, 1, 'k', 1, 'v', 3}
	inputs := map[string][]byte{
		"empty":                 nil,
		"garbage":               []byte("definitely not a snapshot"),
		"version 3":             []byte("RXKV3\n"),
		"truncated":             good.Bytes()[:good.Len()-3],
		"truncated version 1":   v1[:len(v1)-3],
		"bytes after the end":   append(bytes.Clone(good.Bytes()), 0),
		"no meta":               rawSnapshot(item),
		"unknown section":       rawSnapshot(meta, []byte{9, 1}),
		"sections out of order": rawSnapshot(meta, item, []byte{tagMembers}),
		"a section twice":       rawSnapshot(meta, meta),
		"meta with extra bytes": rawSnapshot([]byte{tagMeta, 5, 6}),
		"an item cut short":     rawSnapshot(meta, item[:4]),
		"a value too large":     rawSnapshot(meta, []byte{tagItems, 1, 'k', 0xff, 0xff, 0xff, 0x7f}),
		"no end tag":            rawSnapshot(meta)[:len(rawSnapshot(meta))-1],
	}
	for name, in := range inputs {
		if err := s.Restore(bytes.NewReader(in)); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: Restore = %v, want ErrBadSnapshot", name, err)
		}
	}
	if v, _, ok := s.Get([]byte("keep")); !ok || string(v) != "me" {
		t.Fatal("a failed Restore changed the state")
	}
	// The hand-built form is a snapshot indeed: the garbage above is
	// refused for what it breaks.
	if err := s.Restore(bytes.NewReader(rawSnapshot(meta, item))); err != nil || s.AppliedIndex() != 5 {
		t.Fatalf("hand-built snapshot: %v, applied %d", err, s.AppliedIndex())
	}
}

// FuzzRestore: whatever the input, Restore returns nil or ErrBadSnapshot,
// never panics, changes nothing when it fails, and what it accepts
// snapshots and restores to the same state.
func FuzzRestore(f *testing.F) {
	a := &applier{t: &testing.T{}, s: New(Config{})}
	id := a.register()
	a.apply(inSession(set("k", "v"), id, 1))
	a.apply(PublishMember(2, MemberInfo{PeerAddr: "p"}))
	var good bytes.Buffer
	snap, _ := a.s.Snapshot()
	snap.WriteTo(&good)
	f.Add(good.Bytes())
	if v1, err := os.ReadFile("testdata/snapshot-v1.bin"); err == nil {
		f.Add(v1)
	}
	f.Add(rawSnapshot([]byte{tagMeta, 1}, []byte{tagItems, 1, 'k', 0, 1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := New(Config{MaxValueSize: 1 << 10})
		s.Apply(raft.Entry{Index: 1, Data: set("before", "x").Encode()})
		before := s.Hash()
		if err := s.Restore(bytes.NewReader(b)); err != nil {
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("Restore = %v, want ErrBadSnapshot", err)
			}
			if s.Hash() != before || s.AppliedIndex() != 1 {
				t.Fatal("a failed Restore changed the state")
			}
			return
		}
		snap, _ := s.Snapshot()
		var buf bytes.Buffer
		if _, err := snap.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		again := New(Config{MaxValueSize: 1 << 10})
		if err := again.Restore(&buf); err != nil {
			t.Fatalf("restoring what a restored store wrote: %v", err)
		}
		if again.Hash() != s.Hash() || again.AppliedIndex() != s.AppliedIndex() || again.sessions.len() != s.sessions.len() ||
			len(again.legacy) != len(s.legacy) || len(again.members) != len(s.members) {
			t.Fatal("a snapshot of a restored store restores differently")
		}
	})
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
	c.CAS, c.Revision, c.ClientID, c.Seq = true, 7, 3, 9
	f.Add(c.Encode())
	f.Add(Register().Encode())
	f.Add([]byte{1, 1, 0, 0, 1, 'c', 1, 1, 'k', 1, 'v'}) // version 1
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
		if err != nil || !bytes.Equal(again.Key, c.Key) || !bytes.Equal(again.Value, c.Value) || again.Seq != c.Seq ||
			again.ClientID != c.ClientID || again.legacyID != c.legacyID || again.digest() != c.digest() {
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

// BenchmarkApply measures a write's apply, without a session and in one
// (the session adds the command's digest and the remembered result).
func BenchmarkApply(b *testing.B) {
	for _, size := range []int{100, 64 << 10} {
		for _, withSession := range []bool{false, true} {
			b.Run(fmt.Sprintf("value=%d/session=%t", size, withSession), func(b *testing.B) {
				benchmarkApply(b, size, withSession)
			})
		}
	}
}

func benchmarkApply(b *testing.B, size int, withSession bool) {
	s := New(Config{})
	value := bytes.Repeat([]byte("v"), size)
	entries := make([][]byte, 1024)
	index := uint64(0)
	// round encodes the next 1024 entries, in a new session: every
	// sequence number is new.
	round := func() {
		b.StopTimer()
		defer b.StartTimer()
		var id uint64
		if withSession {
			index++
			id = s.Apply(raft.Entry{Index: index, Data: Register().Encode()}).(Result).Revision
		}
		for i := range entries {
			entries[i] = inSession(set(fmt.Sprintf("k%d", i), string(value)), id, uint64(i+1)).Encode()
		}
	}
	b.SetBytes(int64(size))
	for i := range b.N {
		if i%len(entries) == 0 {
			round()
		}
		index++
		s.Apply(raft.Entry{Index: index, Data: entries[i%len(entries)]})
	}
}
