package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/node"
	"github.com/raftex/raftex/raft"
)

// forwardPath receives writes forwarded by followers: the body is an
// encoded kv.Command, proposed as it is.
const forwardPath = "/v1/internal/propose"

var (
	errNoLeaderAddr = errors.New("server: the leader's client address is not known yet")
	// errOutcomeUnknown marks a failed attempt that may still apply: it
	// reached the leader (or may have) and no answer came back.
	errOutcomeUnknown = errors.New("server: the write's outcome is unknown")
	// errLeaderChanged ends a forwarded attempt when this node learns of
	// another leader (or of none) while waiting for the old one's answer:
	// a hung leader never answers, and its successor can.
	errLeaderChanged = errors.New("server: the leader changed while forwarding")
)

// Write replicates cmd through the leader and returns the state machine's
// result: proposed here when this node leads, forwarded to the leader
// otherwise, retried through elections until ctx ends. An error means the
// outcome is unknown (a retry with the same client session is safe).
//
// Only a command with a client session (or a member's publication, which
// is idempotent) is retried after an attempt whose outcome is unknown: the
// session makes the retry exactly-once (thesis §6.3). A command without a
// session is retried only after attempts that certainly did not reach the
// log; after any other failure Write returns an error wrapping
// errOutcomeUnknown rather than risk applying it twice.
func (s *Server) Write(ctx context.Context, cmd kv.Command) (kv.Result, error) {
	data := cmd.Encode()
	idempotent := cmd.ClientID != "" || cmd.Op == kv.OpMember
	for attempt := 0; ; attempt++ {
		res, err := s.writeOnce(ctx, data)
		switch {
		case err == nil:
			return res, nil
		case notApplied(err):
		case idempotent && mayHaveApplied(err):
		case mayHaveApplied(err):
			return res, fmt.Errorf("%w (it may have been applied; send %s and %s to retry writes safely): %w",
				errOutcomeUnknown, HeaderClientID, HeaderSeq, err)
		default:
			return res, err
		}
		if berr := backoff(ctx, attempt); berr != nil {
			return res, fmt.Errorf("%w (last error: %w)", berr, err)
		}
	}
}

// notApplied reports failures after which the command certainly is in no
// log: another attempt cannot apply it twice.
func notApplied(err error) bool {
	return errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrNoLeader) ||
		errors.Is(err, raft.ErrProposalDropped) || errors.Is(err, errNoLeaderAddr)
}

// mayHaveApplied reports failures after which another attempt may succeed
// but the failed one may still apply: the leader lost its leadership with
// the command in flight, or a forwarded attempt got no answer.
func mayHaveApplied(err error) bool {
	return errors.Is(err, node.ErrLeadershipLost) || errors.Is(err, errOutcomeUnknown)
}

func (s *Server) writeOnce(ctx context.Context, data []byte) (kv.Result, error) {
	lead, _ := s.node.Leader()
	switch lead {
	case raft.None:
		return kv.Result{}, raft.ErrNoLeader
	case s.node.ID():
		return s.proposeLocal(ctx, data)
	}
	info, ok := s.kv.Member(lead)
	if !ok || info.ClientAddr == "" {
		return kv.Result{}, errNoLeaderAddr
	}
	return s.forward(ctx, lead, info.ClientAddr, data)
}

func (s *Server) proposeLocal(ctx context.Context, data []byte) (kv.Result, error) {
	v, err := s.node.Propose(ctx, data)
	if err != nil {
		return kv.Result{}, err
	}
	res, ok := v.(kv.Result)
	if !ok {
		return kv.Result{}, fmt.Errorf("server: state machine returned %T", v)
	}
	return res, nil
}

// forwardedResult is the wire form of a kv.Result between nodes.
type forwardedResult struct {
	Revision uint64 `json:"revision"`
	Deleted  bool   `json:"deleted"`
	Error    string `json:"error,omitempty"`
	Code     string `json:"code,omitempty"`
	// NotLeader is set when the receiver is not the leader (any more).
	NotLeader bool `json:"not_leader,omitempty"`
}

