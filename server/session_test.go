package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/node"
	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage"
	"github.com/raftex/raftex/storage/vfs"
	"github.com/raftex/raftex/transport/mem"
)

// These tests run a one-node cluster over an in-memory disk and network
// inside a synctest bubble: every wait is virtual time.

// oneNode starts a single-node cluster whose store forgets sessions after
// ttl entries, and a Server over it, elected and ready.
func oneNode(t *testing.T, ttl uint64) (*Server, *kv.Store) {
	t.Helper()
	return oneNodeWith(t, kv.Config{SessionTTL: ttl}, Config{})
}

// oneNodeWith is oneNode with the store's and the server's configuration
// (Node, KV and Logger are filled in).
func oneNodeWith(t *testing.T, kcfg kv.Config, scfg Config) (*Server, *kv.Store) {
	t.Helper()
	store, err := storage.Open(vfs.NewMem(), "/n1", storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig(1)
	cfg.InitialMembership = raft.NewMembership(1)
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	st := kv.New(kcfg)
	n, err := node.Start(cfg, st, store, mem.NewNetwork(1).Transport(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop() })
	scfg.Node, scfg.KV, scfg.Logger = n, st, cfg.Logger
	// The Hosts of these tests' requests: n1 (this node's name) in raw
	// ones, example.com in httptest.NewRequest's. TestHostAllowed checks
	// the others are refused.
	scfg.ClientAddr = "n1:8001"
	scfg.AllowedHosts = append(scfg.AllowedHosts, "example.com")
	s := New(scfg)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := s.Read(ctx); err != nil {
		t.Fatal(err)
	}
	return s, st
}

func bubble(t *testing.T, f func(t *testing.T)) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, f)
}

// serve sends one request to s and returns the status and JSON body.
func serve(s *Server, method, path, body string, header ...string) (int, map[string]any) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	var m map[string]any
	json.Unmarshal(w.Body.Bytes(), &m)
	return w.Code, m
}

// A write without a session goes in the server's own session, registered
// on the first such write; once that session expired, the next write
// registers a new one by itself and applies once (thesis §6.3).
func TestOwnSessionRegistersAndReregisters(t *testing.T) {
	bubble(t, func(t *testing.T) {
		s, st := oneNode(t, 5)
		ctx := t.Context()
		if s.own.ClientID() != 0 {
			t.Fatal("a session was registered before any write needed one")
		}
		res, err := s.Write(ctx, kv.Command{Op: kv.OpSet, Key: []byte("k"), Value: []byte("1")})
		first := s.own.ClientID()
		if err != nil || res.Err != nil || first == 0 {
			t.Fatalf("first write: %+v, %v; own session %d", res, err, first)
		}
		// Other entries age the session past its TTL.
		for range 6 {
			if _, err := s.Write(ctx, kv.Register()); err != nil {
				t.Fatal(err)
			}
		}
		res, err = s.Write(ctx, kv.Command{Op: kv.OpSet, Key: []byte("k"), Value: []byte("2")})
		second := s.own.ClientID()
		if err != nil || res.Err != nil || second == first || second == 0 {
			t.Fatalf("write after the expiry: %+v, %v; own session %d (was %d)", res, err, second, first)
		}
		if v, rev, _ := st.Get([]byte("k")); string(v) != "2" || rev != res.Revision {
			t.Fatalf("k = %q at %d, want 2 at %d", v, rev, res.Revision)
		}
	})
}

