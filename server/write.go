package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/node"
	"github.com/raftex/raftex/raft"
)

// errOutcomeUnknown marks a write that failed in a way that leaves its
// outcome unknown: it may still be applied.
var errOutcomeUnknown = errors.New("server: the write's outcome is unknown")

// Write replicates cmd and returns the state machine's result: proposed
// through this node, which hands it to the leader over the peer
// connection when it does not lead (§8), and retried through elections
// and failed attempts until ctx ends (WriteAttempts decides). An error means
// the outcome is unknown.
//
// Every write is retried after an attempt whose outcome is unknown, and
// still applies at most once (thesis §6.3): a write without a client
// session (ClientID 0) — a set, a delete, a prefix delete, a transaction,
// an auth change — gets a sequence number in this server's own session, registered on first use and again when it expires; a member's
// publication and a session's registration are safe to apply twice. When
// a write's session turns out expired after such an attempt, whether that
// attempt applied is unknown and Write returns an error wrapping
// errOutcomeUnknown; a result with kv.ErrSessionExpired means no attempt
// applied.
func (s *Server) Write(ctx context.Context, cmd kv.Command) (kv.Result, error) {
	if cmd.ClientID != 0 || !ownSession[cmd.Op] {
		return s.replicate(ctx, cmd)
	}
	for {
		t, err := s.own.Acquire(ctx)
		if err != nil {
			return kv.Result{}, fmt.Errorf("server: no session for the write: %w", err)
		}
		cmd.ClientID, cmd.Seq = t.ClientID, t.Seq
		res, err := s.replicate(ctx, cmd)
		s.own.Release(t)
		if err != nil || !errors.Is(res.Err, kv.ErrSessionExpired) {
			return res, err
		}
		// Certainly not applied: register anew and try again.
		s.own.Expired(t)
		s.log.Info("the server's own session expired; registering a new one", "client_id", t.ClientID)
	}
}

// ownSession are the ops Write puts in the server's own session when the
// client sent none: those that must not apply twice.
var ownSession = map[kv.Op]bool{kv.OpSet: true, kv.OpDelete: true, kv.OpAuth: true, kv.OpDeletePrefix: true, kv.OpTxn: true}

// registerOwn registers this server's own session (see Write).
func (s *Server) registerOwn(ctx context.Context) (uint64, error) {
	res, err := s.replicate(ctx, kv.Register())
	if err != nil {
		return 0, err
	}
	return res.Revision, res.Err
}

// replicate is Write's retry loop for a command that is safe to retry: it
// has a session, or applying it twice does no harm.
func (s *Server) replicate(ctx context.Context, cmd kv.Command) (kv.Result, error) {
	data := cmd.Encode()
	return retryWrite(ctx, func(ctx context.Context) (kv.Result, error) {
		v, err := s.node.Propose(ctx, data)
		if err != nil {
			return kv.Result{}, err
		}
		res, ok := v.(kv.Result)
		if !ok {
			return kv.Result{}, fmt.Errorf("server: state machine returned %T", v)
		}
		return res, nil
	})
}

// retryWrite calls try until WriteAttempts says the write is done, or ctx
// ends.
func retryWrite(ctx context.Context, try func(context.Context) (kv.Result, error)) (kv.Result, error) {
	var w WriteAttempts
	for attempt := 0; ; attempt++ {
		res, err := try(ctx)
		again, res, ferr := w.After(res, err)
		if !again {
			return res, ferr
		}
		if berr := sleep(ctx, Backoff(attempt)); berr != nil {
			return kv.Result{}, fmt.Errorf("%w (last error: %w)", berr, err)
		}
	}
}

// WriteAttempts is the request layer's policy over one write's attempts
// (thesis §6.3), without goroutines or clocks: package server's loop and
// the simulator both follow it. Every write the server proposes carries a
// client session (the client's, or the server's own) or is safe to apply
// twice, so an attempt that certainly reached no log and one that may
// have applied are both tried again; any other failure ends the write.
type WriteAttempts struct {
	// maybeApplied: an earlier attempt may have applied.
	maybeApplied bool
}

// After takes the outcome of an attempt and says what to do: try again
// (after Backoff), or answer with the result and error it returns. A result with
// kv.ErrSessionExpired after an attempt that may have applied becomes an
// error wrapping errOutcomeUnknown: whether that attempt applied is
// unknown (see Write).
func (w *WriteAttempts) After(res kv.Result, err error) (again bool, _ kv.Result, _ error) {
	switch {
	case err == nil && w.maybeApplied && errors.Is(res.Err, kv.ErrSessionExpired):
		return false, kv.Result{}, fmt.Errorf("%w: its session expired while it was retried after an attempt that may have applied (%w)",
			errOutcomeUnknown, res.Err)
	case err == nil:
		return false, res, nil
	case notApplied(err):
		return true, kv.Result{}, err
	case mayHaveApplied(err):
		w.maybeApplied = true
		return true, kv.Result{}, err
	}
	return false, kv.Result{}, err
}

// notApplied reports failures after which the command certainly is in no
// log: another attempt cannot apply it twice.
func notApplied(err error) bool {
	return errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrNoLeader) ||
		errors.Is(err, raft.ErrProposalDropped) || errors.Is(err, node.ErrNotCommitted)
}

// mayHaveApplied reports failures after which another attempt may succeed
// but the failed one may still apply: leadership changed with the command
// in flight, or the leader's answer was lost.
func mayHaveApplied(err error) bool {
	return errors.Is(err, node.ErrLeadershipLost) || errors.Is(err, node.ErrForwardLost)
}

// ReadRetry is the request layer's policy after a failed read barrier:
// it reports whether another attempt may succeed (no leader yet, a leader
// change, a lost or dropped read).
func ReadRetry(err error) bool {
	return errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrNoLeader) ||
		errors.Is(err, raft.ErrReadDropped) ||
		errors.Is(err, node.ErrLeadershipLost) || errors.Is(err, node.ErrReadLost)
}

// Backoff is how long to wait before attempt+1: 10 ms more per attempt,
// up to 100 ms.
func Backoff(attempt int) time.Duration {
	return time.Duration(min(attempt+1, 10)) * 10 * time.Millisecond
}

// sleep waits d, or returns ctx's error.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
