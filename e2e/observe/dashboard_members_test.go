package observe

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/raftex/raftex/internal/e2etest"
)

// TestDashboardMembership: the dashboard shows a node that joins as a
// learner (its card, and the configuration change in the timeline with its
// icon), its promotion while it cannot commit as pending on the leader's
// card, and once committed the new voter.
func TestDashboardMembership(t *testing.T) {
	chromium := findChromium(t)
	c := startCluster(t, 3)
	lead := c.Leader(c.Nodes...)
	b := newBrowser(t, chromium)
	b.open(t, lead.URL("/"), "put-key")
	b.waitDashboard(t, "three nodes up, one leader, every event stream open", settled)

	n4 := c.Plan("n4")
	c.Join(n4, lead, "--learner")
	b.waitDashboard(t, "n4's card shows a learner, the timeline its addition", func(d dashboard) bool {
		n4card, ok := d.card("n4")
		return ok && n4card.Role == "learner" && slices.ContainsFunc(d.Events, func(e string) bool {
			return strings.HasPrefix(e, "member_added/")
		}) && d.NoIcon == 0
	})
	// Freeze n4 and one follower: the promotion passes the leader's read
	// barrier (two of the three voters) but cannot commit (it needs three
	// of the four voters it makes), and stays pending.
	lead = c.Leader(c.Nodes[:3]...)
	frozen := []*e2etest.Node{n4, c.Followers(lead)[0]}
	if frozen[1] == n4 {
		frozen[1] = c.Followers(lead)[1]
	}
	for _, n := range frozen {
		n.Proc.Freeze(t)
	}
	thaw := func() {
		for _, n := range frozen {
			n.Proc.Cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer thaw()
	promoted := make(chan struct{})
	go func() {
		defer close(promoted)
		e2etest.Do(httpClient, http.MethodPost, lead.URL("/v1/members/n4/promote"), nil) // 503 in time
	}()
	settle.Until(t, lead.Name+"'s card shows the change pending", func() error {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		pending, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
			`[...document.querySelectorAll("#nodes [data-pending]")].map((e) => e.closest("[data-node]").dataset.node)`))
		if err != nil {
			return err
		}
		if !slices.Contains(pending, lead.Name) {
			return fmt.Errorf("cards with a pending change: %v", pending)
		}
		return nil
	})
	thaw()
	<-promoted
	b.waitDashboard(t, "n4 promoted: its card shows a voter", func(d dashboard) bool {
		n4card, ok := d.card("n4")
		return ok && (n4card.Role == "follower" || n4card.Role == "leader") && len(d.Cards) == 4
	})
	b.checkExceptions(t)
}
