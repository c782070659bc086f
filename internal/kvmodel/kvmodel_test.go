package kvmodel

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// op builds a history entry: client, input, output, call and return time.
func op(client int, in Input, out Output, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
}

var (
	get = Input{Kind: Get, Key: "k"}
	del = Input{Kind: Delete, Key: "k"}

	unknown = Output{Unknown: true}
	expired = Output{SessionExpired: true}
)

func put(v string) Input                { return Input{Kind: Put, Key: "k", Value: v} }
func cas(expect uint64, v string) Input { return Input{Kind: CAS, Key: "k", Value: v, Expect: expect} }
func found(v string, rev uint64) Output { return Output{Found: true, Value: v, Rev: rev} }
func rev(r uint64) Output               { return Output{Rev: r} }
func mismatch(r uint64) Output          { return Output{Mismatch: true, Rev: r} }

// TestModel: the model accepts what the store may do and rejects what is
// not linearizable.
func TestModel(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
		ops  []porcupine.Operation
	}{
		// Reads.
		{"read your write", true, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, get, found("a", 3), 11, 20)}},
		{"stale read after a write", false, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(0, put("b"), rev(4), 11, 20), op(1, get, found("a", 3), 21, 30)}},
		{"concurrent read may see either", true, []porcupine.Operation{
			op(0, put("a"), rev(5), 0, 10), op(0, put("b"), rev(7), 11, 40), op(1, get, found("a", 5), 25, 30)}},
		{"read of a value nobody wrote", false, []porcupine.Operation{
			op(1, get, found("x", 3), 0, 10)}},
		{"wrong revision read", false, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, get, found("a", 4), 11, 20)}},
		{"read of absent key after a write", false, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, get, Output{}, 11, 20)}},

		// Revisions.
		{"revisions go backwards", false, []porcupine.Operation{
			op(0, put("a"), rev(5), 0, 10), op(0, put("b"), rev(4), 11, 20)}},
		{"revisions follow real time across clients", false, []porcupine.Operation{
			op(0, put("a"), rev(9), 0, 10), op(1, put("b"), rev(7), 20, 30)}},
		{"concurrent writes in either order", true, []porcupine.Operation{
			op(0, put("a"), rev(5), 0, 10), op(1, put("b"), rev(4), 0, 10), op(2, get, found("a", 5), 11, 20)}},

		// Deletes.
		{"delete then absent", true, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(0, del, Output{Deleted: true, Rev: 4}, 11, 20), op(1, get, Output{}, 21, 30)}},
		{"delete of an absent key says deleted", false, []porcupine.Operation{
			op(0, del, Output{Deleted: true, Rev: 4}, 0, 10)}},
		{"a write after a delete has a higher revision", false, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(0, del, Output{Deleted: true, Rev: 6}, 11, 20), op(0, put("b"), rev(5), 21, 30)}},

		// Compare-and-set.
		{"cas on the current revision", true, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, cas(3, "b"), rev(4), 11, 20), op(1, get, found("b", 4), 21, 30)}},
		{"cas on a revision overwritten fails with the new one", true, []porcupine.Operation{
			op(0, put("a"), rev(5), 0, 10), op(1, cas(5, "b"), rev(8), 11, 20), op(1, cas(5, "c"), mismatch(8), 21, 30)}},
		{"cas that should have failed", false, []porcupine.Operation{
			op(0, put("a"), rev(5), 0, 10), op(1, cas(3, "b"), rev(8), 11, 20)}},
		{"two cas win on one revision", false, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, cas(3, "b"), rev(4), 11, 20), op(2, cas(3, "c"), rev(5), 11, 20)}},
		{"cas mismatch names the current revision", true, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, cas(2, "b"), mismatch(3), 11, 20)}},
		{"cas mismatch names a revision the key is not at", false, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, cas(2, "b"), mismatch(4), 11, 20)}},
		{"cas mismatch on the expected revision", false, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, cas(3, "b"), mismatch(3), 11, 20)}},
		{"cas expecting absence on an absent key", true, []porcupine.Operation{
			op(0, cas(0, "a"), rev(2), 0, 10), op(1, get, found("a", 2), 11, 20)}},

		// Outcome known from elsewhere (the simulator), never returning.
		{"an operation that never returned takes effect later", true, []porcupine.Operation{
			op(0, put("a"), rev(5), 0, Never), op(1, get, Output{}, 10, 20), op(1, get, found("a", 5), 30, 40)}},
		{"an operation that never returned keeps its revision", false, []porcupine.Operation{
			op(0, put("a"), rev(5), 0, Never), op(1, get, found("a", 6), 30, 40)}},

		// Outcome unknown (the Docker tests).
		{"unknown write seen later", true, []porcupine.Operation{
			op(0, put("a"), unknown, 0, Never), op(1, get, found("a", 7), 11, 20), op(1, get, found("a", 7), 21, 30)}},
		{"unknown write never applied", true, []porcupine.Operation{
			op(0, put("a"), unknown, 0, Never), op(1, get, Output{}, 11, 20)}},
		{"unknown write never applied, writes go on", true, []porcupine.Operation{
			op(0, put("a"), unknown, 0, Never), op(1, put("b"), rev(5), 11, 20), op(1, get, found("b", 5), 21, 30)}},
		{"unknown write's revision learned, then contradicted", false, []porcupine.Operation{
			op(0, put("a"), unknown, 0, Never), op(1, get, found("a", 7), 11, 20), op(1, get, found("a", 8), 21, 30)}},
		{"unknown write's revision learned by a failed cas", true, []porcupine.Operation{
			op(0, put("a"), unknown, 0, Never), op(1, cas(1, "b"), mismatch(7), 11, 20), op(1, get, found("a", 7), 21, 30)}},
		{"unknown write's revision learned by a failed cas, then contradicted", false, []porcupine.Operation{
			op(0, put("a"), unknown, 0, Never), op(1, cas(1, "b"), mismatch(7), 11, 20), op(1, get, found("a", 8), 21, 30)}},
		{"unknown write cannot be undone", false, []porcupine.Operation{
			op(0, put("a"), unknown, 0, Never), op(1, get, found("a", 7), 11, 20), op(1, get, Output{}, 21, 30)}},
		{"unknown write's revision below an earlier write's", false, []porcupine.Operation{
			op(0, put("b"), rev(4), 0, 10), op(0, put("a"), unknown, 11, Never), op(1, get, found("a", 3), 21, 30)}},
		{"unknown cas applied", true, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, cas(3, "b"), unknown, 11, Never), op(2, get, found("b", 9), 21, 30)}},
		{"unknown cas on another revision cannot apply", false, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, cas(2, "b"), unknown, 11, Never), op(2, get, found("b", 9), 21, 30)}},
		{"unknown cas that failed has no effect", true, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, cas(2, "b"), unknown, 11, Never), op(2, get, found("a", 3), 21, 30)}},
		{"unknown cas on an unseen revision that did not match", true, []porcupine.Operation{
			op(0, put("a"), unknown, 0, Never), op(1, cas(9, "b"), unknown, 11, Never), op(2, get, found("a", 7), 21, 30)}},
		{"unknown delete applied", true, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, del, unknown, 11, Never), op(2, get, Output{}, 21, 30)}},

		// A session expired (thesis §6.3): refused, nothing written.
		{"a write refused for its session's expiry wrote nothing", true, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, put("b"), expired, 11, 20), op(2, get, found("a", 3), 21, 30)}},
		{"a write refused for its session's expiry cannot be seen", false, []porcupine.Operation{
			op(1, put("b"), expired, 0, 10), op(2, get, found("b", 3), 11, 20)}},
		{"a read cannot be refused for a session", false, []porcupine.Operation{
			op(1, get, expired, 0, 10)}},
		{"unknown delete cannot be undone", false, []porcupine.Operation{
			op(0, put("a"), rev(3), 0, 10), op(1, del, unknown, 11, Never), op(2, get, Output{}, 21, 30), op(2, get, found("a", 3), 31, 40)}},
	} {
		_, err := Check(tc.ops, 10*time.Second)
		if (err == nil) != tc.ok {
			t.Errorf("%s: linearizable = %t, want %t (%v)", tc.name, err == nil, tc.ok, err)
		}
		if err != nil && !errors.Is(err, ErrNotLinearizable) {
			t.Errorf("%s: error %v, want ErrNotLinearizable", tc.name, err)
		}
	}
}

