// Package server is raftex's HTTP API over a node and its key-value store.
// Any node accepts any request: a follower hands writes to the leader over
// the authenticated peer connection (§8: clients are redirected to the
// leader; we forward on their behalf so the answer is the same whichever
// node the client picked) and serves linearizable reads itself after
// obtaining a read index from the leader (thesis §6.4). Membership changes
// and leadership transfers run on the leader: a follower relays them to the
// leader's client address (members.go). The client API has no route that
// accepts raw commands. docs/api.md documents every route.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/raftex/raftex/internal/session"
	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/node"
)

// Config wires a Server.
type Config struct {
	Node *node.Node
	KV   *kv.Store
	// PeerAddrs are the peer addresses known from the cluster file, used
	// for members that have not published their own.
	PeerAddrs map[uint64]string
	// ClusterID is the cluster's id (the peer handshake's), which the
	// membership routes hand to a joining node.
	ClusterID string
	// RequestTimeout bounds every request, including waiting for a leader.
	// Default 5 s.
	RequestTimeout time.Duration
	Logger         *slog.Logger
	// Extra routes (e.g. "/metrics", "/v1/events", "/ui/"), so this
	// package does not depend on how they are made. They answer GET and
	// HEAD; other methods get 405. routeAccess says who may use each.
	// Relay carries membership and transfer requests a follower relays to
	// the leader's client address, over https when RelayTLS is set (the
	// members serve https). Nil: plain http with Go's default transport.
	RelayTLS *tls.Config
	Extra    map[string]http.Handler
	// TokenTTL is how long a login's token lasts. Default 10 min.
	TokenTTL time.Duration
	// PasswordCost is bcrypt's cost for the passwords of users added
	// here. Default bcrypt.DefaultCost.
	PasswordCost int
	// CORSOrigins are the origins (scheme://host:port) allowed besides the
	// members' own client addresses.
	CORSOrigins []string
	// ClientAddr is this node's advertised client address: its host may
	// name the node in a request's Host before the node's publication of
	// it is committed.
	ClientAddr string
	// AllowedHosts are the host names a plain-http request's Host may
	// name besides IP addresses, localhost, the members' and this node's
	// client hosts and CORSOrigins' hosts ("*": any, which turns the DNS
	// rebinding protection off; see hostAllowed).
	AllowedHosts []string
	// Limits bound connections and requests; zero fields take
	// DefaultLimits'.
	Limits Limits
	// Now is the clock tokens expire by. Default time.Now.
	Now func() time.Time
	// WatchHeartbeat is how often a quiet watch stream gets a comment
	// line. Default 15 s.
	WatchHeartbeat time.Duration
	// WatchWriteTimeout bounds each write of a watch stream: a client that
	// stops reading is cut off. Default 10 s.
	WatchWriteTimeout time.Duration
}

