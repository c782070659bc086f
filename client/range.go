package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/raftex/raftex/kvapi"
)

// prefixQuery puts a key or prefix in a query: as text when it is valid
// UTF-8, else in base64 (name_base64).
func prefixQuery(q url.Values, name string, v []byte) {
	if utf8.Valid(v) {
		q.Set(name, string(v))
	} else {
		q.Set(name+"_base64", base64.StdEncoding.EncodeToString(v))
	}
}

// List returns a page of the keys under prefix in key order (see
// kvapi.ListOptions): ask again with StartAfter the last key while More.
func (c *Client) List(ctx context.Context, prefix string, o kvapi.ListOptions) (kvapi.ListResult, error) {
	q := url.Values{}
	prefixQuery(q, "prefix", []byte(prefix))
	if o.StartAfter != nil {
		prefixQuery(q, "start_after", o.StartAfter)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.KeysOnly {
		q.Set("keys_only", "true")
	}
	if o.Consistency != "" {
		q.Set("consistency", string(o.Consistency))
	}
	var out kvapi.ListResult
	err := c.do(ctx, func(ctx context.Context, base string) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/kv?"+q.Encode(), nil)
	}, func(resp *http.Response) error {
		out = kvapi.ListResult{}
		return json.NewDecoder(resp.Body).Decode(&out)
	}, nil)
	return out, err
}

// DeletePrefix deletes every key under prefix, as one revision, and
// returns how many it deleted. An empty prefix is refused (ErrBadRequest)
// unless all is true.
func (c *Client) DeletePrefix(ctx context.Context, prefix string, all bool) (deleted, revision uint64, err error) {
	q := url.Values{}
	prefixQuery(q, "prefix", []byte(prefix))
	if all {
		q.Set("all", "true")
	}
	var out struct {
		Deleted  uint64 `json:"deleted"`
		Revision uint64 `json:"revision"`
	}
	err = c.writeTo(ctx, http.MethodDelete, "/v1/kv?"+q.Encode(), nil, &out)
	return out.Deleted, out.Revision, err
}

// Txn runs a transaction, exactly once (in the client's session). A
// compare that fails is no error: Succeeded is false.
func (c *Client) Txn(ctx context.Context, t kvapi.Txn) (kvapi.TxnResponse, error) {
	body, err := json.Marshal(t)
	if err != nil {
		return kvapi.TxnResponse{}, err
	}
	var out kvapi.TxnResponse
	err = c.writeTo(ctx, http.MethodPost, "/v1/txn", body, &out)
	return out, err
}

// Watch delivers the changes of the keys under prefix from revision
// fromRev (0: from now), one Event per revision, in order, until ctx
// ends (the channel then closes). It reconnects by itself, to any
// endpoint, resuming after the last revision delivered (Last-Event-ID):
// no change is missed or repeated. When the cluster no longer has the
// changes it needs (410, or a stream ended by "compacted"), it lists the
// prefix and delivers it as a Reset event, then watches from the
// listing's revision. An error it cannot get past (permission, a bad
// prefix) is delivered as a last Event with Err.
func (c *Client) Watch(ctx context.Context, prefix string, fromRev uint64) <-chan kvapi.Event {
	ch := make(chan kvapi.Event)
	go c.watch(ctx, []byte(prefix), fromRev, ch)
	return ch
}

