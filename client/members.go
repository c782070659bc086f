package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// The membership of the cluster and its leadership (docs/operations.md).
// Each call goes to any endpoint, which hands it to the leader; once auth
// is enabled each needs the root role, the list a user.

// Member is one member of the cluster, as GET /v1/members lists it.
type Member struct {
	ID       string `json:"id"`
	PeerAddr string `json:"peer_addr"`
	// ClientAddr is "" until the member has published it.
	ClientAddr string `json:"client_addr"`
	// Voter is false for a learner (thesis §4.2.1).
	Voter bool `json:"voter"`
}

// Members is the answer of every membership call: the members (in the
// configuration the answering node holds) and the leader it knows ("" for
// none).
type Members struct {
	Members []Member `json:"members"`
	Leader  string   `json:"leader"`
	// ClusterID is the id peers present in their handshakes, which a
	// joining node needs.
	ClusterID string `json:"cluster_id,omitempty"`
}

// Members lists the members.
func (c *Client) Members(ctx context.Context) (Members, error) {
	return c.memberCall(ctx, http.MethodGet, "/v1/members", nil)
}

// MemberAdd adds the member id (n4) whose peers reach it at peerAddr
// (host:port). It joins as a learner and is promoted to voter once caught
// up, unless learner is true. It returns once the change is committed.
// ErrConflict: a change is pending, or the id or address is taken.
func (c *Client) MemberAdd(ctx context.Context, id, peerAddr string, learner bool) (Members, error) {
	body := map[string]any{"id": id, "peer_addr": peerAddr}
	if learner {
		body["learner"] = true
	}
	b, _ := json.Marshal(body)
	return c.memberCall(ctx, http.MethodPost, "/v1/members", b)
}

// MemberPromote makes the learner id a voter. ErrUnknownMember: no such member.
func (c *Client) MemberPromote(ctx context.Context, id string) (Members, error) {
	return c.memberCall(ctx, http.MethodPost, "/v1/members/"+url.PathEscape(id)+"/promote", nil)
}

// MemberRemove removes the member id (the leader included: it steps down
// once the change is committed). ErrUnknownMember: no such member.
func (c *Client) MemberRemove(ctx context.Context, id string) (Members, error) {
	return c.memberCall(ctx, http.MethodDelete, "/v1/members/"+url.PathEscape(id), nil)
}

// TransferLeadership hands leadership to the voter to ("": the most
// up-to-date follower) and returns the new leader and its term once it
// leads (thesis §3.10). ErrConflict: the transfer aborted (the target did
// not win within an election timeout); the old leader leads on.
func (c *Client) TransferLeadership(ctx context.Context, to string) (leader string, term uint64, err error) {
	body := map[string]string{}
	if to != "" {
		body["to"] = to
	}
	b, _ := json.Marshal(body)
	var out struct {
		Leader string `json:"leader"`
		Term   uint64 `json:"term"`
	}
	err = c.call(ctx, http.MethodPost, "/v1/leader/transfer", b, &out)
	return out.Leader, out.Term, err
}

func (c *Client) memberCall(ctx context.Context, method, path string, body []byte) (Members, error) {
	var out Members
	err := c.call(ctx, method, path, body, &out)
	return out, err
}

// call sends one request, retried on other endpoints like every call, and
// decodes a 200 answer into out. A change whose answer was lost may have
// been made: its retry then answers ErrConflict or ErrUnknownMember, and the
// error says the first attempt may have applied.
func (c *Client) call(ctx context.Context, method, path string, body []byte, out any) error {
	maybeApplied := false
	err := c.do(ctx, func(ctx context.Context, base string) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	}, func(resp *http.Response) error {
		return json.NewDecoder(capped(resp.Body, maxSmallAnswer)).Decode(out)
	}, &maybeApplied)
	if err != nil && maybeApplied && method != http.MethodGet &&
		(errors.Is(err, ErrConflict) || errors.Is(err, ErrUnknownMember)) {
		return fmt.Errorf("%w (an earlier attempt, whose answer was lost, may have made the change: check with GET /v1/members)", err)
	}
	return err
}
