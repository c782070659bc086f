package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/raftex/raftex/auth"
	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/kvapi"
)

const (
	kvPrefix = "/v1/kv/"
	// sessionsPath registers a client session (thesis §6.3, RegisterClient).
	sessionsPath = "/v1/sessions"
)

// Request headers of a client session (thesis §6.3, exactly-once writes).
const (
	HeaderClientID = "Raftex-Client-Id"
	HeaderSeq      = "Raftex-Request-Seq"
	HeaderRevision = "Raftex-Revision"
)

// handleRegister registers a client session: POST /v1/sessions answers
// {"client_id": N}, the id to send in Raftex-Client-Id.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, "POST")
		return
	}
	cmd := kv.Register()
	cmd.ByClient, cmd.User = true, requestUser(r)
	if res, ok := s.execute(w, r, cmd); ok {
		writeJSON(w, http.StatusOK, map[string]uint64{"client_id": res.Revision})
	}
}

func (s *Server) handleKV(w http.ResponseWriter, r *http.Request) {
	key, err := url.PathUnescape(r.URL.EscapedPath()[len(kvPrefix):])
	if err != nil {
		writeError(w, http.StatusBadRequest, "key is not validly escaped: "+err.Error())
		return
	}
	if err := kv.ValidateKey([]byte(key)); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.handleGet(w, r, []byte(key))
	case http.MethodPut:
		s.handlePut(w, r, []byte(key))
	case http.MethodDelete:
		s.handleDelete(w, r, []byte(key))
	default:
		methodNotAllowed(w, "GET, PUT, DELETE")
	}
}

// readBarrier waits until a read of the consistency the request asks for
// (?consistency=, linearizable by default) is safe on this node, or
// answers the error and returns false.
func (s *Server) readBarrier(w http.ResponseWriter, r *http.Request) bool {
	consistency := kvapi.Linearizable
	if v, ok := r.URL.Query()["consistency"]; ok {
		consistency = kvapi.Consistency(v[0]) // given, even empty: it must be one of the three
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	err := s.ReadAt(ctx, consistency)
	var bad badConsistency
	switch {
	case errors.As(err, &bad):
		writeError(w, http.StatusBadRequest, err.Error())
		return false
	case err != nil:
		s.writeUnavailable(w, err)
		return false
	}
	return true
}

type badConsistency string

func (b badConsistency) Error() string {
	return fmt.Sprintf("consistency %q is not linearizable, lease or stale", string(b))
}

// ReadAt returns once a read of consistency c is safe on this node:
// linearizable after a read index (thesis §6.4), lease under the
// leader's lease (§6.4.1), stale at once; it waits through elections
// until ctx ends.
func (s *Server) ReadAt(ctx context.Context, c kvapi.Consistency) error {
	switch c {
	case kvapi.Linearizable:
		return s.waitRead(ctx, s.node.Read)
	case kvapi.Lease:
		return s.waitRead(ctx, s.node.ReadLease)
	case kvapi.Stale:
		return nil // served from this node's state, which may be behind
	}
	return badConsistency(c)
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request, key []byte) {
	if !s.readBarrier(w, r) {
		return
	}
	// Checked against the state the read sees: after the barrier, every
	// grant and revocation committed before the read began.
	if err := s.kv.Auth().Allow(requestUser(r), auth.NeedRead, key); err != nil {
		writeAuthError(w, err)
		return
	}
	value, rev, ok := s.kv.Get(key)
	if !ok {
		writeError(w, http.StatusNotFound, "key not found")
		return
	}
	w.Header().Set(HeaderRevision, strconv.FormatUint(rev, 10))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(value)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(value)
	}
}

// Read returns once a linearizable read of the store is safe on this node
// (thesis §6.4), waiting through elections until ctx ends.
func (s *Server) Read(ctx context.Context) error { return s.waitRead(ctx, s.node.Read) }

// waitRead retries a read barrier through elections until ctx ends.
func (s *Server) waitRead(ctx context.Context, read func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := read(ctx)
		if err == nil || !ReadRetry(err) {
			return err
		}
		if berr := sleep(ctx, Backoff(attempt)); berr != nil {
			return fmt.Errorf("%w (last error: %w)", berr, err)
		}
	}
}

func (s *Server) handlePut(w http.ResponseWriter, r *http.Request, key []byte) {
	cmd, ok := s.writeCommand(w, r, kv.OpSet, key)
	if !ok {
		return
	}
	limit := int64(s.kv.MaxValueSize())
	value, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("value larger than %d bytes", limit))
		return
	} else if err != nil {
		writeError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	cmd.Value = value
	res, ok := s.execute(w, r, cmd)
	if ok {
		writeRevision(w, res.Revision)
	}
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, key []byte) {
	cmd, ok := s.writeCommand(w, r, kv.OpDelete, key)
	if !ok {
		return
	}
	res, ok := s.execute(w, r, cmd)
	if ok {
		writeDeleted(w, res.Deleted, res.Revision)
	}
}

