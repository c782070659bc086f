package observe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/raftex/raftex/internal/e2etest"
)

// findChromium returns the path of Debian's chromium. Without it the test
// is skipped on a developer's machine and fails in CI (CI set), where
// .ci/run installs it.
func findChromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("chromium is required in CI (Debian package chromium): %v", err)
	}
	t.Skip("chromium not installed; install Debian's chromium package to run the browser test")
	return ""
}

// browser is a headless chromium tab whose uncaught page exceptions are
// recorded.
type browser struct {
	ctx context.Context

	mu         sync.Mutex
	exceptions []string
	console    []string     // the page's warnings and errors, for a failure's log
	output     bytes.Buffer // chromium's own stdout and stderr
}

// newBrowser starts headless chromium at path with a fixed window size; it
// is closed when the test ends, before the cluster's processes are killed.
func newBrowser(t *testing.T, path string) *browser {
	t.Helper()
	b := &browser{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root, where chromium's sandbox cannot start
		chromedp.WindowSize(1400, 900),
		chromedp.CombinedOutput(&lockedWriter{mu: &b.mu, w: &b.output}),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	b.ctx = ctx

	// Subscribing starts the browser; the goroutine ends when the tab does.
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			if m.IsException() {
				b.exceptions = append(b.exceptions, fmt.Sprintf("%s:%d: %s", m.URL, m.Line+1, m.Text))
			}
			if m.Type == chromedp.ConsoleWarning || m.Type == chromedp.ConsoleError || m.IsException() {
				b.console = append(b.console, fmt.Sprintf("%s %s:%d: %s", m.Type, m.URL, m.Line+1, m.Text))
			}
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			b.mu.Lock()
			defer b.mu.Unlock()
			// Chromium complains at length that there is no D-Bus in
			// a container; the rest may say why it failed.
			var lines []string
			for line := range strings.Lines(b.output.String()) {
				if !strings.Contains(line, "dbus") {
					lines = append(lines, line)
				}
			}
			if len(lines) > 30 {
				lines = lines[len(lines)-30:]
			}
			if len(lines) > 0 {
				t.Logf("chromium's output:\n%s", strings.Join(lines, ""))
			}
			console := b.console
			if len(console) > 30 {
				console = console[len(console)-30:]
			}
			if len(console) > 0 {
				t.Logf("the page's console (warnings and errors):\n%s", strings.Join(console, "\n"))
			}
		}
	})
	return b
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// do runs actions in the tab, failing the test on error.
func (b *browser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, settleDeadline)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// open loads the dashboard at url and waits until its script runs (its
// header says who leads, "none" included) and the element of id shows.
// Chromium drops the requests in flight when the machine's network
// interfaces change (net::ERR_NETWORK_CHANGED: other tests' containers
// come and go), and a page that lost a module never starts: such a load
// is tried again, as a person would reload it.
func (b *browser) open(t *testing.T, url, id string) {
	t.Helper()
	started := `document.getElementById("cluster-leader").textContent !== "—"`
	for attempt := 1; ; attempt++ {
		b.do(t, "opening the dashboard", chromedp.EmulateViewport(1400, 900), chromedp.Navigate(url))
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](started, chromedp.WithPollingInterval(100*time.Millisecond)))
		cancel()
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("the dashboard's script did not start in 3 loads: %v", err)
		}
		t.Logf("the dashboard's script did not start (%v); loading it again", err)
	}
	b.do(t, "waiting for #"+id, chromedp.WaitVisible(chromedp.ID(id)))
}

// checkExceptions fails the test if the page threw an exception nothing
// caught.
func (b *browser) checkExceptions(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.exceptions {
		t.Errorf("uncaught exception in the page: %s", e)
	}
	b.exceptions = nil
}

// card is what a node's card on the dashboard says.
type card struct {
	Node   string `json:"node"`
	Role   string `json:"role"`
	Leader bool   `json:"leader"`
	Live   bool   `json:"live"`
	Term   string `json:"term"`
}

