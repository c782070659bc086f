package server

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/raftex/raftex/auth"
	"github.com/raftex/raftex/kv"
)

const testTTL = time.Minute

// stubRoutes stand for the routes package raftex mounts (metrics, events)
// and one no table entry names (a route added later: root only).
func stubRoutes() map[string]http.Handler {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"ok": r.URL.Path})
	})
	return map[string]http.Handler{"/metrics": ok, "/v1/events": ok, "GET /v1/unlisted": ok}
}

// authNode is a one-node cluster with auth enabled through the API: root
// (root role), alice (read on "r/", read-write on "w/") and bob (no
// role). It returns a login per user.
func authNode(t *testing.T) (*Server, map[string]string) {
	t.Helper()
	s, _ := oneNodeWith(t, kv.Config{}, Config{TokenTTL: testTTL, PasswordCost: bcrypt.MinCost, Extra: stubRoutes()})
	for _, step := range []struct{ method, path, body string }{
		{"POST", "/v1/auth/users", `{"name":"root","password":"rootpw"}`},
		{"POST", "/v1/auth/users/root/roles", `{"role":"root"}`},
		{"POST", "/v1/auth/roles", `{"name":"rw"}`},
		{"POST", "/v1/auth/roles/rw/permissions", `{"prefix":"r/","access":"read"}`},
		{"POST", "/v1/auth/roles/rw/permissions", `{"prefix":"w/","access":"readwrite"}`},
		{"POST", "/v1/auth/users", `{"name":"alice","password":"alicepw"}`},
		{"POST", "/v1/auth/users/alice/roles", `{"role":"rw"}`},
		{"POST", "/v1/auth/users", `{"name":"bob","password":"bobpw"}`},
		{"POST", "/v1/auth/enable", ``},
	} {
		if code, body := serve(s, step.method, step.path, step.body); code != http.StatusOK {
			t.Fatalf("%s %s = %d %v", step.method, step.path, code, body)
		}
	}
	return s, logins(t, s)
}

