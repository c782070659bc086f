package sim

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// kvInput is an operation as the client called it.
type kvInput struct {
	Kind  opKind
	Key   string
	Value string // put and CAS
	// Expect is the revision a CAS expects (0: the key is absent).
	Expect uint64
}

// kvOutput is an operation's outcome.
type kvOutput struct {
	// Rev is, for a get, the revision of the value read; for a write, its
	// own revision (the log index it was applied at); for a failed CAS,
	// the key's current revision.
	Rev      uint64
	Found    bool   // get: the key exists
	Value    string // get: its value
	Deleted  bool   // delete: the key existed
	Mismatch bool   // CAS: the revision did not match; nothing was written
}

// kvState is one key's state in the model.
type kvState struct {
	Exists bool
	Value  string
	Rev    uint64 // revision of the current value, 0 when absent
	// Last is the revision of the last write to the key, deletes
	// included: writes are applied in log order, so each new one has a
	// higher revision.
	Last uint64
}

// kvModel is the sequential specification of package kv, one key at a
// time (porcupine checks each key's history on its own, which is sound:
// linearizability is local). It is strict about revisions: a write's
// revision is its log index, so it must exceed the key's last one, and a
// read must see the exact revision of the value it returns.
var kvModel = porcupine.Model{
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
	Init: func() any { return kvState{} },
	Step: func(state, input, output any) (bool, any) {
		return kvStep(state.(kvState), input.(kvInput), output.(kvOutput))
	},
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("%v → %v", input.(kvInput), output.(kvOutput))
	},
	DescribeState: func(state any) string {
		st := state.(kvState)
		if !st.Exists {
			return fmt.Sprintf("absent (last write %d)", st.Last)
		}
		return fmt.Sprintf("%q@%d", st.Value, st.Rev)
	},
}

func kvStep(st kvState, in kvInput, out kvOutput) (bool, any) {
	switch in.Kind {
	case opGet:
		ok := out.Found == st.Exists && (!out.Found || (out.Value == st.Value && out.Rev == st.Rev))
		return ok, st
	case opCAS:
		if st.Rev != in.Expect {
			return out.Mismatch && out.Rev == st.Rev, st
		}
		if out.Mismatch {
			return false, st
		}
	case opDelete:
		if out.Rev <= st.Last || out.Deleted != st.Exists {
			return false, st
		}
		return true, kvState{Last: out.Rev}
	}
	if out.Rev <= st.Last {
		return false, st
	}
	return true, kvState{Exists: true, Value: in.Value, Rev: out.Rev, Last: out.Rev}
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

// operations turns the history into porcupine's form. An operation whose
// client gave up never returns: if the state machine applied it, it
// enters with the outcome it had and a return time of infinity; if no
// node ever applied it, it had no effect and is left out (so are reads
// without an outcome, which have none).
func operations(history []record, outcomes map[sessionKey]kvOutput) []porcupine.Operation {
	ops := make([]porcupine.Operation, 0, len(history))
	for _, r := range history {
		op := porcupine.Operation{ClientId: r.client, Input: r.in, Call: int64(r.call), Output: r.out, Return: int64(r.ret)}
		if r.unknown {
			out, ok := outcomes[sessionKey{r.name, r.seq}]
			if r.in.Kind == opGet || !ok {
				continue
			}
			op.Output, op.Return = out, math.MaxInt64
		}
		ops = append(ops, op)
	}
	return ops
}

// checkLinearizable checks the history with porcupine; a check that runs
// out of time is a failure, not a pass.
func checkLinearizable(ops []porcupine.Operation, timeout time.Duration) error {
	switch res := porcupine.CheckOperationsTimeout(kvModel, ops, timeout); res {
	case porcupine.Ok:
		return nil
	case porcupine.Unknown:
		return fmt.Errorf("the check of %d operations did not finish within %v", len(ops), timeout)
	default:
		return fmt.Errorf("the history of %d operations is not linearizable", len(ops))
	}
}