// The HTTP side of sessions: POST /v1/sessions registers one; a write
// naming no live session answers 412 with code session_expired, and one
// reusing a sequence number for another command 400 with code
// seq_reused, both writing nothing.
func TestSessionRoutes(t *testing.T) {
	bubble(t, func(t *testing.T) {
		s, st := oneNode(t, 1000)
		code, body := serve(s, http.MethodPost, "/v1/sessions", "")
		id, _ := body["client_id"].(float64)
		if code != http.StatusOK || id == 0 {
			t.Fatalf("POST /v1/sessions = %d %v", code, body)
		}
		if code, _ := serve(s, http.MethodGet, "/v1/sessions", ""); code != http.StatusMethodNotAllowed {
			t.Fatalf("GET /v1/sessions = %d, want 405", code)
		}
		session := func(id, seq string) []string { return []string{HeaderClientID, id, HeaderSeq, seq} }
		sid := jsonNumber(id)
		if code, body := serve(s, http.MethodPut, "/v1/kv/k", "v", session(sid, "1")...); code != http.StatusOK {
			t.Fatalf("write in the session = %d %v", code, body)
		}
		code, body = serve(s, http.MethodPut, "/v1/kv/k", "other", session(sid, "1")...)
		if code != http.StatusBadRequest || body["code"] != "seq_reused" {
			t.Fatalf("a sequence number reused for another value = %d %v, want 400 seq_reused", code, body)
		}
		code, body = serve(s, http.MethodPut, "/v1/kv/k", "v", session("999", "1")...)
		if code != http.StatusPreconditionFailed || body["code"] != "session_expired" ||
			!strings.Contains(body["error"].(string), "register a new one") {
			t.Fatalf("write in an unknown session = %d %v, want 412 session_expired", code, body)
		}
		if code, body := serve(s, http.MethodPut, "/v1/kv/k", "v", session("app-1", "1")...); code != http.StatusBadRequest ||
			!strings.Contains(body["error"].(string), "POST /v1/sessions") {
			t.Fatalf("a client id that is not a number = %d %v, want 400 naming the route", code, body)
		}
		if v, _, _ := st.Get([]byte("k")); string(v) != "v" {
			t.Fatalf("k = %q, want the first write's v", v)
		}
	})
}

func jsonNumber(f float64) string {
	b, _ := json.Marshal(uint64(f))
	return string(b)
}

// scripted returns a write attempt that answers from a script, one
// answer per attempt.
func scripted(answers ...func() (kv.Result, error)) func(context.Context) (kv.Result, error) {
	return func(context.Context) (kv.Result, error) {
		a := answers[0]
		answers = answers[1:]
		return a()
	}
}

// A retry that finds its session expired after an attempt whose outcome
// is unknown cannot tell whether that attempt applied: one clear error,
// outcome unknown. After attempts that certainly did not apply, the
// expiry is the answer (nothing applied; the caller registers anew).
func TestRetryIntoAnExpiredSession(t *testing.T) {
	expired := func() (kv.Result, error) { return kv.Result{Err: kv.ErrSessionExpired}, nil }
	lost := func() (kv.Result, error) { return kv.Result{}, node.ErrLeadershipLost }
	noLeader := func() (kv.Result, error) { return kv.Result{}, raft.ErrNoLeader }
	ctx := context.Background()

	res, err := retryWrite(ctx, scripted(lost, expired))
	if !errors.Is(err, errOutcomeUnknown) || !errors.Is(err, kv.ErrSessionExpired) {
		t.Fatalf("expiry after a lost leadership: %+v, %v; want an outcome-unknown error", res, err)
	}
	forwardLost := func() (kv.Result, error) { return kv.Result{}, node.ErrForwardLost }
	if _, err := retryWrite(ctx, scripted(noLeader, forwardLost, expired)); !errors.Is(err, errOutcomeUnknown) {
		t.Fatalf("expiry after a forwarded attempt's answer was lost: %v; want an outcome-unknown error", err)
	}
	res, err = retryWrite(ctx, scripted(noLeader, expired))
	if err != nil || !errors.Is(res.Err, kv.ErrSessionExpired) {
		t.Fatalf("expiry after no leader: %+v, %v; want the expiry as the result", res, err)
	}
	res, err = retryWrite(ctx, scripted(lost, func() (kv.Result, error) { return kv.Result{Revision: 7}, nil }))
	if err != nil || res.Revision != 7 {
		t.Fatalf("retry after a lost leadership: %+v, %v; want the result", res, err)
	}
}
