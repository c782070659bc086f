package kv

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
)

// MemberInfo is what a member publishes about itself through the log, so
// every node learns every member's addresses (as etcd publishes member
// attributes): followers use the leader's client address to forward
// writes, and the status page lists every member.
type MemberInfo struct {
	PeerAddr   string `json:"peer_addr"`
	ClientAddr string `json:"client_addr"`
}

// PublishMember returns the command that records info for member id.
func PublishMember(id uint64, info MemberInfo) Command {
	b, err := json.Marshal(info)
	if err != nil {
		panic(err) // two strings always marshal
	}
	return Command{Op: OpMember, Key: []byte(strconv.FormatUint(id, 10)), Value: b}
}

// Member returns what member id published, if anything.
func (s *Store) Member(id uint64) (MemberInfo, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.members[id]
	return m, ok
}

// Members returns every published member.
func (s *Store) Members() map[uint64]MemberInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.members)
}

func (s *Store) applyMember(c Command, index uint64) Result {
	id, err := strconv.ParseUint(string(c.Key), 10, 64)
	if err != nil || id == 0 {
		return Result{Err: fmt.Errorf("%w: member id %q", ErrBadCommand, c.Key)}
	}
	var info MemberInfo
	if err := json.Unmarshal(c.Value, &info); err != nil {
		return Result{Err: fmt.Errorf("%w: member info: %v", ErrBadCommand, err)}
	}
	s.members[id] = info
	return Result{Revision: index}
}
