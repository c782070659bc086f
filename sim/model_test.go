package sim

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// op builds a history entry: client, input, output, call and return time.
func op(client int, in kvInput, out kvOutput, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
}

func TestModel(t *testing.T) {
	put := func(v string) kvInput { return kvInput{Kind: opPut, Key: "k", Value: v} }
	get := kvInput{Kind: opGet, Key: "k"}
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		ok   bool
	}{
		{"read your write", []porcupine.Operation{
			op(0, put("a"), kvOutput{Rev: 5}, 0, 10),
			op(1, get, kvOutput{Found: true, Value: "a", Rev: 5}, 20, 30),
		}, true},
		{"stale read", []porcupine.Operation{
			op(0, put("a"), kvOutput{Rev: 5}, 0, 10),
			op(0, put("b"), kvOutput{Rev: 7}, 11, 20),
			op(1, get, kvOutput{Found: true, Value: "a", Rev: 5}, 25, 30),
		}, false},
		{"concurrent read may see either", []porcupine.Operation{
			op(0, put("a"), kvOutput{Rev: 5}, 0, 10),
			op(0, put("b"), kvOutput{Rev: 7}, 11, 40),
			op(1, get, kvOutput{Found: true, Value: "a", Rev: 5}, 25, 30),
		}, true},
		{"revisions follow real time", []porcupine.Operation{
			op(0, put("a"), kvOutput{Rev: 9}, 0, 10),
			op(1, put("b"), kvOutput{Rev: 7}, 20, 30),
		}, false},
		{"wrong revision read", []porcupine.Operation{
			op(0, put("a"), kvOutput{Rev: 5}, 0, 10),
			op(1, get, kvOutput{Found: true, Value: "a", Rev: 6}, 20, 30),
		}, false},
		{"delete then absent", []porcupine.Operation{
			op(0, put("a"), kvOutput{Rev: 5}, 0, 10),
			op(0, kvInput{Kind: opDelete, Key: "k"}, kvOutput{Rev: 6, Deleted: true}, 11, 20),
			op(1, get, kvOutput{}, 21, 30),
		}, true},
		{"cas on the current revision", []porcupine.Operation{
			op(0, put("a"), kvOutput{Rev: 5}, 0, 10),
			op(1, kvInput{Kind: opCAS, Key: "k", Expect: 5, Value: "b"}, kvOutput{Rev: 8}, 11, 20),
			op(1, kvInput{Kind: opCAS, Key: "k", Expect: 5, Value: "c"}, kvOutput{Rev: 8, Mismatch: true}, 21, 30),
		}, true},
		{"cas that should have failed", []porcupine.Operation{
			op(0, put("a"), kvOutput{Rev: 5}, 0, 10),
			op(1, kvInput{Kind: opCAS, Key: "k", Expect: 3, Value: "b"}, kvOutput{Rev: 8}, 11, 20),
		}, false},
		{"an operation that never returned takes effect later", []porcupine.Operation{
			op(0, put("a"), kvOutput{Rev: 5}, 0, math.MaxInt64),
			op(1, get, kvOutput{}, 10, 20),
			op(1, get, kvOutput{Found: true, Value: "a", Rev: 5}, 30, 40),
		}, true},
	} {
		err := checkLinearizable(tc.ops, 10*time.Second)
		if (err == nil) != tc.ok {
			t.Errorf("%s: linearizable=%t, want %t (%v)", tc.name, err == nil, tc.ok, err)
		}
	}
}

// TestOperationsUnknownOutcome: an operation whose client gave up enters
// the history with the outcome the state machine gave it, never
// returning; one no node applied is left out.
func TestOperationsUnknownOutcome(t *testing.T) {
	hist := []record{
		{client: 0, in: kvInput{Kind: opPut, Key: "k", Value: "c1.1"}, call: 1, unknown: true, name: "c1", seq: 1},
		{client: 0, in: kvInput{Kind: opPut, Key: "k", Value: "c1.2"}, call: 2, unknown: true, name: "c1", seq: 2},
		{client: 1, in: kvInput{Kind: opGet, Key: "k"}, call: 3, unknown: true},
	}
	ops := operations(hist, map[sessionKey]kvOutput{{"c1", 2}: {Rev: 9}})
	if len(ops) != 1 || ops[0].Return != math.MaxInt64 || ops[0].Output.(kvOutput).Rev != 9 ||
		!strings.Contains(ops[0].Input.(kvInput).Value, "c1.2") {
		t.Fatalf("operations = %+v", ops)
	}
}
