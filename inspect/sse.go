package inspect

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/raftex/raftex/raft"
)

// KeepAlive is how often SSEHandler writes a comment line to a quiet
// stream, so proxies and browsers keep the connection open.
const KeepAlive = 15 * time.Second

// SSEHandler serves events as Server-Sent Events (text/event-stream): one
// "data: {JSONEvent}" message per event, flushed at once. Each request calls
// subscribe and calls its cancel when the client goes away or the events
// channel closes (which ends the response).
//
// Query parameters: events=state,rpc,commit,snapshot (ParseCategories; all
// by default) and heartbeats=1 to include heartbeats. A bad value is answered
// 400 with {"error":"..."}.
//
// writeTimeout bounds each write: a client that stops reading is cut off,
// so it holds neither a stream slot nor a goroutine for long.
func SSEHandler(subscribe func() (events <-chan raft.Event, cancel func()), writeTimeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := sseFilter(r)
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		events, cancel := subscribe()
		defer cancel()
		serveSSE(r, w, f, events, writeTimeout)
	})
}

func sseFilter(r *http.Request) (Filter, error) {
	q := r.URL.Query()
	cats, err := ParseCategories(q.Get("events"))
	if err != nil {
		return Filter{}, err
	}
	f := Filter{Categories: cats}
	if s := q.Get("heartbeats"); s != "" {
		if f.Heartbeats, err = strconv.ParseBool(s); err != nil {
			return Filter{}, fmt.Errorf("inspect: heartbeats=%q is not a boolean", s)
		}
	}
	return f, nil
}

// serveSSE streams until the client leaves, events closes or a write fails
// (or waits writeTimeout).
func serveSSE(r *http.Request, w http.ResponseWriter, f Filter, events <-chan raft.Event, writeTimeout time.Duration) {
	rc := http.NewResponseController(w)
	writeFlush := func(s string) error {
		// A writer without deadlines (a test's recorder) has no slow reader.
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := io.WriteString(w, s); err != nil {
			return err
		}
		return rc.Flush()
	}
	// retry: tells EventSource to reconnect after 1 s when the node goes away.
	if writeFlush("retry: 1000\n\n") != nil {
		return
	}
	keepAlive := time.NewTicker(KeepAlive)
	defer keepAlive.Stop()
	for {
		var msg string
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			msg = ": keep-alive\n\n"
		case e, ok := <-events:
			if !ok {
				return
			}
			if !f.Allows(e) {
				continue
			}
			b, err := json.Marshal(NewJSONEvent(e, time.Now()))
			if err != nil {
				return
			}
			msg = "data: " + string(b) + "\n\n"
		}
		if writeFlush(msg) != nil {
			return
		}
	}
}