// TestKeysApart: each key is checked on its own.
func TestKeysApart(t *testing.T) {
	ops := []porcupine.Operation{
		op(0, Input{Kind: Put, Key: "a", Value: "1"}, rev(3), 0, 10),
		op(0, Input{Kind: Put, Key: "b", Value: "2"}, rev(4), 11, 20),
		op(1, Input{Kind: Get, Key: "a"}, found("1", 3), 21, 30),
	}
	if res, err := Check(ops, 10*time.Second); res != porcupine.Ok || err != nil {
		t.Fatalf("Check = %v, %v; want Ok", res, err)
	}
}

// TestTimeoutFails: a check that runs out of time is a failure.
func TestTimeoutFails(t *testing.T) {
	err := resultErr(porcupine.Unknown, 60, 20*time.Second)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "20s") || !strings.Contains(err.Error(), "60 operations") {
		t.Fatalf("resultErr(Unknown) = %v", err)
	}
	if err := resultErr(porcupine.Ok, 60, 20*time.Second); err != nil {
		t.Fatalf("resultErr(Ok) = %v", err)
	}
}

// TestVisualize: a history that is not linearizable can be drawn, with
// the model's descriptions of its operations and states.
func TestVisualize(t *testing.T) {
	ops := []porcupine.Operation{
		op(0, put("a"), rev(3), 0, 10), op(0, put("b"), rev(4), 11, 20), op(1, get, found("a", 3), 21, 30)}
	res, info, err := CheckVerbose(ops, 10*time.Second)
	if res != porcupine.Illegal || !errors.Is(err, ErrNotLinearizable) {
		t.Fatalf("CheckVerbose = %v, %v; want Illegal", res, err)
	}
	path := filepath.Join(t.TempDir(), "history.html")
	if err := Visualize(info, path); err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"put(k=b)", "get(k)", `\"b\"@4`} {
		if !strings.Contains(string(html), want) {
			t.Errorf("the visualisation does not mention %s", want)
		}
	}
}

