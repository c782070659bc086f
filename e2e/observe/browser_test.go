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
	"github.com/raftex/raftex/kvapi"
)

// TestDashboardKeyBrowser lists a prefix in the dashboard's key browser,
// then changes keys from outside: a put, a transaction and a prefix
// delete each show up in the table by themselves, through the watch.
func TestDashboardKeyBrowser(t *testing.T) {
	chromium := findChromium(t)
	c := startCluster(t, 3)
	lead := c.Leader(c.Nodes...)
	cl, err := client.New(c.Endpoints(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// write runs one change through the client, which tries again through
	// an election, with a deadline of its own.
	write := func(what string, f func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), electionDeadline)
		defer cancel()
		if err := f(ctx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	for _, kv := range [][2]string{{"app/1", "one"}, {"app/2", "two"}, {"other", "x"}} {
		write("set "+kv[0], func(ctx context.Context) error { _, err := cl.Set(ctx, kv[0], []byte(kv[1])); return err })
	}

	b := newBrowser(t, chromium)
	page := c.Followers(lead)[0] // the browser watches through a follower
	b.open(t, page.URL("/"), "browse-prefix")
	// tryRows reads the table until it shows want, live; a listing that
	// failed (its read barrier needs a leader) ends the wait.
	tryRows := func(want string) error {
		return tryUntil(func() error {
			got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](
				`[...document.querySelectorAll("#browse-rows tr")].map((r) => r.dataset.key + "=" + r.children[1].textContent).join(" ")`))
			if err != nil {
				return err
			}
			live, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById("browse-status").textContent`))
			if got != want || !strings.Contains(live, "live") {
				return fmt.Errorf("%q (%s)", got, live)
			}
			return nil
		}, func() error {
			status, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById("browse-status").textContent`))
			if strings.HasPrefix(status, "error:") {
				return errors.New(status)
			}
			return nil
		})
	}
	rows := func(want string) {
		t.Helper()
		if err := tryRows(want); err != nil {
			t.Fatalf("the browser shows %s: %v", want, err)
		}
	}
	retryOnElection(t, "listing app/ in the key browser", func() []*e2etest.Node { return c.Nodes }, func(*e2etest.Node, uint64) error {
		b.do(t, "listing app/", fill("browse-prefix", "app/"), press("browse-submit"))
		return tryRows("app/1=one app/2=two")
	})
	write("set app/3", func(ctx context.Context) error { _, err := cl.Set(ctx, "app/3", []byte("three")); return err })
	rows("app/1=one app/2=two app/3=three")
	write("the transaction", func(ctx context.Context) error {
		_, err := cl.Txn(ctx, kvapi.Txn{Success: []kvapi.Op{kvapi.Put("app/4", []byte("four")), kvapi.Delete("app/1"), kvapi.Put("other", []byte("y"))}})
		return err
	})
	rows("app/2=two app/3=three app/4=four")
	write("delete app/", func(ctx context.Context) error { _, _, err := cl.DeletePrefix(ctx, "app/", false); return err })
	rows("")
	b.checkExceptions(t)
}
