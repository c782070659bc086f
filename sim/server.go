package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/raftex/raftex/auth"
	"github.com/raftex/raftex/internal/kvmodel"
	"github.com/raftex/raftex/kv"
	nodepkg "github.com/raftex/raftex/node"
	"github.com/raftex/raftex/server"
)

// request is one attempt of a client operation, as it reaches a node.
type request struct {
	op      *clientOp
	attempt int
	// deadline: the client gives up on this attempt then (its HTTP
	// request would be canceled), so the server stops retrying.
	deadline time.Duration
	// writes follows package server's policy over the write's attempts.
	writes *server.WriteAttempts
	// token is the client's login token ("": none); user is who the node
	// found it names (server.Authenticate).
	token, user string
}

// serve handles a request that reached the node the way package server
// does, with its policy: a write is proposed through the node (a follower
// hands it to the leader, §8) and retried as server.WriteAttempts says; a
// read waits for a read barrier (ReadIndex, or the lease when the client
// asked for it), retried as server.ReadRetry says, then reads the state
// machine. Proposals and reads wait in package node's own registry.
func (n *node) serve(r request) {
	r.deadline = n.s.now + n.s.p.clientTimeout
	r.writes = &server.WriteAttempts{}
	n.authenticate(r, false)
}

// authenticate finds who sent r as package server's middleware does, with
// its policy (server.Authenticate): a node behind the token's auth state
// catches up with a read barrier and looks again; a request that must
// authenticate and does not is answered 401. A login is open to anyone.
func (n *node) authenticate(r request, caughtUp bool) {
	if r.op.login {
		n.serveAttempt(r, 0)
		return
	}
	user, err := server.Authenticate(n.kv.Auth(), server.Credentials{Token: r.token}, n.wall())
	if errors.Is(err, auth.ErrBehind) && !caughtUp {
		inc := n.inc
		n.m.Read([]*nodepkg.ReadRequest{{Done: func(err error) {
			switch {
			case n.inc != inc || n.s.failed():
			case err != nil:
				n.reply(r, reply{kind: replyRetry})
			default:
				n.authenticate(r, true)
			}
		}}})
		return
	}
	if err != nil {
		n.reply(r, reply{kind: replyUnauthenticated})
		return
	}
	r.user = user
	n.serveAttempt(r, 0)
}

func (n *node) serveAttempt(r request, attempt int) {
	inc := n.inc
	live := func() bool { return n.inc == inc && !n.s.failed() }
	op := r.op
	if op.Kind == kvmodel.Get {
		n.m.Read([]*nodepkg.ReadRequest{{Lease: op.Lease, Done: func(err error) {
			if !live() {
				return
			}
			switch {
			case err == nil && op.login:
				n.login(r)
				return
			case err == nil:
				// Checked on the state the read sees, as package server does.
				if err := n.kv.Auth().Allow(r.user, auth.NeedRead, []byte(op.Key)); err != nil {
					n.reply(r, reply{kind: replyUnauthenticated})
					return
				}
				v, rev, ok := n.kv.Get([]byte(op.Key))
				n.reply(r, reply{kind: replyOK, out: kvmodel.Output{Found: ok, Value: string(v), Rev: rev}})
				return
			}
			n.retry(r, attempt, server.ReadRetry(err))
		}}})
		return
	}
	cmd := op.command()
	cmd.ByClient, cmd.User = true, r.user
	n.m.Propose(&nodepkg.Proposal{Data: cmd.Encode(), Done: func(v any, err error) {
		if !live() {
			return
		}
		var res kv.Result
		if err == nil {
			var ok bool
			if res, ok = v.(kv.Result); !ok {
				n.s.fail("State machine", fmt.Sprintf("node %d: entry %d of a proposal applied with result %T", n.id, n.lastApplied.Index, v))
				return
			}
		}
		again, res, err := r.writes.After(res, err)
		switch {
		case again:
			n.retry(r, attempt, true)
		case err != nil:
			n.retry(r, attempt, false)
		default:
			n.answerWrite(r, res)
		}
	}})
}

// answerWrite replies with the state machine's result for the entry just
// applied (the applier resolves a proposal right after applying it).
func (n *node) answerWrite(r request, kr kv.Result) {
	if errors.Is(kr.Err, auth.ErrUnauthenticated) {
		// Refused at apply, nothing applied: the client logs in.
		n.reply(r, reply{kind: replyUnauthenticated})
		return
	}
	n.s.chk.acked(n.lastApplied)
	if r.op.change != nil {
		n.reply(r, reply{kind: replyOK, err: kr.Err})
		return
	}
	out, err := writeOutput(kr)
	if err != nil {
		n.s.fail("State machine", fmt.Sprintf("node %d: entry %d: %v", n.id, n.lastApplied.Index, err))
		return
	}
	n.reply(r, reply{kind: replyOK, out: out})
}

// login answers a login after its read barrier, as package server's
// POST /v1/auth/token does.
func (n *node) login(r request) {
	tok, _, err := n.kv.Auth().Login(r.op.c.name, simPassword, n.wall(), n.s.p.tokenTTL)
	switch {
	case errors.Is(err, auth.ErrAuthDisabled):
		n.reply(r, reply{kind: replyOK, authDisabled: true})
	case err != nil:
		n.reply(r, reply{kind: replyUnauthenticated})
	default:
		n.reply(r, reply{kind: replyOK, token: tok})
	}
}

// retry tries the request again on this node after server.Backoff, as
// package server's loop does, unless the policy said no or the client's
// deadline would pass: then the client is told to retry on its own.
func (n *node) retry(r request, attempt int, again bool) {
	wait := server.Backoff(attempt)
	if !again || n.s.now+wait >= r.deadline {
		n.reply(r, reply{kind: replyRetry})
		return
	}
	n.s.later(wait, n.id, func(n *node) { n.serveAttempt(r, attempt+1) })
}

// reply sends r back to the client after a network latency.
func (n *node) reply(r request, rep reply) {
	rep.from = n.id
	n.s.after(n.s.net.latency(), func() { r.op.c.receive(r, rep) })
}
