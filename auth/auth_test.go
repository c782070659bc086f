package auth

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// build applies changes from index 1 on, failing the test on any error.
func build(t *testing.T, changes ...Change) *State {
	t.Helper()
	var s *State
	for i, c := range changes {
		n, err := s.Apply(c, uint64(i+1))
		if err != nil {
			t.Fatalf("change %d (%+v): %v", i+1, c, err)
		}
		s = n
	}
	return s
}

func hash(t *testing.T, pw string) []byte {
	t.Helper()
	h, err := HashPassword(pw, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var testKey = bytes.Repeat([]byte{7}, KeySize)

// cluster: root (root role), alice (reader of "a/", writer of "a/w/"),
// bob (no role), enabled.
func cluster(t *testing.T) *State {
	return build(t,
		Change{Kind: AddUser, Name: "root", Hash: hash(t, "rootpw")},
		Change{Kind: GrantRole, Name: "root", Role: RootRole},
		Change{Kind: AddRole, Name: "reader"},
		Change{Kind: GrantPermission, Name: "reader", Perm: Permission{Prefix: "a/", Access: Read}},
		Change{Kind: GrantPermission, Name: "reader", Perm: Permission{Prefix: "a/w/", Access: ReadWrite}},
		Change{Kind: AddUser, Name: "alice", Hash: hash(t, "alicepw")},
		Change{Kind: GrantRole, Name: "alice", Role: "reader"},
		Change{Kind: AddUser, Name: "bob", Hash: hash(t, "bobpw")},
		Change{Kind: Enable, Key: testKey},
	)
}

func TestAllow_RolesGrantReadOrReadWriteOnPrefixes(t *testing.T) {
	s := cluster(t)
	for _, tc := range []struct {
		user string
		need Need
		key  string
		want error
	}{
		{"root", NeedRoot, "", nil},
		{"root", NeedWrite, "anything", nil},
		{"alice", NeedRead, "a/x", nil},
		{"alice", NeedWrite, "a/x", ErrPermissionDenied},
		{"alice", NeedWrite, "a/w/x", nil},
		{"alice", NeedRead, "b", ErrPermissionDenied},
		{"alice", NeedUser, "", nil},
		{"alice", NeedRoot, "", ErrPermissionDenied},
		{"bob", NeedUser, "", nil},
		{"bob", NeedRead, "a/x", ErrPermissionDenied},
		{"", NeedUser, "", ErrUnauthenticated},
		{"mallory", NeedRead, "a/x", ErrUnauthenticated},
	} {
		if err := s.Allow(tc.user, tc.need, []byte(tc.key)); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("Allow(%q, %d, %q) = %v, want %v", tc.user, tc.need, tc.key, err, tc.want)
		}
	}
	off, err := s.Apply(Change{Kind: Disable}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := off.Allow("", NeedRoot, nil); err != nil {
		t.Fatalf("auth disabled: Allow = %v, want everyone allowed", err)
	}
}

func TestApply_EnableNeedsARootUser(t *testing.T) {
	s := build(t, Change{Kind: AddUser, Name: "alice", Hash: hash(t, "pw")})
	if _, err := s.Apply(Change{Kind: Enable, Key: testKey}, 2); !errors.Is(err, ErrNoRootUser) {
		t.Fatalf("enable without a root user = %v, want ErrNoRootUser", err)
	}
	if s.Enabled() {
		t.Fatal("a refused change changed the state")
	}
}

func TestApply_LastRootUserStaysWhileEnabled(t *testing.T) {
	s := cluster(t)
	if _, err := s.Apply(Change{Kind: DeleteUser, Name: "root"}, 50); !errors.Is(err, ErrLastRoot) {
		t.Fatalf("deleting the last root user = %v, want ErrLastRoot", err)
	}
	if _, ok := s.User("root"); !ok {
		t.Fatal("the refused delete deleted")
	}
	off, _ := s.Apply(Change{Kind: Disable}, 50)
	if _, err := off.Apply(Change{Kind: DeleteUser, Name: "root"}, 51); err != nil {
		t.Fatalf("deleting root with auth disabled: %v", err)
	}
}

func TestApply_RefusesWhatDoesNotFit(t *testing.T) {
	s := cluster(t)
	for _, tc := range []struct {
		c    Change
		want error
	}{
		{Change{Kind: AddUser, Name: "alice", Hash: hash(t, "x")}, ErrUserExists},
		{Change{Kind: AddRole, Name: "reader"}, ErrRoleExists},
		{Change{Kind: AddRole, Name: RootRole}, ErrRootRole},
		{Change{Kind: GrantPermission, Name: RootRole, Perm: Permission{Access: Read}}, ErrRootRole},
		{Change{Kind: GrantRole, Name: "carol", Role: "reader"}, ErrNoUser},
		{Change{Kind: GrantRole, Name: "bob", Role: "writer"}, ErrNoRole},
		{Change{Kind: DeleteUser, Name: "carol"}, ErrNoUser},
		{Change{Kind: AddUser, Name: "a b", Hash: hash(t, "x")}, ErrBadChange},
		{Change{Kind: AddUser, Name: "carol"}, ErrBadChange},
		{Change{Kind: Enable, Key: []byte("short")}, ErrBadChange},
		{Change{Kind: GrantPermission, Name: "reader", Perm: Permission{Access: 9}}, ErrBadChange},
		{Change{Kind: Disable, Name: "x"}, ErrBadChange},
		{Change{Kind: 99}, ErrBadChange},
	} {
		if _, err := s.Apply(tc.c, 100); !errors.Is(err, tc.want) {
			t.Errorf("Apply(%+v) = %v, want %v", tc.c, err, tc.want)
		}
	}
}

func TestApply_GrantPermissionReplacesTheSamePrefix(t *testing.T) {
	s := cluster(t)
	s, err := s.Apply(Change{Kind: GrantPermission, Name: "reader", Perm: Permission{Prefix: "a/", Access: ReadWrite}}, 100)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := s.Role("reader")
	want := []Permission{{"a/", ReadWrite}, {"a/w/", ReadWrite}}
	if len(r.Perms) != 2 || r.Perms[0] != want[0] || r.Perms[1] != want[1] {
		t.Fatalf("perms = %v, want %v", r.Perms, want)
	}
}

func TestApply_KeyMadeOnceAndKept(t *testing.T) {
	s := cluster(t)
	off, _ := s.Apply(Change{Kind: Disable}, 20)
	on, err := off.Apply(Change{Kind: Enable, Key: bytes.Repeat([]byte{9}, KeySize)}, 21)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(on.key, testKey) {
		t.Fatal("enabling again replaced the token key")
	}
}

func TestToken_VerifiedOnAnyNodeUntilItExpires(t *testing.T) {
	s := cluster(t)
	now := time.Unix(1_000_000, 0)
	tok, exp, err := s.Login("alice", "alicepw", now, time.Minute)
	if err != nil || !exp.Equal(now.Add(time.Minute)) {
		t.Fatalf("Login = %v, %v", exp, err)
	}
	other := cluster(t) // another node, same log
	if user, err := other.Verify(tok, now.Add(59*time.Second)); err != nil || user != "alice" {
		t.Fatalf("Verify = %q, %v", user, err)
	}
	if _, err := other.Verify(tok, now.Add(time.Minute)); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("Verify after expiry = %v, want ErrTokenExpired", err)
	}
}

func TestToken_Refused(t *testing.T) {
	s := cluster(t)
	now := time.Unix(1_000_000, 0)
	if _, _, err := s.Login("alice", "wrong", now, time.Minute); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, _, err := s.Login("nobody", "alicepw", now, time.Minute); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("unknown user: %v", err)
	}
	tok, _, _ := s.Login("alice", "alicepw", now, time.Minute)
	payload, sig, _ := bytes.Cut([]byte(tok), []byte("."))
	forged := string(payload) + "." + string(bytes.ToUpper(sig))
	if _, err := s.Verify(forged, now); !errors.Is(err, ErrBadToken) {
		t.Fatalf("forged signature: %v", err)
	}
	for _, bad := range []string{"", "x", "a.b", "..", tok + "x"} {
		if _, err := s.Verify(bad, now); !errors.Is(err, ErrBadToken) {
			t.Errorf("Verify(%q) = %v, want ErrBadToken", bad, err)
		}
	}
	// Deleted and added again: the old token names the old user.
	gone, _ := s.Apply(Change{Kind: DeleteUser, Name: "alice"}, 20)
	if _, err := gone.Verify(tok, now); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("deleted user: %v", err)
	}
	again, _ := gone.Apply(Change{Kind: AddUser, Name: "alice", Hash: hash(t, "alicepw")}, 21)
	if _, err := again.Verify(tok, now); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("user added again: %v", err)
	}
	off, _ := s.Apply(Change{Kind: Disable}, 20)
	if _, _, err := off.Login("alice", "alicepw", now, time.Minute); !errors.Is(err, ErrAuthDisabled) {
		t.Fatalf("login with auth disabled: %v", err)
	}
}

