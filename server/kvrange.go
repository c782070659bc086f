package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/raftex/raftex/auth"
	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/kvapi"
)

// rangeRoutes mounts ranges, prefix deletes, transactions and watches
// (each in routeAccess; the permission over a prefix or a transaction's
// keys is checked by the handler, or at apply).
func (s *Server) rangeRoutes() {
	s.mux.HandleFunc("GET /v1/kv", s.handleList)
	s.mux.HandleFunc("DELETE /v1/kv", s.handleDeletePrefix)
	s.mux.HandleFunc("POST /v1/txn", s.handleTxn)
	s.mux.HandleFunc("GET /v1/watch", s.handleWatch)
}

// queryBytes reads a query parameter that holds a key or prefix: name
// (percent-encoded bytes) or name_base64 (base64), not both. ok is false
// after answering 400.
func queryBytes(w http.ResponseWriter, q url.Values, name string) (v []byte, given, ok bool) {
	plain, hasPlain := q[name]
	b64, hasB64 := q[name+"_base64"]
	switch {
	case hasPlain && hasB64:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("give %s or %s_base64, not both", name, name))
		return nil, false, false
	case hasB64:
		b, err := base64.StdEncoding.DecodeString(b64[0])
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s_base64: %v", name, err))
			return nil, false, false
		}
		v, given = b, true
	case hasPlain:
		v, given = []byte(plain[0]), true
	}
	if len(v) > kv.MaxKeySize {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s: %v", name, kv.ErrKeyTooLong))
		return nil, false, false
	}
	return v, given, true
}

func queryBool(w http.ResponseWriter, q url.Values, name string) (v, ok bool) {
	s := q.Get(name)
	if s == "" {
		return false, true
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s=%.20q is not a boolean", name, s))
		return false, false
	}
	return v, true
}

// handleList serves GET /v1/kv?prefix=P&start_after=K&limit=N&keys_only=true
// at the read's consistency: {"kvs":[...],"more":bool,"revision":R}. The
// user needs read access over the whole prefix.
func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	prefix, _, ok := queryBytes(w, q, "prefix")
	if !ok {
		return
	}
	var o kvapi.ListOptions
	if o.StartAfter, _, ok = queryBytes(w, q, "start_after"); !ok {
		return
	}
	if o.KeysOnly, ok = queryBool(w, q, "keys_only"); !ok {
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > kvapi.MaxListLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %.20q is not a number from 1 to %d", v, kvapi.MaxListLimit))
			return
		}
		o.Limit = n
	}
	if !s.readBarrier(w, r) {
		return
	}
	if err := s.kv.Auth().Allow(requestUser(r), auth.NeedRead, prefix); err != nil {
		writeAuthError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.kv.List(prefix, o))
}

// handleDeletePrefix serves DELETE /v1/kv?prefix=P (or ?all=true):
// {"deleted":N,"revision":R}, one log entry. Write access over the whole
// prefix is checked at apply.
func (s *Server) handleDeletePrefix(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	prefix, _, ok := queryBytes(w, q, "prefix")
	if !ok {
		return
	}
	all, ok := queryBool(w, q, "all")
	if !ok {
		return
	}
	if len(prefix) == 0 && !all {
		writeError(w, http.StatusBadRequest, "a prefix delete needs a non-empty prefix, or all=true to delete every key")
		return
	}
	cmd := kv.DeletePrefix(prefix)
	cmd.ByClient, cmd.User = true, requestUser(r)
	if !inSession(w, r, &cmd) {
		return
	}
	if res, ok := s.execute(w, r, cmd); ok {
		writeJSON(w, http.StatusOK, map[string]uint64{"deleted": res.Count, "revision": res.Revision})
	}
}

// handleTxn serves POST /v1/txn: one transaction, one log entry; the
// permission on every key it touches is checked at apply. A failed
// compare is still 200 ("succeeded": false).
func (s *Server) handleTxn(w http.ResponseWriter, r *http.Request) {
	// Values travel in base64: a third larger, plus the JSON around them.
	limit := int64(s.kv.MaxValueSize())*4/3 + 1<<20
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	var t kvapi.Txn
	if err := dec.Decode(&t); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("transaction larger than %d bytes", limit))
			return
		}
		writeError(w, http.StatusBadRequest, "reading the transaction: "+err.Error())
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, "reading the transaction: data after the JSON object")
		return
	}
	cmd, err := s.kv.TxnCommand(t)
	if err != nil {
		code, status := resultError(err)
		writeJSON(w, status, errorBody{Error: err.Error(), Code: code})
		return
	}
	cmd.ByClient, cmd.User = true, requestUser(r)
	if !inSession(w, r, &cmd) {
		return
	}
	if res, ok := s.execute(w, r, cmd); ok {
		writeJSON(w, http.StatusOK, res.Txn)
	}
}
