// Package client is the Go client of a raftex cluster. It talks HTTP to
// any of a list of endpoints, retries on connection errors and 503 with
// capped backoff, moving on to the next endpoint, and carries a client
// session on every write so that retries apply exactly once (thesis §6.3).
// It registers the session on its first write, and again when the cluster
// reports it expired. Given a user name and password it logs in (a token
// from POST /v1/auth/token) before its first request and again when the
// token expires.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raftex/raftex/internal/session"
	"github.com/raftex/raftex/kvapi"
)

// Errors returned by the client besides those of package kvapi
// (kvapi.ErrNotFound, kvapi.ErrCASMismatch, kvapi.ErrCompacted). Use
// errors.Is and errors.As.
var (
	// ErrUnknownMember: a membership call named no member (404).
	ErrUnknownMember = errors.New("client: unknown member")
	// ErrConflict: a membership change was refused because another is
	// pending or the id or address is taken, or a leadership transfer
	// aborted (409). Nothing changed; try again later.
	ErrConflict = errors.New("client: conflict")
	// ErrBadRequest: the server refused the request as malformed (400).
	ErrBadRequest = errors.New("client: bad request")
	// ErrTooLarge: the value exceeds the server's limit (413).
	ErrTooLarge = errors.New("client: value too large")
	// ErrUnavailable: no endpoint could serve the request before the
	// context ended. For a write, the outcome is unknown; retrying the same
	// Client call keeps it exactly-once only within the call's retries.
	ErrUnavailable = errors.New("client: cluster unavailable")
	// ErrSessionExpired: the client's session expired while a write was
	// retried after an attempt whose answer was lost, so whether that
	// attempt applied is unknown. The error also matches ErrUnavailable
	// (outcome unknown). The client registers a new session for its next
	// write; a write whose session expired before any attempt could apply
	// is retried in the new session without this error.
	ErrSessionExpired = errors.New("client: session expired")
	// ErrUnauthorized: the cluster has auth enabled and the request
	// carried no valid credentials (401), or logging in failed.
	ErrUnauthorized = errors.New("client: not authenticated")
	// ErrForbidden: the user lacks the permission the request needs (403).
	ErrForbidden = errors.New("client: permission denied")
)

// Options configure a Client; zero values take the defaults.
type Options struct {
	// HTTPClient to use. Default: a client with keep-alives (and TLS).
	HTTPClient *http.Client
	// TLS, when set, speaks HTTPS: endpoints without a scheme are
	// https://host:port, verified with TLS.RootCAs, and TLS.Certificates
	// is the client certificate a node may ask for (whose common name can
	// name the user). Ignored with HTTPClient (configure its transport).
	// Nil: endpoints without a scheme are http://.
	TLS *tls.Config
	// MinBackoff and MaxBackoff bound the wait between attempts.
	// Defaults 20 ms and 1 s.
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one attempt on one endpoint, so that a hung
	// node (accepting connections, answering nothing) costs one attempt,
	// not the whole call: the next attempt goes to the next endpoint. Keep
	// it above the servers' --request-timeout, which bounds how long a
	// healthy node may take to answer 503. Default 10 s.
	AttemptTimeout time.Duration
	// Username and Password log in (when the cluster has auth enabled):
	// the token is sent as "Authorization: Bearer" and renewed when it
	// expires or a node refuses it. Empty: no login.
	Username, Password string
}

// Client is safe for concurrent use.
type Client struct {
	endpoints []string
	http      *http.Client
	opts      Options
	session   *session.Session
	mu        sync.Mutex
	preferred int
	// token is the login's token (""; none) and expires its expiry.
	token   string
	expires time.Time
}

