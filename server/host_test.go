package server

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/raftex/raftex/kv"
)

// TestHostAllowed: over plain http a request whose Host is not an IP
// address, localhost, a member's or this node's client host, a
// CORSOrigins host or in AllowedHosts is refused with 403 host_forbidden
// (DNS rebinding), the probes aside; over https Host is not checked.
func TestHostAllowed(t *testing.T) {
	bubble(t, func(t *testing.T) {
		s, st := oneNodeWith(t, kv.Config{}, Config{CORSOrigins: []string{"https://dash.example:443"}, AllowedHosts: []string{"ops.example"}})
		if res, err := s.Write(t.Context(), kv.PublishMember(2, kv.MemberInfo{PeerAddr: "n2:7000", ClientAddr: "n2:8000"})); err != nil || res.Err != nil {
			t.Fatal(err, res.Err)
		}
		// do sends a request with host as Host and, with origin, as
		// Origin too (a rebound page's non-GET request).
		do := func(s *Server, method, path, host string, origin, https bool) *httptest.ResponseRecorder {
			req := httptest.NewRequest(method, path, strings.NewReader("pwned"))
			req.Host = host
			if origin {
				req.Header.Set("Origin", "http://"+host)
			}
			if https {
				req.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			return w
		}
		for _, host := range []string{
			"127.0.0.1:8001", "10.1.2.3", "[::1]:8001", "[::1]", "localhost:8001", "LocalHost", "foo.localhost:8001",
			"n2:8000", "n2:9999", "N2", "n1:8001", "dash.example:8080", "ops.example", "ops.example:80",
		} {
			if w := do(s, "GET", "/v1/status", host, true, false); w.Code != http.StatusOK {
				t.Errorf("Host %s: %d %s, want 200", host, w.Code, w.Body)
			}
		}
		for _, host := range []string{"evil.example:8001", "evil.example", "localhost.evil.example", "n2.evil.example:8000", "127.0.0.1.evil.example"} {
			w := do(s, "PUT", "/v1/kv/c", host, true, false)
			var body errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != http.StatusForbidden || body.Code != "host_forbidden" ||
				!strings.Contains(body.Error, "--allowed-hosts") || w.Header().Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("Host %s: %d %s %v, want 403 host_forbidden naming --allowed-hosts", host, w.Code, w.Body, w.Header())
			}
			if w := do(s, "GET", "/v1/status", host, false, false); w.Code != http.StatusForbidden {
				t.Errorf("same-origin GET with Host %s: %d %s, want 403", host, w.Code, w.Body)
			}
			for _, probe := range []string{"/healthz", "/readyz"} {
				if w := do(s, "GET", probe, host, false, false); w.Code != http.StatusOK {
					t.Errorf("%s with Host %s: %d %s, want 200", probe, host, w.Code, w.Body)
				}
				// The origin of a rebound name is not this node's.
				if w := do(s, "GET", probe, host, true, false); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "origin_forbidden") {
					t.Errorf("%s with Host and Origin %s: %d %s, want 403 origin_forbidden", probe, host, w.Code, w.Body)
				}
			}
			if w := do(s, "GET", "/v1/status", host, true, true); w.Code != http.StatusOK {
				t.Errorf("https with Host %s: %d %s, want 200", host, w.Code, w.Body)
			}
		}
		if _, _, ok := st.Get([]byte("c")); ok {
			t.Fatal("a refused PUT wrote its key")
		}

		anyHost, _ := oneNodeWith(t, kv.Config{}, Config{AllowedHosts: []string{"*"}})
		if w := do(anyHost, "GET", "/v1/status", "evil.example:8001", true, false); w.Code != http.StatusOK {
			t.Errorf("AllowedHosts *: %d %s, want 200", w.Code, w.Body)
		}
	})
}

func TestValidateAllowedHost(t *testing.T) {
	for h, ok := range map[string]bool{
		"ops.example": true, "n1": true, "*": true,
		"": false, "ops.example:80": false, "http://ops.example": false, "*.example": false, "[::1]": false,
	} {
		if err := ValidateAllowedHost(h); (err == nil) != ok {
			t.Errorf("ValidateAllowedHost(%q) = %v, want ok %v", h, err, ok)
		}
	}
}
