package docker

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// The sequential specification of the key-value store, one key at a time,
// for porcupine. (package sim has its own, unexported; this one also
// handles writes whose outcome the client never learned.)

type opKind int

const (
	opGet opKind = iota
	opPut
	opCAS
	opDelete
)

// kvInput is an operation as a client called it.
type kvInput struct {
	Kind   opKind
	Key    string
	Value  string // put and CAS; unique to the operation
	Expect uint64 // CAS: the revision it expects (0: absent)
}

// kvOutput is what the client got back.
type kvOutput struct {
	// Unknown: a write whose answer never came (ErrUnavailable): it may
	// have applied, at some revision, or not at all.
	Unknown bool
	// Rev is, for a get, the revision of the value read; for a write, its
	// own revision (the log index it applied at); for a failed CAS, the
	// key's current revision.
	Rev      uint64
	Found    bool   // get: the key exists
	Value    string // get: its value
	Deleted  bool   // delete: the key existed
	Mismatch bool   // CAS: the revision did not match, nothing written
}

// kvState is one key in the model.
type kvState struct {
	Exists bool
	Value  string
	// Rev is the current value's revision (0 when absent) if RevKnown. A
	// write of unknown outcome that applied has a revision nobody saw
	// (above Last); a later read or CAS learns it.
	Rev      uint64
	RevKnown bool
	// Last is a lower bound of the key's last write's revision: writes
	// apply in log order, each at a higher revision than the one before.
	Last uint64
}

// kvModel: a write's revision must exceed every earlier one of its key; a
// read returns the current value with its exact revision; a CAS succeeds
// exactly when the current revision is the one expected.
var kvModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		slices.Sort(keys)
		out := make([][]porcupine.Operation, len(keys))
		for i, k := range keys {
			out[i] = byKey[k]
		}
		return out
	},
	Init: func() []any { return []any{kvState{RevKnown: true}} },
	Step: func(state, input, output any) []any {
		return kvStep(state.(kvState), input.(kvInput), output.(kvOutput))
	},
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("%v → %v", input.(kvInput), output.(kvOutput))
	},
	DescribeState: func(state any) string {
		st := state.(kvState)
		if !st.Exists {
			return fmt.Sprintf("absent (last write ≥ %d)", st.Last)
		}
		if !st.RevKnown {
			return fmt.Sprintf("%q@? (> %d)", st.Value, st.Last)
		}
		return fmt.Sprintf("%q@%d", st.Value, st.Rev)
	},
}

// kvStep returns the states the key may be in after the operation: none
// if the output is impossible.
func kvStep(st kvState, in kvInput, out kvOutput) []any {
	if out.Unknown {
		if in.Kind == opGet {
			return []any{st} // a read without an answer has no effect
		}
		return append([]any{st}, applyUnknown(st, in)...)
	}
	switch in.Kind {
	case opGet:
		if !st.Exists {
			return when(!out.Found, st)
		}
		if !out.Found || out.Value != st.Value || !st.revIs(out.Rev) {
			return nil
		}
		return []any{st.learn(out.Rev)}
	case opPut:
		return when(out.Rev > st.Last, written(in.Value, out.Rev))
	case opDelete:
		return when(out.Rev > st.Last && out.Deleted == st.Exists, deleted(out.Rev))
	case opCAS:
		if out.Mismatch {
			// The key is at out.Rev, which is not the one expected.
			return when(out.Rev != in.Expect && st.revIs(out.Rev), st.learn(out.Rev))
		}
		if !st.revIs(in.Expect) {
			return nil
		}
		return when(out.Rev > max(st.Last, in.Expect), written(in.Value, out.Rev))
	}
	panic(fmt.Sprintf("unknown operation %v", in))
}

// applyUnknown: the states after a write of unknown outcome that applied.
func applyUnknown(st kvState, in kvInput) []any {
	switch in.Kind {
	case opPut:
		return []any{kvState{Exists: true, Value: in.Value, Last: st.Last}}
	case opDelete:
		return []any{kvState{RevKnown: true, Last: st.Last}}
	case opCAS:
		if st.revIs(in.Expect) {
			return []any{kvState{Exists: true, Value: in.Value, Last: max(st.Last, in.Expect)}}
		}
	}
	return nil
}

// revIs reports whether the key may be at revision rev.
func (st kvState) revIs(rev uint64) bool {
	switch {
	case !st.Exists:
		return rev == 0
	case st.RevKnown:
		return rev == st.Rev
	}
	return rev > st.Last
}

// learn fixes an unknown revision once a read or CAS saw it.
func (st kvState) learn(rev uint64) kvState {
	if st.Exists && !st.RevKnown {
		st.Rev, st.RevKnown, st.Last = rev, true, max(st.Last, rev)
	}
	return st
}

func written(value string, rev uint64) kvState {
	return kvState{Exists: true, Value: value, Rev: rev, RevKnown: true, Last: rev}
}

func deleted(rev uint64) kvState { return kvState{RevKnown: true, Last: rev} }

func when(ok bool, st kvState) []any {
	if !ok {
		return nil
	}
	return []any{st}
}