// New returns a client of the cluster reachable at endpoints (host:port
// or URLs).
func New(endpoints []string, opts Options) (*Client, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("client: no endpoints")
	}
	c := &Client{http: opts.HTTPClient, opts: opts}
	c.session = session.New(c.register, sessionWindow)
	for _, e := range endpoints {
		c.endpoints = append(c.endpoints, strings.TrimRight(c.url(strings.TrimSpace(e)), "/"))
	}
	if c.http == nil {
		c.http = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, TLSClientConfig: opts.TLS}}
	}
	if c.opts.MinBackoff <= 0 {
		c.opts.MinBackoff = 20 * time.Millisecond
	}
	if c.opts.MaxBackoff <= 0 {
		c.opts.MaxBackoff = time.Second
	}
	if c.opts.AttemptTimeout <= 0 {
		c.opts.AttemptTimeout = 10 * time.Second
	}
	return c, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Set sets key to value and returns the new revision (the log index of
// the write). kvapi.WithCAS makes it conditional.
func (c *Client) Set(ctx context.Context, key string, value []byte, opts ...kvapi.WriteOption) (uint64, error) {
	var out struct {
		Revision uint64 `json:"revision"`
	}
	err := c.write(ctx, http.MethodPut, key, value, opts, &out)
	return out.Revision, err
}

// Delete removes key; deleted reports whether it existed.
func (c *Client) Delete(ctx context.Context, key string, opts ...kvapi.WriteOption) (deleted bool, revision uint64, err error) {
	var out struct {
		Deleted  bool   `json:"deleted"`
		Revision uint64 `json:"revision"`
	}
	err = c.write(ctx, http.MethodDelete, key, nil, opts, &out)
	return out.Deleted, out.Revision, err
}

// Get returns key's value and revision, or kvapi.ErrNotFound; linearizable
// unless kvapi.WithConsistency says otherwise.
func (c *Client) Get(ctx context.Context, key string, opts ...kvapi.ReadOption) ([]byte, uint64, error) {
	q := url.Values{}
	q.Set("consistency", string(kvapi.ApplyRead(opts).Consistency))
	var value []byte
	var rev uint64
	err := c.do(ctx, func(ctx context.Context, base string) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, base+keyPath(key)+"?"+q.Encode(), nil)
	}, func(resp *http.Response) error {
		var err error
		value, err = io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		rev, _ = strconv.ParseUint(resp.Header.Get("Raftex-Revision"), 10, 64)
		return nil
	}, nil)
	return value, rev, err
}

