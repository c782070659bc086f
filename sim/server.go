package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/raftex/raftex/internal/kvmodel"
	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/raft"
)

// server is a node's client-facing side, as package server would run it:
// writes are proposed on the leader (a follower answers with a leader
// hint, and the client goes there), reads take a ReadIndex (thesis §6.4)
// on any node and are served once the node has applied through the read
// index.
type server struct {
	// proposals waits for the entry proposed at each index.
	proposals map[uint64]proposal
	// reads waits for the ReadState of each read request id.
	reads map[uint64]request
	// confirmed are reads whose ReadState arrived, waiting to be applied.
	confirmed []confirmedRead
}

// request is one attempt of a client operation, as it reaches a node.
type request struct {
	op      *clientOp
	attempt int
}

type proposal struct {
	term uint64
	req  request
}

type confirmedRead struct {
	index uint64
	req   request
}

func (sv *server) reset() {
	sv.proposals = map[uint64]proposal{}
	sv.reads = map[uint64]request{}
	sv.confirmed = nil
}

// serve handles a request that reached the node.
func (n *node) serve(r request) {
	op := r.op
	if op.Kind == kvmodel.Get {
		n.s.readSeq++
		id := n.s.readSeq
		if err := n.core.ReadIndex(binary.BigEndian.AppendUint64(nil, id)); err != nil {
			n.reply(r, reply{kind: replyRetry})
			return
		}
		n.reads[id] = r
		return
	}
	index, term, err := n.core.Propose(op.command().Encode())
	var nle *raft.NotLeaderError
	switch {
	case errors.As(err, &nle):
		n.reply(r, reply{kind: replyRedirect, leader: nle.Leader})
	case err != nil:
		n.reply(r, reply{kind: replyRetry})
	default:
		if old, ok := n.proposals[index]; ok {
			n.reply(old.req, reply{kind: replyRetry})
		}
		n.proposals[index] = proposal{term: term, req: r}
	}
}

// confirmReads notes the reads a quorum confirmed (rule 4 of Ready).
func (n *node) confirmReads(rss []raft.ReadState) {
	for _, rs := range rss {
		if len(rs.RequestCtx) != 8 {
			continue
		}
		id := binary.BigEndian.Uint64(rs.RequestCtx)
		if r, ok := n.reads[id]; ok {
			delete(n.reads, id)
			n.confirmed = append(n.confirmed, confirmedRead{index: rs.Index, req: r})
		}
	}
}

// serveReads answers the confirmed reads whose index is applied.
func (n *node) serveReads() {
	keep := n.confirmed[:0]
	for _, c := range n.confirmed {
		if c.index > n.applied {
			keep = append(keep, c)
			continue
		}
		v, rev, ok := n.kv.Get([]byte(c.req.op.Key))
		n.reply(c.req, reply{kind: replyOK, out: kvmodel.Output{Found: ok, Value: string(v), Rev: rev}})
	}
	n.confirmed = keep
}

// resolve answers the proposal waiting for e's index: with the state
// machine's result if e is the proposed entry (same term), else the
// proposal was overwritten by another leader's entry and its outcome is
// unknown here.
func (n *node) resolve(e raft.Entry, res any) {
	p, ok := n.proposals[e.Index]
	if !ok {
		return
	}
	delete(n.proposals, e.Index)
	if p.term != e.Term {
		n.reply(p.req, reply{kind: replyRetry})
		return
	}
	r, ok := res.(kv.Result)
	if !ok {
		n.s.fail("State machine", fmt.Sprintf("node %d: entry %d of a proposal applied with result %T", n.id, e.Index, res))
		return
	}
	out, err := writeOutput(r)
	if err != nil {
		n.s.fail("State machine", fmt.Sprintf("node %d: entry %d: %v", n.id, e.Index, err))
		return
	}
	n.s.chk.acked(e)
	n.reply(p.req, reply{kind: replyOK, out: out})
}

// dropCovered answers the proposals a restored snapshot covers: their
// outcome is unknown here (package node does the same).
func (n *node) dropCovered(index uint64) {
	var covered []uint64
	for i := range n.proposals {
		if i <= index {
			covered = append(covered, i)
		}
	}
	slices.Sort(covered) // replies leave in a deterministic order
	for _, i := range covered {
		n.reply(n.proposals[i].req, reply{kind: replyRetry})
		delete(n.proposals, i)
	}
}

// reply sends r back to the client after a network latency.
func (n *node) reply(r request, rep reply) {
	rep.from = n.id
	n.s.after(n.s.net.latency(), func() { r.op.c.receive(r, rep) })
}