// writeCommand parses what PUT and DELETE share: ?cas= and the session
// headers.
func (s *Server) writeCommand(w http.ResponseWriter, r *http.Request, op kv.Op, key []byte) (kv.Command, bool) {
	cmd := kv.Command{Op: op, Key: key, ByClient: true, User: requestUser(r)}
	if v, ok := r.URL.Query()["cas"]; ok {
		rev, err := strconv.ParseUint(v[0], 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("cas %q is not a revision number", v[0]))
			return cmd, false
		}
		cmd.CAS, cmd.Revision = true, rev
	}
	return cmd, inSession(w, r, &cmd)
}

// inSession puts cmd in the session the request's headers name, if any,
// or answers 400 for malformed ones.
func inSession(w http.ResponseWriter, r *http.Request, cmd *kv.Command) bool {
	if id := r.Header.Get(HeaderClientID); id != "" {
		clientID, err := strconv.ParseUint(id, 10, 64)
		if err != nil || clientID == 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s %.40q is not a client id: register a session with POST %s", HeaderClientID, id, sessionsPath))
			return false
		}
		seq, err := strconv.ParseUint(r.Header.Get(HeaderSeq), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s must accompany %s as a number", HeaderSeq, HeaderClientID))
			return false
		}
		cmd.ClientID, cmd.Seq = clientID, seq
	} else if r.Header.Get(HeaderSeq) != "" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s needs %s", HeaderSeq, HeaderClientID))
		return false
	}
	return true
}

// resultCodes name the state machine's errors in error bodies ("code"),
// and their statuses.
var resultCodes = []struct {
	err    error
	code   string
	status int
}{
	{kvapi.ErrCASMismatch, "cas_mismatch", http.StatusConflict},
	{kv.ErrKeyEmpty, "key_empty", http.StatusBadRequest},
	{kv.ErrKeyTooLong, "key_too_long", http.StatusBadRequest},
	{kv.ErrValueTooBig, "value_too_big", http.StatusRequestEntityTooLarge},
	{kv.ErrSessionStale, "session_stale", http.StatusBadRequest},
	// The client registers anew and retries.
	{kv.ErrSessionExpired, "session_expired", http.StatusPreconditionFailed},
	{kv.ErrSeqReused, "seq_reused", http.StatusBadRequest},
	{kv.ErrTxnTooBig, "txn_too_big", http.StatusBadRequest},
	{auth.ErrUnauthenticated, "unauthenticated", http.StatusUnauthorized},
	{auth.ErrPermissionDenied, "permission_denied", http.StatusForbidden},
	{auth.ErrUserExists, "user_exists", http.StatusConflict},
	{auth.ErrRoleExists, "role_exists", http.StatusConflict},
	{auth.ErrNoUser, "no_user", http.StatusNotFound},
	{auth.ErrNoRole, "no_role", http.StatusNotFound},
	{auth.ErrRootRole, "root_role", http.StatusBadRequest},
	{auth.ErrNoRootUser, "no_root_user", http.StatusConflict},
	{auth.ErrLastRoot, "last_root", http.StatusConflict},
	{auth.ErrBadChange, "bad_change", http.StatusBadRequest},
}

func resultError(err error) (code string, status int) {
	for _, rc := range resultCodes {
		if errors.Is(err, rc.err) {
			return rc.code, rc.status
		}
	}
	return "bad_command", http.StatusBadRequest
}

// execute replicates cmd and writes the error response if it failed; ok
// reports success.
func (s *Server) execute(w http.ResponseWriter, r *http.Request, cmd kv.Command) (kv.Result, bool) {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	res, err := s.Write(ctx, cmd)
	if err != nil {
		s.writeUnavailable(w, err)
		return res, false
	}
	if res.Err == nil {
		return res, true
	}
	// The state machine refused it: nothing applied.
	code, status := resultError(res.Err)
	body := errorBody{Error: res.Err.Error(), Code: code}
	var mismatch *kvapi.CASMismatchError
	if errors.As(res.Err, &mismatch) {
		body.Revision = &mismatch.Revision
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="raftex"`)
	}
	writeJSON(w, status, body)
	return res, false
}

// writeRevision answers a put, {"revision":N}, as writeJSON would but
// encoded by hand: the hot path of every write, without reflection or a
// map.
func writeRevision(w http.ResponseWriter, rev uint64) {
	b := make([]byte, 0, 40)
	b = append(b, `{"revision":`...)
	b = strconv.AppendUint(b, rev, 10)
	writeJSONBytes(w, append(b, "}\n"...))
}

// writeDeleted answers a delete, {"deleted":B,"revision":N}, as
// writeRevision does.
func writeDeleted(w http.ResponseWriter, deleted bool, rev uint64) {
	b := make([]byte, 0, 48)
	b = append(b, `{"deleted":`...)
	b = strconv.AppendBool(b, deleted)
	b = append(b, `,"revision":`...)
	b = strconv.AppendUint(b, rev, 10)
	writeJSONBytes(w, append(b, "}\n"...))
}

// writeJSONBytes answers 200 with a body already encoded as JSON.
func writeJSONBytes(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
