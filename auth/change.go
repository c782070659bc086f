package auth

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Kind is the kind of a Change.
type Kind uint8

// Kind values are part of the log format: never change them.
const (
	// Enable turns auth on; its Key becomes the token key if there is
	// none yet.
	Enable Kind = 1
	// Disable turns auth off (users, roles and the key stay).
	Disable Kind = 2
	// AddUser adds user Name with password hash Hash.
	AddUser Kind = 3
	// DeleteUser deletes user Name.
	DeleteUser Kind = 4
	// GrantRole gives user Name the role Role.
	GrantRole Kind = 5
	// AddRole adds role Name, without permissions.
	AddRole Kind = 6
	// GrantPermission gives role Name the permission Perm, replacing the
	// one it had on the same prefix.
	GrantPermission Kind = 7
)

// KeySize is the size of the token key an Enable carries.
const KeySize = 32

// maxHashSize bounds a password hash (bcrypt's are 60 bytes).
const maxHashSize = 128

// changeVersion is the first byte of an encoded Change; part of the log
// format.
const changeVersion = 1

// Change is one change of the auth state, as proposed to the Raft log
// (inside a kv command).
//
// Encoding (lengths uvarint):
//
//	+---------+------+----------+------+----------+------+----------+------+----------+-----+-----------+--------+--------+
//	| version | kind | len(name)| name | len(role)| role | len(hash)| hash | len(key) | key | len(pfx)  | prefix | access |
//	+---------+------+----------+------+----------+------+----------+------+----------+-----+-----------+--------+--------+
//
// version is 1; fields a kind does not use are empty (access 0).
type Change struct {
	Kind Kind
	Name string
	Role string
	Hash []byte
	Key  []byte
	Perm Permission
}

// Encode returns the log form of c.
func (c Change) Encode() []byte {
	b := make([]byte, 0, 16+len(c.Name)+len(c.Role)+len(c.Hash)+len(c.Key)+len(c.Perm.Prefix))
	b = append(b, changeVersion, byte(c.Kind))
	for _, f := range [][]byte{[]byte(c.Name), []byte(c.Role), c.Hash, c.Key, []byte(c.Perm.Prefix)} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return append(b, byte(c.Perm.Access))
}

// DecodeChange parses the log form and validates it (ErrBadChange).
func DecodeChange(b []byte) (Change, error) {
	if len(b) < 2 || b[0] != changeVersion {
		return Change{}, fmt.Errorf("%w: not a version %d change", ErrBadChange, changeVersion)
	}
	c := Change{Kind: Kind(b[1])}
	b = b[2:]
	var fields [5][]byte
	for i := range fields {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return Change{}, fmt.Errorf("%w: truncated", ErrBadChange)
		}
		fields[i] = b[k : k+int(n) : k+int(n)]
		b = b[k+int(n):]
	}
	if len(b) != 1 {
		return Change{}, fmt.Errorf("%w: %d bytes after the fields, want 1", ErrBadChange, len(b))
	}
	c.Name, c.Role, c.Hash, c.Key = string(fields[0]), string(fields[1]), fields[2], fields[3]
	c.Perm = Permission{Prefix: string(fields[4]), Access: Access(b[0])}
	return c, c.Validate()
}

