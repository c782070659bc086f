package server

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Limits bound the client HTTP server's connections and requests.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers. Default 10 s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, its body included: a
	// slow body is cut off. Default 30 s.
	ReadTimeout time.Duration
	// WriteTimeout bounds a request from its headers to the end of its
	// answer, so a client that never reads cannot hold a request slot.
	// Stream routes clear it. Default 60 s; it must exceed ReadTimeout
	// plus the request timeout.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long. Default
	// 2 min.
	IdleTimeout time.Duration
	// MaxRequests bounds the requests served at once (streams and
	// /healthz aside); beyond it a request gets 429. Default 1024.
	MaxRequests int
	// MaxRequestsPerClient bounds those of one client address (IP), so
	// that one client's flood leaves room for the others. Default a
	// quarter of MaxRequests. Behind a proxy every client has its
	// address: raise it to MaxRequests there.
	MaxRequestsPerClient int
	// MaxStreams bounds the open event streams; beyond it 429. Default
	// 64.
	MaxStreams int
}

// DefaultLimits returns the defaults above.
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxRequests: 1024, MaxStreams: 64,
	}
}

// WithDefaults returns l with its zero fields set to DefaultLimits'.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	for _, f := range []struct{ v, d *time.Duration }{
		{&l.ReadHeaderTimeout, &d.ReadHeaderTimeout}, {&l.ReadTimeout, &d.ReadTimeout},
		{&l.WriteTimeout, &d.WriteTimeout}, {&l.IdleTimeout, &d.IdleTimeout},
	} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	if l.MaxRequests == 0 {
		l.MaxRequests = d.MaxRequests
	}
	if l.MaxRequestsPerClient == 0 {
		l.MaxRequestsPerClient = max(1, l.MaxRequests/4)
	}
	if l.MaxStreams == 0 {
		l.MaxStreams = d.MaxStreams
	}
	return l
}

// Validate checks the limits against the request timeout; it changes
// nothing.
func (l Limits) Validate(requestTimeout time.Duration) error {
	switch {
	case l.ReadHeaderTimeout <= 0 || l.ReadTimeout <= 0 || l.IdleTimeout <= 0:
		return fmt.Errorf("server: timeouts must be positive (read header %s, read %s, idle %s)", l.ReadHeaderTimeout, l.ReadTimeout, l.IdleTimeout)
	case l.WriteTimeout <= l.ReadTimeout+requestTimeout:
		return fmt.Errorf("server: write timeout (%s) must exceed the read timeout (%s) plus the request timeout (%s)", l.WriteTimeout, l.ReadTimeout, requestTimeout)
	case l.MaxRequests < 1 || l.MaxStreams < 1:
		return fmt.Errorf("server: max requests (%d) and max streams (%d) must be at least 1", l.MaxRequests, l.MaxStreams)
	case l.MaxRequestsPerClient < 0 || l.MaxRequestsPerClient > l.MaxRequests:
		return fmt.Errorf("server: max requests per client (%d) must be from 1 to max requests (%d)", l.MaxRequestsPerClient, l.MaxRequests)
	}
	return nil
}

// HTTPServer returns an http.Server of s with the configured timeouts.
func (s *Server) HTTPServer() *http.Server {
	l := s.cfg.Limits
	srv := &http.Server{
		Handler: s, ReadHeaderTimeout: l.ReadHeaderTimeout, ReadTimeout: l.ReadTimeout,
		WriteTimeout: l.WriteTimeout, IdleTimeout: l.IdleTimeout,
	}
	// Watch streams never end on their own: Shutdown ends them.
	srv.RegisterOnShutdown(s.endWatches)
	return srv
}

// limiter counts requests in flight, up to its capacity.
type limiter chan struct{}

func (l limiter) acquire() bool {
	select {
	case l <- struct{}{}:
		return true
	default:
		return false
	}
}

func (l limiter) release() { <-l }

