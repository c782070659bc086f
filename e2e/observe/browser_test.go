package observe

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/raftex/raftex/client"
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, kv := range [][2]string{{"app/1", "one"}, {"app/2", "two"}, {"other", "x"}} {
		if _, err := cl.Set(ctx, kv[0], []byte(kv[1])); err != nil {
			t.Fatal(err)
		}
	}

	b := newBrowser(t, chromium)
	page := c.Followers(lead)[0] // the browser watches through a follower
	b.open(t, page.URL("/"), "browse-prefix")
	b.do(t, "listing app/", fill("browse-prefix", "app/"), chromedp.Click(chromedp.ID("browse-submit")))
	rows := func(want string) {
		t.Helper()
		settle.Until(t, "the browser shows "+want, func() error {
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
		})
	}
	rows("app/1=one app/2=two")
	if _, err := cl.Set(ctx, "app/3", []byte("three")); err != nil {
		t.Fatal(err)
	}
	rows("app/1=one app/2=two app/3=three")
	if _, err := cl.Txn(ctx, kvapi.Txn{Success: []kvapi.Op{kvapi.Put("app/4", []byte("four")), kvapi.Delete("app/1"), kvapi.Put("other", []byte("y"))}}); err != nil {
		t.Fatal(err)
	}
	rows("app/2=two app/3=three app/4=four")
	if _, _, err := cl.DeletePrefix(ctx, "app/", false); err != nil {
		t.Fatal(err)
	}
	rows("")
	b.checkExceptions(t)
}
