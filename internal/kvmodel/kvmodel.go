// Package kvmodel is the sequential specification of raftex's key-value
// store (package kv) for the linearizability checker
// github.com/anishathalye/porcupine, shared by the simulator (package sim)
// and the end-to-end suites' client load (internal/kvload): one model,
// tested once.
//
// A history is a []porcupine.Operation whose Input is an Input and whose
// Output is an Output. Model checks it one key at a time, or one group of
// keys that transactions tie together (linearizability is local, so that
// is sound), and is strict about revisions:
//
//  1. a write's revision is the log index it applied at, so it exceeds the
//     revision of every earlier write of its key, deletes included;
//  2. a read returns the key's current value with its exact revision, or
//     absent;
//  3. a compare-and-set succeeds exactly when the key is at the revision
//     it expects (0: absent); when it fails it writes nothing and reports
//     the key's current revision;
//  4. a delete reports whether the key existed;
//  5. a write refused because its session expired writes nothing;
//  6. a transaction (a compare-and-set over several keys, Txn) is atomic:
//     it writes every key at one revision, above each key's last write,
//     exactly when every key is at the revision it expects; otherwise it
//     writes nothing and reads each key's current value and revision.
//
// # Operations whose outcome is unknown
//
// A client that gives up on a write (a timeout, ErrUnavailable) does not
// know whether it applied. Such an operation never returns: its Return is
// Never. Porcupine may then linearize it anywhere after its call, and
// placing it after every other operation is the same as its never having
// applied, since nobody sees its effect there. So the model needs no
// branch for "applied or not" and stays deterministic (a
// porcupine.NondeterministicModel would try both at every step, for the
// same verdict, more slowly). What the caller records as its output:
//
//   - the outcome, when it can learn it elsewhere (the simulator reads it
//     from the state machine): the model is as strict as for an answered
//     write; a write that never applied is left out of the history;
//   - Output{Unknown: true} otherwise (internal/kvload): if the write
//     applied, its revision is one nobody saw, above the key's last known
//     write; the model keeps it unknown until a read or a failed CAS shows
//     it, and from then on holds the key to it.
//
// A read without an answer had no effect and is best left out of the
// history.
package kvmodel

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Kind is an operation's kind.
type Kind uint8

// The operation kinds. The simulator folds them into its trace hash, so
// renumbering them moves every seed's trace.
const (
	Get    Kind = iota // read a key
	Put                // write a key unconditionally
	Delete             // remove a key
	CAS                // write a key if it is at the revision expected
	// Txn writes Value to every key of Keys if each is at its revision in
	// Expects (one transaction, one revision), else reads them all.
	Txn
)

// Never is the return time of an operation whose outcome is unknown: it
// never returns, so it may take effect at any time after its call.
const Never int64 = math.MaxInt64

// Input is an operation as the client called it.
type Input struct {
	Kind  Kind
	Key   string
	Value string // Put and CAS
	// Expect is the revision a CAS expects (0: the key is absent).
	Expect uint64
	// Keys and Expects are a Txn's keys (Key is unused) and the revision
	// each must be at.
	Keys    []string
	Expects []uint64
}

// Read is what a failed Txn read of one of its keys.
type Read struct {
	Found bool
	Value string
	Rev   uint64
}

// Output is an operation's outcome.
type Output struct {
	// Unknown: a write whose answer never came. It may have applied, at a
	// revision nobody saw, or not at all. The operation's Return must be
	// Never.
	Unknown bool
	// Rev is, for a get, the revision of the value read; for a write, its
	// own revision (the log index it applied at); for a failed CAS, the
	// key's current revision.
	Rev      uint64
	Found    bool   // Get: the key exists
	Value    string // Get: its value
	Deleted  bool   // Delete: the key existed
	Mismatch bool   // CAS: the revision did not match; nothing was written
	// SessionExpired: a write refused because its client session had
	// expired (thesis §6.3); nothing was written.
	SessionExpired bool
	// Succeeded: a Txn's compares held and it wrote every key at Rev;
	// else Reads holds each key's value and revision, in Keys' order.
	Succeeded bool
	Reads     []Read
}

