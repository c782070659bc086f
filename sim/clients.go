package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/raftex/raftex/auth"
	"github.com/raftex/raftex/internal/kvmodel"
	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/kvapi"
)

// client is a simulated client with an exactly-once session (thesis
// §6.3): one operation at a time on a small key space, sent to a node of
// its choice (the last one that answered a write, or any: every node takes
// every request), retried after a timeout or a failed attempt. Before its
// first write, and after the state
// machine reports its session expired, it registers a session. A write
// keeps its session sequence number across retries, so the state machine
// applies it at most once. Every operation's call and return (virtual)
// time and outcome go into the history that is checked for
// linearizability at the end; registrations do not.
type client struct {
	s    *sim
	id   int    // porcupine's client id
	name string // for traces and values
	// session is the registered session's client id (0: none).
	session uint64
	seq     uint64
	op      *clientOp
	// waiting are the operations waiting, innermost last, for the
	// registration or login in c.op.
	waiting []*clientOp
	// token is the client's login token ("": anonymous); it logs in
	// when a node answers 401 (auth runs only).
	token string
	// script is the administrator's: the auth changes it makes, in order,
	// instead of key-value operations.
	script []auth.Change
	admin  bool
	// hint is the node that answered the last write (0: none).
	hint uint64
	// revs is the last revision seen of each key: the CAS expectation.
	revs map[string]uint64
}

// clientOp is one logical operation and its attempts.
type clientOp struct {
	c *client
	kvmodel.Input
	// register: a session's registration (Input.Kind is Put, so that
	// nodes propose it), not an operation of the history.
	register bool
	// login: a login (Input.Kind is Get: nodes answer it after a read
	// barrier); change: an administrator's auth change (Kind Put). Neither
	// is an operation of the history.
	login  bool
	change *auth.Change
	// Lease: a read that accepts the leader's lease (consistency=lease,
	// thesis §6.4.1); it must be just as linearizable.
	Lease   bool
	session uint64
	seq     uint64
	call    time.Duration
	attempt int
	// since is the number of attempts made in earlier sessions: their
	// answers are ignored.
	since int
	// maybeApplied: an attempt in the current session timed out or failed
	// without an outcome, so it may have applied.
	maybeApplied bool
	done         bool
}

func (op *clientOp) String() string {
	switch {
	case op.register:
		return "register"
	case op.login:
		return "login"
	case op.change != nil:
		return fmt.Sprintf("auth change %d %s", op.change.Kind, op.change.Name)
	}
	return op.Input.String()
}

func (op *clientOp) command() kv.Command {
	switch {
	case op.register:
		return kv.Register()
	case op.change != nil:
		return kv.ChangeAuth(*op.change)
	}
	cmd := kv.Command{Op: kv.OpSet, Key: []byte(op.Key), Value: []byte(op.Value), ClientID: op.session, Seq: op.seq}
	if op.Kind == kvmodel.Txn {
		// A compare-and-set over several keys: put them all if each is at
		// its revision, else read them all.
		var t kvapi.Txn
		for i, k := range op.Keys {
			t.Compare = append(t.Compare, kvapi.RevisionIs(k, op.Expects[i]))
			t.Success = append(t.Success, kvapi.Put(k, []byte(op.Value)))
			t.Failure = append(t.Failure, kvapi.Get(k))
		}
		cmd = kv.Txn(t)
		cmd.ClientID, cmd.Seq = op.session, op.seq
		return cmd
	}
	switch op.Kind {
	case kvmodel.Delete:
		cmd.Op, cmd.Value = kv.OpDelete, nil
	case kvmodel.CAS:
		cmd.CAS, cmd.Revision = true, op.Expect
	}
	return cmd
}

// reply is a node's answer to one attempt.
type reply struct {
	kind replyKind
	from uint64
	out  kvmodel.Output
	// token answers a login; authDisabled: the login found auth off.
	token        string
	authDisabled bool
	// err is the state machine's answer to an auth change.
	err error
}

type replyKind uint8

const (
	// replyOK: the operation's outcome.
	replyOK replyKind = iota
	// replyRetry: the attempt failed without an outcome; try again.
	replyRetry
	// replyUnauthenticated: 401, nothing done; log in and try again.
	replyUnauthenticated
)

