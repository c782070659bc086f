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
// until ctx ends (WriteRetry decides). An error means the outcome is
// unknown (a retry with the same client session is safe).
func (s *Server) Write(ctx context.Context, cmd kv.Command) (kv.Result, error) {
	data := cmd.Encode()
	idempotent := cmd.ClientID != "" || cmd.Op == kv.OpMember
	for attempt := 0; ; attempt++ {
		v, err := s.node.Propose(ctx, data)
		if err == nil {
			res, ok := v.(kv.Result)
			if !ok {
				return kv.Result{}, fmt.Errorf("server: state machine returned %T", v)
			}
			return res, nil
		}
		if err := WriteRetry(err, idempotent); err != nil {
			return kv.Result{}, err
		}
		if berr := sleep(ctx, Backoff(attempt)); berr != nil {
			return kv.Result{}, fmt.Errorf("%w (last error: %w)", berr, err)
		}
	}
}

// WriteRetry is the request layer's policy after a failed write attempt
// (thesis §6.3): nil to try again, or the error to answer with. A write
// that certainly reached no log is tried again; one that may have applied
// is tried again only when it is idempotent (a client session, which the
// state machine uses to apply it at most once, or a member's publication);
// any other failure ends the write. The runtime and the simulator share
// it.
func WriteRetry(err error, idempotent bool) error {
	switch {
	case notApplied(err):
		return nil
	case mayHaveApplied(err) && idempotent:
		return nil
	case mayHaveApplied(err):
		return fmt.Errorf("%w (it may have been applied; send %s and %s to retry writes safely): %w",
			errOutcomeUnknown, HeaderClientID, HeaderSeq, err)
	}
	return err
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