func (c *Client) watch(ctx context.Context, prefix []byte, from uint64, ch chan<- kvapi.Event) {
	defer close(ch)
	emit := func(ev kvapi.Event) bool {
		select {
		case ch <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	// last: the last revision delivered (0: none yet; from says where to
	// start).
	var last uint64
	backoff := c.opts.MinBackoff
	for attempt := 0; ctx.Err() == nil; attempt++ {
		idx := c.endpoint(attempt)
		err := c.stream(ctx, c.endpoints[idx], prefix, from, last, func(ev kvapi.Event) bool {
			last = ev.Revision
			backoff = c.opts.MinBackoff
			return emit(ev)
		})
		var ce *kvapi.CompactedError
		switch {
		case ctx.Err() != nil:
			return
		case errors.As(err, &ce):
			reset, err := kvapi.ResetEvent(prefix, func(o kvapi.ListOptions) (kvapi.ListResult, error) {
				return c.List(ctx, string(prefix), o)
			})
			if err != nil {
				if ctx.Err() == nil {
					emit(kvapi.Event{Err: err})
				}
				return
			}
			if !emit(reset) {
				return
			}
			last, from = 0, reset.Revision+1
			continue
		case errors.Is(err, ErrBadRequest) || errors.Is(err, ErrForbidden) || errors.Is(err, ErrUnauthorized):
			emit(kvapi.Event{Err: err})
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, c.opts.MaxBackoff)
	}
}

// stream runs one watch request against base, calling emit per event,
// until the stream ends; it returns why (a *kvapi.CompactedError for 410
// or a final "compacted" event).
func (c *Client) stream(ctx context.Context, base string, prefix []byte, from, last uint64, emit func(kvapi.Event) bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q := url.Values{}
	prefixQuery(q, "prefix", prefix)
	if from > 0 {
		q.Set("from_revision", strconv.FormatUint(from, 10))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/watch?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	if last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(last, 10))
	}
	resp, err := c.send(ctx, req, false)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return responseError(resp)
	}
	// A node that stops answering is noticed by the missing heartbeats.
	const quiet = time.Minute
	idle := time.AfterFunc(quiet, cancel)
	defer idle.Stop()
	br := bufio.NewReader(resp.Body)
	var id, event string
	var data []byte
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return fmt.Errorf("client: watch stream ended: %w", err)
		}
		idle.Reset(quiet)
		line = bytes.TrimSuffix(line, []byte("\n"))
		switch {
		case len(line) == 0:
			if event == "" {
				continue
			}
			ev, err := parseEvent(id, event, data)
			if err != nil {
				return err
			}
			if !emit(ev) {
				return ctx.Err()
			}
			id, event, data = "", "", nil
		case bytes.HasPrefix(line, []byte("id: ")):
			id = string(line[4:])
		case bytes.HasPrefix(line, []byte("event: ")):
			event = string(line[7:])
		case bytes.HasPrefix(line, []byte("data: ")):
			data = append(data[:0], line[6:]...)
		}
	}
}

// parseEvent turns one server-sent message into an Event, or the error
// that ends the stream (a "compacted" message).
func parseEvent(id, event string, data []byte) (kvapi.Event, error) {
	switch event {
	case "compacted":
		var body struct {
			Error           string `json:"error"`
			CompactRevision uint64 `json:"compact_revision"`
		}
		json.Unmarshal(data, &body)
		return kvapi.Event{}, &kvapi.CompactedError{CompactRevision: body.CompactRevision, Reason: body.Error}
	case "put", "delete":
		var kv kvapi.KeyValue
		if err := json.Unmarshal(data, &kv); err != nil {
			return kvapi.Event{}, fmt.Errorf("client: a %s event: %w", event, err)
		}
		t := kvapi.ChangePut
		if event == "delete" {
			t = kvapi.ChangeDelete
		}
		return kvapi.Event{Revision: kv.Revision, Changes: []kvapi.Change{{Type: t, Key: kv.Key, Value: kv.Value}}}, nil
	case "batch":
		var ev struct {
			Revision uint64         `json:"revision"`
			Changes  []kvapi.Change `json:"changes"`
		}
		if err := json.Unmarshal(data, &ev); err != nil {
			return kvapi.Event{}, fmt.Errorf("client: a batch event: %w", err)
		}
		return kvapi.Event{Revision: ev.Revision, Changes: ev.Changes}, nil
	}
	return kvapi.Event{}, fmt.Errorf("client: unknown watch event %q (id %s)", event, id)
}
