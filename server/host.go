package server

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// hostAllowed reports whether r may be served for its Host header, the
// defense against DNS rebinding: a page whose name its owner points at
// this node's address is same-origin to the browser, which sends its name
// as Host. Over https no check is needed (the page's name cannot match
// this node's certificate). Over plain http the host (port aside) must be
// an IP literal, localhost or a name under .localhost (both resolve to
// loopback only), the host of a member's client address or of this node's,
// the host of a CORSOrigins origin, or in AllowedHosts ("*": any). A
// request without Host (HTTP/1.0) comes from no browser and passes.
func (s *Server) hostAllowed(r *http.Request) bool {
	if r.TLS != nil || r.Host == "" {
		return true
	}
	host := hostOf(r.Host)
	if net.ParseIP(host) != nil {
		return true
	}
	host = strings.ToLower(host)
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	for _, h := range s.cfg.AllowedHosts {
		if h == "*" || strings.EqualFold(h, host) {
			return true
		}
	}
	if strings.EqualFold(hostOf(s.cfg.ClientAddr), host) {
		return true
	}
	for _, o := range s.cfg.CORSOrigins {
		if u, err := url.Parse(o); err == nil && strings.EqualFold(u.Hostname(), host) {
			return true
		}
	}
	for _, m := range s.kv.Members() {
		if strings.EqualFold(hostOf(m.ClientAddr), host) {
			return true
		}
	}
	return false
}

// hostOf returns the host of host[:port], without the brackets of an IPv6
// literal.
func hostOf(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// checkHost answers 403 to a request hostAllowed refuses (done). The
// probes /healthz and /readyz reveal nothing and always pass.
func (s *Server) checkHost(w http.ResponseWriter, r *http.Request) (done bool) {
	if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || s.hostAllowed(r) {
		return false
	}
	writeJSON(w, http.StatusForbidden, errorBody{
		Error: fmt.Sprintf("host %.100q is not a member's nor this node's, nor an IP address or localhost: list it in --allowed-hosts to reach this node by that name over http (DNS rebinding protection)", hostOf(r.Host)),
		Code:  "host_forbidden",
	})
	return true
}

// ValidateAllowedHost checks an entry of AllowedHosts: a host name without
// scheme or port, or "*".
func ValidateAllowedHost(h string) error {
	if h == "" || strings.ContainsAny(h, ":/[]@ ") || (strings.Contains(h, "*") && h != "*") {
		return fmt.Errorf("allowed host %q is not a host name (no scheme, no port) nor *", h)
	}
	return nil
}
