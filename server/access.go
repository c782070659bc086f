package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/raftex/raftex/auth"
)

// access is who may use a route while auth is enabled, and how the route
// is limited. docs/security.md lists the table.
type access struct {
	// need: 0 is open to everyone; otherwise what the user needs
	// (auth.NeedUser, auth.NeedRoot).
	need auth.Need
	// stream: a long-lived stream (server-sent events): it counts against
	// Limits.MaxStreams instead of MaxRequests, its connection's deadlines
	// are cleared, and it also takes the token from the login cookie (a
	// browser's EventSource cannot send headers).
	stream bool
	// watch: a watch stream, counted by the store instead.
	watch bool
}

var (
	open       = access{}
	anyUser    = access{need: auth.NeedUser}
	rootOnly   = access{need: auth.NeedRoot}
	userStream = access{need: auth.NeedUser, stream: true}
	// userWatch is a stream bounded by the store's watchers
	// (kv.Config.MaxWatchers) rather than Limits.MaxStreams.
	userWatch = access{need: auth.NeedUser, stream: true, watch: true}
)

// routeAccess is the permission table: every route the mux serves, by its
// pattern. A route joins with one line; a route missing here is served to
// root alone (fail closed). The key routes (/v1/kv/) need a user here, and
// the key's permission where it is decided: a write at apply (package kv),
// a read once its read barrier returned.
var routeAccess = map[string]access{
	"/healthz": open,
	"/readyz":  open,
	"/ui/":     open, // the dashboard's files; what it shows needs a login
	"/{$}":     open,

	"GET /v1/auth":          open, // whether auth is on, and who you are
	"POST /v1/auth/token":   open, // log in
	"DELETE /v1/auth/token": open, // log out (clears the cookie)

	"/v1/status": anyUser,
	"/v1/log":    anyUser,
	"/metrics":   anyUser,
	"/v1/events": userStream,
	sessionsPath: anyUser,

	// Ranges, prefix deletes, transactions and watches need a user here,
	// and the permission over their keys where it is decided: over the
	// whole prefix (a permission whose prefix starts the request's) for a
	// range or a watch after its read, at apply for a prefix delete and
	// on every key a transaction touches.
	"GET /v1/kv":    anyUser,
	"DELETE /v1/kv": anyUser,
	"POST /v1/txn":  anyUser,
	"GET /v1/watch": userWatch,

	"POST /v1/auth/enable":                   rootOnly,
	"POST /v1/auth/disable":                  rootOnly,
	"GET /v1/auth/users":                     rootOnly,
	"POST /v1/auth/users":                    rootOnly,
	"DELETE /v1/auth/users/{name}":           rootOnly,
	"POST /v1/auth/users/{name}/roles":       rootOnly,
	"GET /v1/auth/roles":                     rootOnly,
	"POST /v1/auth/roles":                    rootOnly,
	"POST /v1/auth/roles/{name}/permissions": rootOnly,

	"GET /v1/members":               rootOnly,
	"POST /v1/members":              rootOnly,
	"POST /v1/members/{id}/promote": rootOnly,
	"DELETE /v1/members/{id}":       rootOnly,
	"POST /v1/leader/transfer":      rootOnly,
}

// kvAccess is the key routes' entry.
var kvAccess = anyUser

func accessOf(pattern string) access {
	if a, ok := routeAccess[pattern]; ok {
		return a
	}
	return rootOnly
}

// Credentials are what a request presents to say who sent it.
type Credentials struct {
	// Token is a bearer token (or the login cookie's, on stream routes).
	Token string
	// CertUser is the common name of the client's verified certificate
	// (with --client-cert-auth).
	CertUser string
}