// forward sends data to the leader lead at addr and returns its result.
// The attempt ends early when this node learns of a leader change.
func (s *Server) forward(ctx context.Context, lead uint64, addr string, data []byte) (kv.Result, error) {
	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go s.cancelOnLeaderChange(fctx, cancel, lead)
	req, err := http.NewRequestWithContext(fctx, http.MethodPost, "http://"+addr+forwardPath, bytes.NewReader(data))
	if err != nil {
		return kv.Result{}, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return kv.Result{}, fmt.Errorf("%w: forwarding to %s: %w", errOutcomeUnknown, addr, ctx.Err())
		}
		if cause := context.Cause(fctx); cause != nil {
			err = cause
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			// Nothing was sent: the leader is down, an election will tell.
			return kv.Result{}, fmt.Errorf("%w: forwarding to %s: %w", raft.ErrNoLeader, addr, err)
		}
		return kv.Result{}, fmt.Errorf("%w: forwarding to %s: %w", errOutcomeUnknown, addr, err)
	}
	defer resp.Body.Close()
	var fr forwardedResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&fr); err != nil {
		return kv.Result{}, fmt.Errorf("%w: bad answer from %s (%s): %w", errOutcomeUnknown, addr, resp.Status, err)
	}
	switch {
	case fr.NotLeader:
		return kv.Result{}, fmt.Errorf("%w: %s", raft.ErrNotLeader, fr.Error)
	case resp.StatusCode == http.StatusServiceUnavailable:
		return kv.Result{}, fmt.Errorf("%w: the leader %s answered: %s", errOutcomeUnknown, addr, fr.Error)
	case resp.StatusCode != http.StatusOK:
		// A request the leader refuses (a bad command) will be refused
		// again: say why, no retry.
		return kv.Result{}, fmt.Errorf("server: forwarding to %s: %s: %s", addr, resp.Status, fr.Error)
	}
	return kv.Result{Revision: fr.Revision, Deleted: fr.Deleted, Err: decodeResultError(fr)}, nil
}

// cancelOnLeaderChange cancels a forwarded attempt once this node's view
// of the leader is no longer lead, until ctx ends.
func (s *Server) cancelOnLeaderChange(ctx context.Context, cancel context.CancelCauseFunc, lead uint64) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if now, _ := s.node.Leader(); now != lead {
				cancel(fmt.Errorf("%w: %s to %s", errLeaderChanged, node.FormatID(lead), orNone(now)))
				return
			}
		}
	}
}

func orNone(id uint64) string {
	if id == raft.None {
		return "none"
	}
	return node.FormatID(id)
}

// handleForwarded proposes a follower's write here, once: the follower
// does the retrying.
func (s *Server) handleForwarded(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, "POST")
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.kv.MaxValueSize())+64<<10))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	if _, err := kv.DecodeCommand(data); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	res, err := s.proposeLocal(ctx, data)
	switch {
	case notApplied(err):
		// Certainly not in the log: the follower may try again anywhere.
		writeJSON(w, http.StatusOK, forwardedResult{NotLeader: true, Error: err.Error()})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, forwardedResult{Error: err.Error()})
	default:
		fr := forwardedResult{Revision: res.Revision, Deleted: res.Deleted}
		if res.Err != nil {
			fr.Error, fr.Code = res.Err.Error(), resultErrorCode(res.Err)
		}
		writeJSON(w, http.StatusOK, fr)
	}
}

var resultErrors = map[string]error{
	"cas_mismatch":  kv.ErrCASMismatch,
	"key_empty":     kv.ErrKeyEmpty,
	"key_too_long":  kv.ErrKeyTooLong,
	"value_too_big": kv.ErrValueTooBig,
	"session_stale": kv.ErrSessionStale,
	"bad_command":   kv.ErrBadCommand,
}

func resultErrorCode(err error) string {
	for code, target := range resultErrors {
		if errors.Is(err, target) {
			return code
		}
	}
	return "bad_command"
}

func decodeResultError(fr forwardedResult) error {
	switch {
	case fr.Code == "":
		return nil
	case fr.Code == "cas_mismatch":
		return &kv.CASMismatchError{Revision: fr.Revision}
	case resultErrors[fr.Code] != nil:
		// The leader's message begins with the sentinel's: keep its detail.
		target := resultErrors[fr.Code]
		return fmt.Errorf("%w%s", target, strings.TrimPrefix(fr.Error, target.Error()))
	}
	return fmt.Errorf("%w: %s", kv.ErrBadCommand, fr.Error)
}
