// Package kv is raftex's replicated key-value state machine: Set, Get,
// Delete and compare-and-set on a per-key revision, with client sessions
// for exactly-once writes (thesis §6.3). It implements node.FSM; the
// consistency of reads comes from the caller (node.Read before Get).
package kv

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"

	"github.com/google/btree"

	"github.com/raftex/raftex/auth"
	"github.com/raftex/raftex/kvapi"
	"github.com/raftex/raftex/node"
	"github.com/raftex/raftex/raft"
)

// Limits and their defaults.
const (
	MaxKeySize          = 1024
	DefaultMaxValueSize = 1 << 20
	// DefaultSessionTTL is how many log entries a client session survives
	// without being used.
	DefaultSessionTTL = 1_000_000
	// SessionWindow is how many recent results a session remembers: a
	// retry of a request SessionWindow or more sequence numbers older than
	// the session's newest is refused (ErrSessionStale) rather than
	// applied twice. A client keeps fewer writes than this in flight per
	// session (package client does).
	SessionWindow = 256
	// DefaultMaxSessions is how many registered client sessions the
	// store keeps: registering one more evicts the least recently used
	// (thesis §6.3), whose next request gets ErrSessionExpired.
	DefaultMaxSessions = 10_000
	// sessionSweepEvery is the log distance between sweeps of expired
	// sessions.
	sessionSweepEvery = 1024
	// maxLegacyIDSize bounds the client-chosen session names of version-1
	// commands.
	maxLegacyIDSize = 256
)

// Errors in a Result. Validation errors are returned before proposing by
// ValidateKey/ValidateValue, and again by Apply so that a bad command in
// the log is refused the same way on every node.
var (
	ErrKeyEmpty    = errors.New("kv: key is empty")
	ErrKeyTooLong  = fmt.Errorf("kv: key longer than %d bytes", MaxKeySize)
	ErrValueTooBig = errors.New("kv: value too large")
	// ErrTxnTooBig: a transaction with more than kvapi.MaxTxnOps compares
	// or ops in a branch.
	ErrTxnTooBig = errors.New("kv: transaction too large")
	// ErrSessionStale is returned for a request older than the last
	// SessionWindow requests of its session: its result is forgotten, and
	// applying it again could apply it twice.
	ErrSessionStale = errors.New("kv: request is older than the session remembers")
	// ErrSessionExpired is returned for a request whose client id names no
	// live session: it expired (unused for SessionTTL entries) or was never
	// registered. Nothing was applied; the client registers a new session
	// (thesis §6.3: SESSION_EXPIRED). Whether an earlier attempt of the
	// same request applied, before the expiry, is unknown.
	ErrSessionExpired = errors.New("kv: no such client session (expired or never registered); register a new one")
	// ErrSeqReused is returned for a request whose sequence number its
	// session already used for a different command: a client bug. Nothing
	// was applied.
	ErrSeqReused = errors.New("kv: sequence number already used for a different command")
)

// Config configures a Store.
type Config struct {
	// MaxValueSize in bytes. Default 1 MiB.
	MaxValueSize int
	// SessionTTL in log entries. Default 1,000,000.
	SessionTTL uint64
	// MaxSessions bounds the registered sessions. Default
	// DefaultMaxSessions. Like SessionTTL it is part of the state
	// machine: every node of a cluster must use the same.
	MaxSessions int
	// HistoryCount and HistoryBytes bound the changes this node keeps for
	// watches (its own, not replicated). Defaults DefaultHistoryCount
	// revisions and DefaultHistoryBytes.
	HistoryCount int
	HistoryBytes int
	// MaxWatchers bounds the watchers open at once. Default
	// DefaultMaxWatchers.
	MaxWatchers int
}

