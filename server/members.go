package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"

	"github.com/raftex/raftex/node"
	"github.com/raftex/raftex/raft"
)

// memberNode is what the membership and leadership-transfer routes need of
// the node (a *node.Node; the tests give a fake). Every change runs on the
// leader.
type memberNode interface {
	Members() []node.Member
	AddMember(ctx context.Context, id uint64, peerAddr string, learner bool) error
	PromoteMember(ctx context.Context, id uint64) error
	RemoveMember(ctx context.Context, id uint64) error
	TransferLeadership(ctx context.Context, to uint64) error
	Leader() (id, term uint64)
	Role() raft.Role
	ID() uint64
}

var _ memberNode = (*node.Node)(nil)

// MembersJSON is the body of GET /v1/members and of every membership
// change's answer.
type MembersJSON struct {
	Members []MemberJSON `json:"members"`
	Leader  string       `json:"leader"`
	// ClusterID is the cluster's id, which a joining node needs for its
	// peer handshakes (raftex serve --join).
	ClusterID string `json:"cluster_id,omitempty"`
}

// TransferJSON is the answer of POST /v1/leader/transfer.
type TransferJSON struct {
	Leader string `json:"leader"`
	Term   uint64 `json:"term"`
}

// headerForwarded marks a request a follower handed to the leader: a node
// that does not lead answers it 503 rather than forwarding it again.
const headerForwarded = "Raftex-Forwarded-By"

// memberRoutes mounts the membership and leadership-transfer routes (in
// routeAccess: the list for any user, the changes for root alone once auth
// is enabled).
func (s *Server) memberRoutes() {
	s.mux.HandleFunc("GET /v1/members", s.handleMembers)
	s.mux.HandleFunc("POST /v1/members", s.onLeader(s.handleAddMember))
	s.mux.HandleFunc("POST /v1/members/{id}/promote", s.onLeader(func(w http.ResponseWriter, r *http.Request) {
		s.changeMember(w, r, s.members.PromoteMember)
	}))
	s.mux.HandleFunc("DELETE /v1/members/{id}", s.onLeader(func(w http.ResponseWriter, r *http.Request) {
		s.changeMember(w, r, s.members.RemoveMember)
	}))
	s.mux.HandleFunc("POST /v1/leader/transfer", s.onLeader(s.handleTransfer))
}

// membersJSON lists the configuration this node holds (the latest in its log,
// thesis §4.1) with each member's published client address.
func (s *Server) membersJSON() MembersJSON {
	out := MembersJSON{Members: []MemberJSON{}, ClusterID: s.cfg.ClusterID}
	lead, _ := s.members.Leader()
	out.Leader = node.FormatID(lead)
	published := s.kv.Members()
	for _, m := range s.members.Members() {
		j := MemberJSON{ID: node.FormatID(m.ID), PeerAddr: m.PeerAddr, Voter: m.Voter}
		if info, ok := published[m.ID]; ok {
			j.ClientAddr = info.ClientAddr
			if j.PeerAddr == "" {
				j.PeerAddr = info.PeerAddr
			}
		}
		if j.PeerAddr == "" {
			j.PeerAddr = s.cfg.PeerAddrs[m.ID]
		}
		out.Members = append(out.Members, j)
	}
	return out
}

func (s *Server) handleMembers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.membersJSON())
}

