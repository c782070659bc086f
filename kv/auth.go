package kv

import (
	"fmt"

	"github.com/raftex/raftex/auth"
)

// applyAuth applies an auth change (users, roles, enabling): package auth
// decides, and its new state replaces the old one as a whole, so readers
// of Auth keep the state they were given.
func (s *Store) applyAuth(c Command, index uint64) Result {
	ch, err := auth.DecodeChange(c.Value)
	if err != nil {
		return Result{Err: fmt.Errorf("%w: %w", ErrBadCommand, err)}
	}
	next, err := s.auth.Apply(ch, index)
	if err != nil {
		return Result{Err: err}
	}
	s.auth = next
	return Result{Revision: index}
}
