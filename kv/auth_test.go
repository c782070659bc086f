package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/raftex/raftex/auth"
)

func change(c auth.Change) Command { return ChangeAuth(c) }

func by(c Command, user string) Command {
	c.ByClient, c.User = true, user
	return c
}

// enableAuth: root (root role), alice with read-write on "a/", enabled.
func enableAuth(t *testing.T, a *applier) {
	t.Helper()
	h, err := auth.HashPassword("pw", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []auth.Change{
		{Kind: auth.AddUser, Name: "root", Hash: h},
		{Kind: auth.GrantRole, Name: "root", Role: auth.RootRole},
		{Kind: auth.AddRole, Name: "a-writer"},
		{Kind: auth.GrantPermission, Name: "a-writer", Perm: auth.Permission{Prefix: "a/", Access: auth.ReadWrite}},
		{Kind: auth.AddUser, Name: "alice", Hash: h},
		{Kind: auth.GrantRole, Name: "alice", Role: "a-writer"},
		{Kind: auth.Enable, Key: bytes.Repeat([]byte{1}, auth.KeySize)},
	} {
		if res := a.apply(change(c)); res.Err != nil {
			t.Fatalf("%+v: %v", c, res.Err)
		}
	}
}

// TestAuth_CheckedAtApply: a client's command is checked against the auth
// state as of its entry, on every node; a node's own commands are not.
func TestAuth_CheckedAtApply(t *testing.T) {
	a := newApplier(t)
	if res := a.apply(by(set("b", "v"), "")); res.Err != nil {
		t.Fatalf("anonymous write before auth is enabled: %v", res.Err)
	}
	enableAuth(t, a)
	for _, tc := range []struct {
		c    Command
		want error
	}{
		{by(set("a/x", "v"), "alice"), nil},
		{by(set("b", "v"), "alice"), auth.ErrPermissionDenied},
		{by(del("b"), "alice"), auth.ErrPermissionDenied},
		{by(set("b", "v"), ""), auth.ErrUnauthenticated},
		{by(set("b", "v"), "mallory"), auth.ErrUnauthenticated},
		{by(set("b", "v"), "root"), nil},
		{set("b", "own"), nil}, // the node's own write
		{by(Register(), ""), auth.ErrUnauthenticated},
		{by(change(auth.Change{Kind: auth.AddRole, Name: "r"}), "alice"), auth.ErrPermissionDenied},
		{by(change(auth.Change{Kind: auth.AddRole, Name: "r"}), "root"), nil},
		{by(PublishMember(9, MemberInfo{}), "root"), ErrBadCommand},
	} {
		res := a.apply(tc.c)
		if !errors.Is(res.Err, tc.want) || (tc.want == nil) != (res.Err == nil) {
			t.Errorf("%v by %q: %v, want %v", tc.c.Op, tc.c.User, res.Err, tc.want)
		}
	}
	if v, _, _ := a.s.Get([]byte("b")); string(v) != "own" {
		t.Fatalf("b = %q: a refused write applied", v)
	}
	if id := a.apply(by(Register(), "alice")); id.Err != nil {
		t.Fatalf("alice registers a session: %v", id.Err)
	}
}

// TestAuth_RefusalIsNotAnOutcome: a refused request in a session is not
// remembered (nothing happened): once the client logged in, the same
// request, same sequence number, applies; and a request that applied
// answers its retries whoever sends them.
func TestAuth_RefusalIsNotAnOutcome(t *testing.T) {
	a := newApplier(t)
	enableAuth(t, a)
	id := a.apply(by(Register(), "alice")).Revision
	if res := a.apply(inSession(by(set("a/x", "v"), ""), id, 1)); !errors.Is(res.Err, auth.ErrUnauthenticated) {
		t.Fatalf("anonymous attempt: %+v", res)
	}
	first := a.apply(inSession(by(set("a/x", "v"), "alice"), id, 1))
	if first.Err != nil {
		t.Fatalf("alice's attempt after the refusal: %+v", first)
	}
	if late := a.apply(inSession(by(set("a/x", "v"), ""), id, 1)); late != first {
		t.Fatalf("a late anonymous duplicate = %+v, want the applied result %+v", late, first)
	}
}

// TestAuth_InSnapshot: users, roles, the key and whether auth is on
// survive a snapshot; a store that never used auth writes no auth section.
func TestAuth_InSnapshot(t *testing.T) {
	plain := newApplier(t)
	plain.apply(set("k", "v"))
	if hasSection(snapshotBytes(t, plain.s), tagAuth) {
		t.Fatal("a store that never used auth wrote an auth section")
	}
	a := newApplier(t)
	enableAuth(t, a)
	a.apply(set("k", "v"))
	if !hasSection(snapshotBytes(t, a.s), tagAuth) {
		t.Fatal("no auth section once auth was used")
	}
	restored := New(Config{})
	if err := restored.Restore(bytes.NewReader(snapshotBytes(t, a.s))); err != nil {
		t.Fatal(err)
	}
	if !restored.Auth().Equal(a.s.Auth()) || !restored.Auth().Enabled() || restored.Hash() != a.s.Hash() {
		t.Fatal("the restored auth state differs")
	}
	if res := (&applier{t: t, s: restored, index: a.index}).apply(by(set("b", "v"), "alice")); !errors.Is(res.Err, auth.ErrPermissionDenied) {
		t.Fatalf("permission check after restore: %v", res.Err)
	}
	// The hash covers auth: a node that missed a grant differs.
	b := newApplier(t)
	enableAuth(t, b)
	b.index = a.index - 1
	b.apply(change(auth.Change{Kind: auth.AddRole, Name: "extra"}))
	if b.s.Hash() == a.s.Hash() {
		t.Fatal("Hash ignores the auth state")
	}
}

// hasSection reports whether a version-2 snapshot holds section tag,
// walking the sections.
func hasSection(b []byte, tag uint64) bool {
	r := bytes.NewReader(b[len(snapshotMagic):])
	for {
		t, err := binary.ReadUvarint(r)
		if err != nil || t == tagEnd {
			return false
		}
		if t == tag {
			return true
		}
		for {
			n, err := binary.ReadUvarint(r)
			if err != nil {
				return false
			}
			if n == 0 {
				break
			}
			r.Seek(int64(n), 1)
		}
	}
}

// TestSessions_CapEvictsLeastRecentlyUsed: thesis §6.3's LRU bound on
// sessions; the evicted one's next request is told its session expired,
// and a restored store evicts the same ones.
func TestSessions_CapEvictsLeastRecentlyUsed(t *testing.T) {
	a := &applier{t: t, s: New(Config{MaxSessions: 2})}
	s1, s2 := a.register(), a.register()
	a.apply(inSession(set("x", "1"), s1, 1)) // s1 used after s2: s2 is the least recently used
	restored := New(Config{MaxSessions: 2})
	if err := restored.Restore(bytes.NewReader(snapshotBytes(t, a.s))); err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]*Store{"original": a.s, "restored": restored} {
		b := &applier{t: t, s: st, index: a.index}
		b.register()
		if res := b.apply(inSession(set("y", "2"), s2, 1)); !errors.Is(res.Err, ErrSessionExpired) {
			t.Errorf("%s: the evicted session's write = %+v, want ErrSessionExpired", name, res)
		}
		if res := b.apply(inSession(set("x", "1"), s1, 1)); res.Err != nil || res.Revision != 3 {
			t.Errorf("%s: the kept session's retry = %+v, want its original result", name, res)
		}
		if st.sessions.len() != 2 {
			t.Errorf("%s: %d sessions, cap 2", name, st.sessions.len())
		}
	}
}

func snapshotBytes(t *testing.T, s *Store) []byte {
	t.Helper()
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
