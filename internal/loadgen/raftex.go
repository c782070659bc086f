package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/raftex/raftex/client"
	"github.com/raftex/raftex/kvapi"
)

// Raftex is a Target of a raftex cluster through the Go client,
// round-robin over its endpoints: operation i goes first to endpoint
// i mod n (then, if it fails there, to the others, as the client does), so
// a follower forwards its share of writes as in a real deployment. Each
// endpoint has a client of its own, with its own session.
type Raftex struct {
	clients     []*client.Client
	consistency kvapi.Consistency
	next        atomic.Uint64
}

var _ Target = (*Raftex)(nil)

// NewRaftex returns a Target of the cluster at endpoints; gets have
// consistency.
func NewRaftex(endpoints []string, consistency kvapi.Consistency, opts client.Options) (*Raftex, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("loadgen: no endpoints")
	}
	t := &Raftex{consistency: consistency}
	for i := range endpoints {
		rotated := append(append([]string(nil), endpoints[i:]...), endpoints[:i]...)
		c, err := client.New(rotated, opts)
		if err != nil {
			return nil, err
		}
		t.clients = append(t.clients, c)
	}
	return t, nil
}

func (t *Raftex) client() *client.Client {
	return t.clients[(t.next.Add(1)-1)%uint64(len(t.clients))]
}

// Put sets key.
func (t *Raftex) Put(ctx context.Context, key string, value []byte) error {
	_, err := t.client().Set(ctx, key, value)
	return err
}

// Get reads key.
func (t *Raftex) Get(ctx context.Context, key string) (bool, error) {
	_, _, err := t.client().Get(ctx, key, kvapi.WithConsistency(t.consistency))
	if errors.Is(err, kvapi.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// ErrorKind names the client's errors.
func (t *Raftex) ErrorKind(err error) string {
	switch {
	case errors.Is(err, client.ErrSessionExpired):
		return "session_expired"
	case errors.Is(err, context.DeadlineExceeded):
		return TimeoutKind
	case errors.Is(err, client.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, client.ErrBadRequest):
		return "bad_request"
	case errors.Is(err, client.ErrTooLarge):
		return "too_large"
	case errors.Is(err, client.ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, client.ErrForbidden):
		return "forbidden"
	}
	return "other"
}

// ErrUnreachable: no endpoint answered Reachable.
var ErrUnreachable = errors.New("loadgen: no endpoint reachable")

// Reachable asks every endpoint for its status (within timeout each) and
// fails with ErrUnreachable, naming each endpoint's error, when none
// answers at all (an error status is an answer).
func (t *Raftex) Reachable(ctx context.Context, timeout time.Duration) error {
	var why []string
	for _, c := range t.clients {
		e := c.Endpoints()[0]
		sctx, cancel := context.WithTimeout(ctx, timeout)
		_, err := c.Status(sctx, e)
		cancel()
		var transport *url.Error
		if !errors.As(err, &transport) {
			return nil
		}
		why = append(why, fmt.Sprintf("%s: %v", strings.TrimPrefix(e, "http://"), err))
	}
	return fmt.Errorf("%w: %s", ErrUnreachable, strings.Join(why, "; "))
}

// Close releases the clients' idle connections.
func (t *Raftex) Close() {
	for _, c := range t.clients {
		c.Close()
	}
}
