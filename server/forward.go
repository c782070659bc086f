package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/node"
	"github.com/raftex/raftex/raft"
)

// forwardPath receives writes forwarded by followers: the body is an
// encoded kv.Command, proposed as it is.
const forwardPath = "/v1/internal/propose"

var errNoLeaderAddr = errors.New("server: the leader's client address is not known yet")

// Write replicates cmd through the leader and returns the state machine's
// result: proposed here when this node leads, forwarded to the leader
// otherwise, retried through elections until ctx ends. An error means the
// outcome is unknown (a retry with the same client session is safe).
func (s *Server) Write(ctx context.Context, cmd kv.Command) (kv.Result, error) {
	data := cmd.Encode()
	for attempt := 0; ; attempt++ {
		res, err := s.writeOnce(ctx, data)
		if err == nil || !retryable(err) {
			return res, err
		}
		if berr := backoff(ctx, attempt); berr != nil {
			return res, fmt.Errorf("%w (last error: %w)", berr, err)
		}
	}
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
	return s.forward(ctx, info.ClientAddr, data)
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

func (s *Server) forward(ctx context.Context, addr string, data []byte) (kv.Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+forwardPath, bytes.NewReader(data))
	if err != nil {
		return kv.Result{}, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// The leader may be down: a new election will tell.
		return kv.Result{}, fmt.Errorf("%w: forwarding to %s: %w", node.ErrLeadershipLost, addr, err)
	}
	defer resp.Body.Close()
	var fr forwardedResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&fr); err != nil {
		return kv.Result{}, fmt.Errorf("%w: bad answer from %s: %w", node.ErrLeadershipLost, addr, err)
	}
	switch {
	case fr.NotLeader:
		return kv.Result{}, raft.ErrNotLeader
	case resp.StatusCode == http.StatusServiceUnavailable:
		return kv.Result{}, fmt.Errorf("%w: %s", node.ErrLeadershipLost, fr.Error)
	case resp.StatusCode != http.StatusOK:
		return kv.Result{}, fmt.Errorf("server: forwarding to %s: %s: %s", addr, resp.Status, fr.Error)
	}
	return kv.Result{Revision: fr.Revision, Deleted: fr.Deleted, Err: decodeResultError(fr)}, nil
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
	case errors.Is(err, raft.ErrNotLeader):
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
		return fmt.Errorf("%w (%s)", resultErrors[fr.Code], fr.Error)
	}
	return fmt.Errorf("%w: %s", kv.ErrBadCommand, fr.Error)
}