// Result is what Apply returns for a command.
type Result struct {
	// Revision is the log index of this write. For a failed CAS it is
	// the key's current revision (also in the error). For OpRegister it is
	// the new session's client id (also the log index).
	Revision uint64
	// Deleted reports, for a delete, whether the key existed.
	Deleted bool
	// Count is, for a delete by prefix, how many keys it deleted.
	Count uint64
	// Txn is a transaction's outcome (OpTxn).
	Txn *kvapi.TxnResponse
	// Err is nil, a *kvapi.CASMismatchError, a validation error,
	// ErrSessionStale, ErrSessionExpired or ErrSeqReused, an auth error
	// of the permission check (auth.ErrUnauthenticated,
	// auth.ErrPermissionDenied) or of an auth change.
	Err error
}

type item struct {
	key   string
	value []byte
	rev   uint64
}

func itemLess(a, b item) bool { return a.key < b.key }

// Store is the key-value state machine. Apply, Snapshot and Restore follow
// node.FSM's threading rules; Get and Len may be called concurrently from
// any goroutine.
type Store struct {
	cfg Config

	mu       sync.RWMutex
	tree     *btree.BTreeG[item]
	sessions *sessionTable
	// legacy are the sessions of version-1 commands, named by the client.
	legacy  map[string]*session
	members map[uint64]MemberInfo
	// auth is the users, roles and token key; immutable, replaced by
	// each auth change.
	auth    *auth.State
	applied uint64
	// hist is the changes applied here, for watches; watchers counts the
	// open ones.
	hist     history
	watchers int
}

var _ node.FSM = (*Store)(nil)

// New returns an empty store.
func New(cfg Config) *Store {
	if cfg.MaxValueSize <= 0 {
		cfg.MaxValueSize = DefaultMaxValueSize
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.HistoryCount <= 0 {
		cfg.HistoryCount = DefaultHistoryCount
	}
	if cfg.HistoryBytes <= 0 {
		cfg.HistoryBytes = DefaultHistoryBytes
	}
	if cfg.MaxWatchers <= 0 {
		cfg.MaxWatchers = DefaultMaxWatchers
	}
	return &Store{cfg: cfg, tree: btree.NewG(32, itemLess), sessions: newSessionTable(nil), legacy: map[string]*session{}, members: map[uint64]MemberInfo{},
		hist: newHistory(cfg.HistoryCount, cfg.HistoryBytes)}
}

// Auth returns the auth state as of the last entry applied. It is
// immutable: it stays the same while later entries apply.
func (s *Store) Auth() *auth.State {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.auth
}

// ValidateKey checks a key: 1 to MaxKeySize bytes of any content.
func ValidateKey(key []byte) error {
	switch {
	case len(key) == 0:
		return ErrKeyEmpty
	case len(key) > MaxKeySize:
		return ErrKeyTooLong
	}
	return nil
}

// ValidateValue checks a value against the store's limit.
func (s *Store) ValidateValue(value []byte) error {
	if len(value) > s.cfg.MaxValueSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrValueTooBig, len(value), s.cfg.MaxValueSize)
	}
	return nil
}

// MaxValueSize returns the configured value limit.
func (s *Store) MaxValueSize() int { return s.cfg.MaxValueSize }

// Get returns the value and revision of key; ok is false when absent. The
// returned slice must not be modified.
func (s *Store) Get(key []byte) (value []byte, revision uint64, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	it, ok := s.tree.Get(item{key: string(key)})
	return it.value, it.rev, ok
}

// Len returns the number of keys.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tree.Len()
}

// AppliedIndex returns the index of the last entry applied.
func (s *Store) AppliedIndex() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.applied
}

// Hash returns a digest of the keys, values and revisions, and of the
// auth state once used, equal on every node that applied the same log
// prefix.
func (s *Store) Hash() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := fnv.New64a()
	if !s.auth.Empty() {
		h.Write(s.auth.Encode())
	}
	var buf [8]byte
	s.tree.Ascend(func(it item) bool {
		h.Write([]byte(it.key))
		h.Write([]byte{0})
		h.Write(it.value)
		for i := range buf {
			buf[i] = byte(it.rev >> (8 * i))
		}
		h.Write(buf[:])
		return true
	})
	return h.Sum64()
}

