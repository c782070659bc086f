package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/raftex/raftex/auth"
	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/kvapi"
)

// compactedBody is the 410 answer, and the data of the final "compacted"
// event.
type compactedBody struct {
	Error           string `json:"error"`
	Code            string `json:"code"`
	CompactRevision uint64 `json:"compact_revision"`
}

func compacted(err *kvapi.CompactedError) compactedBody {
	return compactedBody{Error: err.Error(), Code: "compacted", CompactRevision: err.CompactRevision}
}

// handleWatch serves GET /v1/watch?prefix=P (or key=K) &from_revision=R
// as server-sent events: one message per revision that changed the
// watched keys, in revision order, each once, its id the revision. A
// reconnect's Last-Event-ID resumes after that revision (it wins over
// from_revision); without either the watch starts after this node's last
// applied entry. A start this node's history no longer holds is 410 with
// the compact revision; a stream that falls behind the history, or whose
// node installs a snapshot that skips changes, ends with a "compacted"
// event. The user needs read access over the whole prefix.
func (s *Server) handleWatch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	prefix, hasPrefix, ok := queryBytes(w, q, "prefix")
	if !ok {
		return
	}
	key, hasKey, ok := queryBytes(w, q, "key")
	if !ok {
		return
	}
	if hasKey && hasPrefix {
		writeError(w, http.StatusBadRequest, "give prefix or key, not both")
		return
	}
	if hasKey {
		if err := kv.ValidateKey(key); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		prefix = key
	}
	from, ok := watchStart(w, r)
	if !ok {
		return
	}
	if err := s.kv.Auth().Allow(requestUser(r), auth.NeedRead, prefix); err != nil {
		writeAuthError(w, err)
		return
	}
	if from == 0 {
		from = s.kv.AppliedIndex() + 1
	}
	var watcher *kv.Watcher
	var err error
	if hasKey {
		watcher, err = s.kv.WatchKey(key, from)
	} else {
		watcher, err = s.kv.Watch(prefix, from)
	}
	var ce *kvapi.CompactedError
	switch {
	case errors.As(err, &ce):
		writeJSON(w, http.StatusGone, compacted(ce))
		return
	case errors.Is(err, kv.ErrTooManyWatchers):
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, errorBody{Error: err.Error(), Code: "too_many_requests"})
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer watcher.Close()
	s.streamWatch(w, r, watcher, prefix)
}

// watchStart is the first revision to deliver: after Last-Event-ID, else
// from_revision, else 0 (now).
func watchStart(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		rev, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Last-Event-ID %.20q is not a revision", id))
			return 0, false
		}
		return rev + 1, true
	}
	if v := r.URL.Query().Get("from_revision"); v != "" {
		rev, err := strconv.ParseUint(v, 10, 64)
		if err != nil || rev == 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("from_revision %.20q is not a revision (1 or more)", v))
			return 0, false
		}
		return rev, true
	}
	return 0, true
}

// streamWatch writes the watcher's events until the client leaves, the
// server shuts down, a write fails or stalls (WatchWriteTimeout: a client
// that does not read is cut off), the watcher is compacted (a final
// "compacted" event), or the user loses read access over the prefix (the
// stream ends before the next change: reconnecting answers why).
func (s *Server) streamWatch(w http.ResponseWriter, r *http.Request, watcher *kv.Watcher, prefix []byte) {
	user := requestUser(r)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.watchCtx, cancel)
	defer stop()
	write := func(msg string) bool {
		rc.SetWriteDeadline(time.Now().Add(s.cfg.WatchWriteTimeout))
		_, err := io.WriteString(w, msg)
		return err == nil
	}
	send := func(msg string) bool { return write(msg) && rc.Flush() == nil }
	// retry: tells EventSource to reconnect after 1 s (with Last-Event-ID).
	if !send("retry: 1000\n\n") {
		return
	}
	for {
		wait, cancelWait := context.WithTimeout(ctx, s.cfg.WatchHeartbeat)
		ev, err := watcher.Next(wait)
		cancelWait()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			if !send(": heartbeat\n\n") {
				return
			}
			continue
		}
		if err == nil && s.kv.Auth().Allow(user, auth.NeedRead, prefix) != nil {
			return // as of the state these changes applied on, or later
		}
		// Write what is there already, then flush once: one write per
		// batch of revisions, not per event.
		for err == nil {
			if !write(formatEvent(ev)) {
				return
			}
			ev, err = watcher.Next(expired)
		}
		var ce *kvapi.CompactedError
		if errors.As(err, &ce) {
			b, _ := json.Marshal(compacted(ce))
			send("event: compacted\ndata: " + string(b) + "\n\n")
			return
		}
		if ctx.Err() != nil || rc.Flush() != nil {
			return
		}
	}
}

// expired is a context already ended: Next then returns what is there
// without waiting.
var expired = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// formatEvent is one revision's message: "put" or "delete" when it
// changed one watched key, "batch" when several.
func formatEvent(ev kvapi.Event) string {
	var name string
	var data []byte
	if len(ev.Changes) == 1 {
		c := ev.Changes[0]
		name = c.Type.String()
		kv := kvapi.KeyValue{Key: c.Key, Value: c.Value, Revision: ev.Revision}
		if c.Type == kvapi.ChangePut && kv.Value == nil {
			kv.Value = []byte{} // an empty value is still a value: "value":""
		}
		data, _ = json.Marshal(kv)
	} else {
		name = "batch"
		data, _ = json.Marshal(struct {
			Revision uint64         `json:"revision"`
			Changes  []kvapi.Change `json:"changes"`
		}{ev.Revision, ev.Changes})
	}
	return fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", ev.Revision, name, data)
}
