package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftex/raftex/client"
	"github.com/raftex/raftex/internal/e2etest"
)

// TestClientManyConcurrentWrites shares one Go client (one session) among
// more concurrent writers than the servers remember results per session:
// every write must still apply, none be refused as too old.
func TestClientManyConcurrentWrites(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	cl, err := client.New(c.Endpoints(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const writers = 600
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			if _, err := cl.Set(ctx, fmt.Sprintf("many/%d", i), []byte("v")); err != nil {
				t.Errorf("Put %d: %v", i, err)
			}
		})
	}
	wg.Wait()
}

// TestExactlyOnce sends the same write (same Raftex-Client-Id and
// Raftex-Request-Seq) again and again, through different nodes, across a
// leader change and a restart: it applies once and every answer is the
// first one.
func TestExactlyOnce(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	lead := c.Leader()
	f1, f2 := c.Followers(lead)[0], c.Followers(lead)[1]
	id := f1.Register(t)
	session := func(seq int) []string {
		return []string{"Raftex-Client-Id", id, "Raftex-Request-Seq", fmt.Sprint(seq)}
	}
	// A create (cas=0) would fail if applied again; so would a delete
	// report deleted=false.
	rev := f1.Put(t, "once?cas=0", "v1", session(1)...)
	for _, nd := range []*e2etest.Node{lead, f2, f1} {
		if got := nd.Put(t, "once?cas=0", "v1", session(1)...); got != rev {
			t.Fatalf("retry via %s answered revision %d, first %d", nd.Name, got, rev)
		}
	}
	r := must(t, http.MethodGet, f2.URL("/v1/kv/once"), nil)
	if headerRevision(t, r) != rev {
		t.Fatalf("once has revision %d after the retries, want %d", headerRevision(t, r), rev)
	}
	r = must(t, http.MethodDelete, lead.URL("/v1/kv/once"), nil, session(2)...)
	delRev := r.Revision(t)
	for _, nd := range c.Nodes {
		r := must(t, http.MethodDelete, nd.URL("/v1/kv/once"), nil, session(2)...)
		if r.Code != http.StatusOK || r.Fields(t)["deleted"] != true || r.Revision(t) != delRev {
			t.Fatalf("delete retried via %s = %d %s, first deleted at %d", nd.Name, r.Code, r.Body, delRev)
		}
	}
	// A new sequence number is a new write; without a session, the same
	// create is refused.
	rev3 := f2.Put(t, "once?cas=0", "v3", session(3)...)
	if err := must(t, http.MethodPut, f2.URL("/v1/kv/once?cas=0"), []byte("v3")).Want(http.StatusConflict); err != nil {
		t.Fatal(err)
	}

	// A request older than the session's window is refused, not applied:
	// 400, with its number and the session's newest.
	window := lead.Register(t)
	old := []string{"Raftex-Client-Id", window, "Raftex-Request-Seq", "1"}
	f1.Put(t, "window", "new", "Raftex-Client-Id", window, "Raftex-Request-Seq", "300")
	for _, nd := range []*e2etest.Node{f1, lead} {
		r := must(t, http.MethodPut, nd.URL("/v1/kv/window"), []byte("old"), old...)
		want := `{"error":"kv: request is older than the session remembers: request 1, the session's newest is 300","code":"session_stale"}`
		if r.Code != http.StatusBadRequest || strings.TrimSpace(string(r.Body)) != want {
			t.Fatalf("stale request via %s = %d %s, want 400 %s", nd.Name, r.Code, r.Body, want)
		}
	}
	if r := must(t, http.MethodGet, f2.URL("/v1/kv/window"), nil); string(r.Body) != "new" {
		t.Fatalf("window = %q after a stale request", r.Body)
	}

	// Across a leader change: the old leader stops, and the retry goes to
	// the new one, through each of the others.
	c.Stop(lead)
	newLead := c.Leader()
	for _, nd := range c.Running() {
		if got := nd.Put(t, "once?cas=0", "v3", session(3)...); got != rev3 {
			t.Fatalf("retry via %s after the leader change (now %s) answered %d, first %d", nd.Name, newLead.Name, got, rev3)
		}
	}
	// And the old leader, restarted, remembers the session too.
	c.Restart(lead)
	c.Leader()
	if got := lead.Put(t, "once?cas=0", "v3", session(3)...); got != rev3 {
		t.Fatalf("retry via the restarted %s answered %d, first %d", lead.Name, got, rev3)
	}
	r = must(t, http.MethodGet, lead.URL("/v1/kv/once"), nil)
	if string(r.Body) != "v3" || headerRevision(t, r) != rev3 {
		t.Fatalf("once = %q rev %d, want v3 rev %d", r.Body, headerRevision(t, r), rev3)
	}
}