func txn(v string, keys []string, expects ...uint64) Input {
	return Input{Kind: Txn, Keys: keys, Expects: expects, Value: v}
}

func txnOK(r uint64) Output { return Output{Succeeded: true, Rev: r} }

func txnFailed(r uint64, reads ...Read) Output { return Output{Rev: r, Reads: reads} }

func getKey(k string) Input { return Input{Kind: Get, Key: k} }

func putKey(k, v string) Input { return Input{Kind: Put, Key: k, Value: v} }

// TestModel_Txn: a multi-key compare-and-set is atomic and exact.
func TestModel_Txn(t *testing.T) {
	ab := []string{"a", "b"}
	for _, tc := range []struct {
		name string
		ok   bool
		ops  []porcupine.Operation
	}{
		{"both keys written at one revision", true, []porcupine.Operation{
			op(0, putKey("a", "x"), rev(3), 0, 10),
			op(0, txn("t", ab, 3, 0), txnOK(5), 11, 20),
			op(1, getKey("a"), found("t", 5), 21, 30), op(1, getKey("b"), found("t", 5), 31, 40)}},
		{"half a transaction seen", false, []porcupine.Operation{
			op(0, txn("t", ab, 0, 0), txnOK(5), 0, 10),
			op(1, getKey("a"), found("t", 5), 11, 20), op(1, getKey("b"), Output{}, 21, 30)}},
		{"two winners of one race", false, []porcupine.Operation{
			op(0, txn("t1", ab, 0, 0), txnOK(5), 0, 10),
			op(1, txn("t2", ab, 0, 0), txnOK(6), 0, 10)}},
		{"the loser reads the winner", true, []porcupine.Operation{
			op(0, txn("t1", ab, 0, 0), txnOK(5), 0, 10),
			op(1, txn("t2", ab, 0, 0), txnFailed(6, Read{true, "t1", 5}, Read{true, "t1", 5}), 0, 10)}},
		{"a failure whose reads match every expectation", false, []porcupine.Operation{
			op(0, putKey("a", "x"), rev(3), 0, 10),
			op(1, txn("t", ab, 3, 0), txnFailed(6, Read{true, "x", 3}, Read{}), 11, 20)}},
		{"a success over a key not at its revision", false, []porcupine.Operation{
			op(0, putKey("b", "x"), rev(3), 0, 10),
			op(1, txn("t", ab, 0, 0), txnOK(6), 11, 20)}},
		{"a revision below a key's last write", false, []porcupine.Operation{
			op(0, putKey("b", "x"), rev(7), 0, 10),
			op(1, txn("t", ab, 0, 7), txnOK(6), 11, 20)}},
		{"transactions tie otherwise separate keys", true, []porcupine.Operation{
			op(0, putKey("a", "x"), rev(3), 0, 10), op(0, putKey("c", "y"), rev(4), 0, 10),
			op(1, txn("t", []string{"b", "c"}, 0, 4), txnOK(8), 11, 20),
			op(2, getKey("c"), found("t", 8), 21, 30)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Check(tc.ops, 10*time.Second)
			if tc.ok && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrNotLinearizable) {
				t.Fatalf("accepted a history that is not linearizable (%v)", err)
			}
		})
	}
}