// record is one operation in the history.
type record struct {
	client int
	in     kvmodel.Input
	out    kvmodel.Output
	call   time.Duration
	ret    time.Duration
	// unknown: the client gave up without an outcome; the operation never
	// returns (it may still take effect, at any time after its call).
	unknown bool
	session uint64
	seq     uint64
}

// sessionKey names a write by its session.
type sessionKey struct {
	clientID uint64
	seq      uint64
}

// writeOutput turns the state machine's result into the model's output
// (for a registration: Rev is the client id).
func writeOutput(r kv.Result) (kvmodel.Output, error) {
	switch {
	case r.Err == nil && r.Txn != nil:
		out := kvmodel.Output{Rev: r.Revision, Succeeded: r.Txn.Succeeded}
		if !r.Txn.Succeeded {
			out.Reads = []kvmodel.Read{}
			for _, g := range r.Txn.Results {
				out.Reads = append(out.Reads, kvmodel.Read{Found: g.Found, Value: string(g.Value), Rev: g.Revision})
			}
		}
		return out, nil
	case r.Err == nil:
		return kvmodel.Output{Rev: r.Revision, Deleted: r.Deleted}, nil
	case errors.Is(r.Err, kvapi.ErrCASMismatch):
		return kvmodel.Output{Mismatch: true, Rev: r.Revision}, nil
	case errors.Is(r.Err, kv.ErrSessionExpired):
		return kvmodel.Output{SessionExpired: true}, nil
	}
	return kvmodel.Output{}, fmt.Errorf("unexpected result error: %w", r.Err)
}

// clients is everything about the simulated clients.
type clients struct {
	s   *sim
	rng *rand.Rand
	all []*client
	// history holds every operation that ended, in the order they did.
	history []record
	// outcomes is the result of each session write the state machine
	// applied, first application: what an operation whose client gave up
	// did, if it happened at all.
	outcomes map[sessionKey]kvmodel.Output
	// stopped: no new operations start (the faults are over).
	stopped bool
	// unknownWrites counts the writes given up on.
	unknownWrites int
}

func newClients(s *sim) *clients {
	cs := &clients{s: s, rng: rand.New(rand.NewPCG(s.opts.Seed, streamClients)), outcomes: map[sessionKey]kvmodel.Output{}}
	for i := range s.p.clients {
		c := &client{s: s, id: i, name: fmt.Sprintf("c%d", i+1), revs: map[string]uint64{}}
		cs.all = append(cs.all, c)
	}
	if s.p.auth {
		cs.all = append(cs.all, &client{s: s, id: len(cs.all), name: "root", revs: map[string]uint64{},
			admin: true, script: adminScript(s, cs.rng)})
	}
	return cs
}

func (cs *clients) start() {
	for _, c := range cs.all {
		c.next()
	}
}

// pending counts the operations still waiting for an outcome.
func (cs *clients) pending() int {
	n := 0
	for _, c := range cs.all {
		if c.op != nil {
			n++
		}
	}
	return n
}

// applied records the outcome of the first application of a session
// write (first reports whether no node applied e's index before).
func (cs *clients) applied(first bool, data []byte, res any) {
	if !first {
		return
	}
	cmd, err := kv.DecodeCommand(data)
	r, ok := res.(kv.Result)
	if err != nil || !ok || cmd.ClientID == 0 {
		return
	}
	if out, err := writeOutput(r); err == nil && !out.SessionExpired {
		cs.outcomes[sessionKey{cmd.ClientID, cmd.Seq}] = out
	}
}

func (c *client) rng() *rand.Rand { return c.s.clients.rng }

// next starts the next operation after a think time.
func (c *client) next() {
	think := time.Duration(c.rng().Int64N(int64(c.s.p.thinkMax)))
	c.s.after(think, c.begin)
}