// state is one key's state.
//
// Invariants: an absent key has Rev 0 and revKnown; Rev <= Last when
// revKnown; Last < the unseen revision when !revKnown.
type state struct {
	exists bool
	value  string
	// rev is the current value's revision (0 when absent), if revKnown. A
	// write of unknown outcome that applied has a revision nobody saw, above
	// last; a later read or failed CAS learns it.
	rev      uint64
	revKnown bool
	// last is the revision of the key's last write, deletes included, or a
	// lower bound of it after a write of unknown outcome: writes apply in
	// log order, each at a higher revision than the one before.
	last uint64
}

// keyStates is the state of a partition's keys (a key not in it is
// absent and was never written); immutable: step returns a copy.
type keyStates map[string]state

func (ks keyStates) get(key string) state {
	if st, ok := ks[key]; ok {
		return st
	}
	return state{revKnown: true}
}

// with returns ks with the given keys' states replaced.
func (ks keyStates) with(next map[string]state) keyStates {
	out := make(keyStates, len(ks)+len(next))
	for k, st := range ks {
		out[k] = st
	}
	for k, st := range next {
		out[k] = st
	}
	return out
}

// Model is the sequential specification, one key (or group of keys tied
// by transactions) at a time; see the package documentation. Its states
// and operations describe themselves for porcupine's visualisation.
var Model = porcupine.Model{
	Partition: partition,
	Init:      func() any { return keyStates{} },
	Step: func(st, in, out any) (bool, any) {
		return stepKeys(st.(keyStates), in.(Input), out.(Output))
	},
	Equal: func(a, b any) bool {
		x, y := a.(keyStates), b.(keyStates)
		if len(x) != len(y) {
			return false
		}
		for k, st := range x {
			if o, ok := y[k]; !ok || o != st {
				return false
			}
		}
		return true
	},
	DescribeOperation: func(in, out any) string {
		return fmt.Sprintf("%v → %v", in.(Input), out.(Output))
	},
	DescribeState: func(st any) string {
		ks := st.(keyStates)
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(ks)) {
			parts = append(parts, k+": "+ks[k].String())
		}
		return strings.Join(parts, ", ")
	},
}

// keysOf returns the keys an operation touches.
func (in Input) keysOf() []string {
	if in.Kind == Txn {
		return in.Keys
	}
	return []string{in.Key}
}

// partition splits the history into groups of keys no transaction ties
// to another group's (union-find), each in the order of its least key.
func partition(history []porcupine.Operation) [][]porcupine.Operation {
	parent := map[string]string{}
	var find func(k string) string
	find = func(k string) string {
		p, ok := parent[k]
		if !ok {
			parent[k] = k
			return k
		}
		if p == k {
			return k
		}
		r := find(p)
		parent[k] = r
		return r
	}
	for _, op := range history {
		keys := op.Input.(Input).keysOf()
		for _, k := range keys[1:] {
			a, b := find(keys[0]), find(k)
			if a != b {
				parent[max(a, b)] = min(a, b) // the least key names its group
			}
		}
		find(keys[0])
	}
	groups := map[string][]porcupine.Operation{}
	for _, op := range history {
		root := find(op.Input.(Input).keysOf()[0])
		groups[root] = append(groups[root], op)
	}
	out := make([][]porcupine.Operation, 0, len(groups))
	for _, root := range slices.Sorted(maps.Keys(groups)) {
		out = append(out, groups[root])
	}
	return out
}

// stepKeys is step over a partition's keys.
func stepKeys(ks keyStates, in Input, out Output) (bool, any) {
	if in.Kind == Txn {
		ok, next := stepTxn(ks, in, out)
		if !ok {
			return false, ks
		}
		return true, ks.with(next)
	}
	ok, st := step(ks.get(in.Key), in, out)
	if !ok {
		return false, ks
	}
	if st := st.(state); st != ks.get(in.Key) {
		return true, ks.with(map[string]state{in.Key: st})
	}
	return true, ks
}

