package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/node"
	"github.com/raftex/raftex/raft"
)

// fakeMembers is a node's membership as the routes see it: a configuration
// in memory, changed as the core would, or refused with err.
type fakeMembers struct {
	*node.Node // ID only
	mu         sync.Mutex
	members    []node.Member
	role       raft.Role
	lead, term uint64
	err        error // the next change's refusal
	calls      []string
}

func (f *fakeMembers) Members() []node.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.members)
}

func (f *fakeMembers) Leader() (uint64, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lead, f.term
}

func (f *fakeMembers) Role() raft.Role {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.role
}

func (f *fakeMembers) do(call string, change func()) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	if err := f.err; err != nil {
		f.err = nil
		return err
	}
	change()
	return nil
}

func (f *fakeMembers) AddMember(_ context.Context, id uint64, addr string, learner bool) error {
	return f.do(fmt.Sprintf("add %d %s learner=%t", id, addr, learner), func() {
		f.members = append(f.members, node.Member{ID: id, PeerAddr: addr})
	})
}

func (f *fakeMembers) PromoteMember(_ context.Context, id uint64) error {
	return f.do(fmt.Sprintf("promote %d", id), func() {
		for i := range f.members {
			if f.members[i].ID == id {
				f.members[i].Voter = true
			}
		}
	})
}

func (f *fakeMembers) RemoveMember(_ context.Context, id uint64) error {
	return f.do(fmt.Sprintf("remove %d", id), func() {
		f.members = slices.DeleteFunc(f.members, func(m node.Member) bool { return m.ID == id })
	})
}

func (f *fakeMembers) TransferLeadership(_ context.Context, to uint64) error {
	return f.do(fmt.Sprintf("transfer %d", to), func() { f.lead, f.term = max(to, 2), f.term+1 })
}

// memberServer is a Server over a single-node cluster (for the read
// barrier of root routes) whose membership routes use fake, with the
// members' client addresses published in its store.
func memberServer(t *testing.T, fake *fakeMembers, published map[uint64]string) *httptest.Server {
	t.Helper()
	ts := newTestServer(t, nil)
	store := kv.New(kv.Config{})
	index := uint64(0)
	for id, addr := range published {
		index++
		store.Apply(raft.Entry{Index: index, Type: raft.EntryNormal, Data: kv.PublishMember(id, kv.MemberInfo{ClientAddr: addr}).Encode()})
	}
	fake.Node = ts.node
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := New(Config{Node: ts.node, KV: store, ClusterID: "c1", RequestTimeout: time.Minute, Logger: quiet})
	srv.members = fake
	h := httptest.NewServer(srv)
	t.Cleanup(func() { h.CloseClientConnections(); h.Close() })
	return h
}

func call(t *testing.T, h *httptest.Server, method, path, body string, header ...string) (int, string) {
	t.Helper()
	req := must(http.NewRequest(method, h.URL+path, bytes.NewBufferString(body)))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := h.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(bytes.TrimSpace(b))
}

func threeMembers() *fakeMembers {
	return &fakeMembers{role: raft.Leader, lead: 1, term: 3, members: []node.Member{
		{ID: 1, PeerAddr: "h:7001", Voter: true}, {ID: 2, PeerAddr: "h:7002", Voter: true}, {ID: 3, PeerAddr: "h:7003", Voter: true},
	}}
}