func (c *client) begin() {
	if c.s.clients.stopped {
		return
	}
	if c.admin {
		c.nextChange()
		return
	}
	rng := c.rng()
	in := kvmodel.Input{Key: fmt.Sprintf("k%d", rng.IntN(c.s.p.keys))}
	switch x := rng.IntN(100); {
	case x < 30:
		in.Kind = kvmodel.Get
	case x < 60:
		in.Kind = kvmodel.Put
	case x < 70:
		in.Kind = kvmodel.Delete
	case x >= 90 && c.s.p.txns:
		in.Kind = kvmodel.Txn
		in.Keys = []string{in.Key}
		if other := fmt.Sprintf("k%d", rng.IntN(c.s.p.keys)); other != in.Key {
			in.Keys = append(in.Keys, other)
		}
		in.Key = ""
		for _, k := range in.Keys {
			expect := c.revs[k]
			if rng.IntN(5) == 0 {
				expect += uint64(rng.IntN(2)) // sometimes a stale guess
			}
			in.Expects = append(in.Expects, expect)
		}
	default:
		in.Kind = kvmodel.CAS
		in.Expect = c.revs[in.Key]
		if rng.IntN(5) == 0 {
			in.Expect += uint64(rng.IntN(2)) // sometimes a stale guess
		}
	}
	op := &clientOp{c: c, Input: in, call: c.s.now}
	c.s.stats.Ops++
	if in.Kind == kvmodel.Get {
		op.Lease = c.s.p.leaseRead && rng.IntN(2) == 0
		c.op = op
		c.attempt()
		return
	}
	c.seq++
	op.seq = c.seq
	op.Value = fmt.Sprintf("%s.%d", c.name, c.seq)
	c.inSession(op)
}

// inSession sends the write op in the client's session, registering one
// first if it has none (thesis §6.3).
func (c *client) inSession(op *clientOp) {
	if c.session == 0 {
		c.waiting = append(c.waiting, op)
		c.op = &clientOp{c: c, Input: kvmodel.Input{Kind: kvmodel.Put}, register: true, call: c.s.now}
		c.attempt()
		return
	}
	op.session, op.since, op.maybeApplied = c.session, op.attempt, false
	c.op = op
	c.attempt()
}

// attempt sends the operation to a node and arms its timeout.
func (c *client) attempt() {
	op := c.op
	op.attempt++
	a := op.attempt
	to := c.hint
	if to == 0 || c.rng().IntN(4) == 0 {
		to = uint64(1 + c.rng().IntN(len(c.s.nodes)))
	}
	c.s.tr.add(trClient, uint64(c.id), uint64(op.Kind), op.seq, uint64(a), to)
	if c.s.tr.on() {
		c.s.tr.printf(c.s.now, "%s %v attempt %d → n%d", c.name, op, a, to)
	}
	n := c.s.node(to)
	req := request{op: op, attempt: a, token: c.token}
	c.s.after(c.s.net.latency(), func() { n.inputFrom(fromClient, func() { n.serve(req) }) })
	c.s.after(c.s.p.clientTimeout, func() {
		if c.op == op && op.attempt == a {
			c.timeout()
		}
	})
}

// maxUnknownWrites caps the writes a run's clients give up on. Each one
// never returns, so it stays concurrent with everything after it, and the
// linearizability check's search grows with their number (exponentially,
// on one key); a few exercise the case, more would only slow the check.
const maxUnknownWrites = 3

// timeout retries the operation, or, sometimes while faults run, gives
// up on it: its outcome stays unknown.
func (c *client) timeout() {
	c.hint = 0
	c.op.maybeApplied = true
	cs := c.s.clients
	if !c.op.register && !c.op.login && c.op.change == nil && !cs.stopped && c.op.attempt >= 3 && c.rng().IntN(10) == 0 &&
		(c.op.Kind == kvmodel.Get || cs.unknownWrites < maxUnknownWrites) {
		if c.op.Kind != kvmodel.Get {
			cs.unknownWrites++
		}
		c.giveUp()
		return
	}
	c.attempt()
}

// receive handles a node's reply. An outcome is accepted from any attempt
// (a write's retries share its session sequence number, so all report the
// same outcome); a failure only from the current one.
func (c *client) receive(r request, rep reply) {
	op := r.op
	if op.done || c.op != op || r.attempt <= op.since {
		return
	}
	switch {
	case rep.kind == replyUnauthenticated && r.attempt == op.attempt && !op.login:
		c.s.stats.Refused++
		c.logIn(op)
	case rep.kind == replyOK && op.login:
		c.loggedIn(rep)
	case rep.kind == replyOK && op.change != nil:
		c.changed(rep)
	case rep.kind == replyOK && rep.out.SessionExpired:
		c.sessionExpired(op)
	case rep.kind == replyOK && op.register:
		c.registered(rep.out.Rev)
	case rep.kind == replyOK:
		if op.Kind != kvmodel.Get {
			c.hint = rep.from
		}
		c.complete(rep.out)
	case r.attempt != op.attempt:
	default:
		// No leader to ask, the attempt failed, or (a login) the user is
		// not there yet: back off, capped exponentially, with jitter.
		c.hint = 0
		op.maybeApplied = op.maybeApplied || rep.kind == replyRetry
		backoff := min(5*time.Millisecond<<min(op.attempt, 10), 200*time.Millisecond)
		backoff += time.Duration(c.rng().Int64N(int64(backoff)))
		a := op.attempt
		c.s.after(backoff, func() {
			if c.op == op && op.attempt == a {
				c.attempt()
			}
		})
	}
}