func TestToken_ANodeBehindTheIssuerSaysSo(t *testing.T) {
	s := cluster(t)
	later, _ := s.Apply(Change{Kind: AddUser, Name: "carol", Hash: hash(t, "carolpw")}, 10)
	now := time.Unix(1_000_000, 0)
	tok, _, err := later.Login("carol", "carolpw", now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(tok, now); !errors.Is(err, ErrBehind) {
		t.Fatalf("a node without carol yet: %v, want ErrBehind", err)
	}
	var never *State // a node that has not applied the Enable
	if _, err := never.Verify(tok, now); !errors.Is(err, ErrBehind) {
		t.Fatalf("a node without the key yet: %v, want ErrBehind", err)
	}
}

func TestChange_EncodeDecode(t *testing.T) {
	for _, c := range []Change{
		{Kind: Enable, Key: testKey},
		{Kind: Disable},
		{Kind: AddUser, Name: "alice", Hash: []byte("$2a$04$hash")},
		{Kind: DeleteUser, Name: "alice"},
		{Kind: GrantRole, Name: "alice", Role: "reader"},
		{Kind: AddRole, Name: "reader"},
		{Kind: GrantPermission, Name: "reader", Perm: Permission{Prefix: "a/\x00", Access: ReadWrite}},
	} {
		got, err := DecodeChange(c.Encode())
		if err != nil || got.Kind != c.Kind || got.Name != c.Name || got.Role != c.Role ||
			!bytes.Equal(got.Hash, c.Hash) || !bytes.Equal(got.Key, c.Key) || got.Perm != c.Perm {
			t.Errorf("round trip of %+v = %+v, %v", c, got, err)
		}
		enc := c.Encode()
		for i := range enc {
			if _, err := DecodeChange(enc[:i]); err == nil {
				t.Errorf("%+v cut to %d bytes decoded", c, i)
			}
		}
	}
}

func TestState_EncodeDecode(t *testing.T) {
	s := cluster(t)
	got, err := DecodeState(s.Encode())
	if err != nil || !got.Equal(s) || !bytes.Equal(got.Encode(), s.Encode()) {
		t.Fatalf("round trip: equal=%t, %v", got.Equal(s), err)
	}
	enc := s.Encode()
	for i := range enc {
		if _, err := DecodeState(enc[:i]); err == nil {
			t.Errorf("state cut to %d of %d bytes decoded", i, len(enc))
		}
	}
	if !(*State)(nil).Empty() || s.Empty() {
		t.Fatal("Empty is wrong")
	}
}

func FuzzDecodeState(f *testing.F) {
	f.Add(build(&testing.T{}, Change{Kind: AddRole, Name: "r"}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeState(b)
		if err != nil {
			return
		}
		again, err := DecodeState(s.Encode())
		if err != nil || !again.Equal(s) {
			t.Fatalf("re-encoded state: %v", err)
		}
	})
}

func FuzzDecodeChange(f *testing.F) {
	f.Add(Change{Kind: GrantPermission, Name: "r", Perm: Permission{Prefix: "a/", Access: Read}}.Encode())
	f.Add(Change{Kind: Enable, Key: testKey}.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeChange(b)
		if err != nil {
			return
		}
		if again, err := DecodeChange(c.Encode()); err != nil || again.Kind != c.Kind || again.Name != c.Name || again.Perm != c.Perm {
			t.Fatalf("re-encoded change: %+v, %v", again, err)
		}
	})
}

// BenchmarkVerify is what every request of a cluster with auth enabled
// pays for its token.
func BenchmarkVerify(b *testing.B) {
	s := cluster(&testing.T{})
	now := time.Unix(1_000_000, 0)
	tok, _, err := s.Login("alice", "alicepw", now, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Verify(tok, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoginDefaultCost is a login's bcrypt comparison at the cost
// the servers hash with.
func BenchmarkLoginDefaultCost(b *testing.B) {
	h, err := HashPassword("pw", bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	s, _ := (*State)(nil).Apply(Change{Kind: AddUser, Name: "root", Hash: h}, 1)
	s, _ = s.Apply(Change{Kind: GrantRole, Name: "root", Role: RootRole}, 2)
	s, _ = s.Apply(Change{Kind: Enable, Key: testKey}, 3)
	for b.Loop() {
		if _, _, err := s.Login("root", "pw", time.Unix(0, 0), time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