// Authenticate is the request layer's policy for who sent a request,
// without goroutines or clocks (package server's middleware and the
// simulator both follow it): the user its credentials name in st, or ""
// for anonymous. With auth enabled a request must name an existing user
// (auth.ErrUnauthenticated, or a token error); with auth disabled a token
// that checks still names its user (so a write that applies after auth is
// enabled keeps it) and anything else is ignored. auth.ErrBehind: this
// node's state is older than the token's; authenticate again after a read
// barrier.
func Authenticate(st *auth.State, c Credentials, now time.Time) (string, error) {
	switch {
	case c.Token != "":
		user, err := st.Verify(c.Token, now)
		if st.Enabled() || errors.Is(err, auth.ErrBehind) {
			return user, err
		}
		return user, nil
	case c.CertUser != "":
		if _, ok := st.User(c.CertUser); ok || !st.Enabled() {
			if !ok {
				return "", nil
			}
			return c.CertUser, nil
		}
		return "", fmt.Errorf("%w: the client certificate names %q, which is no user", auth.ErrUnauthenticated, c.CertUser)
	case st.Enabled():
		return "", auth.ErrUnauthenticated
	}
	return "", nil
}

// cookieName is the login cookie, HttpOnly and SameSite=Strict, taken on
// stream routes only.
const cookieName = "raftex_token"

// credentials reads what r presents: the Authorization header, else (on a
// stream route) the login cookie, and the client certificate's common name.
func credentials(r *http.Request, stream bool) Credentials {
	var c Credentials
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") {
			c.Token = strings.TrimSpace(token)
		} else {
			c.Token = "-" // a scheme we do not take: an invalid token, not anonymous
		}
	} else if stream {
		if ck, err := r.Cookie(cookieName); err == nil {
			c.Token = ck.Value
		}
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		c.CertUser = r.TLS.VerifiedChains[0][0].Subject.CommonName
	}
	return c
}

type userKey struct{}

// requestUser is the user the middleware authenticated ("" anonymous).
func requestUser(r *http.Request) string {
	u, _ := r.Context().Value(userKey{}).(string)
	return u
}

// guard authenticates r and checks the route's need; it answers 401, 403
// or 503 itself and returns false then. A root route is checked after a
// read barrier, so a root role revoked anywhere is revoked here too.
func (s *Server) guard(w http.ResponseWriter, r *http.Request, a access) (*http.Request, bool) {
	if a.need == 0 {
		return r, true
	}
	creds := credentials(r, a.stream)
	user, err := Authenticate(s.kv.Auth(), creds, s.cfg.Now())
	if errors.Is(err, auth.ErrBehind) {
		if err := s.barrier(r); err != nil {
			s.writeUnavailable(w, err)
			return nil, false
		}
		user, err = Authenticate(s.kv.Auth(), creds, s.cfg.Now())
	}
	if err != nil {
		writeAuthError(w, err)
		return nil, false
	}
	if a.need == auth.NeedRoot {
		if err := s.barrier(r); err != nil {
			s.writeUnavailable(w, err)
			return nil, false
		}
	}
	if err := s.kv.Auth().Allow(user, a.need, nil); err != nil {
		writeAuthError(w, err)
		return nil, false
	}
	return r.WithContext(context.WithValue(r.Context(), userKey{}, user)), true
}

func (s *Server) barrier(r *http.Request) error {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	return s.Read(ctx)
}

// authErrors map auth's errors to statuses and codes.
var authErrors = []struct {
	err    error
	status int
	code   string
}{
	{auth.ErrTokenExpired, http.StatusUnauthorized, "token_expired"},
	{auth.ErrBadToken, http.StatusUnauthorized, "bad_token"},
	{auth.ErrTokenRevoked, http.StatusUnauthorized, "token_revoked"},
	{auth.ErrBehind, http.StatusUnauthorized, "bad_token"},
	{auth.ErrBadPassword, http.StatusUnauthorized, "bad_password"},
	{auth.ErrUnauthenticated, http.StatusUnauthorized, "unauthenticated"},
	{auth.ErrPermissionDenied, http.StatusForbidden, "permission_denied"},
	{auth.ErrAuthDisabled, http.StatusConflict, "auth_disabled"},
	{auth.ErrPasswordSize, http.StatusBadRequest, "bad_password_size"},
}

// writeAuthError answers an auth error: 401 (with WWW-Authenticate) when
// the request must authenticate, 403 when the user may not.
func writeAuthError(w http.ResponseWriter, err error) {
	for _, e := range authErrors {
		if errors.Is(err, e.err) {
			if e.status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="raftex"`)
			}
			writeJSON(w, e.status, errorBody{Error: err.Error(), Code: e.code})
			return
		}
	}
	writeError(w, http.StatusInternalServerError, err.Error())
}