// stepTxn is step for a transaction: the states of its keys after it.
func stepTxn(ks keyStates, in Input, out Output) (bool, map[string]state) {
	next := map[string]state{}
	switch {
	case out.SessionExpired:
		return true, next
	case out.Unknown:
		// Applied here (see the package documentation): it wrote, unless a
		// key is known to be off its expected revision. When a revision is
		// not known, writing is one possibility; the other, a failed
		// compare, had no effect, the same as its linearization after
		// every other operation, which porcupine tries too.
		for i, k := range in.Keys {
			if st := ks.get(k); st.revKnown && !st.revIs(in.Expects[i]) {
				return true, next
			}
		}
		for i, k := range in.Keys {
			st := ks.get(k)
			next[k] = state{exists: true, value: in.Value, last: max(st.last, in.Expects[i])}
		}
		return true, next
	}
	for _, k := range in.Keys {
		if out.Rev <= ks.get(k).last {
			return false, nil
		}
	}
	if out.Succeeded {
		for i, k := range in.Keys {
			if !ks.get(k).revIs(in.Expects[i]) || out.Rev <= in.Expects[i] {
				return false, nil
			}
			next[k] = written(in.Value, out.Rev)
		}
		return true, next
	}
	if len(out.Reads) != len(in.Keys) {
		return false, nil
	}
	off := false
	for i, k := range in.Keys {
		st, r := ks.get(k), out.Reads[i]
		switch {
		case !st.exists && r.Found, st.exists && (!r.Found || r.Value != st.value || !st.revIs(r.Rev)):
			return false, nil
		}
		off = off || r.Rev != in.Expects[i]
		next[k] = st.learn(r.Rev)
	}
	return off, next
}

// step reports whether the operation may have had this outcome in state
// st, and the state after it.
func step(st state, in Input, out Output) (bool, any) {
	switch {
	case out.Unknown:
		return true, applyUnknown(st, in)
	case out.SessionExpired:
		return in.Kind != Get, st
	}
	switch in.Kind {
	case Get:
		if !st.exists {
			return !out.Found, st
		}
		if !out.Found || out.Value != st.value || !st.revIs(out.Rev) {
			return false, st
		}
		return true, st.learn(out.Rev)
	case Put:
		return out.Rev > st.last, written(in.Value, out.Rev)
	case Delete:
		return out.Rev > st.last && out.Deleted == st.exists, deleted(out.Rev)
	case CAS:
		if out.Mismatch {
			// The key is at out.Rev, which is not the revision expected.
			return out.Rev != in.Expect && st.revIs(out.Rev), st.learn(out.Rev)
		}
		return st.revIs(in.Expect) && out.Rev > max(st.last, in.Expect), written(in.Value, out.Rev)
	}
	panic(fmt.Sprintf("kvmodel: unknown operation kind %d in %v", in.Kind, in))
}

// applyUnknown is the state after a write of unknown outcome, linearized
// here, applied. (Its not having applied is its linearization after every
// other operation: see the package documentation.)
func applyUnknown(st state, in Input) state {
	switch in.Kind {
	case Put:
		return state{exists: true, value: in.Value, last: st.last}
	case Delete:
		return state{revKnown: true, last: st.last}
	case CAS:
		if st.revIs(in.Expect) {
			return state{exists: true, value: in.Value, last: max(st.last, in.Expect)}
		}
	}
	return st // a read, or a CAS that failed: no effect
}

// revIs reports whether the key may be at revision rev.
func (st state) revIs(rev uint64) bool {
	switch {
	case !st.exists:
		return rev == 0
	case st.revKnown:
		return rev == st.rev
	}
	return rev > st.last
}

// learn fixes an unknown revision once a read or a failed CAS saw it; the
// result means something only if st.revIs(rev).
func (st state) learn(rev uint64) state {
	if st.exists && !st.revKnown {
		st.rev, st.revKnown, st.last = rev, true, max(st.last, rev)
	}
	return st
}

func written(value string, rev uint64) state {
	return state{exists: true, value: value, rev: rev, revKnown: true, last: rev}
}

func deleted(rev uint64) state { return state{revKnown: true, last: rev} }

