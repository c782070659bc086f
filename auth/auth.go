// Package auth is raftex's users, roles and tokens: the state the
// replicated store keeps (package kv applies each Change through the Raft
// log, so every node holds the same State and it lives in snapshots), the
// permission check, and the signed tokens any node verifies. Like etcd's,
// it is off until enabled.
//
// A State is immutable: Apply returns a new one. Nothing here starts a
// goroutine or reads a clock (time comes in as an argument), so package
// kv, package server and the simulator all run this same code.
package auth

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// RootRole is the built-in role that alone may change members, transfer
// leadership and manage auth; it grants every key too. It always exists
// and cannot be changed.
const RootRole = "root"

// MaxNameSize bounds user and role names.
const MaxNameSize = 128

// Access is what a permission grants on its key prefix.
type Access uint8

// Access values are part of the log and snapshot formats.
const (
	Read      Access = 1
	ReadWrite Access = 2
)

func (a Access) String() string {
	switch a {
	case Read:
		return "read"
	case ReadWrite:
		return "readwrite"
	}
	return fmt.Sprintf("Access(%d)", uint8(a))
}

// ParseAccess parses "read" or "readwrite".
func ParseAccess(s string) (Access, error) {
	switch s {
	case "read":
		return Read, nil
	case "readwrite":
		return ReadWrite, nil
	}
	return 0, fmt.Errorf("%w: access %q is not read or readwrite", ErrBadChange, s)
}

// Permission grants Access on every key that starts with Prefix ("" is
// every key).
type Permission struct {
	Prefix string
	Access Access
}

// Need is what a request needs of its user.
type Need uint8

const (
	// NeedUser: any authenticated user.
	NeedUser Need = iota + 1
	// NeedRead: read access to the key.
	NeedRead
	// NeedWrite: read-write access to the key.
	NeedWrite
	// NeedRoot: the root role.
	NeedRoot
)

// Errors of Apply and of the checks. Each is declared once; package
// server maps them to HTTP statuses and codes.
var (
	// ErrBadChange: a malformed change or name; nothing changed.
	ErrBadChange = errors.New("auth: malformed change")
	// ErrUserExists, ErrRoleExists: adding a name already there.
	ErrUserExists = errors.New("auth: user already exists")
	ErrRoleExists = errors.New("auth: role already exists")
	// ErrNoUser, ErrNoRole: the change names a user or role that does not
	// exist.
	ErrNoUser = errors.New("auth: no such user")
	ErrNoRole = errors.New("auth: no such role")
	// ErrRootRole: the built-in root role cannot be added or changed.
	ErrRootRole = errors.New("auth: the root role is built in and has every permission")
	// ErrNoRootUser: enabling auth needs a user with the root role, or
	// nobody could manage it afterwards.
	ErrNoRootUser = errors.New("auth: enabling auth needs a user with the root role")
	// ErrLastRoot: deleting the last user with the root role while auth
	// is enabled would lock everyone out.
	ErrLastRoot = errors.New("auth: cannot delete the last user with the root role while auth is enabled")
	// ErrUnauthenticated: auth is enabled and the request names no
	// existing user.
	ErrUnauthenticated = errors.New("auth: authentication required")
	// ErrPermissionDenied: the user lacks the permission the request needs.
	ErrPermissionDenied = errors.New("auth: permission denied")
)

// User is a user of the store.
type User struct {
	Name string
	// Hash is the bcrypt hash of the password (package kv never sees a
	// password: the node that takes the request hashes it).
	Hash []byte
	// Roles in name order.
	Roles []string
	// Rev is the log index that added the user: a token names it, so a
	// user deleted and added again does not accept the old user's tokens.
	Rev uint64
}

// Role is a named set of permissions.
type Role struct {
	Name string
	// Perms in prefix order, one per prefix.
	Perms []Permission
}

// State is the replicated auth state. It is immutable; the zero value
// (and nil) is "auth never used": disabled, no users, no roles.
type State struct {
	enabled bool
	// key signs tokens; made by the first Enable and kept for good.
	key []byte
	// rev is the log index of the last change applied.
	rev   uint64
	users map[string]*User
	roles map[string]*Role
}

