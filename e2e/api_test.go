package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/raftex/raftex/internal/e2etest"
	"github.com/raftex/raftex/kv"
)

// TestAPI runs every route of the HTTP API, and every error it promises,
// against one 3-node cluster; each subtest uses keys of its own.
func TestAPI(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	lead := c.Leader()
	follower := c.Followers(lead)[0]

	t.Run("PutThenGetFromEveryNode", func(t *testing.T) {
		// A write through each node is read back from every node, at
		// every consistency level: a follower forwards the write, and a
		// linearizable or lease read anywhere sees it at once.
		for _, writer := range c.Nodes {
			key := "every-node/" + writer.Name
			value := "written via " + writer.Name
			rev := writer.Put(t, key, value)
			for _, reader := range c.Nodes {
				for _, cons := range []string{"", "?consistency=linearizable", "?consistency=lease"} {
					r := must(t, http.MethodGet, reader.URL("/v1/kv/"+key+cons), nil)
					if err := r.Want(http.StatusOK); err != nil {
						t.Fatalf("GET %s%s on %s: %v", key, cons, reader.Name, err)
					}
					if string(r.Body) != value || headerRevision(t, r) != rev {
						t.Fatalf("GET %s%s on %s = %q rev %s, want %q rev %d", key, cons, reader.Name, r.Body, r.Header.Get("Raftex-Revision"), value, rev)
					}
					if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
						t.Errorf("Content-Type %q", ct)
					}
				}
				// A stale read is served from the node's own state: it
				// gets there, but maybe not at once.
				soon.Until(t, "stale read on "+reader.Name, func() error {
					r := must(t, http.MethodGet, reader.URL("/v1/kv/"+key+"?consistency=stale"), nil)
					if err := r.Want(http.StatusOK); err != nil {
						return err
					}
					if string(r.Body) != value {
						return fmt.Errorf("value %q", r.Body)
					}
					return nil
				})
			}
		}
	})

	t.Run("RevisionsGrowAndOverwrite", func(t *testing.T) {
		r1 := follower.Put(t, "grow", "one")
		r2 := lead.Put(t, "grow", "two")
		if r2 <= r1 {
			t.Fatalf("revisions %d then %d: want growing", r1, r2)
		}
		r := must(t, http.MethodGet, follower.URL("/v1/kv/grow"), nil)
		if string(r.Body) != "two" || headerRevision(t, r) != r2 {
			t.Fatalf("GET = %q rev %d, want two rev %d", r.Body, headerRevision(t, r), r2)
		}
		// Empty values are values.
		follower.Put(t, "empty-value", "")
		r = must(t, http.MethodGet, lead.URL("/v1/kv/empty-value"), nil)
		if err := r.Want(http.StatusOK); err != nil || len(r.Body) != 0 {
			t.Fatalf("empty value: %v %q", err, r.Body)
		}
	})

	t.Run("GetAbsent404", func(t *testing.T) {
		for _, nd := range c.Nodes {
			for _, cons := range []string{"", "?consistency=lease", "?consistency=stale"} {
				r := must(t, http.MethodGet, nd.URL("/v1/kv/never-written"+cons), nil)
				if err := r.Want(http.StatusNotFound); err != nil {
					t.Fatal(err)
				}
				if msg, _ := r.Fields(t)["error"].(string); msg == "" {
					t.Errorf("404 body %q has no error", r.Body)
				}
				if h := r.Header.Get("Raftex-Revision"); h != "" {
					t.Errorf("404 carries Raftex-Revision %q", h)
				}
			}
		}
	})

	t.Run("CAS", func(t *testing.T) {
		// cas=0: only if absent.
		rev := follower.Put(t, "cas?cas=0", "first")
		r := must(t, http.MethodPut, lead.URL("/v1/kv/cas?cas=0"), []byte("again"))
		wantConflict(t, r, rev)
		// cas=R: only at revision R.
		r = must(t, http.MethodPut, follower.URL(fmt.Sprintf("/v1/kv/cas?cas=%d", rev+1000)), []byte("x"))
		wantConflict(t, r, rev)
		rev2 := follower.Put(t, fmt.Sprintf("cas?cas=%d", rev), "second")
		r = must(t, http.MethodPut, lead.URL(fmt.Sprintf("/v1/kv/cas?cas=%d", rev)), []byte("third"))
		wantConflict(t, r, rev2)
		// On an absent key, a mismatch reports revision 0.
		r = must(t, http.MethodPut, follower.URL("/v1/kv/cas-absent?cas=7"), []byte("x"))
		wantConflict(t, r, 0)
		if got := must(t, http.MethodGet, lead.URL("/v1/kv/cas"), nil); string(got.Body) != "second" {
			t.Fatalf("value after CAS = %q, want second", got.Body)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		rev := follower.Put(t, "del", "v")
		for _, nd := range []*e2etest.Node{follower, lead} {
			r := must(t, http.MethodDelete, nd.URL("/v1/kv/del"), nil)
			if err := r.Want(http.StatusOK); err != nil {
				t.Fatal(err)
			}
			f := r.Fields(t)
			wantDeleted := nd == follower
			if f["deleted"] != wantDeleted || r.Revision(t) <= rev {
				t.Fatalf("DELETE via %s = %s, want deleted %v and a revision after %d", nd.Name, r.Body, wantDeleted, rev)
			}
		}
		for _, nd := range c.Nodes {
			if err := must(t, http.MethodGet, nd.URL("/v1/kv/del"), nil).Want(http.StatusNotFound); err != nil {
				t.Fatalf("GET on %s after delete: %v", nd.Name, err)
			}
		}
		// After a delete the key's revision reads as 0 for cas.
		r := must(t, http.MethodPut, lead.URL("/v1/kv/del?cas=1"), []byte("x"))
		wantConflict(t, r, 0)
		follower.Put(t, "del?cas=0", "back")
	})

	t.Run("KeysWithSlashesAndAnyBytes", func(t *testing.T) {
		// Everything after /v1/kv/ is the key, path-unescaped: "/" in a
		// key may be sent plain or as %2F, and nothing is cleaned.
		cases := []struct{ path, key string }{
			{"a/b/c", "a/b/c"},
			{"a%2Fb%2Fc2", "a/b/c2"},
			{"/leading", "/leading"},
			{"trailing/", "trailing/"},
			{"double//slash", "double//slash"},
			{"dots/../x", "dots/../x"},
			{"./dot", "./dot"},
			{"%FF%FE%00bin", "\xff\xfe\x00bin"},
			{"sp%20ace%3Fq%23h%25", "sp ace?q#h%"},
			{"%E2%98%83", "☃"},
		}
		for i, tc := range cases {
			value := fmt.Sprintf("value %d", i)
			rev := c.Nodes[i%3].Put(t, tc.path, value)
			// Read back through the canonical escaping of the key.
			for _, nd := range c.Nodes {
				r := must(t, http.MethodGet, nd.URL("/v1/kv/"+url.PathEscape(tc.key)), nil)
				if err := r.Want(http.StatusOK); err != nil {
					t.Fatalf("key %q written as %q, read on %s: %v", tc.key, tc.path, nd.Name, err)
				}
				if string(r.Body) != value || headerRevision(t, r) != rev {
					t.Fatalf("key %q = %q rev %d, want %q rev %d", tc.key, r.Body, headerRevision(t, r), value, rev)
				}
			}
		}
		// "a/b" and "a%2Fb" are one key.
		rev := lead.Put(t, "same/key", "1")
		r := must(t, http.MethodDelete, follower.URL("/v1/kv/same%2Fkey"), nil)
		if r.Fields(t)["deleted"] != true || r.Revision(t) <= rev {
			t.Fatalf("DELETE same%%2Fkey = %s", r.Body)
		}
		// The longest key is fine, one byte more is not.
		long := strings.Repeat("k", 1024)
		follower.Put(t, long, "long")
		if r := must(t, http.MethodGet, lead.URL("/v1/kv/"+long), nil); string(r.Body) != "long" {
			t.Fatalf("1024-byte key reads %q", r.Body)
		}
	})

	t.Run("Errors400", func(t *testing.T) {
		long := strings.Repeat("k", 1025)
		cases := []struct{ method, path string }{
			{http.MethodGet, "/v1/kv/"},
			{http.MethodPut, "/v1/kv/"},
			{http.MethodDelete, "/v1/kv/"},
			{http.MethodGet, "/v1/kv/" + long},
			{http.MethodPut, "/v1/kv/" + long},
			{http.MethodDelete, "/v1/kv/" + long},
			{http.MethodPut, "/v1/kv/k?cas=abc"},
			{http.MethodPut, "/v1/kv/k?cas=-1"},
			{http.MethodPut, "/v1/kv/k?cas="},
			{http.MethodPut, "/v1/kv/k?cas=1.5"},
			{http.MethodPut, "/v1/kv/k?cas=18446744073709551616"},
			{http.MethodDelete, "/v1/kv/k?cas=x"},
			{http.MethodGet, "/v1/kv/k?consistency=strong"},
			{http.MethodGet, "/v1/kv/k?consistency="},
			{http.MethodGet, "/v1/kv/k?consistency=STALE"},
		}
		for _, tc := range cases {
			for _, nd := range []*e2etest.Node{lead, follower} {
				r := must(t, tc.method, nd.URL(tc.path), []byte("v"))
				if err := r.Want(http.StatusBadRequest); err != nil {
					t.Errorf("%s %.40s on %s: %v", tc.method, tc.path, nd.Name, err)
					continue
				}
				if msg, _ := r.Fields(t)["error"].(string); msg == "" {
					t.Errorf("%s %.40s: 400 body %q has no error", tc.method, tc.path, r.Body)
				}
			}
		}
		// A key that is not validly escaped.
		// (Go's HTTP server refuses it before the handler sees it.)
		if code := rawStatus(t, lead, "GET /v1/kv/bad%zzescape HTTP/1.1"); code != http.StatusBadRequest {
			t.Errorf("GET bad%%zzescape: status %d, want 400", code)
		}
		// A session header without its partner, or malformed.
		for _, h := range [][]string{
			{"Raftex-Client-Id", "c"},
			{"Raftex-Request-Seq", "1"},
			{"Raftex-Client-Id", "c", "Raftex-Request-Seq", "one"},
			{"Raftex-Client-Id", strings.Repeat("c", 257), "Raftex-Request-Seq", "1"},
		} {
			r := must(t, http.MethodPut, follower.URL("/v1/kv/session-bad"), []byte("v"), h...)
			if err := r.Want(http.StatusBadRequest); err != nil {
				t.Errorf("headers %q: %v", h, err)
			}
		}
		// Nothing above was written.
		for _, k := range []string{"k", "session-bad"} {
			if err := must(t, http.MethodGet, lead.URL("/v1/kv/"+k), nil).Want(http.StatusNotFound); err != nil {
				t.Errorf("key %s: %v", k, err)
			}
		}
	})

	t.Run("ValueTooLarge413", func(t *testing.T) {
		const limit = 1 << 20
		follower.Put(t, "big", strings.Repeat("v", limit))
		for _, nd := range []*e2etest.Node{lead, follower} {
			r := must(t, http.MethodPut, nd.URL("/v1/kv/too-big"), []byte(strings.Repeat("v", limit+1)))
			if err := r.Want(http.StatusRequestEntityTooLarge); err != nil {
				t.Fatalf("on %s: %v", nd.Name, err)
			}
			if msg, _ := r.Fields(t)["error"].(string); msg == "" {
				t.Errorf("413 body %q has no error", r.Body)
			}
		}
		if r := must(t, http.MethodGet, lead.URL("/v1/kv/big"), nil); len(r.Body) != limit {
			t.Fatalf("1 MiB value reads %d bytes", len(r.Body))
		}
		if err := must(t, http.MethodGet, lead.URL("/v1/kv/too-big"), nil).Want(http.StatusNotFound); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("WrongMethod405", func(t *testing.T) {
		cases := []struct{ method, path, allow string }{
			{http.MethodPost, "/v1/kv/k", "GET, PUT, DELETE"},
			{http.MethodPatch, "/v1/kv/k", "GET, PUT, DELETE"},
			{http.MethodPut, "/v1/status", "GET"},
			{http.MethodDelete, "/v1/status", "GET"},
			{http.MethodPost, "/healthz", "GET"},
			{http.MethodPut, "/readyz", "GET"},
		}
		for _, tc := range cases {
			r := must(t, tc.method, follower.URL(tc.path), nil)
			if err := r.Want(http.StatusMethodNotAllowed); err != nil {
				t.Errorf("%s %s: %v", tc.method, tc.path, err)
				continue
			}
			if got := r.Header.Get("Allow"); got != tc.allow {
				t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
			}
			if msg, _ := r.Fields(t)["error"].(string); msg == "" {
				t.Errorf("405 body %q has no error", r.Body)
			}
		}
	})

	t.Run("Status", func(t *testing.T) {
		// Each node's status names the leader the nodes agree on, and
		// says which role it has. An election between the two reads (a
		// loaded machine) would make them disagree: they are read again.
		soon.Until(t, "every status agrees with the leader the nodes agree on", func() error {
			lead, term := c.LeaderTerm()
			for _, nd := range c.Nodes {
				st, err := nd.Status()
				if err != nil {
					return err
				}
				wantRole := "follower"
				if nd == lead {
					wantRole = "leader"
				}
				if st.Role != wantRole || st.Leader != lead.Name || st.Term != term {
					return fmt.Errorf("status of %s: %+v (leader %s, term %d)", nd.Name, st, lead.Name, term)
				}
			}
			return nil
		})
		for _, nd := range c.Nodes {
			r := must(t, http.MethodGet, nd.URL("/v1/status"), nil)
			if err := r.Want(http.StatusOK); err != nil {
				t.Fatal(err)
			}
			f := r.Fields(t)
			for _, k := range []string{"id", "role", "term", "leader", "commit_index", "applied_index", "last_index", "members"} {
				if _, ok := f[k]; !ok {
					t.Errorf("status of %s lacks %q: %s", nd.Name, k, r.Body)
				}
			}
			st, err := nd.Status()
			if err != nil {
				t.Fatal(err)
			}
			if st.ID != nd.Name || st.Leader == "" || st.Term == 0 ||
				st.CommitIndex == 0 || st.AppliedIndex > st.CommitIndex || st.LastIndex < st.CommitIndex {
				t.Errorf("status of %s: %+v", nd.Name, st)
			}
			if len(st.Members) != 3 {
				t.Fatalf("status of %s lists %d members: %+v", nd.Name, len(st.Members), st.Members)
			}
			for i, m := range st.Members {
				want := c.Nodes[i]
				if m.ID != want.Name || m.PeerAddr != want.PeerAddr || m.ClientAddr != want.ClientAddr || !m.Voter {
					t.Errorf("status of %s: member %d = %+v, want %s peer %s client %s voter", nd.Name, i, m, want.Name, want.PeerAddr, want.ClientAddr)
				}
			}
		}
	})

	t.Run("HealthAndReady", func(t *testing.T) {
		for _, nd := range c.Nodes {
			for _, path := range []string{"/healthz", "/readyz"} {
				r := must(t, http.MethodGet, nd.URL(path), nil)
				if err := r.Want(http.StatusOK); err != nil {
					t.Errorf("%s on %s: %v", path, nd.Name, err)
				}
			}
		}
	})

	t.Run("ConcurrentCASExactlyOneWins", func(t *testing.T) {
		// Clients on every node race to create, then to advance, the same
		// key; in each round exactly one wins and the others see its
		// revision.
		const racers = 9
		prev := uint64(0)
		for round := range 5 {
			type outcome struct {
				code  int
				rev   uint64
				value string
			}
			results := make([]outcome, racers)
			var wg sync.WaitGroup
			for i := range racers {
				wg.Go(func() {
					nd := c.Nodes[i%3]
					value := fmt.Sprintf("round %d racer %d", round, i)
					r, err := request(http.MethodPut, nd.URL(fmt.Sprintf("/v1/kv/race?cas=%d", prev)), []byte(value))
					if err != nil {
						t.Errorf("racer %d: %v", i, err)
						return
					}
					results[i] = outcome{code: r.Code, value: value}
					if r.Code == http.StatusOK || r.Code == http.StatusConflict {
						results[i].rev = r.Revision(t)
					}
				})
			}
			wg.Wait()
			var winner *outcome
			for i := range results {
				switch results[i].code {
				case http.StatusOK:
					if winner != nil {
						t.Fatalf("round %d: two winners: %+v and %+v", round, *winner, results[i])
					}
					winner = &results[i]
				case http.StatusConflict:
				default:
					t.Fatalf("round %d: racer %d got %d", round, i, results[i].code)
				}
			}
			if winner == nil {
				t.Fatalf("round %d: no winner: %+v", round, results)
			}
			for i, o := range results {
				if o.code == http.StatusConflict && o.rev != winner.rev {
					t.Errorf("round %d: racer %d lost to revision %d, the winner wrote %d", round, i, o.rev, winner.rev)
				}
			}
			r := must(t, http.MethodGet, c.Nodes[round%3].URL("/v1/kv/race"), nil)
			if string(r.Body) != winner.value || headerRevision(t, r) != winner.rev {
				t.Fatalf("round %d: race = %q rev %d, winner %+v", round, r.Body, headerRevision(t, r), *winner)
			}
			prev = winner.rev
		}
	})

	t.Run("HeadAndCORS", func(t *testing.T) {
		rev := follower.Put(t, "head", "value")
		r := must(t, http.MethodHead, lead.URL("/v1/kv/head"), nil)
		if r.Code != http.StatusOK || len(r.Body) != 0 || headerRevision(t, r) != rev || r.Header.Get("Content-Length") != "5" {
			t.Fatalf("HEAD = %d %q %v", r.Code, r.Body, r.Header)
		}
		// A page of another member's origin (the dashboard reads every
		// node); TestCORS_ForeignOriginRefused has the others.
		origin := "http://" + follower.ClientAddr
		r = must(t, http.MethodOptions, lead.URL("/v1/kv/head"), nil, "Origin", origin, "Access-Control-Request-Method", "PUT")
		if r.Code != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Fatalf("OPTIONS = %d %v", r.Code, r.Header)
		}
	})

	t.Run("NoRouteTakesRawCommands", func(t *testing.T) {
		// Issue 11's write hijack: the client port once accepted any
		// encoded command at /v1/internal/propose, and a forged
		// PublishMember redirected every follower's writes to an
		// attacker. Writes now reach the leader only over the peer
		// connection: no client route proposes raw bytes.
		victim := c.Nodes[2]
		forged := kv.PublishMember(3, kv.MemberInfo{PeerAddr: victim.PeerAddr, ClientAddr: "203.0.113.7:80"}).Encode()
		for _, nd := range c.Nodes {
			r := must(t, http.MethodPost, nd.URL("/v1/internal/propose"), forged)
			if r.Code != http.StatusNotFound && r.Code != http.StatusMethodNotAllowed {
				t.Fatalf("POST /v1/internal/propose on %s = %d %s, want 404", nd.Name, r.Code, r.Body)
			}
		}
		follower.Put(t, "after-forgery", "x") // a write through a follower still lands
		st, err := lead.Status()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range st.Members {
			if strings.Contains(m.ClientAddr, "203.0.113.7") {
				t.Fatalf("the forged address was published: %+v", m)
			}
		}
	})
}

// wantConflict checks a 409 answer carrying the key's current revision.
func wantConflict(t *testing.T, r e2etest.Response, current uint64) {
	t.Helper()
	if err := r.Want(http.StatusConflict); err != nil {
		t.Fatal(err)
	}
	f := r.Fields(t)
	if msg, _ := f["error"].(string); msg == "" {
		t.Errorf("409 body %q has no error", r.Body)
	}
	if _, ok := f["revision"]; !ok {
		t.Fatalf("409 body %q has no revision", r.Body)
	}
	if got := r.Revision(t); got != current {
		t.Fatalf("409 reports revision %d, want %d", got, current)
	}
}