// Apply applies a committed entry and returns a Result (node.FSM).
func (s *Store) Apply(e raft.Entry) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = e.Index
	if e.Index%sessionSweepEvery == 0 {
		s.expireSessions(e.Index)
	}
	c, err := DecodeCommand(e.Data)
	switch {
	case err != nil:
		return Result{Err: err}
	case c.Op == OpMember && c.ByClient:
		return Result{Err: fmt.Errorf("%w: only a node publishes members", ErrBadCommand)}
	case c.Op == OpMember:
		return s.applyMember(c, e.Index)
	case c.Op == OpRegister:
		return s.register(c, e.Index)
	case c.legacyID != "":
		return s.applyLegacy(c, e.Index)
	case c.ClientID == 0:
		if err := s.authorize(c); err != nil {
			return Result{Err: err}
		}
		return s.execute(c, e.Index)
	}
	sess := s.sessions.get(c.ClientID)
	if sess != nil && s.expired(sess, e.Index) {
		s.sessions.remove(sess)
		sess = nil
	}
	if sess == nil {
		// §6.3: never re-create a session implicitly, or a retry delayed
		// past the expiry (or the eviction) would apply twice.
		return Result{Err: fmt.Errorf("%w (client id %d)", ErrSessionExpired, c.ClientID)}
	}
	s.sessions.touch(sess)
	return s.applyInSession(sess, c, c.digest(), e.Index)
}

// register opens a session (§6.3 RegisterClient: the entry's index names
// it), evicting the least recently used ones beyond MaxSessions: which
// one is a function of the log alone, so every node evicts the same.
func (s *Store) register(c Command, index uint64) Result {
	if err := s.authorize(c); err != nil {
		return Result{Err: err}
	}
	for s.sessions.len() >= s.cfg.MaxSessions {
		s.sessions.remove(s.sessions.oldest())
	}
	s.sessions.add(index, newSession(index))
	return Result{Revision: index}
}

// authorize is the permission check at apply (like etcd's), against the
// auth state as of this entry: a permission revoked before the entry
// refuses it on every node, whatever the node that took the request knew.
// A command a node proposed itself is not checked.
func (s *Store) authorize(c Command) error {
	if !c.ByClient {
		return nil
	}
	switch c.Op {
	case OpSet, OpDelete:
		return s.auth.Allow(c.User, auth.NeedWrite, c.Key)
	case OpDeletePrefix:
		// Write access over the whole prefix: a permission whose prefix
		// starts this one (auth.State.Allow checks exactly that).
		return s.auth.Allow(c.User, auth.NeedWrite, c.Key)
	case OpTxn:
		t, err := decodeTxn(c.Value)
		if err != nil {
			return err
		}
		return s.authorizeTxn(c.User, t)
	case OpAuth:
		return s.auth.Allow(c.User, auth.NeedRoot, nil)
	}
	return s.auth.Allow(c.User, auth.NeedUser, nil)
}

// applyInSession applies c once per sequence number of sess (thesis
// §6.3): a request already applied returns its original result.
func (s *Store) applyInSession(sess *session, c Command, digest, index uint64) Result {
	sess.lastIndex = index
	if r, ok := sess.results[c.Seq]; ok {
		if r.digest != digest {
			return Result{Err: fmt.Errorf("%w (client id %d, sequence number %d)", ErrSeqReused, c.ClientID, c.Seq)}
		}
		return r.Result
	}
	if sess.maxSeq >= SessionWindow && c.Seq <= sess.maxSeq-SessionWindow {
		return Result{Err: fmt.Errorf("%w: request %d, the session's newest is %d", ErrSessionStale, c.Seq, sess.maxSeq)}
	}
	// A refusal is not the request's outcome (nothing happened): it is
	// not remembered, and an attempt that is allowed (the client logged
	// in, or was granted the role) applies. A request that already
	// applied got its remembered result above, whoever asks again.
	if err := s.authorize(c); err != nil {
		return Result{Err: err}
	}
	res := s.execute(c, index)
	sess.remember(c.Seq, sessionResult{Result: res, digest: digest})
	return res
}