func logins(t *testing.T, s *Server) map[string]string {
	t.Helper()
	tokens := map[string]string{}
	for _, u := range []string{"root", "alice", "bob"} {
		code, body := serve(s, "POST", "/v1/auth/token", `{"name":"`+u+`","password":"`+u+`pw"}`)
		tok, _ := body["token"].(string)
		if code != http.StatusOK || tok == "" {
			t.Fatalf("login %s = %d %v", u, code, body)
		}
		tokens[u] = tok
	}
	return tokens
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// TestAccess_EveryRoute: every route without a token, with a wrong one,
// an expired one, and one whose user lacks the role it needs; and with
// one that has it.
func TestAccess_EveryRoute(t *testing.T) {
	bubble(t, func(t *testing.T) {
		s, tok := authNode(t)
		expired := tok
		time.Sleep(testTTL) // virtual time: every token issued so far expired
		tok = logins(t, s)
		type route struct {
			method, path, body string
			// ok is the user who may (""= anyone); denied one who may not
			// ("" = none: every user may).
			ok, denied string
		}
		routes := []route{
			{"GET", "/healthz", "", "", ""},
			{"GET", "/readyz", "", "", ""},
			{"GET", "/ui/", "", "", ""},
			{"GET", "/v1/auth", "", "", ""},
			{"GET", "/v1/status", "", "bob", ""},
			{"GET", "/v1/log", "", "bob", ""},
			{"GET", "/metrics", "", "bob", ""},
			{"GET", "/v1/events", "", "bob", ""},
			{"POST", "/v1/sessions", "", "bob", ""},
			// A range, a watch or a prefix delete needs the permission over
			// the whole prefix; a transaction on every key it touches.
			{"GET", "/v1/kv?prefix=r/", "", "alice", "bob"},
			{"GET", "/v1/kv?prefix=r", "", "root", "alice"},
			{"GET", "/v1/kv", "", "root", "alice"},
			{"DELETE", "/v1/kv?prefix=w/", "", "alice", "bob"},
			{"DELETE", "/v1/kv?prefix=w", "", "root", "alice"},
			{"DELETE", "/v1/kv?all=true", "", "root", "alice"},
			{"POST", "/v1/txn", `{"compare":[{"key":"r/x","exists":true}],"success":[{"op":"put","key":"w/x","value":""}],"failure":[{"op":"get","key":"r/y"}]}`, "alice", "bob"},
			{"POST", "/v1/txn", `{"success":[{"op":"get","key":"w/x"}],"failure":[{"op":"delete","key":"r/x"}]}`, "root", "alice"},
			{"GET", "/v1/watch?prefix=r/", "", "", "bob"}, // served, it streams: its grant is in TestRoutes_Watch
			{"GET", "/v1/watch?prefix=", "", "", "alice"},
			{"GET", "/v1/watch?key=x", "", "", "alice"},
			{"GET", "/v1/kv/r/x", "", "alice", "bob"},
			{"GET", "/v1/kv/w/x?consistency=stale", "", "alice", "bob"},
			{"PUT", "/v1/kv/w/x", "v", "alice", "bob"},
			{"PUT", "/v1/kv/r/x", "v", "root", "alice"},
			{"DELETE", "/v1/kv/w/x", "", "alice", "bob"},
			{"POST", "/v1/auth/roles", `{"name":"extra"}`, "root", "alice"},
			{"POST", "/v1/auth/roles/rw/permissions", `{"prefix":"z","access":"read"}`, "root", "alice"},
			{"POST", "/v1/auth/users", `{"name":"carol","password":"carolpw"}`, "root", "alice"},
			{"POST", "/v1/auth/users/carol/roles", `{"role":"rw"}`, "root", "bob"},
			{"DELETE", "/v1/auth/users/carol", "", "root", "bob"},
			{"GET", "/v1/auth/users", "", "root", "alice"},
			{"GET", "/v1/auth/roles", "", "root", "alice"},
			{"GET", "/v1/unlisted", "", "root", "bob"},
			{"POST", "/v1/auth/disable", "", "", "alice"}, // root's disable is tried last, below
			{"POST", "/v1/auth/enable", "", "", "alice"},
		}
		for _, rt := range routes {
			name := rt.method + " " + rt.path
			open := rt.ok == "" && rt.denied == "" && rt.method == "GET" && !strings.HasPrefix(rt.path, "/v1/auth/")
			for _, c := range []struct {
				what   string
				header []string
				code   string
			}{
				{"no token", nil, "unauthenticated"},
				{"a wrong token", bearer("not.atoken"), "bad_token"},
				{"a forged token", bearer(tok["root"][:strings.IndexByte(tok["root"], '.')] + ".AAAA"), "bad_token"},
				{"an expired token", bearer(expired["root"]), "token_expired"},
				{"another scheme", []string{"Authorization", "Basic cm9vdDpyb290cHc="}, "bad_token"},
			} {
				code, body := serve(s, rt.method, rt.path, rt.body, c.header...)
				switch {
				case open && code == http.StatusUnauthorized:
					t.Errorf("%s with %s = %d, want it open", name, c.what, code)
				case !open && (code != http.StatusUnauthorized || body["code"] != c.code):
					t.Errorf("%s with %s = %d %v, want 401 %s", name, c.what, code, body, c.code)
				}
			}
			if rt.denied != "" {
				code, body := serve(s, rt.method, rt.path, rt.body, bearer(tok[rt.denied])...)
				if code != http.StatusForbidden || body["code"] != "permission_denied" {
					t.Errorf("%s as %s = %d %v, want 403 permission_denied", name, rt.denied, code, body)
				}
			}
			if rt.ok != "" {
				code, body := serve(s, rt.method, rt.path, rt.body, bearer(tok[rt.ok])...)
				if code != http.StatusOK && code != http.StatusNotFound {
					t.Errorf("%s as %s = %d %v, want it served", name, rt.ok, code, body)
				}
			}
		}
		if code, body := serve(s, "POST", "/v1/auth/disable", "", bearer(tok["root"])...); code != http.StatusOK {
			t.Fatalf("root disables auth: %d %v", code, body)
		}
		if code, _ := serve(s, "GET", "/v1/kv/r/x", ""); code != http.StatusOK {
			t.Fatalf("with auth disabled, an anonymous read = %d, want 200", code)
		}
	})
}

// TestAccess_WriteCheckedAtApply: a write's permission is the state
// machine's decision, so a role revoked (here: the user deleted) after
// the request was authenticated still refuses it, on every node.
func TestAccess_WriteCheckedAtApply(t *testing.T) {
	bubble(t, func(t *testing.T) {
		s, tok := authNode(t)
		cmd := kv.Command{Op: kv.OpSet, Key: []byte("w/x"), Value: []byte("v"), ByClient: true, User: "alice"}
		if code, body := serve(s, "DELETE", "/v1/auth/users/alice", "", bearer(tok["root"])...); code != http.StatusOK {
			t.Fatalf("delete alice: %d %v", code, body)
		}
		res, err := s.Write(t.Context(), cmd)
		if err != nil || res.Err == nil || !strings.Contains(res.Err.Error(), "authentication required") {
			t.Fatalf("alice's write after her deletion: %+v, %v", res, err)
		}
		if code, body := serve(s, "PUT", "/v1/kv/w/x", "v", bearer(tok["alice"])...); code != http.StatusUnauthorized || body["code"] != "token_revoked" {
			t.Fatalf("alice's token after her deletion: %d %v, want 401 token_revoked", code, body)
		}
	})
}

// TestAccess_CookieOnlyOnStreams: a browser's EventSource sends the login
// cookie, not a header; the cookie is taken there and nowhere else.
func TestAccess_CookieOnlyOnStreams(t *testing.T) {
	bubble(t, func(t *testing.T) {
		s, _ := authNode(t)
		req := httptest.NewRequest("POST", "/v1/auth/token", strings.NewReader(`{"name":"bob","password":"bobpw"}`))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		cookies := w.Result().Cookies()
		if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Name != cookieName {
			t.Fatalf("login cookie = %+v, want one HttpOnly SameSite=Strict %s", cookies, cookieName)
		}
		for path, want := range map[string]int{"/v1/events": http.StatusOK, "/v1/status": http.StatusUnauthorized} {
			req := httptest.NewRequest("GET", path, nil)
			req.AddCookie(cookies[0])
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != want {
				t.Errorf("GET %s with the cookie = %d, want %d", path, w.Code, want)
			}
		}
	})
}

// TestAccess_ClientCertificateNamesTheUser: with --client-cert-auth the
// verified certificate's common name is the user.
func TestAccess_ClientCertificateNamesTheUser(t *testing.T) {
	bubble(t, func(t *testing.T) {
		s, _ := authNode(t)
		for cn, want := range map[string]int{"alice": http.StatusOK, "mallory": http.StatusUnauthorized} {
			req := httptest.NewRequest("GET", "/v1/status", nil)
			req.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{Subject: pkix.Name{CommonName: cn}}}}}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != want {
				t.Errorf("certificate CN %q: %d, want %d", cn, w.Code, want)
			}
		}
		// Presented but not verified (no chain): not an identity.
		req := httptest.NewRequest("GET", "/v1/status", nil)
		req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{CommonName: "root"}}}}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("an unverified certificate: %d, want 401", w.Code)
		}
	})
}