// Server serves the HTTP API. Create it with New and mount it with an
// http.Server.
type Server struct {
	cfg  Config
	node *node.Node
	// members is the node as the membership routes use it.
	members memberNode
	kv      *kv.Store
	log     *slog.Logger
	mux     *http.ServeMux
	// own is this server's own client session, for writes without one.
	own *session.Session
	// requests and streams count what is in flight (Limits); hashing
	// bounds the bcrypt computations running at once.
	requests, streams, hashing limiter
	clients                    *perClient
	// watchCtx ends every watch stream when the HTTP server shuts down.
	watchCtx   context.Context
	endWatches context.CancelFunc
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 10 * time.Minute
	}
	if cfg.PasswordCost == 0 {
		cfg.PasswordCost = bcrypt.DefaultCost
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.WatchHeartbeat <= 0 {
		cfg.WatchHeartbeat = 15 * time.Second
	}
	if cfg.WatchWriteTimeout <= 0 {
		cfg.WatchWriteTimeout = 10 * time.Second
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	s := &Server{
		cfg: cfg, node: cfg.Node, members: cfg.Node, kv: cfg.KV, log: cfg.Logger,
		mux:      http.NewServeMux(),
		requests: make(limiter, cfg.Limits.MaxRequests), streams: make(limiter, cfg.Limits.MaxStreams),
		hashing: make(limiter, runtime.GOMAXPROCS(0)),
		clients: &perClient{limit: cfg.Limits.MaxRequestsPerClient, n: map[string]int{}},
	}
	s.own = session.New(s.registerOwn, kv.SessionWindow)
	s.watchCtx, s.endWatches = context.WithCancel(context.Background())
	s.mux.HandleFunc("/v1/status", s.handleStatus)
	s.mux.HandleFunc(sessionsPath, s.handleRegister)
	s.mux.HandleFunc("/v1/log", s.handleLog)
	s.mux.HandleFunc("/healthz", s.handleHealthz)
	s.mux.HandleFunc("/readyz", s.handleReadyz)
	s.authRoutes()
	s.memberRoutes()
	s.rangeRoutes()
	for pattern, h := range cfg.Extra {
		s.mux.Handle(pattern, readOnly(h))
	}
	return s
}

// readOnly answers 405 to methods other than GET and HEAD.
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ServeHTTP checks the request's Host (hostAllowed) and origin (CORS), counts it against the
// limits, authenticates it and checks its route's access (routeAccess),
// then routes it. It routes /v1/kv/ itself, before http.ServeMux would
// clean the path: keys may contain "/", "//" or "..".
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.checkHost(w, r) || s.cors(w, r) {
		return
	}
	a, isKV := kvAccess, strings.HasPrefix(r.URL.EscapedPath(), kvPrefix)
	if !isKV {
		_, pattern := s.mux.Handler(r)
		if pattern == "" { // the mux's 404 or 405, as JSON
			s.serveMux(w, r)
			return
		}
		a = accessOf(pattern)
		if pattern == "/healthz" {
			s.serveMux(w, r) // a liveness probe is never refused
			return
		}
	}
	release, ok := s.admit(w, r, a)
	if !ok {
		return
	}
	defer release()
	r, ok = s.guard(w, r, a)
	if !ok {
		return
	}
	if a.stream {
		unlimitStream(w)
	}
	if isKV {
		s.handleKV(w, r)
		return
	}
	s.serveMux(w, r)
}

// serveMux routes r through the mux, its errors as JSON: a path no route
// has is 404 "no route", a method its route does not take 405.
func (s *Server) serveMux(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern == "" && !s.otherMethod(r) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route %s", r.URL.Path))
		return
	}
	jw := &jsonErrors{ResponseWriter: w}
	s.mux.ServeHTTP(jw, r)
	jw.finish()
}

// otherMethod reports whether a route has r's path with another method
// (the mux then answers 405 with the Allow header).
func (s *Server) otherMethod(r *http.Request) bool {
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" {
			return true
		}
	}
	return false
}

func (s *Server) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
}

// errorBody is every error response: {"error": "..."} plus optional fields.
type errorBody struct {
	Error string `json:"error"`
	// Code names the error for programs, where its status alone does not.
	Code     string  `json:"code,omitempty"`
	Leader   *string `json:"leader,omitempty"`
	Revision *uint64 `json:"revision,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

// leaderName is the id of the leader this node knows ("" for none, and
// once the node stopped itself: it no longer knows anything).
func (s *Server) leaderName() string {
	if s.node.Err() != nil {
		return ""
	}
	lead, _ := s.members.Leader()
	return node.FormatID(lead)
}

// writeUnavailable answers 503 with the leader this node knows.
func (s *Server) writeUnavailable(w http.ResponseWriter, err error) {
	name := s.leaderName()
	msg := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		msg = fmt.Sprintf("no leader or no quorum answered within %s: %s", s.cfg.RequestTimeout, msg)
	}
	writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: msg, Leader: &name})
}

func methodNotAllowed(w http.ResponseWriter, allowed string) {
	w.Header().Set("Allow", allowed)
	writeError(w, http.StatusMethodNotAllowed, "method not allowed; use "+allowed)
}
