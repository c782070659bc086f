package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raftex/raftex/kv"
)

// TestCORS_OnlyMembersAndListedOrigins: a preflight from a foreign origin
// gets no allow headers and a 403, and so does any request from one; the
// members' client origins and --cors-origins are allowed.
func TestCORS_OnlyMembersAndListedOrigins(t *testing.T) {
	bubble(t, func(t *testing.T) {
		s, _ := oneNodeWith(t, kv.Config{}, Config{CORSOrigins: []string{"https://dash.example:443"}})
		if res, err := s.Write(t.Context(), kv.PublishMember(2, kv.MemberInfo{PeerAddr: "10.0.0.2:7002", ClientAddr: "10.0.0.2:8002"})); err != nil || res.Err != nil {
			t.Fatal(err, res.Err)
		}
		preflight := func(origin string) *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodOptions, "/v1/kv/k", nil)
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", "PUT")
			req.Header.Set("Access-Control-Request-Headers", "authorization")
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			return w
		}
		for _, origin := range []string{"http://evil.example", "http://10.0.0.2:8003", "null", "http://localhost:8002"} {
			w := preflight(origin)
			if w.Code != http.StatusForbidden || w.Header().Get("Access-Control-Allow-Origin") != "" || w.Header().Get("Access-Control-Allow-Methods") != "" {
				t.Errorf("preflight from %s = %d %v, want 403 and no allow headers", origin, w.Code, w.Header())
			}
		}
		for _, origin := range []string{"http://10.0.0.2:8002", "https://10.0.0.2:8002", "https://dash.example:443", "http://example.com"} {
			w := preflight(origin) // http://example.com: the node's own host (httptest's)
			if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != origin ||
				!strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "Authorization") {
				t.Errorf("preflight from %s = %d %v, want 204 allowing it", origin, w.Code, w.Header())
			}
		}
		// A simple request (no preflight) from a foreign page changes nothing.
		req := httptest.NewRequest(http.MethodPost, "/v1/auth/users", strings.NewReader(`{"name":"x","password":"y"}`))
		req.Header.Set("Origin", "http://evil.example")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusForbidden || s.kv.Auth().Users() != nil {
			t.Fatalf("a foreign page's POST = %d; users %v", w.Code, s.kv.Auth().Users())
		}
	})
}

// TestLimits_FloodGets429WhileOthersAreServed: one client's requests
// beyond MaxRequestsPerClient are refused at once with 429 while another
// client is served; beyond MaxRequests everyone's are, but health probes
// and event streams (a limit of their own) are still served, and once
// slots free up requests are served again.
func TestLimits_FloodGets429WhileOthersAreServed(t *testing.T) {
	bubble(t, func(t *testing.T) {
		release := make(chan struct{})
		var entered sync.WaitGroup
		hold := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered.Done()
			<-release
			writeJSON(w, http.StatusOK, "held")
		})
		s, _ := oneNodeWith(t, kv.Config{}, Config{
			Limits: Limits{MaxRequests: 8, MaxRequestsPerClient: 4, MaxStreams: 1},
			Extra:  map[string]http.Handler{"/v1/events": hold, "GET /v1/hold": hold},
		})
		from := func(ip, method, path string) (int, map[string]any) {
			req := httptest.NewRequest(method, path, nil)
			req.RemoteAddr = ip + ":40000"
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			var m map[string]any
			json.Unmarshal(w.Body.Bytes(), &m)
			return w.Code, m
		}
		var flood sync.WaitGroup
		holdFrom := func(ip string, n int) {
			entered.Add(n)
			for range n {
				flood.Go(func() { from(ip, "GET", "/v1/hold") })
			}
			entered.Wait()
		}
		holdFrom("192.0.2.1", 4)
		for range 20 {
			code, body := from("192.0.2.1", "GET", "/v1/status")
			if code != http.StatusTooManyRequests || body["code"] != "too_many_requests" || !strings.Contains(body["error"].(string), "192.0.2.1") {
				t.Fatalf("the flooding client's request = %d %v, want 429", code, body)
			}
		}
		if code, body := from("192.0.2.2", "GET", "/v1/status"); code != http.StatusOK {
			t.Fatalf("another client during the flood = %d %v, want 200", code, body)
		}
		holdFrom("192.0.2.2", 4) // every slot taken
		if code, body := from("192.0.2.3", "GET", "/v1/status"); code != http.StatusTooManyRequests || !strings.Contains(body["error"].(string), "limit 8") {
			t.Fatalf("beyond MaxRequests = %d %v, want 429", code, body)
		}
		if code, _ := from("192.0.2.3", "GET", "/healthz"); code != http.StatusOK {
			t.Fatalf("/healthz during the flood = %d", code)
		}
		entered.Add(1)
		flood.Go(func() { from("192.0.2.3", "GET", "/v1/events") }) // a stream has its own limit
		entered.Wait()
		if code, body := from("192.0.2.4", "GET", "/v1/events"); code != http.StatusTooManyRequests || !strings.Contains(body["error"].(string), "event streams") {
			t.Fatalf("a second stream = %d %v, want 429", code, body)
		}
		close(release)
		flood.Wait()
		if code, body := from("192.0.2.1", "GET", "/v1/status"); code != http.StatusOK {
			t.Fatalf("after the flood = %d %v", code, body)
		}
	})
}