// applyLegacy applies a version-1 command as it was applied when it was
// written: its session, named by the client, is made on first use, and a
// request it remembers returns the original result whatever the command.
func (s *Store) applyLegacy(c Command, index uint64) Result {
	if len(c.legacyID) > maxLegacyIDSize {
		return Result{Err: fmt.Errorf("%w: client id longer than %d bytes", ErrBadCommand, maxLegacyIDSize)}
	}
	sess := s.legacy[c.legacyID]
	if sess == nil {
		sess = newSession(index)
		s.legacy[c.legacyID] = sess
	}
	return s.applyInSession(sess, c, 0, index)
}

func (s *Store) execute(c Command, index uint64) Result {
	switch c.Op {
	case OpAuth:
		return s.applyAuth(c, index)
	case OpDeletePrefix:
		return s.applyDeletePrefix(c.Key, index)
	case OpTxn:
		t, err := decodeTxn(c.Value)
		if err != nil {
			return Result{Err: err}
		}
		return s.applyTxn(t, index)
	}
	if err := ValidateKey(c.Key); err != nil {
		return Result{Err: err}
	}
	if err := s.ValidateValue(c.Value); err != nil {
		return Result{Err: err}
	}
	key := string(c.Key)
	cur, exists := s.tree.Get(item{key: key})
	if c.CAS && cur.rev != c.Revision {
		return Result{Revision: cur.rev, Err: &kvapi.CASMismatchError{Revision: cur.rev}}
	}
	switch c.Op {
	case OpSet:
		// Copy: the entry's buffer belongs to the log or the network.
		v := bytes.Clone(c.Value)
		s.tree.ReplaceOrInsert(item{key: key, value: v, rev: index})
		s.hist.record(index, []kvapi.Change{{Type: kvapi.ChangePut, Key: []byte(key), Value: v}})
		return Result{Revision: index}
	default:
		if exists {
			s.tree.Delete(cur)
			s.hist.record(index, []kvapi.Change{{Type: kvapi.ChangeDelete, Key: []byte(key)}})
		}
		return Result{Revision: index, Deleted: exists}
	}
}

// expired reports whether sess went unused for longer than SessionTTL
// entries at index: a function of the log alone, so every node expires
// the same sessions at the same entry.
func (s *Store) expired(sess *session, index uint64) bool {
	return sess.lastIndex+s.cfg.SessionTTL < index
}

func (s *Store) expireSessions(now uint64) {
	for sess := s.sessions.oldest(); sess != nil && s.expired(sess, now); sess = s.sessions.oldest() {
		s.sessions.remove(sess)
	}
	for id, sess := range s.legacy {
		if s.expired(sess, now) {
			delete(s.legacy, id)
		}
	}
}

// session remembers the results of a client's recent requests.
type session struct {
	// id, prev and next place a registered session in its sessionTable.
	id         uint64
	prev, next *session
	lastIndex  uint64
	maxSeq     uint64
	results    map[uint64]sessionResult
}

// sessionResult is a request's result and its command's digest (0 in
// legacy sessions, which do not check it).
type sessionResult struct {
	Result
	digest uint64
}

func newSession(index uint64) *session {
	return &session{lastIndex: index, results: map[uint64]sessionResult{}}
}

func (s *session) remember(seq uint64, res sessionResult) {
	s.results[seq] = res
	s.maxSeq = max(s.maxSeq, seq)
	if len(s.results) <= 2*SessionWindow {
		return // sweep rarely: amortized O(1) per request
	}
	floor := s.maxSeq - SessionWindow
	for q := range s.results {
		if q <= floor {
			delete(s.results, q)
		}
	}
}
