package observe

import (
	"context"
	"encoding/json"
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
	_, term, err := pendingOn(lead)
	if err != nil {
		t.Fatalf("%s after the freeze: %v", lead.Name, err)
	}
	// The promotion is answered 503 in time (it cannot commit). Should it
	// be answered before lead holds it pending (refused: an election
	// moved the term under it, say, to a follower frozen right after its
	// election), it is sent again, a bounded number of times.
	promote := func() <-chan error {
		answered := make(chan error, 1)
		go func() {
			r, err := e2etest.Do(httpClient, http.MethodPost, lead.URL("/v1/members/n4/promote"), nil)
			if err == nil {
				err = fmt.Errorf("status %d: %s", r.Code, r.Body)
			}
			answered <- err
		}()
		return answered
	}
	promoted := promote()
	attempts := 1
	settle.Until(t, lead.Name+"'s card shows the change pending", func() error {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		pending, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
			`[...document.querySelectorAll("#nodes [data-pending]")].map((e) => e.closest("[data-node]").dataset.node)`))
		if err != nil {
			return err
		}
		if slices.Contains(pending, lead.Name) {
			return nil
		}
		select {
		case answer := <-promoted:
			held, now, err := pendingOn(lead)
			switch {
			case err != nil:
				return e2etest.StopPolling(fmt.Errorf("the promotion was answered (%v); %s: %v", answer, lead.Name, err))
			case held > 0:
				promoted = closedErr(answer) // the page has yet to show it
			case now == term || attempts == stepAttempts:
				return e2etest.StopPolling(fmt.Errorf("the promotion was answered (%v) and %s holds no change pending, in term %d (%d before, attempt %d)",
					answer, lead.Name, now, term, attempts))
			default:
				t.Logf("the promotion was refused (%v): an election moved the term from %d to %d; promoting again", answer, term, now)
				term = now
				attempts++
				promoted = promote()
			}
		default:
		}
		return fmt.Errorf("cards with a pending change: %v", pending)
	})
	thaw()
	<-promoted
	b.waitDashboard(t, "n4 promoted: its card shows a voter", func(d dashboard) bool {
		n4card, ok := d.card("n4")
		return ok && (n4card.Role == "follower" || n4card.Role == "leader") && len(d.Cards) == 4
	})
	b.checkExceptions(t)
}

// pendingOn returns the configuration index nd holds pending (0: none)
// and its term, from its /v1/status.
func pendingOn(nd *e2etest.Node) (uint64, uint64, error) {
	r, err := nd.Get("/v1/status")
	if err == nil {
		err = r.Want(http.StatusOK)
	}
	if err != nil {
		return 0, 0, err
	}
	var st struct {
		Term    uint64 `json:"term"`
		Pending uint64 `json:"pending_conf_index"`
	}
	return st.Pending, st.Term, json.Unmarshal(r.Body, &st)
}

// closedErr returns a channel that yields err.
func closedErr(err error) <-chan error {
	ch := make(chan error, 1)
	ch <- err
	return ch
}