// pipeListener hands http.Server the server ends of in-memory pipes, so
// its timeouts run on synctest's virtual clock.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial() net.Conn {
	client, server := net.Pipe()
	l.conns <- server
	return client
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// serveHTTP runs s's http.Server over a pipe listener until the test ends.
func serveHTTP(t *testing.T, s *Server) *pipeListener {
	l := newPipeListener()
	hs := s.HTTPServer()
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return l
}

// reader collects what a connection receives until it closes.
type reader struct {
	mu     sync.Mutex
	got    strings.Builder
	closed bool
}

func readAll(c net.Conn) *reader {
	r := &reader{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			r.mu.Lock()
			r.got.Write(buf[:n])
			if err != nil {
				r.closed = true
				r.mu.Unlock()
				return
			}
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *reader) state() (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got.String(), r.closed
}

// TestLimits_SlowBodyAndIdleConnectionsClosedOnTime: a body that stops
// arriving is cut off at ReadTimeout and an idle keep-alive connection
// closed at IdleTimeout, by the server (virtual time: exact).
func TestLimits_SlowBodyAndIdleConnectionsClosedOnTime(t *testing.T) {
	bubble(t, func(t *testing.T) {
		limits := Limits{ReadTimeout: 3 * time.Second, WriteTimeout: 20 * time.Second, IdleTimeout: 7 * time.Second}
		s, _ := oneNodeWith(t, kv.Config{}, Config{Limits: limits})
		l := serveHTTP(t, s)

		slow := l.dial()
		r := readAll(slow)
		start := time.Now()
		fmt.Fprint(slow, "PUT /v1/kv/k HTTP/1.1\r\nHost: n1\r\nContent-Length: 10\r\n\r\nab")
		time.Sleep(limits.ReadTimeout - time.Millisecond - time.Since(start))
		synctest.Wait()
		if got, closed := r.state(); got != "" || closed {
			t.Fatalf("before ReadTimeout the slow request was answered: %q closed=%t", got, closed)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if got, closed := r.state(); !closed || !strings.Contains(got, "400") || !strings.Contains(got, "timeout") {
			t.Fatalf("at ReadTimeout: %q closed=%t, want a 400 and the connection closed", got, closed)
		}
		slow.Close()

		idle := l.dial()
		r = readAll(idle)
		fmt.Fprint(idle, "GET /healthz HTTP/1.1\r\nHost: n1\r\n\r\n")
		synctest.Wait()
		start = time.Now()
		if got, _ := r.state(); !strings.Contains(got, "200 OK") {
			t.Fatalf("healthz: %q", got)
		}
		time.Sleep(limits.IdleTimeout - time.Millisecond)
		synctest.Wait()
		if _, closed := r.state(); closed {
			t.Fatal("the idle connection closed before IdleTimeout")
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if _, closed := r.state(); !closed {
			t.Fatalf("the idle connection is open %s after its request", time.Since(start))
		}
		idle.Close()
	})
}

// TestLimits_StreamsOutliveTheTimeouts: an event stream clears its
// connection's deadlines; it still delivers events long after the read
// and write timeouts.
func TestLimits_StreamsOutliveTheTimeouts(t *testing.T) {
	bubble(t, func(t *testing.T) {
		tick := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 0; ; i++ {
				if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
					return
				}
				http.NewResponseController(w).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(time.Second):
				}
			}
		})
		limits := Limits{ReadTimeout: 2 * time.Second, WriteTimeout: 10 * time.Second}
		s, _ := oneNodeWith(t, kv.Config{}, Config{Limits: limits, Extra: map[string]http.Handler{"/v1/events": tick}})
		l := serveHTTP(t, s)
		c := l.dial()
		defer c.Close()
		fmt.Fprint(c, "GET /v1/events HTTP/1.1\r\nHost: n1\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("stream: %v %v", resp, err)
		}
		br := bufio.NewReader(resp.Body)
		deadline := time.Now().Add(3 * limits.WriteTimeout)
		var last string
		for time.Now().Before(deadline) {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("the stream ended after %s (last %q): %v", time.Since(deadline.Add(-3*limits.WriteTimeout)), last, err)
			}
			if strings.HasPrefix(line, "data:") {
				last = line
			}
		}
	})
}
