package server

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/raftex/raftex/auth"
	"github.com/raftex/raftex/kv"
)

// authRoutes mounts login and the management of users and roles (each in
// routeAccess).
func (s *Server) authRoutes() {
	s.mux.HandleFunc("GET /v1/auth", s.handleWhoAmI)
	s.mux.HandleFunc("POST /v1/auth/token", s.handleLogin)
	s.mux.HandleFunc("DELETE /v1/auth/token", s.handleLogout)
	s.mux.HandleFunc("POST /v1/auth/enable", func(w http.ResponseWriter, r *http.Request) {
		key := make([]byte, auth.KeySize)
		rand.Read(key) // never fails (crypto/rand)
		s.changeAuth(w, r, auth.Change{Kind: auth.Enable, Key: key})
	})
	s.mux.HandleFunc("POST /v1/auth/disable", func(w http.ResponseWriter, r *http.Request) {
		s.changeAuth(w, r, auth.Change{Kind: auth.Disable})
	})
	s.mux.HandleFunc("GET /v1/auth/users", s.handleUsers)
	s.mux.HandleFunc("POST /v1/auth/users", s.handleAddUser)
	s.mux.HandleFunc("DELETE /v1/auth/users/{name}", func(w http.ResponseWriter, r *http.Request) {
		s.changeAuth(w, r, auth.Change{Kind: auth.DeleteUser, Name: r.PathValue("name")})
	})
	s.mux.HandleFunc("POST /v1/auth/users/{name}/roles", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Role string `json:"role"`
		}
		if readJSON(w, r, &body) {
			s.changeAuth(w, r, auth.Change{Kind: auth.GrantRole, Name: r.PathValue("name"), Role: body.Role})
		}
	})
	s.mux.HandleFunc("GET /v1/auth/roles", s.handleRoles)
	s.mux.HandleFunc("POST /v1/auth/roles", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Name string `json:"name"`
		}
		if readJSON(w, r, &body) {
			s.changeAuth(w, r, auth.Change{Kind: auth.AddRole, Name: body.Name})
		}
	})
	s.mux.HandleFunc("POST /v1/auth/roles/{name}/permissions", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Prefix string `json:"prefix"`
			Access string `json:"access"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		a, err := auth.ParseAccess(body.Access)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error(), Code: "bad_change"})
			return
		}
		s.changeAuth(w, r, auth.Change{Kind: auth.GrantPermission, Name: r.PathValue("name"), Perm: auth.Permission{Prefix: body.Prefix, Access: a}})
	})
}

// readJSON decodes a small JSON body into v, or answers 400.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "reading the JSON body: "+err.Error())
		return false
	}
	return true
}

// changeAuth replicates an auth change in the requester's name; the state
// machine checks it again at apply (root only, with auth enabled).
func (s *Server) changeAuth(w http.ResponseWriter, r *http.Request, c auth.Change) {
	if err := c.Validate(); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error(), Code: "bad_change"})
		return
	}
	cmd := kv.ChangeAuth(c)
	cmd.ByClient, cmd.User = true, requestUser(r)
	if !inSession(w, r, &cmd) {
		return
	}
	if res, ok := s.execute(w, r, cmd); ok {
		s.log.Info("auth changed", "change", r.Method+" "+r.URL.Path, "name", c.Name, "by", cmd.User, "revision", res.Revision)
		writeJSON(w, http.StatusOK, map[string]uint64{"revision": res.Revision})
	}
}

// hash runs bcrypt, at most GOMAXPROCS at once: each costs tens of
// milliseconds of CPU, which a flood of logins must not multiply.
func (s *Server) hash(ctx context.Context, f func() error) error {
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer s.hashing.release()
	return f()
}

func (s *Server) handleAddUser(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	if err := auth.ValidateName(body.Name); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error(), Code: "bad_change"})
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	var h []byte
	err := s.hash(ctx, func() (err error) {
		h, err = auth.HashPassword(body.Password, s.cfg.PasswordCost)
		return err
	})
	switch {
	case errors.Is(err, auth.ErrPasswordSize):
		writeAuthError(w, err)
	case err != nil:
		s.writeUnavailable(w, err)
	default:
		s.changeAuth(w, r, auth.Change{Kind: auth.AddUser, Name: body.Name, Hash: h})
	}
}

// TokenJSON is the body of POST /v1/auth/token's answer.
type TokenJSON struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// handleLogin checks a name and password against the state as of a read
// barrier (a user just added logs in on any node) and answers a token,
// also set as an HttpOnly, SameSite=Strict cookie for the event streams.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	if err := s.Read(ctx); err != nil {
		s.writeUnavailable(w, err)
		return
	}
	var tok string
	var exp time.Time
	err := s.hash(ctx, func() (err error) {
		tok, exp, err = s.kv.Auth().Login(body.Name, body.Password, s.cfg.Now(), s.cfg.TokenTTL)
		return err
	})
	switch {
	case err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()):
		s.writeUnavailable(w, err) // waited too long for a free bcrypt slot
		return
	case err != nil:
		s.log.Info("login refused", "user", body.Name, "remote", r.RemoteAddr, "err", err)
		writeAuthError(w, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: tok, Path: "/", Expires: exp, MaxAge: int(s.cfg.TokenTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	writeJSON(w, http.StatusOK, TokenJSON{Token: tok, Expires: exp.UTC()})
}

// handleLogout clears the login cookie (a token itself lasts until it
// expires).
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	w.WriteHeader(http.StatusNoContent)
}

// handleWhoAmI says whether auth is enabled here and who the credentials
// name ("" for none, or credentials that do not check).
func (s *Server) handleWhoAmI(w http.ResponseWriter, r *http.Request) {
	st := s.kv.Auth()
	user, err := Authenticate(st, credentials(r, true), s.cfg.Now())
	if err != nil {
		user = ""
	}
	writeJSON(w, http.StatusOK, map[string]any{"enabled": st.Enabled(), "user": user})
}

// UserJSON and RoleJSON describe users and roles (never a password hash).
type UserJSON struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}

// RoleJSON describes a role.
type RoleJSON struct {
	Name        string           `json:"name"`
	Permissions []PermissionJSON `json:"permissions"`
}

// PermissionJSON is one permission of a role.
type PermissionJSON struct {
	Prefix string `json:"prefix"`
	Access string `json:"access"`
}

func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request) {
	out := []UserJSON{}
	for _, u := range s.kv.Auth().Users() {
		out = append(out, UserJSON{Name: u.Name, Roles: append([]string{}, u.Roles...)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleRoles(w http.ResponseWriter, r *http.Request) {
	out := []RoleJSON{}
	for _, role := range s.kv.Auth().Roles() {
		rj := RoleJSON{Name: role.Name, Permissions: []PermissionJSON{}}
		for _, p := range role.Perms {
			rj.Permissions = append(rj.Permissions, PermissionJSON{Prefix: p.Prefix, Access: p.Access.String()})
		}
		out = append(out, rj)
	}
	writeJSON(w, http.StatusOK, out)
}