// TestAccess_LoginAndWhoAmI: wrong passwords and unknown users get the
// same 401; GET /v1/auth says who the token names.
func TestAccess_LoginAndWhoAmI(t *testing.T) {
	bubble(t, func(t *testing.T) {
		s, tok := authNode(t)
		for _, body := range []string{`{"name":"bob","password":"nope"}`, `{"name":"nobody","password":"bobpw"}`} {
			if code, b := serve(s, "POST", "/v1/auth/token", body); code != http.StatusUnauthorized || b["code"] != "bad_password" {
				t.Errorf("login %s = %d %v, want 401 bad_password", body, code, b)
			}
		}
		if code, _ := serve(s, "POST", "/v1/auth/token", `{"name":`); code != http.StatusBadRequest {
			t.Errorf("malformed login = %d, want 400", code)
		}
		_, who := serve(s, "GET", "/v1/auth", "", bearer(tok["alice"])...)
		if who["enabled"] != true || who["user"] != "alice" {
			t.Errorf("GET /v1/auth = %v", who)
		}
		code, body := serve(s, "POST", "/v1/auth/users", `{"name":"alice","password":"x"}`, bearer(tok["root"])...)
		if code != http.StatusConflict || body["code"] != "user_exists" {
			t.Errorf("adding alice again = %d %v, want 409 user_exists", code, body)
		}
		code, body = serve(s, "DELETE", "/v1/auth/users/root", "", bearer(tok["root"])...)
		if code != http.StatusConflict || body["code"] != "last_root" {
			t.Errorf("deleting the last root = %d %v, want 409 last_root", code, body)
		}
		_, users := serveList(s, "GET", "/v1/auth/users", bearer(tok["root"])...)
		if len(users) != 3 || strings.Contains(string(mustJSON(users)), "$2a$") {
			t.Errorf("GET /v1/auth/users = %v (three users, no hashes)", users)
		}
	})
}

