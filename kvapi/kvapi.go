// Package kvapi is the vocabulary the library (package raftex) and the
// Go client (package client) share: the errors of the key-value API,
// each declared once, and the types of ranges, transactions and watches
// with their JSON forms (docs/api.md). It imports the standard library
// only, so the client stays HTTP-only.
package kvapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Errors of the key-value API. Use errors.Is and errors.As.
var (
	// ErrNotFound: the key is absent.
	ErrNotFound = errors.New("raftex: key not found")
	// ErrCASMismatch: a compare-and-set found another revision; the error
	// is a *CASMismatchError carrying it.
	ErrCASMismatch = errors.New("raftex: revision mismatch")
	// ErrCompacted: a watch started before the oldest change the node
	// still keeps, or the node skipped changes (it installed a snapshot);
	// the error is a *CompactedError. List the prefix and watch from the
	// listing's revision + 1.
	ErrCompacted = errors.New("raftex: revision compacted")
)

// CASMismatchError reports the key's current revision (0: absent).
type CASMismatchError struct{ Revision uint64 }

func (e *CASMismatchError) Error() string {
	return fmt.Sprintf("raftex: revision mismatch (current revision %d)", e.Revision)
}

// Is makes errors.Is(err, ErrCASMismatch) true.
func (e *CASMismatchError) Is(target error) bool { return target == ErrCASMismatch }

// CompactedError reports the revision up to which changes are forgotten:
// a watch can start at CompactRevision+1 at the earliest.
type CompactedError struct {
	CompactRevision uint64
	// Reason says why, when a running watch was cut off.
	Reason string
}

func (e *CompactedError) Error() string {
	msg := fmt.Sprintf("raftex: revision compacted (changes up to revision %d are forgotten)", e.CompactRevision)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// Is makes errors.Is(err, ErrCompacted) true.
func (e *CompactedError) Is(target error) bool { return target == ErrCompacted }

// Limits of ranges and transactions.
const (
	// DefaultListLimit is a range's limit when none is given, MaxListLimit
	// the largest allowed.
	DefaultListLimit = 1000
	MaxListLimit     = 10_000
	// MaxListBytes ends a page early, with More, once its keys and
	// values reach it, so that no listing holds a node's memory (and its
	// client's) to the limit's thousands of largest values. A page always
	// holds at least one key.
	MaxListBytes = 4 << 20
	// MaxTxnOps bounds the compares and the ops of each branch of a
	// transaction.
	MaxTxnOps = 128
)

// KeyValue is a key with its value and revision (the log index that last
// wrote it).
type KeyValue struct {
	Key      []byte
	Value    []byte
	Revision uint64
}

// MarshalJSON gives {"key" or "key_base64", "value" (base64, absent when
// nil: a keys-only listing), "revision"}.
func (kv KeyValue) MarshalJSON() ([]byte, error) {
	m := KeyJSON(kv.Key)
	if kv.Value != nil {
		m["value"] = kv.Value
	}
	m["revision"] = kv.Revision
	return json.Marshal(m)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (kv *KeyValue) UnmarshalJSON(b []byte) error {
	var v struct {
		jsonKey
		Value    []byte `json:"value"`
		Revision uint64 `json:"revision"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	key, err := v.key()
	*kv = KeyValue{Key: key, Value: v.Value, Revision: v.Revision}
	return err
}

// ListOptions select a range of keys.
type ListOptions struct {
	// StartAfter lists only keys after it (in byte order): the last key of
	// the previous page.
	StartAfter []byte
	// Limit bounds the keys returned: 0 is DefaultListLimit, at most
	// MaxListLimit. A page may hold fewer (MaxListBytes).
	Limit int
	// KeysOnly leaves the values out.
	KeysOnly bool
	// Consistency of the listing (Linearizable by default).
	Consistency Consistency
}

// ListResult is a page of a range in key order: More says keys follow
// (ask again with StartAfter the last key), Revision is the store's
// revision the listing reflects.
type ListResult struct {
	KVs      []KeyValue `json:"kvs"`
	More     bool       `json:"more"`
	Revision uint64     `json:"revision"`
}

// jsonKey is a key in JSON: a string when valid UTF-8, else base64.
type jsonKey struct {
	Key       *string `json:"key,omitempty"`
	KeyBase64 []byte  `json:"key_base64,omitempty"`
}

func (j jsonKey) key() ([]byte, error) {
	switch {
	case j.Key != nil && j.KeyBase64 != nil:
		return nil, errors.New(`give "key" or "key_base64", not both`)
	case j.Key != nil:
		return []byte(*j.Key), nil
	case j.KeyBase64 != nil:
		return j.KeyBase64, nil
	}
	return nil, errors.New(`missing "key" (or "key_base64")`)
}

// KeyJSON returns the JSON fields naming key ("key" or "key_base64"),
// for embedding in other objects.
func KeyJSON(key []byte) map[string]any {
	if utf8.Valid(key) {
		return map[string]any{"key": string(key)}
	}
	return map[string]any{"key_base64": base64.StdEncoding.EncodeToString(key)}
}
