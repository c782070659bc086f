package sim

import (
	"strings"
	"testing"

	"github.com/raftex/raftex/internal/kvmodel"
)

// TestOperationsUnknownOutcome: an operation whose client gave up enters
// the history with the outcome the state machine gave it, never
// returning; one no node applied is left out. (The model's own tests are
// in internal/kvmodel.)
func TestOperationsUnknownOutcome(t *testing.T) {
	hist := []record{
		{client: 0, in: kvmodel.Input{Kind: kvmodel.Put, Key: "k", Value: "c1.1"}, call: 1, unknown: true, session: 5, seq: 1},
		{client: 0, in: kvmodel.Input{Kind: kvmodel.Put, Key: "k", Value: "c1.2"}, call: 2, unknown: true, session: 5, seq: 2},
		{client: 1, in: kvmodel.Input{Kind: kvmodel.Get, Key: "k"}, call: 3, unknown: true},
	}
	ops := operations(hist, map[sessionKey]kvmodel.Output{{5, 2}: {Rev: 9}})
	if len(ops) != 1 || ops[0].Return != kvmodel.Never || ops[0].Output.(kvmodel.Output).Rev != 9 ||
		!strings.Contains(ops[0].Input.(kvmodel.Input).Value, "c1.2") {
		t.Fatalf("operations = %+v", ops)
	}
}
