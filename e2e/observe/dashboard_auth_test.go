package observe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/raftex/raftex/client"
	"github.com/raftex/raftex/internal/e2etest"
)

// TestDashboardWithAuth: with auth enabled the dashboard asks for a login
// (its first reads answer 401) and its form is refused; once logged in it
// shows every node with its event stream open (the login cookie), and
// its form writes what the user may and shows the 403 for what it may not.
// A login or a write that an unrelated election (a loaded machine) made
// fail is tried again.
func TestDashboardWithAuth(t *testing.T) {
	chromium := findChromium(t)
	c := startCluster(t, 3)
	admin, err := client.New(c.Endpoints(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, step := range []func(ctx context.Context) (uint64, error){
		func(ctx context.Context) (uint64, error) { return admin.UserAdd(ctx, "root", "rootpw") },
		func(ctx context.Context) (uint64, error) { return admin.UserGrant(ctx, "root", "root") },
		func(ctx context.Context) (uint64, error) { return admin.RoleAdd(ctx, "app") },
		func(ctx context.Context) (uint64, error) { return admin.RoleGrant(ctx, "app", "app/", "readwrite") },
		func(ctx context.Context) (uint64, error) { return admin.UserAdd(ctx, "alice", "alicepw") },
		func(ctx context.Context) (uint64, error) { return admin.UserGrant(ctx, "alice", "app") },
		func(ctx context.Context) (uint64, error) { return admin.AuthEnable(ctx) },
	} {
		// The client tries again through an election; each step has a
		// deadline of its own.
		ctx, cancel := context.WithTimeout(context.Background(), electionDeadline)
		_, err := step(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	// The test reads who leads as alice.
	nodes := asUser(t, c.Nodes, "alice", "alicepw")
	all := func() []*e2etest.Node { return nodes }

	b := newBrowser(t, chromium)
	loginShown := func() bool {
		shown, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`!document.getElementById("login-panel").hidden`))
		return err == nil && shown
	}
	b.open(t, c.Nodes[0].URL("/"), "login-user")
	if !loginShown() {
		t.Fatal("the login form is not shown")
	}
	b.do(t, "putting a key before logging in", fill("put-key", "app/x"), fill("put-value", "v"), press("put-submit"))
	d := b.waitDashboard(t, "the refused put", answered("revision"))
	if d.ResultKind != "error" || !strings.Contains(d.Result, "authentication required") {
		t.Fatalf("a put before logging in: %s", d)
	}

	// The page logs in at every node (each read barrier waits for a
	// leader): a login an election made fail (a node without the cookie
	// never opens its stream) is tried again, on the page loaded again
	// (the form hides once any node gave a token).
	retryOnElection(t, "logging in", all, func(*e2etest.Node, uint64) error {
		if !loginShown() {
			b.open(t, c.Nodes[0].URL("/"), "login-user")
		}
		b.do(t, "logging in", fill("login-user", "alice"), fill("login-password", "alicepw"), press("login-submit"))
		if _, err := b.tryDashboard(func(d dashboard) error {
			if !settled(d) {
				return errors.New(d.String())
			}
			return nil
		}, nil); err != nil {
			return fmt.Errorf("three nodes up, one leader, every event stream open: %w", err)
		}
		return nil
	})
	if loginShown() {
		t.Fatal("the login form is still shown after logging in")
	}
	retryOnElection(t, "putting keys alice may and may not write", all, func(*e2etest.Node, uint64) error {
		b.do(t, "putting a key alice may write", fill("put-key", "app/x"), fill("put-value", "v"), press("put-submit"))
		d := b.waitDashboard(t, "the put's answer", answered("revision"))
		if d.ResultKind != "revision" {
			return fmt.Errorf("alice's put of app/x: %s", d)
		}
		b.do(t, "putting a key alice may not write", fill("put-key", "other"), press("put-submit"))
		d = b.waitDashboard(t, "the refused put", func(d dashboard) bool { return d.ResultKind == "error" })
		if !strings.Contains(d.Result, "permission denied") {
			return fmt.Errorf("alice's put of other: %s", d)
		}
		return nil
	})
	b.checkExceptions(t)
}