// dashboard is what the page shows, read through the stable ids of
// docs/observability.md.
type dashboard struct {
	Cards        []card   `json:"cards"`
	Leaders      int      `json:"leaders"` // elements with data-leader="true"
	Leader       string   `json:"leader"`  // #cluster-leader
	Up           string   `json:"up"`      // #cluster-up
	Banner       string   `json:"banner"`
	BannerKind   string   `json:"bannerKind"`
	State        []string `json:"state"`  // the quiet timeline's rows: "n1 leader"
	Folded       []string `json:"folded"` // rows folding repeats: "kind/node×count"
	NoIcon       int      `json:"noIcon"` // event rows without an SVG icon
	Glyphs       string   `json:"glyphs"` // characters shown that may need a font the machine lacks
	Result       string   `json:"result"`
	ResultKind   string   `json:"resultKind"`
	ResultRev    string   `json:"resultRev"`
	ResultDetail string   `json:"resultDetail"`
	Events       []string `json:"events"` // "kind/node" of the timeline, newest first
}

const readDashboard = `(() => {
  const $ = (id) => document.getElementById(id);
  const text = (id) => ($(id) ? $(id).textContent : "");
  const result = $("result") || { dataset: {} };
  return {
    cards: [...document.querySelectorAll("#nodes [data-node]")].map((c) => ({
      node: c.dataset.node, role: c.dataset.role, leader: c.dataset.leader === "true",
      live: c.querySelector(".live-dot.live") !== null,
      term: c.querySelector(".stat span:last-child") ? c.querySelector(".stat span:last-child").textContent : "",
    })),
    leaders: document.querySelectorAll('[data-leader="true"]').length,
    leader: text("cluster-leader"),
    up: text("cluster-up"),
    banner: $("banner") && !$("banner").hidden ? $("banner").textContent.trim() : "",
    bannerKind: $("banner") && !$("banner").hidden ? $("banner").dataset.kind || "" : "",
    state: [...document.querySelectorAll("#timeline li.state")].map((li) => li.dataset.from + " " + li.dataset.fromRole),
    folded: [...document.querySelectorAll("#timeline li[data-kind]")].filter((li) => Number(li.dataset.count) > 1)
      .map((li) => li.dataset.kind + "/" + li.dataset.from + "×" + li.dataset.count),
    noIcon: [...document.querySelectorAll("#timeline li[data-kind]")].filter((li) => !li.querySelector("svg.icon")).length,
    // Plain text only: ASCII, Latin-1 (×), the dash and the ellipsis are in
    // every font; anything else (emoji, arrows, stars) must be an icon.
    glyphs: [...["header", "#nodes", "#timeline"].map((q) => document.querySelector(q).textContent).join("")]
      .filter((ch) => !/[\u0020-\u007e\u00a0-\u00ff\u2014\u2026\s]/u.test(ch)).join(""),
    result: text("result"),
    resultKind: result.dataset.kind || "",
    resultRev: result.dataset.revision || "",
    resultDetail: text("result-detail"),
    events: [...document.querySelectorAll("#timeline li[data-kind]")].map((li) => li.dataset.kind + "/" + li.dataset.from),
  };
})()`

func (d dashboard) card(id string) (card, bool) {
	for _, c := range d.Cards {
		if c.Node == id {
			return c, true
		}
	}
	return card{}, false
}

// leaderCard returns the one card marked leader, or "".
func (d dashboard) leaderCard() string {
	var ids []string
	for _, c := range d.Cards {
		if c.Leader {
			ids = append(ids, c.Node)
		}
	}
	if len(ids) != 1 {
		return ""
	}
	return ids[0]
}