// The routes of issue 12 answer the shapes it fixes: the members with
// their published client addresses and the leader, after every change
// too; the transfer the new leader and its term.
func TestMemberRoutes(t *testing.T) {
	fake := threeMembers()
	h := memberServer(t, fake, map[uint64]string{1: "h:8001", 2: "h:8002"})
	steps := []struct{ method, path, body, want string }{
		{"GET", "/v1/members", "", `{"members":[{"id":"n1","peer_addr":"h:7001","client_addr":"h:8001","voter":true},{"id":"n2","peer_addr":"h:7002","client_addr":"h:8002","voter":true},{"id":"n3","peer_addr":"h:7003","client_addr":"","voter":true}],"leader":"n1","cluster_id":"c1"}`},
		{"POST", "/v1/members", `{"id":"n4","peer_addr":"h:7004"}`, `{"members":[{"id":"n1","peer_addr":"h:7001","client_addr":"h:8001","voter":true},{"id":"n2","peer_addr":"h:7002","client_addr":"h:8002","voter":true},{"id":"n3","peer_addr":"h:7003","client_addr":"","voter":true},{"id":"n4","peer_addr":"h:7004","client_addr":"","voter":false}],"leader":"n1","cluster_id":"c1"}`},
		{"POST", "/v1/members/n4/promote", "", `{"members":[{"id":"n1","peer_addr":"h:7001","client_addr":"h:8001","voter":true},{"id":"n2","peer_addr":"h:7002","client_addr":"h:8002","voter":true},{"id":"n3","peer_addr":"h:7003","client_addr":"","voter":true},{"id":"n4","peer_addr":"h:7004","client_addr":"","voter":true}],"leader":"n1","cluster_id":"c1"}`},
		{"DELETE", "/v1/members/n3", "", `{"members":[{"id":"n1","peer_addr":"h:7001","client_addr":"h:8001","voter":true},{"id":"n2","peer_addr":"h:7002","client_addr":"h:8002","voter":true},{"id":"n4","peer_addr":"h:7004","client_addr":"","voter":true}],"leader":"n1","cluster_id":"c1"}`},
		{"POST", "/v1/members", `{"id":"5","peer_addr":"h:7005","learner":true}`, ""},
		{"POST", "/v1/leader/transfer", `{"to":"n4"}`, `{"leader":"n4","term":4}`},
		{"POST", "/v1/leader/transfer", `{}`, `{"leader":"n2","term":5}`},
	}
	for _, s := range steps {
		code, got := call(t, h, s.method, s.path, s.body)
		if code != http.StatusOK || (s.want != "" && got != s.want) {
			t.Errorf("%s %s %s: %d %s\nwant 200 %s", s.method, s.path, s.body, code, got, s.want)
		}
		fake.mu.Lock()
		fake.role = raft.Leader // the fake's transfers keep it leading
		fake.mu.Unlock()
	}
	want := []string{"add 4 h:7004 learner=false", "promote 4", "remove 3", "add 5 h:7005 learner=true", "transfer 4", "transfer 0"}
	if !slices.Equal(fake.calls, want) {
		t.Errorf("calls %q, want %q", fake.calls, want)
	}
}

// Every refusal gets its status and code (issue 12: 400 invalid, 404
// unknown id, 409 pending or taken or aborted, 503 no leader), and a
// malformed request is 400 before the node sees it.
func TestMemberChangeErrors(t *testing.T) {
	fake := threeMembers()
	h := memberServer(t, fake, nil)
	for _, tc := range []struct {
		err                error
		method, path, body string
		status             int
		code               string
	}{
		{fmt.Errorf("%w: no voter would remain", raft.ErrInvalidConfChange), "DELETE", "/v1/members/n1", "", 400, "invalid_change"},
		{fmt.Errorf("%w: %w: n9", node.ErrUnknownMember, raft.ErrInvalidConfChange), "DELETE", "/v1/members/n9", "", 404, "unknown_member"},
		{fmt.Errorf("%w: n9", node.ErrUnknownMember), "POST", "/v1/members/n9/promote", "", 404, "unknown_member"},
		{fmt.Errorf("%w: at index 7", raft.ErrConfChangePending), "POST", "/v1/members", `{"id":"n4","peer_addr":"h:7004"}`, 409, "change_pending"},
		{fmt.Errorf("%w: %w: n2", node.ErrDuplicateMember, raft.ErrInvalidConfChange), "POST", "/v1/members", `{"id":"n2","peer_addr":"h:7009"}`, 409, "member_exists"},
		{fmt.Errorf("%w: h:7001 is n1's", node.ErrDuplicateMember), "POST", "/v1/members", `{"id":"n4","peer_addr":"h:7001"}`, 409, "member_exists"},
		{node.ErrTransferAborted, "POST", "/v1/leader/transfer", `{"to":"n2"}`, 409, "transfer_aborted"},
		{fmt.Errorf("%w: n1", raft.ErrTransferTarget), "POST", "/v1/leader/transfer", `{"to":"n1"}`, 400, "invalid_target"},
		{raft.ErrNoLeader, "POST", "/v1/members", `{"id":"n4","peer_addr":"h:7004"}`, 503, ""},
		{nil, "POST", "/v1/members", `{"id":"x4","peer_addr":"h:7004"}`, 400, "invalid_change"},
		{nil, "POST", "/v1/members", `{"id":"n4"}`, 400, "invalid_change"},
		{nil, "POST", "/v1/members", `{"id":"n4","peer_addr":"h:7004","bogus":1}`, 400, ""},
		{nil, "DELETE", "/v1/members/x", "", 400, "invalid_change"},
		{nil, "POST", "/v1/leader/transfer", `{"to":"leader"}`, 400, "invalid_target"},
	} {
		fake.mu.Lock()
		fake.err = tc.err
		calls := len(fake.calls)
		fake.mu.Unlock()
		code, got := call(t, h, tc.method, tc.path, tc.body)
		var body errorBody
		json.Unmarshal([]byte(got), &body)
		if code != tc.status || body.Code != tc.code || body.Error == "" {
			t.Errorf("%s %s %s refused with %v: %d %s, want %d %q", tc.method, tc.path, tc.body, tc.err, code, got, tc.status, tc.code)
		}
		if tc.err == nil && len(fake.calls) != calls {
			t.Errorf("%s %s %s: the malformed request reached the node", tc.method, tc.path, tc.body)
		}
	}
}