// Validate checks that c is well formed for its kind: the fields it uses
// are valid and the others empty.
func (c Change) Validate() error {
	uses := map[Kind]string{Enable: "k", Disable: "", AddUser: "nh", DeleteUser: "n", GrantRole: "nr", AddRole: "n", GrantPermission: "np"}
	want, ok := uses[c.Kind]
	if !ok {
		return fmt.Errorf("%w: unknown kind %d", ErrBadChange, c.Kind)
	}
	has := func(f byte) bool { return slices.Contains([]byte(want), f) }
	switch {
	case has('n') != (c.Name != ""), has('r') != (c.Role != ""), has('h') != (len(c.Hash) != 0),
		has('k') != (len(c.Key) != 0), !has('p') && c.Perm != (Permission{}):
		return fmt.Errorf("%w: fields do not fit kind %d", ErrBadChange, c.Kind)
	case has('k') && len(c.Key) != KeySize:
		return fmt.Errorf("%w: key of %d bytes, want %d", ErrBadChange, len(c.Key), KeySize)
	case has('h') && len(c.Hash) > maxHashSize:
		return fmt.Errorf("%w: password hash of %d bytes (at most %d)", ErrBadChange, len(c.Hash), maxHashSize)
	case has('p') && c.Perm.Access != Read && c.Perm.Access != ReadWrite:
		return fmt.Errorf("%w: access %d is not read or readwrite", ErrBadChange, c.Perm.Access)
	case has('p') && len(c.Perm.Prefix) > maxPrefixSize:
		return fmt.Errorf("%w: prefix of %d bytes (at most %d)", ErrBadChange, len(c.Perm.Prefix), maxPrefixSize)
	}
	if has('n') {
		if err := ValidateName(c.Name); err != nil {
			return err
		}
	}
	if has('r') {
		return ValidateName(c.Role)
	}
	return nil
}

// maxPrefixSize is the longest key prefix a permission names: a key's
// longest (kv.MaxKeySize).
const maxPrefixSize = 1024

// Apply returns the state after c, applied at log index index, or an
// error and no new state. It is a function of the state and the log
// alone, so every node reaches the same state.
func (s *State) Apply(c Change, index uint64) (*State, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	n := s.clone()
	n.rev = index
	switch c.Kind {
	case Enable:
		if !n.hasRoot() {
			return nil, ErrNoRootUser
		}
		n.enabled = true
		if n.key == nil {
			n.key = slices.Clone(c.Key)
		}
	case Disable:
		n.enabled = false
	case AddUser:
		if _, ok := n.users[c.Name]; ok {
			return nil, fmt.Errorf("%w: %q", ErrUserExists, c.Name)
		}
		n.users[c.Name] = &User{Name: c.Name, Hash: slices.Clone(c.Hash), Rev: index}
	case DeleteUser:
		if _, ok := n.users[c.Name]; !ok {
			return nil, fmt.Errorf("%w: %q", ErrNoUser, c.Name)
		}
		delete(n.users, c.Name)
		if n.enabled && !n.hasRoot() {
			return nil, fmt.Errorf("%w (%q)", ErrLastRoot, c.Name)
		}
	case GrantRole:
		u, ok := n.users[c.Name]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrNoUser, c.Name)
		}
		if _, ok := n.roles[c.Role]; !ok && c.Role != RootRole {
			return nil, fmt.Errorf("%w: %q", ErrNoRole, c.Role)
		}
		if !slices.Contains(u.Roles, c.Role) {
			v := *u
			v.Roles = append(slices.Clone(u.Roles), c.Role)
			slices.Sort(v.Roles)
			n.users[c.Name] = &v
		}
	case AddRole:
		if c.Name == RootRole {
			return nil, ErrRootRole
		}
		if _, ok := n.roles[c.Name]; ok {
			return nil, fmt.Errorf("%w: %q", ErrRoleExists, c.Name)
		}
		n.roles[c.Name] = &Role{Name: c.Name}
	case GrantPermission:
		if c.Name == RootRole {
			return nil, ErrRootRole
		}
		r, ok := n.roles[c.Name]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrNoRole, c.Name)
		}
		n.roles[c.Name] = &Role{Name: r.Name, Perms: withPermission(r.Perms, c.Perm)}
	}
	return n, nil
}

// withPermission returns perms with p in place of any permission on the
// same prefix, in prefix order.
func withPermission(perms []Permission, p Permission) []Permission {
	out := slices.DeleteFunc(slices.Clone(perms), func(q Permission) bool { return q.Prefix == p.Prefix })
	out = append(out, p)
	slices.SortFunc(out, func(a, b Permission) int {
		switch {
		case a.Prefix < b.Prefix:
			return -1
		case a.Prefix > b.Prefix:
			return 1
		}
		return 0
	})
	return out
}

func (s *State) hasRoot() bool {
	for _, u := range s.users {
		if slices.Contains(u.Roles, RootRole) {
			return true
		}
	}
	return false
}