func (d dashboard) String() string {
	var cards []string
	for _, c := range d.Cards {
		s := fmt.Sprintf("%s %s term %s", c.Node, c.Role, c.Term)
		if c.Leader {
			s += " [leader]"
		}
		if !c.Live {
			s += " (no stream)"
		}
		cards = append(cards, s)
	}
	events := d.Events
	if len(events) > 8 {
		events = events[:8]
	}
	return fmt.Sprintf("cards [%s]; %d data-leader; header leader %q up %q; banner %q (%s); result %q (%s, rev %q, %q); newest events %v; state %v; folded %v; glyphs %q",
		strings.Join(cards, ", "), d.Leaders, d.Leader, d.Up, d.Banner, d.BannerKind, d.Result, d.ResultKind, d.ResultRev, d.ResultDetail, events, d.State, d.Folded, d.Glyphs)
}

// waitDashboard reads the page until cond holds on what it shows. The page
// polls every node twice a second and renders on the next frame.
func (b *browser) waitDashboard(t *testing.T, what string, cond func(d dashboard) bool) dashboard {
	t.Helper()
	return b.waitDashboardErr(t, what, func(d dashboard) error {
		if !cond(d) {
			return errors.New(d.String())
		}
		return nil
	})
}

// waitDashboardErr is waitDashboard for a condition that says why it does
// not hold yet (one that also reads the nodes, say).
func (b *browser) waitDashboardErr(t *testing.T, what string, cond func(d dashboard) error) dashboard {
	t.Helper()
	d, err := b.tryDashboard(cond, nil)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return d
}

// tryDashboard reads the page until cond returns nil on what it shows, or
// abort (if not nil) returns an error, or settleDeadline passes; it
// returns what the page showed last, and the last error.
func (b *browser) tryDashboard(cond func(d dashboard) error, abort func() error) (dashboard, error) {
	var d dashboard
	err := tryUntil(func() error {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		var err error
		d, err = chromedp.Run(ctx, chromedp.Evaluate[dashboard](readDashboard))
		if err != nil {
			return err
		}
		return cond(d)
	}, abort)
	return d, err
}

// showCategories checks or unchecks the timeline's filters of ids, as a
// person clicks them (a click where the box is not as wanted): the same
// whatever state a reloaded page kept.
func showCategories(show bool, ids ...string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, id := range ids {
			checked, err := chromedp.Evaluate[bool](fmt.Sprintf(`document.getElementById(%q).checked`, id))(ctx, t)
			if err != nil {
				return err
			}
			if checked != show {
				if _, err := press(id)(ctx, t); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// leaderShown checks that the page shows lead, in term, as the nodes say:
// one leader card, the header naming it, and the term on its card.
func leaderShown(d dashboard, lead *e2etest.Node, term uint64) error {
	shown := d.leaderCard()
	if shown != lead.Name || d.Leader != lead.Name || d.Leaders != 1 {
		return fmt.Errorf("the nodes say %s leads term %d; the page shows %s: %s", lead.Name, term, shown, d)
	}
	if c, _ := d.card(shown); c.Term != fmt.Sprint(term) {
		return fmt.Errorf("the nodes say %s leads term %d; its card shows term %s: %s", lead.Name, term, c.Term, d)
	}
	return nil
}

// nodesAndPage checks cond on the page together with the leader and term
// the nodes of among agree on at that moment (read after the page, so a
// page that lags an election only delays it).
func nodesAndPage(among []*e2etest.Node, cond func(d dashboard, lead *e2etest.Node, term uint64) error) func(d dashboard) error {
	return func(d dashboard) error {
		lead, term, err := e2etest.AgreedLeader(among...)
		if err != nil {
			return fmt.Errorf("the nodes: %v; the page: %s", err, d)
		}
		return cond(d, lead, term)
	}
}

// fill replaces the text of the input with id by text, typed as a user
// types it. (chromedp v0.23.0's SetValue cannot set "", and Clear resets
// the value attribute, which no longer shows once the user has typed.)
func fill(id, text string) chromedp.Action[chromedp.Void] {
	clear := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		js := fmt.Sprintf(`(() => { const e = document.getElementById(%q); e.value = ""; return e.value === ""; })()`, id)
		ok, err := chromedp.Evaluate[bool](js)(ctx, t)
		if err == nil && !ok {
			err = fmt.Errorf("#%s kept its text", id)
		}
		return err
	})
	return chromedp.Steps(clear, chromedp.SendKeys(chromedp.ID(id), text))
}

// press clicks the button or box of id through the DOM: the page
// re-renders its cards twice a second, and a card that grows (a leader's
// progress bars, a pending change) moves what is below it between the
// moment a mouse click takes the element's position and the moment it
// lands, which then misses it. A DOM click runs the same activation: a
// submit button submits its form, required fields checked; a box toggles
// and fires "change".
func press(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		js := fmt.Sprintf(`(() => { const e = document.getElementById(%q); if (!e || e.disabled) return false; e.click(); return true; })()`, id)
		ok, err := chromedp.Evaluate[bool](js)(ctx, t)
		if err == nil && !ok {
			err = fmt.Errorf("no enabled #%s to click", id)
		}
		return err
	})
}

