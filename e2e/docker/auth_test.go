package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/raftex/raftex/client"
	"github.com/raftex/raftex/internal/e2etest"
)

// Every container cluster runs with auth enabled (issue 11): once it is
// up, root and the workload's user are added and auth enabled; the
// workload's clients log in as that user, the test's own probes carry a
// root token.
const (
	rootPassword     = "root-pw"
	workloadUser     = "workload"
	workloadPassword = "workload-pw"
	// tokenTTL is every node's --token-ttl: longer than a test, so that a
	// probe through a cut-off node (which cannot log anyone in: a login
	// needs a read barrier) still carries a valid token.
	tokenTTL = 30 * time.Minute
)

// enableAuth sets up the users and role through the cluster and enables
// auth, then gives the probes a root token.
func (c *cluster) enableAuth() {
	c.t.Helper()
	admin, err := client.New(c.endpoints(), client.Options{TLS: certTLS})
	if err != nil {
		c.t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), poll.Within)
	defer cancel()
	for _, step := range []struct {
		what string
		do   func() (uint64, error)
	}{
		{"add root", func() (uint64, error) { return admin.UserAdd(ctx, "root", rootPassword) }},
		{"grant root", func() (uint64, error) { return admin.UserGrant(ctx, "root", "root") }},
		{"add role", func() (uint64, error) { return admin.RoleAdd(ctx, "workload") }},
		{"grant hot/", func() (uint64, error) { return admin.RoleGrant(ctx, "workload", "hot/", "readwrite") }},
		{"grant once/", func() (uint64, error) { return admin.RoleGrant(ctx, "workload", "once/", "readwrite") }},
		{"add user", func() (uint64, error) { return admin.UserAdd(ctx, workloadUser, workloadPassword) }},
		{"grant user", func() (uint64, error) { return admin.UserGrant(ctx, workloadUser, "workload") }},
		{"enable", func() (uint64, error) { return admin.AuthEnable(ctx) }},
	} {
		if _, err := step.do(); err != nil {
			c.t.Fatalf("auth: %s: %v", step.what, err)
		}
	}
	body, _ := json.Marshal(map[string]string{"name": "root", "password": rootPassword})
	r, err := e2etest.Do(probe, http.MethodPost, c.nodes[0].URL("/v1/auth/token"), body)
	var tok struct{ Token string }
	if err != nil || r.Code != http.StatusOK || json.Unmarshal(r.Body, &tok) != nil {
		c.t.Fatalf("root's login: %d %s (%v)", r.Code, r.Body, err)
	}
	probeAuth.set(tok.Token)
	c.t.Cleanup(func() { probeAuth.set("") })
	// Anonymous requests are refused now, on every node.
	for _, m := range c.nodes {
		poll.Until(c.t, m.Name+" refuses anonymous requests", func() error {
			r, err := e2etest.Do(&http.Client{Timeout: probe.Timeout, Transport: probeAuth.base}, http.MethodGet, m.URL("/v1/status"), nil)
			if err != nil || r.Code != http.StatusUnauthorized {
				return fmt.Errorf("anonymous GET /v1/status on %s = %d (%v)", m.Name, r.Code, err)
			}
			return nil
		})
	}
}

// bearer adds the probes' token to each request it sends through base
// (nil: http.DefaultTransport; a TLS transport where the cluster serves
// https).
type bearer struct {
	base  http.RoundTripper
	mu    sync.Mutex
	token string
}

var probeAuth = &bearer{}

func (b *bearer) set(tok string) {
	b.mu.Lock()
	b.token = tok
	b.mu.Unlock()
}

func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	b.mu.Lock()
	tok := b.token
	b.mu.Unlock()
	if tok != "" {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	base := b.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(req)
}