// perClient counts each client address's requests in flight.
type perClient struct {
	limit int
	mu    sync.Mutex
	n     map[string]int
}

// acquire counts a request of r's client, unless it has limit in flight.
func (p *perClient) acquire(r *http.Request) (string, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[host] >= p.limit {
		return host, false
	}
	p.n[host]++
	return host, true
}

func (p *perClient) release(host string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[host]--; p.n[host] == 0 {
		delete(p.n, host)
	}
}

// admit counts r against the limits of its kind (a stream against
// MaxStreams; a request against its client's share and MaxRequests), or
// answers 429 and returns false. release ends the count.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, a access) (release func(), ok bool) {
	if a.watch {
		return func() {}, true
	}
	if a.stream {
		if !s.streams.acquire() {
			writeTooMany(w, "event streams", s.cfg.Limits.MaxStreams)
			return nil, false
		}
		return s.streams.release, true
	}
	host, ok := s.clients.acquire(r)
	if !ok {
		writeTooMany(w, "requests from "+host, s.clients.limit)
		return nil, false
	}
	if !s.requests.acquire() {
		s.clients.release(host)
		writeTooMany(w, "requests", s.cfg.Limits.MaxRequests)
		return nil, false
	}
	return func() { s.requests.release(); s.clients.release(host) }, true
}

func writeTooMany(w http.ResponseWriter, what string, limit int) {
	w.Header().Set("Retry-After", "1")
	writeJSON(w, http.StatusTooManyRequests, errorBody{
		Error: fmt.Sprintf("too many %s in flight (limit %d); try again", what, limit), Code: "too_many_requests",
	})
}

// unlimitStream lets a stream outlive the server's read and write
// timeouts (which would otherwise end every stream).
func unlimitStream(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
}

// corsHeaders are the request headers a page of an allowed origin may
// send.
const corsHeaders = "Authorization, Content-Type, Raftex-Client-Id, Raftex-Request-Seq"

// cors answers for the Origin header: no Origin (not a browser's
// cross-origin request), or an allowed one, passes with the CORS headers
// set; a preflight from an allowed origin is answered here (done); any
// request from another origin is refused with 403 and no CORS header, so a
// page of a foreign site can neither read an answer nor change anything.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) (done bool) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if !s.allowedOrigin(origin, r) {
		writeJSON(w, http.StatusForbidden, errorBody{
			Error: fmt.Sprintf("origin %.100q is not a member of this cluster nor in --cors-origins", origin), Code: "origin_forbidden",
		})
		return true
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Set("Access-Control-Expose-Headers", HeaderRevision)
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, DELETE, POST")
		h.Set("Access-Control-Allow-Headers", corsHeaders)
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// allowedOrigin reports whether origin is this node (r's Host, if
// hostAllowed: a rebound name is not this node), a member's published
// client address, or listed in CORSOrigins. "localhost" stands for a
// member's loopback address.
func (s *Server) allowedOrigin(origin string, r *http.Request) bool {
	if slices.Contains(s.cfg.CORSOrigins, strings.TrimRight(origin, "/")) {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	if u.Host == r.Host && s.hostAllowed(r) {
		return true
	}
	for _, m := range s.kv.Members() {
		if sameHostPort(u.Host, m.ClientAddr) {
			return true
		}
	}
	return false
}

func sameHostPort(origin, addr string) bool {
	if origin == addr {
		return true
	}
	oh, op, err1 := net.SplitHostPort(origin)
	ah, ap, err2 := net.SplitHostPort(addr)
	if err1 != nil || err2 != nil || op != ap {
		return false
	}
	ip := net.ParseIP(ah)
	return oh == "localhost" && ip != nil && ip.IsLoopback()
}

// ValidateOrigin checks an origin for CORSOrigins: scheme://host[:port],
// scheme http or https, nothing after.
func ValidateOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("origin %q is not http(s)://host[:port]", o)
	}
	return nil
}
