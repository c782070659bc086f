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
	var d dashboard
	settle.Until(t, what, func() error {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		var err error
		d, err = chromedp.Run(ctx, chromedp.Evaluate[dashboard](readDashboard))
		if err != nil {
			return err
		}
		if !cond(d) {
			return errors.New(d.String())
		}
		return nil
	})
	return d
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
func TestDashboard(t *testing.T) {
	chromium := findChromium(t)
	c := startCluster(t, 3)
	lead, term := c.LeaderTerm(c.Nodes...)
	t.Logf("%s leads term %d; opening the dashboard it serves", lead.Name, term)

	b := newBrowser(t, chromium)
	// Open the page from the leader, so that killing the leader also takes
	// down the node that served the page. If the lead moves while the page
	// loads (a young cluster may still hold an election), follow it.
	var d dashboard
	for attempt := 1; ; attempt++ {
		// "/" redirects to "/ui/".
		b.open(t, lead.URL("/"), "put-key")
		d = b.waitDashboard(t, "three nodes up, one leader, every event stream open", settled)
		shown := d.leaderCard()
		now, nowTerm := c.LeaderTerm(c.Nodes...)
		if shown == now.Name && shown == lead.Name {
			term = nowTerm
			break
		}
		if attempt == 3 {
			t.Fatalf("the lead keeps moving: opened %s's page, the page shows %s, the nodes say %s (term %d): %s",
				lead.Name, shown, now.Name, nowTerm, d)
		}
		t.Logf("the lead moved to %s (term %d) while the page loaded; opening its page", now.Name, nowTerm)
		lead = now
	}
	if d.Banner != "" {
		t.Errorf("banner shown with every node up: %q", d.Banner)
	}

	// A quiet cluster (no election, no write since the page opened; only
	// state events shown) shows the last known state of every node, not an
	// empty timeline.
	b.do(t, "showing state events only", chromedp.Click(chromedp.ID("filter-rpc")),
		chromedp.Click(chromedp.ID("filter-commit")), chromedp.Click(chromedp.ID("filter-snapshot")))
	d = b.waitDashboard(t, "the last known state of every node in the quiet timeline", func(d dashboard) bool {
		return len(d.State) == 3 && slices.Contains(d.State, lead.Name+" leader")
	})
	b.do(t, "showing every category again", chromedp.Click(chromedp.ID("filter-rpc")),
		chromedp.Click(chromedp.ID("filter-commit")), chromedp.Click(chromedp.ID("filter-snapshot")))

	// Put a key with a "/" in it through the form, then read it back.
	const key, value = "dashboard/greeting", "hello from the browser"
	b.do(t, "putting a key through the form",
		fill("put-key", key), fill("put-value", value), chromedp.Click(chromedp.ID("put-submit")))
	d = b.waitDashboard(t, "the put's answer", answered("revision"))
	if d.ResultKind != "revision" || d.Result != "revision "+d.ResultRev || d.ResultRev == "" || d.ResultRev == "0" {
		t.Fatalf("put through the form: %s", d)
	}
	rev := d.ResultRev
	t.Logf("put %q: %s (%s)", key, d.Result, d.ResultDetail)
	if got, gotRev := get(t, c.Others(lead)[0], key); got != value || gotRev != rev {
		t.Fatalf("the nodes say %q = %q at revision %s; the form said revision %s", key, got, gotRev, rev)
	}

	b.do(t, "reading the key through the form", fill("get-key", key), chromedp.Click(chromedp.ID("get-submit")))
	d = b.waitDashboard(t, "the get's answer", answered("value", "notfound"))
	if d.ResultKind != "value" || d.Result != value || d.ResultRev != rev {
		t.Fatalf("get %q through the form: want value %q at revision %s; page shows %s", key, value, rev, d)
	}
	b.waitDashboard(t, "the write's commit in the timeline", func(d dashboard) bool {
		return slices.Contains(d.Events, "commit_advanced/"+lead.Name)
	})

	// Kill the leader, which also served the page: another node's card
	// takes the lead and the old one shows down.
	t.Logf("killing %s", lead.Name)
	c.Kill(lead)
	d = b.waitDashboard(t, "a new leader shown and the old one down", func(d dashboard) bool {
		old, ok := d.card(lead.Name)
		nl := d.leaderCard()
		return ok && old.Role == "down" && !old.Leader && d.Leaders == 1 && nl != "" && nl != lead.Name &&
			d.Leader == nl && d.Up == "2/3"
	})
	newLead, newTerm := c.LeaderTerm(c.Others(lead)...)
	if shown := d.leaderCard(); shown != newLead.Name {
		t.Fatalf("dashboard shows %s as the new leader, the nodes say %s (term %d): %s", shown, newLead.Name, newTerm, d)
	}
	if newTerm <= term {
		t.Fatalf("new leader %s in term %d, not above %d", newLead.Name, newTerm, term)
	}
	t.Logf("dashboard shows %s leading term %d", newLead.Name, newTerm)
	b.waitDashboard(t, "the new leader's election in the timeline", func(d dashboard) bool {
		return slices.Contains(d.Events, "election_won/"+newLead.Name)
	})

	// The form still works without the page's own node. An absent key
	// first, so that the answer to the second read cannot be mistaken for
	// the one before the kill.
	const absent = "dashboard/absent"
	b.do(t, "reading an absent key", fill("get-key", absent), chromedp.Click(chromedp.ID("get-submit")))
	d = b.waitDashboard(t, "the absent key's answer", func(d dashboard) bool {
		return d.ResultKind == "error" || d.ResultKind == "notfound"
	})
	if d.ResultKind != "notfound" || d.Result != "not found" {
		t.Fatalf("get %q after the failover: want not found; page shows %s", absent, d)
	}
	b.do(t, "reading the key again", fill("get-key", key), chromedp.Click(chromedp.ID("get-submit")))
	d = b.waitDashboard(t, "the second get's answer", answered("value", "notfound"))
	if d.ResultKind != "value" || d.Result != value || d.ResultRev != rev || strings.HasSuffix(d.ResultDetail, "via "+lead.Name) {
		t.Fatalf("get %q after the failover: want %q at revision %s from a survivor; page shows %s", key, value, rev, d)
	}
	t.Logf("read back after the failover: %s", d.ResultDetail)

	saveScreenshot(t, b)

	// The old leader comes back: its card leaves "down", rejoins as a
	// follower of the new leader, and its event stream reopens.
	t.Logf("restarting %s", lead.Name)
	c.Restart(lead)
	b.waitDashboard(t, "the restarted node back as a follower with its stream open", func(d dashboard) bool {
		old, ok := d.card(lead.Name)
		return ok && old.Role == "follower" && old.Live && !old.Leader && d.Up == "3/3" &&
			d.Leaders == 1 && d.leaderCard() == newLead.Name && d.Banner == ""
	})

	// Without a majority the page says writes are unavailable, and the
	// survivor's pre-vote campaigns, all alike, fold into one row each.
	survivor := c.Others(newLead)[0]
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