// Status is a node's GET /v1/status.
type Status struct {
	ID           string `json:"id"`
	Role         string `json:"role"`
	Term         uint64 `json:"term"`
	Leader       string `json:"leader"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	LastIndex    uint64 `json:"last_index"`
	Members      []struct {
		ID         string `json:"id"`
		PeerAddr   string `json:"peer_addr"`
		ClientAddr string `json:"client_addr"`
		Voter      bool   `json:"voter"`
	} `json:"members"`
}

// url makes endpoint a URL: host:port gets https:// with Options.TLS,
// else http://.
func (c *Client) url(endpoint string) string {
	switch {
	case strings.Contains(endpoint, "://"):
		return endpoint
	case c.opts.TLS != nil:
		return "https://" + endpoint
	}
	return "http://" + endpoint
}

// Status asks one endpoint (no retries, no failover).
func (c *Client) Status(ctx context.Context, endpoint string) (Status, error) {
	var st Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(endpoint)+"/v1/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := c.send(ctx, req, false)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, responseError(resp)
	}
	return st, json.NewDecoder(capped(resp.Body, maxSmallAnswer)).Decode(&st)
}

// Endpoints returns the endpoints as URLs.
func (c *Client) Endpoints() []string { return append([]string(nil), c.endpoints...) }

func keyPath(key string) string { return "/v1/kv/" + url.PathEscape(key) }

// sessionWindow is how many of a session's most recent requests the
// servers remember (kv.SessionWindow): they refuse a request that many
// sequence numbers older than the session's newest, rather than risk
// applying it twice. So no write may take a sequence number that far
// ahead of the oldest unfinished one.
const sessionWindow = 256

// ClientID returns the client id of the session the writes use (0: none
// registered yet).
func (c *Client) ClientID() uint64 { return c.session.ClientID() }

// register registers a new session (POST /v1/sessions). If an attempt's
// answer is lost, the next one registers another session: the first is
// never used and expires.
func (c *Client) register(ctx context.Context) (uint64, error) {
	var out struct {
		ClientID uint64 `json:"client_id"`
	}
	err := c.do(ctx, func(ctx context.Context, base string) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/sessions", nil)
	}, func(resp *http.Response) error {
		return json.NewDecoder(capped(resp.Body, maxSmallAnswer)).Decode(&out)
	}, nil)
	if err == nil && out.ClientID == 0 {
		err = errors.New("client: the cluster registered no session")
	}
	return out.ClientID, err
}

// write sends one logical write, with one session sequence number for all
// its attempts: however many reach the cluster, it applies once. If the
// session expired before any attempt could apply, the write goes again in
// a new session.
func (c *Client) write(ctx context.Context, method, key string, body []byte, opts []kvapi.WriteOption, out any) error {
	q := url.Values{}
	if o := kvapi.ApplyWrite(opts); o.CAS {
		q.Set("cas", strconv.FormatUint(o.Revision, 10))
	}
	return c.writeTo(ctx, method, keyPath(key)+"?"+q.Encode(), body, out)
}

// writeTo is write to any path (with its query) that takes a session.
func (c *Client) writeTo(ctx context.Context, method, path string, body []byte, out any) error {
	for {
		t, err := c.session.Acquire(ctx)
		if err != nil && !errors.Is(err, ErrUnavailable) && ctx.Err() != nil {
			err = fmt.Errorf("%w: %w (waiting for a session, or for the oldest of %d writes in flight)", ErrUnavailable, err, sessionWindow)
		}
		if err != nil {
			return err
		}
		maybeApplied := false
		err = c.do(ctx, func(ctx context.Context, base string) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Raftex-Client-Id", strconv.FormatUint(t.ClientID, 10))
			req.Header.Set("Raftex-Request-Seq", strconv.FormatUint(t.Seq, 10))
			return req, nil
		}, func(resp *http.Response) error {
			return json.NewDecoder(resp.Body).Decode(out)
		}, &maybeApplied)
		c.session.Release(t)
		if !errors.Is(err, ErrSessionExpired) {
			return err
		}
		c.session.Expired(t)
		if maybeApplied {
			return fmt.Errorf("%w: %w: the write's outcome is unknown: an earlier attempt may have applied (%v)", ErrSessionExpired, ErrUnavailable, err)
		}
	}
}

// do runs attempts against the endpoints until one answers something other
// than a connection error, a timeout of the attempt or 503, or ctx ends.
// maybeApplied, if not nil, is set when an attempt may have reached a
// node and its answer was lost or said the outcome is unknown.
func (c *Client) do(ctx context.Context, newReq func(ctx context.Context, base string) (*http.Request, error), onOK func(*http.Response) error, maybeApplied *bool) error {
	var last error
	backoff := c.opts.MinBackoff
	for attempt := 0; ; attempt++ {
		idx := c.endpoint(attempt)
		done, sent, err := c.attempt(ctx, c.endpoints[idx], newReq, onOK)
		if maybeApplied != nil && !done && sent {
			*maybeApplied = true
		}
		if done {
			if err == nil {
				c.prefer(idx)
			}
			return err
		}
		if last == nil || ctx.Err() == nil {
			// An attempt that ctx cut short says less than the answer
			// before it (a 503 saying why the cluster could not serve).
			last = err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %w (last error: %v)", ErrUnavailable, ctx.Err(), last)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: %w (last error: %v)", ErrUnavailable, ctx.Err(), last)
		case <-t.C:
		}
		backoff = min(2*backoff, c.opts.MaxBackoff)
	}
}

// attempt sends one request to base within AttemptTimeout; done reports
// an answer to return (success or a definite error), !done one to retry;
// sent reports that the request may have reached the node.
func (c *Client) attempt(ctx context.Context, base string, newReq func(context.Context, string) (*http.Request, error), onOK func(*http.Response) error) (done, sent bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
	defer cancel()
	req, err := newReq(ctx, base)
	if err != nil {
		return true, false, err
	}
	resp, err := c.send(ctx, req, req.URL.Path == loginPath)
	if err != nil {
		var op *net.OpError
		dialFailed := errors.As(err, &op) && op.Op == "dial"
		if errors.Is(err, ErrUnauthorized) {
			return true, false, err // logging in failed: not sent
		}
		return false, !dialFailed, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		resp.Body = io.NopCloser(capped(resp.Body, maxAnswer))
		if err := onOK(resp); err != nil {
			return false, true, err // the answer was cut off: ask again
		}
		return true, true, nil
	}
	err = responseError(resp)
	if resp.StatusCode == http.StatusTooManyRequests {
		return false, false, err // refused before anything was done
	}
	return !errors.Is(err, ErrUnavailable), true, err
}

const loginPath = "/v1/auth/token"

// send sends req with the login's token, logging in first when there is
// none or it expired; a 401 (the token expired early by another node's
// clock, or its user was changed) logs in again and sends req once more:
// a request refused with 401 did nothing. login: req is the login itself.
func (c *Client) send(ctx context.Context, req *http.Request, login bool) (*http.Response, error) {
	if login || c.opts.Username == "" {
		return c.http.Do(req)
	}
	for fresh := false; ; fresh = true {
		tok, err := c.currentToken(ctx, fresh)
		if err != nil {
			return nil, err
		}
		if req.GetBody != nil && fresh {
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := c.http.Do(req)
		if err != nil || resp.StatusCode != http.StatusUnauthorized || fresh {
			return resp, err
		}
		resp.Body.Close()
	}
}

// currentToken returns the login's token, logging in when there is none,
// it expires within a few seconds, or renew.
func (c *Client) currentToken(ctx context.Context, renew bool) (string, error) {
	c.mu.Lock()
	tok, exp := c.token, c.expires
	c.mu.Unlock()
	if !renew && time.Until(exp) > 5*time.Second {
		return tok, nil // "" while auth is disabled
	}
	tok, err := c.Login(ctx)
	if errors.Is(err, errAuthDisabled) {
		// Send without a token; ask again in a while.
		c.mu.Lock()
		c.token, c.expires = "", time.Now().Add(time.Minute)
		c.mu.Unlock()
		return "", nil
	}
	return tok, err
}

// errAuthDisabled: logging in to a cluster whose auth is not enabled.
var errAuthDisabled = errors.New("client: auth is not enabled")

// Login logs in with Options.Username and Password and returns the
// token, which the client then sends with every request (it does so by
// itself when needed: call Login to check the credentials early).
func (c *Client) Login(ctx context.Context) (string, error) {
	body, _ := json.Marshal(map[string]string{"name": c.opts.Username, "password": c.opts.Password})
	var out struct {
		Token   string    `json:"token"`
		Expires time.Time `json:"expires"`
	}
	err := c.do(ctx, func(ctx context.Context, base string) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodPost, base+loginPath, bytes.NewReader(body))
	}, func(resp *http.Response) error {
		return json.NewDecoder(capped(resp.Body, maxSmallAnswer)).Decode(&out)
	}, nil)
	if err != nil {
		return "", fmt.Errorf("client: logging in as %q: %w", c.opts.Username, err)
	}
	c.mu.Lock()
	c.token, c.expires = out.Token, out.Expires
	c.mu.Unlock()
	return out.Token, nil
}

// endpoint picks the endpoint for an attempt: the last one that worked,
// then the others in turn.
func (c *Client) endpoint(attempt int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return (c.preferred + attempt) % len(c.endpoints)
}

func (c *Client) prefer(i int) {
	c.mu.Lock()
	c.preferred = i
	c.mu.Unlock()
}

// responseError turns a non-200 answer into a typed error.
func responseError(resp *http.Response) error {
	var body struct {
		Error           string  `json:"error"`
		Code            string  `json:"code"`
		Revision        *uint64 `json:"revision"`
		Leader          string  `json:"leader"`
		CompactRevision uint64  `json:"compact_revision"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	msg := resp.Status
	if json.Unmarshal(raw, &body) == nil && body.Error != "" {
		msg = body.Error
	} else if text := strings.TrimSpace(string(raw)); text != "" && len(text) < 200 && !strings.HasPrefix(text, "{") {
		// Not one of ours: Go's own answer, such as "Client sent an
		// HTTP request to an HTTPS server."
		msg = text
	}
	switch {
	case body.Code == "auth_disabled":
		return fmt.Errorf("%w: %s", errAuthDisabled, msg)
	case body.Code == "unknown_member":
		return fmt.Errorf("%w: %s", ErrUnknownMember, msg)
	case body.Code == "change_pending" || body.Code == "member_exists" || body.Code == "transfer_aborted":
		return fmt.Errorf("%w: %s", ErrConflict, msg)
	case resp.StatusCode != http.StatusConflict && resp.StatusCode != http.StatusNotFound:
	case body.Code == "" || body.Code == "cas_mismatch":
	default: // a refused auth change: no such user, a role that exists, ...
		return fmt.Errorf("client: %s", msg)
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return kvapi.ErrNotFound
	case http.StatusConflict:
		rev := uint64(0)
		if body.Revision != nil {
			rev = *body.Revision
		}
		return &kvapi.CASMismatchError{Revision: rev}
	case http.StatusGone:
		return &kvapi.CompactedError{CompactRevision: body.CompactRevision}
	case http.StatusBadRequest:
		return fmt.Errorf("%w: %s", ErrBadRequest, msg)
	case http.StatusRequestEntityTooLarge:
		return fmt.Errorf("%w: %s", ErrTooLarge, msg)
	case http.StatusServiceUnavailable:
		return fmt.Errorf("%w: %s", ErrUnavailable, msg)
	case http.StatusPreconditionFailed:
		return fmt.Errorf("%w: %s", ErrSessionExpired, msg)
	case http.StatusUnauthorized:
		return fmt.Errorf("%w: %s", ErrUnauthorized, msg)
	case http.StatusForbidden:
		return fmt.Errorf("%w: %s", ErrForbidden, msg)
	case http.StatusTooManyRequests:
		return fmt.Errorf("%w: %s", ErrUnavailable, msg)
	}
	return fmt.Errorf("client: %s: %s", resp.Status, msg)
}
