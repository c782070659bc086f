package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/raftex/raftex/client"
	"github.com/raftex/raftex/internal/e2etest"
)

// authCluster is a 3-node cluster whose auth the CLI set up and enabled:
// root (root role), alice (read-write on "app/") and bob (no role), with
// tokens that last ttl.
func authCluster(t *testing.T, ttl time.Duration) (*e2etest.Cluster, string) {
	t.Helper()
	c := newCluster(t, 3, "--token-ttl", ttl.String())
	eps := "--endpoints=" + strings.Join(c.Endpoints(), ",")
	for _, args := range [][]string{
		{"user", "add", "root", "--new-password", "rootpw"},
		{"user", "grant", "root", "root"},
		{"role", "add", "app"},
		{"role", "grant", "app", "app/", "readwrite"},
		{"user", "add", "alice"}, // the password from RAFTEX_NEW_PASSWORD
		{"user", "grant", "alice", "app"},
		{"user", "add", "bob", "--new-password", "bobpw"},
		{"auth", "enable"},
	} {
		if out, code := runRaftex(t, []string{"RAFTEX_NEW_PASSWORD=alicepw"}, append(args, eps)...); code != 0 || !strings.HasPrefix(out, "OK revision=") {
			t.Fatalf("raftex %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
	}
	return c, eps
}

// login asks nd for a token.
func login(t *testing.T, nd *e2etest.Node, user, password string) string {
	t.Helper()
	r := must(t, "POST", nd.URL("/v1/auth/token"), []byte(fmt.Sprintf(`{"name":%q,"password":%q}`, user, password)))
	var body struct{ Token string }
	if err := r.Want(http.StatusOK); err != nil || json.Unmarshal(r.Body, &body) != nil || body.Token == "" {
		t.Fatalf("login %s on %s: %v %s", user, nd.Name, err, r.Body)
	}
	return body.Token
}

// TestAuth_EveryRouteOnTheBinary: every route of a real node, with no
// token, a wrong one, an expired one, one without the role it needs, and
// one with it; a token from one node works on every node.
func TestAuth_EveryRouteOnTheBinary(t *testing.T) {
	t.Parallel()
	const ttl = 3 * time.Second
	c, _ := authCluster(t, ttl)
	n1, n3 := c.Nodes[0], c.Nodes[2]
	early := login(t, n1, "root", "rootpw")
	passwords := map[string]string{"root": "rootpw", "alice": "alicepw", "bob": "bobpw"}
	// as sends a request as user with a token just issued by another node
	// than nd. The tokens last ttl: on a machine slow enough that a token
	// expires before its request is answered, the request is sent again
	// with a new one (only then: a token refused sooner fails the test).
	as := func(user string, nd *e2etest.Node, method, path, body string) e2etest.Response {
		t.Helper()
		issuer := c.Others(nd)[0]
		var r e2etest.Response
		soon.Until(t, method+" "+path+" on "+nd.Name+" as "+user+" with a token still valid", func() error {
			issued := time.Now()
			tok := login(t, issuer, user, passwords[user])
			r = must(t, method, nd.URL(path), []byte(body), "Authorization", "Bearer "+tok)
			if r.Code == http.StatusUnauthorized && time.Since(issued) >= ttl {
				return fmt.Errorf("the token expired before the answer: %d %s", r.Code, r.Body)
			}
			return nil
		})
		return r
	}
	type route struct {
		method, path, body string
		ok, denied         string // a user who may; one who may not ("": none)
	}
	routes := []route{
		{"GET", "/healthz", "", "", ""},
		{"GET", "/readyz", "", "", ""},
		{"GET", "/ui/", "", "", ""},
		{"GET", "/v1/auth", "", "", ""},
		{"GET", "/v1/status", "", "bob", ""},
		{"GET", "/v1/log", "", "bob", ""},
		{"GET", "/metrics", "", "bob", ""},
		{"POST", "/v1/sessions", "", "bob", ""},
		{"PUT", "/v1/kv/app/x", "v", "alice", "bob"},
		{"GET", "/v1/kv/app/x", "", "alice", "bob"},
		{"DELETE", "/v1/kv/app/x", "", "alice", "bob"},
		{"PUT", "/v1/kv/other", "v", "root", "alice"},
		{"POST", "/v1/auth/roles", `{"name":"r2"}`, "root", "alice"},
		{"GET", "/v1/auth/users", "", "root", "bob"},
		{"POST", "/v1/auth/disable", "", "", "alice"},
	}
	for i, rt := range routes {
		nd := c.Nodes[i%3] // every node checks tokens issued by any
		name := rt.method + " " + rt.path + " on " + nd.Name
		open := rt.ok == "" && rt.denied == "" && rt.method == "GET"
		for _, cred := range []struct{ what, header, code string }{
			{"no token", "", "unauthenticated"},
			{"a wrong token", "Bearer abc.def", "bad_token"},
		} {
			var header []string
			if cred.header != "" {
				header = []string{"Authorization", cred.header}
			}
			r := must(t, rt.method, nd.URL(rt.path), []byte(rt.body), header...)
			switch {
			case open && r.Code == http.StatusUnauthorized:
				t.Errorf("%s with %s = %d, want it open", name, cred.what, r.Code)
			case !open && (r.Code != http.StatusUnauthorized || r.Fields(t)["code"] != cred.code ||
				r.Header.Get("Content-Type") != "application/json" || r.Header.Get("WWW-Authenticate") == ""):
				t.Errorf("%s with %s = %d %s %v, want 401 %s as JSON", name, cred.what, r.Code, r.Body, r.Header, cred.code)
			}
		}
		if rt.denied != "" {
			r := as(rt.denied, nd, rt.method, rt.path, rt.body)
			if r.Code != http.StatusForbidden || r.Fields(t)["code"] != "permission_denied" {
				t.Errorf("%s as %s = %d %s, want 403 permission_denied", name, rt.denied, r.Code, r.Body)
			}
		}
		if rt.ok != "" {
			r := as(rt.ok, nd, rt.method, rt.path, rt.body)
			if r.Code != http.StatusOK {
				t.Errorf("%s as %s = %d %s, want 200", name, rt.ok, r.Code, r.Body)
			}
		}
	}
	soon.Until(t, "the first token expires", func() error {
		r := must(t, "GET", n3.URL("/v1/status"), nil, "Authorization", "Bearer "+early)
		if r.Code != http.StatusUnauthorized || r.Fields(t)["code"] != "token_expired" {
			return fmt.Errorf("GET /v1/status with the first token = %d %s", r.Code, r.Body)
		}
		return nil
	})
}

// TestAuth_CLIAndClient: the CLI's --user and RAFTEX_PASSWORD, its exit
// code 6, and the Go client renewing its token as it expires.
func TestAuth_CLIAndClient(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Second
	c, eps := authCluster(t, ttl)
	alice := []string{"RAFTEX_USER=alice", "RAFTEX_PASSWORD=alicepw"}
	for _, tc := range []struct {
		env  []string
		args []string
		code int
	}{
		{alice, []string{"put", "app/k", "v"}, 0},
		{alice, []string{"get", "app/k"}, 0},
		{alice, []string{"status"}, 0},
		{alice, []string{"put", "other", "v"}, exitDenied},
		{alice, []string{"user", "add", "mallory", "--new-password", "x"}, exitDenied},
		{nil, []string{"put", "app/k", "v"}, exitDenied},
		{[]string{"RAFTEX_USER=alice", "RAFTEX_PASSWORD=wrong"}, []string{"get", "app/k"}, exitDenied},
	} {
		if out, code := runRaftex(t, tc.env, append(tc.args, eps)...); code != tc.code {
			t.Errorf("%v raftex %s: exit %d, want %d\n%s", tc.env, strings.Join(tc.args, " "), code, tc.code, out)
		}
	}
	cl, err := client.New(c.Endpoints(), client.Options{Username: "alice", Password: "alicepw"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Write for longer than two token lifetimes: the client renews.
	for start, i := time.Now(), 0; time.Since(start) < 2*ttl+time.Second; i++ {
		if _, err := cl.Set(ctx, fmt.Sprintf("app/%d", i), []byte("v")); err != nil {
			t.Fatalf("write %d after %s: %v", i, time.Since(start), err)
		}
	}
	if _, err := cl.Set(ctx, "elsewhere", []byte("v")); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("a write outside alice's prefix: %v, want ErrForbidden", err)
	}
}

// exitDenied is the CLI's exit code for 401 and 403.
const exitDenied = 6

// TestCORS_ForeignOriginRefused: a page of another origin gets no CORS
// headers from a node (its preflight is refused), a member's origin does.
func TestCORS_ForeignOriginRefused(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	n1, n2 := c.Nodes[0], c.Nodes[1]
	preflight := func(origin string) e2etest.Response {
		return must(t, "OPTIONS", n1.URL("/v1/kv/x"), nil, "Origin", origin,
			"Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "content-type")
	}
	r := preflight("http://attacker.example")
	if r.Code != http.StatusForbidden || r.Header.Get("Access-Control-Allow-Origin") != "" || r.Header.Get("Access-Control-Allow-Methods") != "" {
		t.Fatalf("foreign preflight = %d %v, want 403 without allow headers", r.Code, r.Header)
	}
	r = preflight("http://" + n2.ClientAddr)
	if r.Code != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "http://"+n2.ClientAddr {
		t.Fatalf("a member's preflight = %d %v, want 204 allowing it", r.Code, r.Header)
	}
	r = must(t, "POST", n1.URL("/v1/sessions"), nil, "Origin", "http://attacker.example")
	if r.Code != http.StatusForbidden {
		t.Fatalf("a foreign page's POST = %d %s, want 403", r.Code, r.Body)
	}
}

// TestLimits_FloodOnTheBinary: a client holding its share of request
// slots (bodies that never finish) gets 429 at once for more, while a
// client of another address is served.
func TestLimits_FloodOnTheBinary(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, "--max-requests", "8", "--max-requests-per-client", "2")
	nd := c.Nodes[0]
	// 127.0.0.1's two slots, held until the read timeout. Each PUT asks
	// for 100-continue, which the server sends once the handler reads the
	// body: then the slot is surely taken, before the next request (a
	// request of ours in flight at the same time could take it instead,
	// and the PUT would get the 429).
	for i := range 2 {
		conn, err := net.Dial("tcp", nd.ClientAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "PUT /v1/kv/slow HTTP/1.1\r\nHost: %s\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n", nd.ClientAddr)
		conn.SetReadDeadline(time.Now().Add(time.Minute))
		status, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || !strings.HasPrefix(status, "HTTP/1.1 100 ") {
			t.Fatalf("slow PUT %d: %q (%v), want 100 Continue", i, status, err)
		}
	}
	soon.Until(t, "the flooding client's next request refused", func() error {
		r, err := get(nd.URL("/v1/status"))
		if err != nil || r.Code != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
			return fmt.Errorf("GET /v1/status from 127.0.0.1 = %d %s (%v), want 429", r.Code, r.Body, err)
		}
		return nil
	})
	other := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	defer other.CloseIdleConnections()
	r, err := e2etest.Do(other, http.MethodGet, nd.URL("/v1/status"), nil)
	if err != nil || r.Code != http.StatusOK {
		t.Fatalf("GET /v1/status from 127.0.0.2 during the flood = %d %s (%v), want 200", r.Code, r.Body, err)
	}
}
