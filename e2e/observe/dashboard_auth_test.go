package observe

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/raftex/raftex/client"
)

// TestDashboardWithAuth: with auth enabled the dashboard asks for a login
// (its first reads answer 401) and its form is refused; once logged in it
// shows every node with its event stream open (the login cookie), and
// its form writes what the user may and shows the 403 for what it may not.
func TestDashboardWithAuth(t *testing.T) {
	chromium := findChromium(t)
	c := startCluster(t, 3)
	admin, err := client.New(c.Endpoints(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, step := range []func() (uint64, error){
		func() (uint64, error) { return admin.UserAdd(ctx, "root", "rootpw") },
		func() (uint64, error) { return admin.UserGrant(ctx, "root", "root") },
		func() (uint64, error) { return admin.RoleAdd(ctx, "app") },
		func() (uint64, error) { return admin.RoleGrant(ctx, "app", "app/", "readwrite") },
		func() (uint64, error) { return admin.UserAdd(ctx, "alice", "alicepw") },
		func() (uint64, error) { return admin.UserGrant(ctx, "alice", "app") },
		func() (uint64, error) { return admin.AuthEnable(ctx) },
	} {
		if _, err := step(); err != nil {
			t.Fatal(err)
		}
	}

	b := newBrowser(t, chromium)
	loginShown := func() bool {
		shown, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`!document.getElementById("login-panel").hidden`))
		return err == nil && shown
	}
	b.open(t, c.Nodes[0].URL("/"), "login-user")
	if !loginShown() {
		t.Fatal("the login form is not shown")
	}
	b.do(t, "putting a key before logging in", fill("put-key", "app/x"), fill("put-value", "v"), chromedp.Click(chromedp.ID("put-submit")))
	d := b.waitDashboard(t, "the refused put", answered("revision"))
	if d.ResultKind != "error" || !strings.Contains(d.Result, "authentication required") {
		t.Fatalf("a put before logging in: %s", d)
	}

	b.do(t, "logging in", fill("login-user", "alice"), fill("login-password", "alicepw"), chromedp.Click(chromedp.ID("login-submit")))
	b.waitDashboard(t, "three nodes up, one leader, every event stream open", settled)
	if loginShown() {
		t.Fatal("the login form is still shown after logging in")
	}
	b.do(t, "putting a key alice may write", fill("put-key", "app/x"), fill("put-value", "v"), chromedp.Click(chromedp.ID("put-submit")))
	d = b.waitDashboard(t, "the put's answer", answered("revision"))
	if d.ResultKind != "revision" {
		t.Fatalf("alice's put of app/x: %s", d)
	}
	b.do(t, "putting a key alice may not write", fill("put-key", "other"), chromedp.Click(chromedp.ID("put-submit")))
	d = b.waitDashboard(t, "the refused put", func(d dashboard) bool { return d.ResultKind == "error" })
	if !strings.Contains(d.Result, "permission denied") {
		t.Fatalf("alice's put of other: %s", d)
	}
	b.checkExceptions(t)
}
