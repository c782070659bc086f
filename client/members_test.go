package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/raftex/raftex/kvapi"
)

const membersBody = `{"members":[{"id":"n1","peer_addr":"h:7001","client_addr":"h:8001","voter":true},` +
	`{"id":"n4","peer_addr":"h:7004","client_addr":"","voter":false}],"leader":"n1"}`

// Each membership call sends its route and body, survives a 503, and
// decodes the answer.
func TestMemberCalls(t *testing.T) {
	type sent struct{ method, path, body string }
	var got []sent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, sent{r.Method, r.URL.Path, string(b)})
		if len(got)%2 == 1 { // every first attempt: no leader yet
			reply(503, `{"error":"no leader","leader":""}`)(w)
			return
		}
		if r.URL.Path == "/v1/leader/transfer" {
			reply(200, `{"leader":"n2","term":7}`)(w)
			return
		}
		reply(200, membersBody)(w)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	ctx := context.Background()
	want := Members{Leader: "n1", Members: []Member{
		{ID: "n1", PeerAddr: "h:7001", ClientAddr: "h:8001", Voter: true},
		{ID: "n4", PeerAddr: "h:7004"},
	}}
	check := func(m Members, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(m)
		b, _ := json.Marshal(want)
		if string(a) != string(b) {
			t.Fatalf("got %s, want %s", a, b)
		}
	}
	check(c.Members(ctx))
	check(c.MemberAdd(ctx, "n4", "h:7004", false))
	check(c.MemberAdd(ctx, "n5", "h:7005", true))
	check(c.MemberPromote(ctx, "n4"))
	check(c.MemberRemove(ctx, "n4"))
	leader, term, err := c.TransferLeadership(ctx, "n2")
	if err != nil || leader != "n2" || term != 7 {
		t.Fatalf("transfer: %q %d %v", leader, term, err)
	}
	if _, _, err := c.TransferLeadership(ctx, ""); err != nil {
		t.Fatal(err)
	}
	wantSent := []sent{
		{"GET", "/v1/members", ""},
		{"POST", "/v1/members", `{"id":"n4","peer_addr":"h:7004"}`},
		{"POST", "/v1/members", `{"id":"n5","learner":true,"peer_addr":"h:7005"}`},
		{"POST", "/v1/members/n4/promote", ""},
		{"DELETE", "/v1/members/n4", ""},
		{"POST", "/v1/leader/transfer", `{"to":"n2"}`},
		{"POST", "/v1/leader/transfer", `{}`},
	}
	for i, w := range wantSent {
		for _, g := range got[2*i : 2*i+2] {
			if g != w {
				t.Errorf("call %d sent %+v, want %+v", i, g, w)
			}
		}
	}
}

// The membership errors map to the client's: 409 ErrConflict, 404
// ErrUnknownMember, 400 ErrBadRequest, each with the server's message.
func TestMemberErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   error
	}{
		{409, `{"error":"a configuration change is pending","code":"change_pending"}`, ErrConflict},
		{409, `{"error":"n2 is a member already","code":"member_exists"}`, ErrConflict},
		{409, `{"error":"the transfer aborted","code":"transfer_aborted"}`, ErrConflict},
		{404, `{"error":"no member n9","code":"unknown_member"}`, ErrUnknownMember},
		{400, `{"error":"no voter would remain","code":"invalid_change"}`, ErrBadRequest},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reply(tc.status, tc.body)(w)
		}))
		c := newTestClient(t, srv.URL)
		_, err := c.MemberRemove(context.Background(), "n9")
		var msg struct{ Error string }
		json.Unmarshal([]byte(tc.body), &msg)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), msg.Error) {
			t.Errorf("%d %s: got %v, want %v", tc.status, tc.body, err, tc.want)
		}
		var mismatch *kvapi.CASMismatchError
		if errors.As(err, &mismatch) {
			t.Errorf("%s: a CAS mismatch", tc.body)
		}
		srv.Close()
	}
}

// An endpoint that answers the member list with more than any member list
// (a stranger posing as a member, streaming JSON without end) is read
// only up to the small answers' bound; the client moves on to the next
// endpoint, and reading that endpoint alone fails with ErrAnswerTooLarge.
func TestOversizedAnswerIsCutOff(t *testing.T) {
	// stopAtSecond, once set, ends the call when its second request
	// arrives: the first attempt has ended by then, whatever the machine's
	// speed.
	var stopAtSecond atomic.Pointer[context.CancelFunc]
	var requests atomic.Int32
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stop := stopAtSecond.Load(); stop != nil && requests.Add(1) == 2 {
			(*stop)()
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"members":[`)
		chunk := []byte(strings.Repeat(`{"id":"n9","peer_addr":"h:1","voter":true},`, 1000))
		for range 10 * maxSmallAnswer / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer liar.Close()
	honest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reply(200, membersBody)(w) }))
	defer honest.Close()

	c := newTestClient(t, liar.URL, honest.URL)
	if m, err := c.Members(context.Background()); err != nil || m.Leader != "n1" {
		t.Fatalf("Members = %+v, %v; want the honest endpoint's list", m, err)
	}

	alone := newTestClient(t, liar.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopAtSecond.Store(&cancel)
	_, err := alone.Members(ctx)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), ErrAnswerTooLarge.Error()) {
		t.Fatalf("Members from the liar alone = %v; want ErrUnavailable naming %v", err, ErrAnswerTooLarge)
	}
}

// capped passes an answer of exactly its bound and refuses one byte more.
func TestCappedReader(t *testing.T) {
	for _, tc := range []struct {
		size int
		err  error
	}{{10, nil}, {11, ErrAnswerTooLarge}, {0, nil}} {
		b, err := io.ReadAll(capped(strings.NewReader(strings.Repeat("x", tc.size)), 10))
		if !errors.Is(err, tc.err) || (err == nil && len(b) != tc.size) {
			t.Errorf("%d bytes through a bound of 10: %d bytes, %v; want %v", tc.size, len(b), err, tc.err)
		}
	}
}