// registered starts the write that waited for the session id.
func (c *client) registered(id uint64) {
	c.op.done = true
	c.session = id
	c.resume()
}

// resume goes on with the operation that waited for the registration or
// login just done.
func (c *client) resume() {
	op := c.waiting[len(c.waiting)-1]
	c.waiting = c.waiting[:len(c.waiting)-1]
	switch {
	case op.Kind == kvmodel.Get, op.register, op.change != nil,
		op.session != 0 && op.session == c.session:
		c.op = op
		c.attempt()
	default:
		c.inSession(op) // a write whose session is gone
	}
}

// logIn logs in for op, which a node refused with 401 (nothing done; it
// goes again, in the same session, once logged in).
func (c *client) logIn(op *clientOp) {
	c.token = ""
	c.waiting = append(c.waiting, op)
	c.op = &clientOp{c: c, Input: kvmodel.Input{Kind: kvmodel.Get}, login: true, call: c.s.now}
	c.attempt()
}

func (c *client) loggedIn(rep reply) {
	c.op.done = true
	c.token = rep.token // "" when the node found auth off
	if c.token != "" {
		c.s.stats.Logins++
	}
	c.resume()
}

// simPassword is every simulated user's password, and simHash its bcrypt
// hash at the lowest cost, made once: bcrypt salts at random, and a run
// must not.
const (
	simPassword = "sim-password"
	simHash     = "$2a$04$SVNARDFXB3BAPZKtLTY9le0POdSERpjUneAAZp/z164S/JJ3QW4QG"
)

// sessionExpired handles a write refused because its session expired
// (thesis §6.3): it applied nowhere, unless an earlier attempt in the
// session did, before the expiry. Without such an attempt the write goes
// again in a new session; with one, its outcome is unknown.
func (c *client) sessionExpired(op *clientOp) {
	if c.session == op.session {
		c.session = 0
	}
	if op.maybeApplied {
		c.s.clients.unknownWrites++
		c.giveUp()
		return
	}
	c.inSession(op)
}

func (c *client) complete(out kvmodel.Output) {
	op := c.op
	op.done = true
	c.op = nil
	switch {
	case op.Kind == kvmodel.Txn && out.Succeeded:
		for _, k := range op.Keys {
			c.revs[k] = out.Rev
		}
	case op.Kind == kvmodel.Txn:
		for i, k := range op.Keys {
			if i < len(out.Reads) {
				c.revs[k] = out.Reads[i].Rev // 0 when absent
			}
		}
	case op.Kind == kvmodel.Delete:
		c.revs[op.Key] = 0
	default:
		c.revs[op.Key] = out.Rev // the key's revision now; a mismatch reports it too
	}
	c.record(op, out, false)
	c.next()
}

func (c *client) giveUp() {
	op := c.op
	op.done = true
	c.op = nil
	c.record(op, kvmodel.Output{}, true)
	c.next()
}

func (c *client) record(op *clientOp, out kvmodel.Output, unknown bool) {
	s := c.s
	s.tr.add(trClient, uint64(c.id), uint64(op.Kind), op.seq, out.Rev, boolBit(unknown))
	if s.tr.on() {
		if unknown {
			s.tr.printf(s.now, "%s %v gave up: outcome unknown", c.name, op.Input)
		} else {
			s.tr.printf(s.now, "%s %v → %v", c.name, op.Input, out)
		}
	}
	s.clients.history = append(s.clients.history, record{
		client: c.id, in: op.Input, out: out, call: op.call, ret: s.now,
		unknown: unknown, session: op.session, seq: op.seq,
	})
}

func boolBit(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