func (s *Server) handleAddMember(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ID       string `json:"id"`
		PeerAddr string `json:"peer_addr"`
		Learner  bool   `json:"learner"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	id, err := node.ParseID(body.ID)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error(), Code: "invalid_change"})
		return
	}
	if body.PeerAddr == "" {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "peer_addr (host:port) is required", Code: "invalid_change"})
		return
	}
	s.change(w, r, func(ctx context.Context) error { return s.members.AddMember(ctx, id, body.PeerAddr, body.Learner) })
}

// changeMember runs a change of the member the path names.
func (s *Server) changeMember(w http.ResponseWriter, r *http.Request, do func(context.Context, uint64) error) {
	id, err := node.ParseID(r.PathValue("id"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error(), Code: "invalid_change"})
		return
	}
	s.change(w, r, func(ctx context.Context) error { return do(ctx, id) })
}

// change runs do, which returns once the change is committed, and answers
// the members as they then are.
func (s *Server) change(w http.ResponseWriter, r *http.Request, do func(context.Context) error) {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	if err := do(ctx); err != nil {
		s.writeChangeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.membersJSON())
}

func (s *Server) handleTransfer(w http.ResponseWriter, r *http.Request) {
	var body struct {
		To string `json:"to"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	to := raft.None
	if body.To != "" {
		id, err := node.ParseID(body.To)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error(), Code: "invalid_target"})
			return
		}
		to = id
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	if err := s.members.TransferLeadership(ctx, to); err != nil {
		s.writeChangeError(w, err)
		return
	}
	lead, term := s.members.Leader()
	writeJSON(w, http.StatusOK, TransferJSON{Leader: node.FormatID(lead), Term: term})
}

// changeErrors map the node's refusals of a change or transfer to
// statuses and codes; anything else is 503 (no leader, no quorum in time).
var changeErrors = []struct {
	err    error
	status int
	code   string
}{
	// The node wraps its own errors around the core's: the more
	// specific come first.
	{node.ErrUnknownMember, http.StatusNotFound, "unknown_member"},
	{node.ErrDuplicateMember, http.StatusConflict, "member_exists"},
	{raft.ErrConfChangePending, http.StatusConflict, "change_pending"},
	{node.ErrTransferAborted, http.StatusConflict, "transfer_aborted"},
	{raft.ErrTransferTarget, http.StatusBadRequest, "invalid_target"},
	{raft.ErrInvalidConfChange, http.StatusBadRequest, "invalid_change"},
}

func (s *Server) writeChangeError(w http.ResponseWriter, err error) {
	for _, e := range changeErrors {
		if errors.Is(err, e.err) {
			writeJSON(w, e.status, errorBody{Error: err.Error(), Code: e.code})
			return
		}
	}
	s.writeUnavailable(w, err)
}

// onLeader runs h on the leader: a follower hands the request, with its
// credentials, to the leader's client address and relays the answer. The
// leader must run these: it alone proposes a change, validates it against
// the latest configuration and waits for it to commit, and a transfer is
// the leader's to make (thesis §3.10). A change is rare, so one more hop
// costs nothing; relaying (rather than redirecting) keeps the answer the
// same whichever node the client picked, as for writes, and keeps the
// Authorization header, which HTTP clients drop on a redirect to another
// host. The leader authenticates the request again.
func (s *Server) onLeader(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.members.Role() == raft.Leader {
			h(w, r)
			return
		}
		lead, _ := s.members.Leader()
		switch info, published := s.kv.Member(lead); {
		case lead == raft.None:
			s.writeUnavailable(w, raft.ErrNoLeader)
		case r.Header.Get(headerForwarded) != "":
			s.writeUnavailable(w, fmt.Errorf("%w: %s forwarded the request to this node, which does not lead", raft.ErrNotLeader, r.Header.Get(headerForwarded)))
		case !published || info.ClientAddr == "":
			s.writeUnavailable(w, fmt.Errorf("the leader %s has not published its client address yet", node.FormatID(lead)))
		default:
			s.forward(w, r, info.ClientAddr)
		}
	}
}

// forward relays r to the client address addr.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, addr string) {
	target := &url.URL{Scheme: "http", Host: addr}
	var transport http.RoundTripper
	if s.cfg.RelayTLS != nil {
		target.Scheme = "https"
		transport = &http.Transport{TLSClientConfig: s.cfg.RelayTLS, Proxy: http.ProxyFromEnvironment}
	}
	p := &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set(headerForwarded, node.FormatID(s.members.ID()))
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			// The change may have been made: the client retries and
			// learns it from the refusal (409, 404) or the list.
			s.writeUnavailable(w, fmt.Errorf("forwarding to the leader at %s: %w", addr, err))
		},
	}
	p.ServeHTTP(w, r)
}