func (in kvInput) String() string {
	switch in.Kind {
	case opGet:
		return fmt.Sprintf("get(%s)", in.Key)
	case opPut:
		return fmt.Sprintf("put(%s=%s)", in.Key, in.Value)
	case opDelete:
		return fmt.Sprintf("delete(%s)", in.Key)
	}
	return fmt.Sprintf("cas(%s@%d=%s)", in.Key, in.Expect, in.Value)
}

func (out kvOutput) String() string {
	var b strings.Builder
	switch {
	case out.Unknown:
		b.WriteString("unknown")
	case out.Mismatch:
		fmt.Fprintf(&b, "mismatch, rev %d", out.Rev)
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

// ---- the model's own tests: it must reject what is not linearizable.

func op(client int, in kvInput, out kvOutput, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
}

const never = 1 << 62 // the return time of an operation without an answer

func TestModel(t *testing.T) {
	put := func(v string) kvInput { return kvInput{Kind: opPut, Key: "k", Value: v} }
	get := kvInput{Kind: opGet, Key: "k"}
	cas := func(expect uint64, v string) kvInput { return kvInput{Kind: opCAS, Key: "k", Value: v, Expect: expect} }
	del := kvInput{Kind: opDelete, Key: "k"}
	found := func(v string, rev uint64) kvOutput { return kvOutput{Found: true, Value: v, Rev: rev} }
	rev := func(r uint64) kvOutput { return kvOutput{Rev: r} }
	unknown := kvOutput{Unknown: true}
	for _, tc := range []struct {
		name string
		ok   bool
		ops  []porcupine.Operation
	}{
		{"read your write", true, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, get, found("a", 3), 11, 20)}},
		{"stale read after a write", false, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(0, put("b"), rev(4), 11, 20), op(1, get, found("a", 3), 21, 30)}},
		{"read of a value nobody wrote", false, []porcupine.Operation{
			op(1, get, found("x", 3), 0, 10)}},
		{"wrong revision read", false, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, get, found("a", 4), 11, 20)}},
		{"revisions go backwards", false, []porcupine.Operation{
			op(0, put("a"), rev(5), 0, 10), op(0, put("b"), rev(4), 11, 20)}},
		{"concurrent writes in either order", true, []porcupine.Operation{
			op(0, put("a"), rev(5), 0, 10), op(1, put("b"), rev(4), 0, 10), op(2, get, found("a", 5), 11, 20)}},
		{"read of absent key after a write", false, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, get, kvOutput{}, 11, 20)}},
		{"delete then absent", true, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(0, del, kvOutput{Deleted: true, Rev: 4}, 11, 20), op(1, get, kvOutput{}, 21, 30)}},
		{"delete of an absent key says deleted", false, []porcupine.Operation{
			op(0, del, kvOutput{Deleted: true, Rev: 4}, 0, 10)}},
		{"cas on the current revision", true, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, cas(3, "b"), rev(4), 11, 20), op(1, get, found("b", 4), 21, 30)}},
		{"two cas win on one revision", false, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, cas(3, "b"), rev(4), 11, 20), op(2, cas(3, "c"), rev(5), 11, 20)}},
		{"cas mismatch names the current revision", true, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, cas(2, "b"), kvOutput{Mismatch: true, Rev: 3}, 11, 20)}},
		{"cas mismatch on the expected revision", false, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, cas(3, "b"), kvOutput{Mismatch: true, Rev: 3}, 11, 20)}},
		{"unknown write seen later", true, []porcupine.Operation{
			op(0, put("a"), unknown, 0, never), op(1, get, found("a", 7), 11, 20), op(1, get, found("a", 7), 21, 30)}},
		{"unknown write never applied", true, []porcupine.Operation{
			op(0, put("a"), unknown, 0, never), op(1, get, kvOutput{}, 11, 20)}},
		{"unknown write's revision learned, then contradicted", false, []porcupine.Operation{
			op(0, put("a"), unknown, 0, never), op(1, get, found("a", 7), 11, 20), op(1, get, found("a", 8), 21, 30)}},
		{"unknown write cannot be undone", false, []porcupine.Operation{
			op(0, put("a"), unknown, 0, never), op(1, get, found("a", 7), 11, 20), op(1, get, kvOutput{}, 21, 30)}},
		{"unknown cas applied", true, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, cas(3, "b"), unknown, 11, never), op(2, get, found("b", 9), 21, 30)}},
		{"unknown cas on another revision cannot apply", false, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, cas(2, "b"), unknown, 11, never), op(2, get, found("b", 9), 21, 30)}},
		{"unknown write's revision below an earlier write's", false, []porcupine.Operation{
			op(0, put("b"), rev(4), 0, 10), op(0, put("a"), unknown, 11, never), op(1, get, found("a", 3), 21, 30)}},
	} {
		got := porcupine.CheckOperations(kvModel.ToModel(), tc.ops)
		if got != tc.ok {
			t.Errorf("%s: linearizable = %v, want %v", tc.name, got, tc.ok)
		}
	}
}