// Enabled reports whether requests must authenticate.
func (s *State) Enabled() bool { return s != nil && s.enabled }

// Rev is the log index of the last change applied (0: none).
func (s *State) Rev() uint64 {
	if s == nil {
		return 0
	}
	return s.rev
}

// Empty reports whether auth was never used: nothing to keep in a
// snapshot.
func (s *State) Empty() bool {
	return s == nil || (!s.enabled && s.key == nil && s.rev == 0 && len(s.users) == 0 && len(s.roles) == 0)
}

// User returns a user; the caller must not modify it.
func (s *State) User(name string) (*User, bool) {
	if s == nil {
		return nil, false
	}
	u, ok := s.users[name]
	return u, ok
}

// Role returns a role; the caller must not modify it.
func (s *State) Role(name string) (*Role, bool) {
	if s == nil {
		return nil, false
	}
	r, ok := s.roles[name]
	return r, ok
}

// Users returns every user in name order.
func (s *State) Users() []*User {
	if s == nil {
		return nil
	}
	return sortedValues(s.users)
}

// Roles returns every role (not the built-in root) in name order.
func (s *State) Roles() []*Role {
	if s == nil {
		return nil
	}
	return sortedValues(s.roles)
}

func sortedValues[V any](m map[string]*V) []*V {
	out := make([]*V, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}

// Allow reports whether user may do what need says on key: nil, or
// ErrUnauthenticated (no such user) or ErrPermissionDenied. With auth
// disabled everyone may do everything.
func (s *State) Allow(user string, need Need, key []byte) error {
	if !s.Enabled() {
		return nil
	}
	u, ok := s.users[user]
	if !ok {
		return ErrUnauthenticated
	}
	if slices.Contains(u.Roles, RootRole) {
		return nil
	}
	switch need {
	case NeedUser:
		return nil
	case NeedRoot:
		return fmt.Errorf("%w: user %q needs the %s role", ErrPermissionDenied, user, RootRole)
	}
	want := Read
	if need == NeedWrite {
		want = ReadWrite
	}
	for _, name := range u.Roles {
		r := s.roles[name]
		if r == nil {
			continue
		}
		for _, p := range r.Perms {
			if p.Access >= want && bytes.HasPrefix(key, []byte(p.Prefix)) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: user %q has no %s access to key %.64q", ErrPermissionDenied, user, want, key)
}

// ValidateName checks a user or role name: 1 to MaxNameSize bytes of
// letters, digits and "._@-".
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > MaxNameSize {
		return fmt.Errorf("%w: name of %d bytes (1 to %d)", ErrBadChange, len(name), MaxNameSize)
	}
	if i := strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@-", r))
	}); i >= 0 {
		return fmt.Errorf("%w: name %q has %q (letters, digits and ._@- only)", ErrBadChange, name, name[i])
	}
	return nil
}

// clone returns a copy whose maps may be changed; the users and roles
// they hold are shared and must be copied before they change.
func (s *State) clone() *State {
	if s == nil {
		return &State{users: map[string]*User{}, roles: map[string]*Role{}}
	}
	c := *s
	c.users, c.roles = maps.Clone(s.users), maps.Clone(s.roles)
	if c.users == nil {
		c.users = map[string]*User{}
	}
	if c.roles == nil {
		c.roles = map[string]*Role{}
	}
	return &c
}

// Equal reports whether two states hold the same (for tests and the
// simulator's comparison of nodes).
func (s *State) Equal(o *State) bool {
	if s.Empty() || o.Empty() {
		return s.Empty() == o.Empty()
	}
	if s.enabled != o.enabled || !bytes.Equal(s.key, o.key) || s.rev != o.rev ||
		len(s.users) != len(o.users) || len(s.roles) != len(o.roles) {
		return false
	}
	for name, u := range s.users {
		v, ok := o.users[name]
		if !ok || !bytes.Equal(u.Hash, v.Hash) || u.Rev != v.Rev || !slices.Equal(u.Roles, v.Roles) {
			return false
		}
	}
	for name, r := range s.roles {
		q, ok := o.roles[name]
		if !ok || !slices.Equal(r.Perms, q.Perms) {
			return false
		}
	}
	return true
}