func (st state) String() string {
	switch {
	case !st.exists:
		return fmt.Sprintf("absent (last write %d)", st.last)
	case !st.revKnown:
		return fmt.Sprintf("%q@? (> %d)", st.value, st.last)
	}
	return fmt.Sprintf("%q@%d", st.value, st.rev)
}

func (in Input) String() string {
	switch in.Kind {
	case Get:
		return fmt.Sprintf("get(%s)", in.Key)
	case Put:
		return fmt.Sprintf("put(%s=%s)", in.Key, in.Value)
	case Delete:
		return fmt.Sprintf("delete(%s)", in.Key)
	case Txn:
		parts := make([]string, len(in.Keys))
		for i, k := range in.Keys {
			parts[i] = fmt.Sprintf("%s@%d", k, in.Expects[i])
		}
		return fmt.Sprintf("txn(%s=%s)", strings.Join(parts, ","), in.Value)
	}
	return fmt.Sprintf("cas(%s@%d=%s)", in.Key, in.Expect, in.Value)
}

func (out Output) String() string {
	var b strings.Builder
	switch {
	case out.Unknown:
		b.WriteString("unknown")
	case out.SessionExpired:
		b.WriteString("session expired")
	case out.Mismatch:
		fmt.Fprintf(&b, "mismatch, rev %d", out.Rev)
	case out.Succeeded:
		fmt.Fprintf(&b, "succeeded, rev %d", out.Rev)
	case out.Reads != nil:
		fmt.Fprintf(&b, "failed, rev %d, read", out.Rev)
		for _, r := range out.Reads {
			if r.Found {
				fmt.Fprintf(&b, " %q@%d", r.Value, r.Rev)
			} else {
				b.WriteString(" absent")
			}
		}
	case out.Found:
		fmt.Fprintf(&b, "%q@%d", out.Value, out.Rev)
	default:
		fmt.Fprintf(&b, "rev %d", out.Rev)
		if out.Deleted {
			b.WriteString(" deleted")
		}
	}
	return b.String()
}

var (
	// ErrNotLinearizable is returned by Check and CheckVerbose when
	// porcupine found no linearization of the history.
	ErrNotLinearizable = errors.New("kvmodel: history not linearizable")
	// ErrTimeout is returned by Check and CheckVerbose when porcupine ran
	// out of time: the history is not known to be linearizable, which is
	// a failure, not a pass.
	ErrTimeout = errors.New("kvmodel: check did not finish")
)

// Check checks the history against Model, giving up after timeout (0: no
// limit). It returns porcupine's result, and an error unless that is
// porcupine.Ok: ErrNotLinearizable or ErrTimeout, wrapped with the number
// of operations and the timeout.
func Check(history []porcupine.Operation, timeout time.Duration) (porcupine.CheckResult, error) {
	res := porcupine.CheckOperationsTimeout(Model, history, timeout)
	return res, resultErr(res, len(history), timeout)
}

// CheckVerbose is Check that also returns what Visualize needs to draw the
// history. It is slower than Check: porcupine records the longest
// linearizable prefixes as it searches, and checks every key even after
// one failed.
func CheckVerbose(history []porcupine.Operation, timeout time.Duration) (porcupine.CheckResult, porcupine.LinearizationInfo, error) {
	res, info := porcupine.CheckOperationsVerbose(Model, history, timeout)
	return res, info, resultErr(res, len(history), timeout)
}

// Visualize writes porcupine's HTML visualisation of a history that
// CheckVerbose checked to the file at path.
func Visualize(info porcupine.LinearizationInfo, path string) error {
	return porcupine.VisualizePath(Model, info, path)
}

func resultErr(res porcupine.CheckResult, ops int, timeout time.Duration) error {
	switch res {
	case porcupine.Ok:
		return nil
	case porcupine.Unknown:
		return fmt.Errorf("%w within %v (%d operations): the history is not known to be linearizable", ErrTimeout, timeout, ops)
	}
	return fmt.Errorf("%w (%d operations)", ErrNotLinearizable, ops)
}
