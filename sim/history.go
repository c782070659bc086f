package sim

import (
	"github.com/anishathalye/porcupine"

	"github.com/raftex/raftex/internal/kvmodel"
)

// operations turns the history into porcupine's form, for kvmodel.Model.
// An operation whose client gave up never returns: if the state machine
// applied it, it enters with the outcome it had and a return time of
// kvmodel.Never; if no node ever applied it, it had no effect and is left
// out (so are reads without an outcome, which have none). The simulator
// knows every outcome, so it never records kvmodel.Output.Unknown: the
// check stays as strict for those writes as for answered ones.
func operations(history []record, outcomes map[sessionKey]kvmodel.Output) []porcupine.Operation {
	ops := make([]porcupine.Operation, 0, len(history))
	for _, r := range history {
		op := porcupine.Operation{ClientId: r.client, Input: r.in, Call: int64(r.call), Output: r.out, Return: int64(r.ret)}
		if r.unknown {
			out, ok := outcomes[sessionKey{r.session, r.seq}]
			if r.in.Kind == kvmodel.Get || !ok {
				continue
			}
			op.Output, op.Return = out, kvmodel.Never
		}
		ops = append(ops, op)
	}
	return ops
}