// answered reports whether #result holds one of kinds or an error: the
// answer to a request, not "pending" nor the kind of the answer before.
func answered(kinds ...string) func(d dashboard) bool {
	return func(d dashboard) bool {
		return d.ResultKind == "error" || slices.Contains(kinds, d.ResultKind)
	}
}

// settled: three nodes up, exactly one leader, the header agreeing with
// the cards, and every event stream open (so the events of what follows
// reach the timeline).
func settled(d dashboard) bool {
	if len(d.Cards) != 3 || d.Leaders != 1 || d.Up != "3/3" || d.Leader != d.leaderCard() {
		return false
	}
	for _, c := range d.Cards {
		if !c.Live || (c.Role != "leader" && c.Role != "follower") || (c.Role == "leader") != c.Leader {
			return false
		}
	}
	return true
}

// TestDashboard opens the dashboard of a 3-node cluster of real processes
// in headless chromium and uses it as a person would: it sees exactly one
// leader, puts a key through the form and reads it back, watches a new
// leader take over after the leader's process is killed, and reads the key
// again, and sees the old leader come back as a follower. The page is
// opened from the leader, so the kill also takes down the node that
// served it. A screenshot is saved at the end, in
// $RAFTEX_ARTIFACTS when set (CI keeps it), else in the test's temporary
// directory.
//
// Who leads is read from the nodes whenever the page is compared with
// them; a step that needs one leader throughout is tried again when an
// unrelated election (a loaded machine) moved the term under it.
func TestDashboard(t *testing.T) {
	chromium := findChromium(t)
	c := startCluster(t, 3)
	all := func() []*e2etest.Node { return c.Nodes }
	b := newBrowser(t, chromium)

	// Open the page from the leader, so that killing the leader also takes
	// down the node that served it. A quiet cluster (no election, no write
	// since the page opened; only state events shown) shows the last known
	// state of every node, not an empty timeline. An election while the
	// page loads (a young cluster may still hold one) ends the quiet: the
	// page is opened again, from the leader of the new term.
	var page *e2etest.Node
	retryOnElection(t, "opening the leader's page of a quiet cluster", all, func(lead *e2etest.Node, term uint64) error {
		t.Logf("%s leads term %d; opening the dashboard it serves", lead.Name, term)
		page = lead
		moved := termMoved(c.Nodes, term)
		// "/" redirects to "/ui/".
		b.open(t, lead.URL("/"), "put-key")
		d, err := b.tryDashboard(func(d dashboard) error {
			if !settled(d) {
				return errors.New(d.String())
			}
			return leaderShown(d, lead, term)
		}, moved)
		if err != nil {
			return fmt.Errorf("three nodes up, %s leading, every event stream open: %w", lead.Name, err)
		}
		if d.Banner != "" {
			t.Errorf("banner shown with every node up: %q", d.Banner)
		}
		b.do(t, "showing state events only", showCategories(false, "filter-rpc", "filter-commit", "filter-snapshot"))
		_, err = b.tryDashboard(func(d dashboard) error {
			if len(d.State) != 3 || !slices.Contains(d.State, lead.Name+" leader") {
				return errors.New(d.String())
			}
			return nil
		}, moved)
		if err != nil {
			return fmt.Errorf("the last known state of every node in the quiet timeline: %w", err)
		}
		b.do(t, "showing every category again", showCategories(true, "filter-rpc", "filter-commit", "filter-snapshot"))
		return nil
	})

	// Put a key with a "/" in it through the form, then read it back. An
	// answer "error" (503: an election under way) is tried again if the
	// term moved.
	const key, value = "dashboard/greeting", "hello from the browser"
	var rev string
	retryOnElection(t, "putting a key through the form and reading it back", all, func(lead *e2etest.Node, term uint64) error {
		b.do(t, "putting a key through the form",
			fill("put-key", key), fill("put-value", value), press("put-submit"))
		d := b.waitDashboard(t, "the put's answer", answered("revision"))
		if d.ResultKind == "error" {
			return fmt.Errorf("put through the form: %s", d)
		}
		if d.Result != "revision "+d.ResultRev || d.ResultRev == "" || d.ResultRev == "0" {
			t.Fatalf("put through the form: %s", d)
		}
		rev = d.ResultRev
		t.Logf("put %q: %s (%s)", key, d.Result, d.ResultDetail)
		got, gotRev, err := get(t, c.Others(lead)[0], key)
		if err != nil {
			return err
		}
		if got != value || gotRev != rev {
			t.Fatalf("the nodes say %q = %q at revision %s; the form said revision %s", key, got, gotRev, rev)
		}
		b.do(t, "reading the key through the form", fill("get-key", key), press("get-submit"))
		d = b.waitDashboard(t, "the get's answer", answered("value", "notfound"))
		if d.ResultKind == "error" {
			return fmt.Errorf("get %q through the form: %s", key, d)
		}
		if d.ResultKind != "value" || d.Result != value || d.ResultRev != rev {
			t.Fatalf("get %q through the form: want value %q at revision %s; page shows %s", key, value, rev, d)
		}
		return nil
	})
	// Every node's commit index moved with the write: the page's node's
	// stream brought its event.
	b.waitDashboard(t, "the write's commit in the timeline", func(d dashboard) bool {
		return slices.Contains(d.Events, "commit_advanced/"+page.Name)
	})

	// Kill the leader, which also served the page: another node's card
	// takes the lead and the old one shows down. If an election moved the
	// lead away from the page's node, it is handed back first.
	term := transferTo(t, page, c.Nodes...)
	t.Logf("killing %s, leader of term %d", page.Name, term)
	c.Kill(page)
	survivors := c.Others(page)
	d := b.waitDashboardErr(t, "a new leader shown, as the survivors say, and the old one down", nodesAndPage(survivors,
		func(d dashboard, lead *e2etest.Node, now uint64) error {
			old, ok := d.card(page.Name)
			if !ok || old.Role != "down" || old.Leader || d.Up != "2/3" {
				return fmt.Errorf("%s not shown down: %s", page.Name, d)
			}
			if now <= term {
				t.Fatalf("new leader %s in term %d, not above %d", lead.Name, now, term)
			}
			return leaderShown(d, lead, now)
		}))
	t.Logf("dashboard shows %s leading: %s", d.leaderCard(), d)
	b.waitDashboardErr(t, "the new leader's election in the timeline", nodesAndPage(survivors,
		func(d dashboard, lead *e2etest.Node, _ uint64) error {
			if !slices.Contains(d.Events, "election_won/"+lead.Name) {
				return fmt.Errorf("no election_won/%s: %s", lead.Name, d)
			}
			return nil
		}))

	// The form still works without the page's own node. An absent key
	// first, so that the answer to the second read cannot be mistaken for
	// the one before the kill.
	retryOnElection(t, "reading through the form after the failover", func() []*e2etest.Node { return survivors },
		func(*e2etest.Node, uint64) error {
			const absent = "dashboard/absent"
			b.do(t, "reading an absent key", fill("get-key", absent), press("get-submit"))
			d := b.waitDashboard(t, "the absent key's answer", answered("value", "notfound"))
			if d.ResultKind == "error" {
				return fmt.Errorf("get %q after the failover: %s", absent, d)
			}
			if d.ResultKind != "notfound" || d.Result != "not found" {
				t.Fatalf("get %q after the failover: want not found; page shows %s", absent, d)
			}
			b.do(t, "reading the key again", fill("get-key", key), press("get-submit"))
			d = b.waitDashboard(t, "the second get's answer", answered("value", "notfound"))
			if d.ResultKind == "error" {
				return fmt.Errorf("get %q after the failover: %s", key, d)
			}
			if d.ResultKind != "value" || d.Result != value || d.ResultRev != rev || strings.HasSuffix(d.ResultDetail, "via "+page.Name) {
				t.Fatalf("get %q after the failover: want %q at revision %s from a survivor; page shows %s", key, value, rev, d)
			}
			t.Logf("read back after the failover: %s", d.ResultDetail)
			return nil
		})

	saveScreenshot(t, b)

	// The old leader comes back: its card leaves "down", rejoins as a
	// follower of the leader the nodes agree on, and its event stream
	// reopens. Should an election make it the leader meanwhile, the lead
	// is handed to another node and the page waited on again.
	t.Logf("restarting %s", page.Name)
	c.Restart(page)
	for attempt := 1; ; attempt++ {
		_, err := b.tryDashboard(nodesAndPage(c.Nodes, func(d dashboard, lead *e2etest.Node, term uint64) error {
			old, ok := d.card(page.Name)
			if !ok || old.Role != "follower" || !old.Live || old.Leader || d.Up != "3/3" || d.Banner != "" {
				return fmt.Errorf("%s not back as a follower with its stream open: %s", page.Name, d)
			}
			return leaderShown(d, lead, term)
		}), func() error {
			if lead, term, err := e2etest.AgreedLeader(c.Nodes...); err == nil && lead == page {
				return fmt.Errorf("an election made the restarted %s the leader of term %d", page.Name, term)
			}
			return nil
		})
		if err == nil {
			break
		}
		if lead, term := c.LeaderTerm(c.Nodes...); lead != page || attempt == stepAttempts {
			t.Fatalf("the restarted node back as a follower with its stream open (%s leads term %d): %v", lead.Name, term, err)
		}
		t.Logf("%v; handing the lead to another node", err)
		transferTo(t, c.Others(page)[0], c.Nodes...)
	}

	// Without a majority the page says writes are unavailable, and the
	// survivor's pre-vote campaigns, all alike, fold into one row each.
	survivor := c.Followers(c.Leader())[0]
	for _, nd := range c.Others(survivor) {
		t.Logf("killing %s", nd.Name)
		c.Kill(nd)
	}
	d = b.waitDashboard(t, "the no-quorum banner and the survivor's repeated campaigns folded", func(d dashboard) bool {
		folded := false
		for _, f := range d.Folded {
			folded = folded || strings.HasPrefix(f, "election_timeout/"+survivor.Name+"×")
		}
		return d.BannerKind == "no-quorum" && strings.HasPrefix(d.Banner, "no quorum — writes unavailable") && folded
	})
	t.Logf("banner %q; folded rows %v", d.Banner, d.Folded)
	if d.NoIcon > 0 || d.Glyphs != "" {
		t.Errorf("%d timeline rows without an icon; characters that need a font: %q", d.NoIcon, d.Glyphs)
	}
	b.checkExceptions(t)
}

// saveScreenshot saves the browser window as dashboard.png.
func saveScreenshot(t *testing.T, b *browser) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, settleDeadline)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(png))
	}
	dir := e2etest.ArtifactDir(t)
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "dashboard.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}