// A follower hands a change to the leader's published client address,
// with the request's credentials, and relays its answer; a handed-on
// request that meets another follower is 503, never forwarded again; with
// no leader known, 503.
func TestMemberChangeForwardedToTheLeader(t *testing.T) {
	leaderFake := threeMembers()
	leader := memberServer(t, leaderFake, nil)
	followerFake := threeMembers()
	followerFake.role, followerFake.lead = raft.Follower, 2
	follower := memberServer(t, followerFake, map[uint64]string{2: leader.Listener.Addr().String()})

	code, got := call(t, follower, "POST", "/v1/members", `{"id":"n4","peer_addr":"h:7004"}`, "Authorization", "Bearer tok")
	if code != http.StatusOK || !bytes.Contains([]byte(got), []byte(`"id":"n4"`)) {
		t.Fatalf("forwarded add: %d %s", code, got)
	}
	if len(followerFake.calls) != 0 || !slices.Equal(leaderFake.calls, []string{"add 4 h:7004 learner=false"}) {
		t.Fatalf("calls: follower %q, leader %q", followerFake.calls, leaderFake.calls)
	}
	code, got = call(t, follower, "POST", "/v1/leader/transfer", `{"to":"n3"}`)
	if code != http.StatusOK || got != `{"leader":"n3","term":4}` {
		t.Fatalf("forwarded transfer: %d %s", code, got)
	}

	// The leader lost its lead since: a handed-on request is not handed on.
	leaderFake.mu.Lock()
	leaderFake.role, leaderFake.lead = raft.Follower, 3
	leaderFake.mu.Unlock()
	code, got = call(t, follower, "DELETE", "/v1/members/n4", "")
	if code != http.StatusServiceUnavailable || !bytes.Contains([]byte(got), []byte("does not lead")) {
		t.Fatalf("a forwarded request to a node that no longer leads: %d %s", code, got)
	}

	followerFake.mu.Lock()
	followerFake.lead = raft.None
	followerFake.mu.Unlock()
	code, got = call(t, follower, "DELETE", "/v1/members/n4", "")
	if code != http.StatusServiceUnavailable || !bytes.Contains([]byte(got), []byte(`"leader":""`)) {
		t.Fatalf("no leader: %d %s", code, got)
	}
	// The list is this node's own: no leader needed.
	if code, _ := call(t, follower, "GET", "/v1/members", ""); code != http.StatusOK {
		t.Fatalf("GET /v1/members without a leader: %d", code)
	}
}
