package auth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// ErrBadState is returned by DecodeState for bytes that are not a State.
var ErrBadState = errors.New("auth: malformed state")

// Encode returns the snapshot form of the state (package kv keeps it in a
// section of its snapshot), in name order, so equal states encode
// equally. Integers uvarint:
//
//	enabled len(key) key rev
//	nusers { len(name) name len(hash) hash rev nroles { len(role) role } }
//	nroles { len(name) name nperms { len(prefix) prefix access } }
func (s *State) Encode() []byte {
	var b []byte
	str := func(p []byte) []byte { return append(binary.AppendUvarint(b, uint64(len(p))), p...) }
	num := func(v uint64) []byte { return binary.AppendUvarint(b, v) }
	enabled := uint64(0)
	if s.Enabled() {
		enabled = 1
	}
	b = num(enabled)
	b = str(s.key)
	b = num(s.Rev())
	users, roles := s.Users(), s.Roles()
	b = num(uint64(len(users)))
	for _, u := range users {
		b = str([]byte(u.Name))
		b = str(u.Hash)
		b = num(u.Rev)
		b = num(uint64(len(u.Roles)))
		for _, r := range u.Roles {
			b = str([]byte(r))
		}
	}
	b = num(uint64(len(roles)))
	for _, r := range roles {
		b = str([]byte(r.Name))
		b = num(uint64(len(r.Perms)))
		for _, p := range r.Perms {
			b = str([]byte(p.Prefix))
			b = num(uint64(p.Access))
		}
	}
	return b
}

// DecodeState parses what Encode wrote, checking every name, hash and
// permission as Apply would.
func DecodeState(b []byte) (*State, error) {
	d := &decoder{b: b}
	s := (*State)(nil).clone()
	s.enabled = d.num() == 1
	if key := d.str(KeySize); len(key) > 0 {
		if len(key) != KeySize {
			d.fail("key of %d bytes", len(key))
		}
		s.key = key
	}
	s.rev = d.num()
	for n := d.count(); n > 0 && d.err == nil; n-- {
		u := &User{Name: string(d.str(MaxNameSize)), Hash: d.str(maxHashSize), Rev: d.num()}
		for m := d.count(); m > 0 && d.err == nil; m-- {
			u.Roles = append(u.Roles, string(d.str(MaxNameSize)))
		}
		d.check(ValidateName(u.Name))
		if !slices.IsSorted(u.Roles) || len(slices.Compact(slices.Clone(u.Roles))) != len(u.Roles) {
			d.fail("user %q: roles not sorted and distinct", u.Name)
		}
		d.unique(s.users[u.Name] == nil, u.Name)
		s.users[u.Name] = u
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		r := &Role{Name: string(d.str(MaxNameSize))}
		for m := d.count(); m > 0 && d.err == nil; m-- {
			p := Permission{Prefix: string(d.str(maxPrefixSize)), Access: Access(d.num())}
			if p.Access != Read && p.Access != ReadWrite {
				d.fail("role %q: access %d", r.Name, p.Access)
			}
			r.Perms = append(r.Perms, p)
		}
		d.check(ValidateName(r.Name))
		d.unique(s.roles[r.Name] == nil && r.Name != RootRole, r.Name)
		s.roles[r.Name] = r
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the end", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	for _, u := range s.users {
		for _, r := range u.Roles {
			if s.roles[r] == nil && r != RootRole {
				return nil, fmt.Errorf("%w: user %q has unknown role %q", ErrBadState, u.Name, r)
			}
		}
	}
	return s, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrBadState, fmt.Sprintf(format, args...))
	}
	d.b = nil
}

func (d *decoder) check(err error) {
	if err != nil {
		d.fail("%v", err)
	}
}

func (d *decoder) unique(ok bool, name string) {
	if !ok {
		d.fail("name %q twice (or the built-in root role)", name)
	}
}

func (d *decoder) num() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a number of items, each at least one byte long.
func (d *decoder) count() uint64 {
	n := d.num()
	if n > uint64(len(d.b)) {
		d.fail("count %d over the %d bytes left", n, len(d.b))
		return 0
	}
	return n
}

func (d *decoder) str(limit int) []byte {
	n := d.num()
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) || n > uint64(len(d.b)) {
		d.fail("length %d (limit %d, %d bytes left)", n, limit, len(d.b))
		return nil
	}
	p := slices.Clone(d.b[:n])
	d.b = d.b[n:]
	return p
}