func serveList(s *Server, method, path string, header ...string) (int, []any) {
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	var l []any
	json.Unmarshal(w.Body.Bytes(), &l)
	return w.Code, l
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// TestAuthenticate_Policy: the goroutine-free policy package server and
// the simulator share.
func TestAuthenticate_Policy(t *testing.T) {
	h, _ := auth.HashPassword("pw", bcrypt.MinCost)
	key := make([]byte, auth.KeySize)
	var st *auth.State
	for i, c := range []auth.Change{
		{Kind: auth.AddUser, Name: "root", Hash: h},
		{Kind: auth.GrantRole, Name: "root", Role: auth.RootRole},
		{Kind: auth.Enable, Key: key},
	} {
		st, _ = st.Apply(c, uint64(i+1))
	}
	now := time.Unix(100, 0)
	tok, _, _ := st.Login("root", "pw", now, time.Minute)
	off, _ := st.Apply(auth.Change{Kind: auth.Disable}, 4)
	for _, tc := range []struct {
		name string
		st   *auth.State
		c    Credentials
		user string
		err  error
	}{
		{"enabled, token", st, Credentials{Token: tok}, "root", nil},
		{"enabled, nothing", st, Credentials{}, "", auth.ErrUnauthenticated},
		{"enabled, certificate", st, Credentials{CertUser: "root"}, "root", nil},
		{"enabled, unknown certificate", st, Credentials{CertUser: "x"}, "", auth.ErrUnauthenticated},
		{"disabled, token kept", off, Credentials{Token: tok}, "root", nil},
		{"disabled, bad token ignored", off, Credentials{Token: "x.y"}, "", nil},
		{"a node before the Enable", nil, Credentials{Token: tok}, "", auth.ErrBehind},
	} {
		user, err := Authenticate(tc.st, tc.c, now)
		if user != tc.user || (err == nil) != (tc.err == nil) || (tc.err != nil && !strings.Contains(err.Error(), tc.err.Error())) {
			t.Errorf("%s: %q, %v; want %q, %v", tc.name, user, err, tc.user, tc.err)
		}
	}
}

// TestAccess_WatchEndsWhenAccessIsLost: a watch stream ends before the
// next change once its user may no longer read the prefix; reconnecting
// is refused.
func TestAccess_WatchEndsWhenAccessIsLost(t *testing.T) {
	bubble(t, func(t *testing.T) {
		s, tok := authNode(t)
		l := serveHTTP(t, s)
		w := watch(t, l, "/v1/watch?prefix=w/", http.StatusOK, bearer(tok["alice"])...)
		serve(s, "PUT", "/v1/kv/w/a", "1", bearer(tok["root"])...)
		if ev := w.next(t); ev.event != "put" {
			t.Fatalf("first event %v, want the put", ev)
		}
		if code, body := serve(s, "DELETE", "/v1/auth/users/alice", "", bearer(tok["root"])...); code != http.StatusOK {
			t.Fatalf("delete alice: %d %v", code, body)
		}
		serve(s, "PUT", "/v1/kv/w/b", "2", bearer(tok["root"])...)
		if ev := w.next(t); ev != (sseEvent{}) {
			t.Fatalf("after alice lost access the stream delivered %v", ev)
		}
		watch(t, l, "/v1/watch?prefix=w/", http.StatusUnauthorized, bearer(tok["alice"])...)
	})
}