// TestSessionsAreRegistered: thesis §6.3, POST /v1/sessions registers a
// session whose client id the cluster assigns; a write naming a session
// the cluster does not know is refused with 412 (code session_expired),
// and one reusing a sequence number for another command with 400 (code
// seq_reused); neither writes anything.
func TestSessionsAreRegistered(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	lead := c.Leader()
	f := c.Followers(lead)[0]
	a, b := f.Register(t), lead.Register(t)
	if a == b {
		t.Fatalf("two registrations got the same client id %s", a)
	}
	f.Put(t, "reg", "v", "Raftex-Client-Id", a, "Raftex-Request-Seq", "1")
	r := must(t, http.MethodPut, lead.URL("/v1/kv/reg"), []byte("w"), "Raftex-Client-Id", a, "Raftex-Request-Seq", "1")
	if r.Code != http.StatusBadRequest || r.Fields(t)["code"] != "seq_reused" {
		t.Fatalf("sequence number reused for another value = %d %s, want 400 seq_reused", r.Code, r.Body)
	}
	r = must(t, http.MethodPut, f.URL("/v1/kv/reg"), []byte("w"), "Raftex-Client-Id", "4000000", "Raftex-Request-Seq", "1")
	if r.Code != http.StatusPreconditionFailed || r.Fields(t)["code"] != "session_expired" {
		t.Fatalf("write in an unknown session = %d %s, want 412 session_expired", r.Code, r.Body)
	}
	if r := must(t, http.MethodGet, f.URL("/v1/kv/reg"), nil); string(r.Body) != "v" {
		t.Fatalf("reg = %q, want the first write's v", r.Body)
	}
}

// TestExactlyOnceThroughAKilledLeader: a write is proposed through a
// follower; the leader is SIGKILLed at once, so the first attempt's
// outcome is unknown; the retry with the same session through the new
// leader answers the first result, and the key holds one write. A write
// without a session, sent through the follower as the leader dies, is
// retried by the follower in its own session: it succeeds, once.
func TestExactlyOnceThroughAKilledLeader(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	id := c.Leader().Register(t)
	for round := range 3 {
		lead := c.Leader()
		f := c.Followers(lead)[0]
		key := fmt.Sprintf("killed/%d", round)
		h := []string{"Raftex-Client-Id", id, "Raftex-Request-Seq", fmt.Sprint(round + 1)}
		first, plain := make(chan e2etest.Response, 1), make(chan e2etest.Response, 1)
		go func() {
			r, err := request(http.MethodPut, f.URL("/v1/kv/"+key+"?cas=0"), []byte("v"), h...)
			if err != nil {
				r.Code = -1
			}
			first <- r
		}()
		go func() {
			r, err := request(http.MethodPut, f.URL("/v1/kv/"+key+"-plain?cas=0"), []byte("v"))
			if err != nil {
				r.Code = -1
			}
			plain <- r
		}()
		c.Kill(lead)
		r1 := <-first
		if r := <-plain; r.Code != http.StatusOK {
			t.Fatalf("round %d: a write without a session as the leader died = %d %s, want 200", round, r.Code, r.Body)
		}
		// The retry, in the session, until the new leader answers (it
		// answers 503 should the election outlast the request timeout).
		r2 := putRetrying503(t, f, key+"?cas=0", "v", h...)
		if err := r2.Want(http.StatusOK); err != nil {
			t.Fatalf("round %d: retry: %v (first attempt: %d %s)", round, err, r1.Code, r1.Body)
		}
		if r1.Code == http.StatusOK && r1.Revision(t) != r2.Revision(t) {
			t.Fatalf("round %d: first answered %s, retry %s", round, r1.Body, r2.Body)
		}
		if r1.Code != http.StatusOK && r1.Code != http.StatusServiceUnavailable {
			t.Fatalf("round %d: first attempt %d %s", round, r1.Code, r1.Body)
		}
		c.Restart(lead)
	}
}
