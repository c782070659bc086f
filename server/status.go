package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/node"
	"github.com/raftex/raftex/raft"
)

// StatusJSON is the body of GET /v1/status.
type StatusJSON struct {
	ID           string       `json:"id"`
	Role         string       `json:"role"`
	Term         uint64       `json:"term"`
	Leader       string       `json:"leader"`
	CommitIndex  uint64       `json:"commit_index"`
	AppliedIndex uint64       `json:"applied_index"`
	LastIndex    uint64       `json:"last_index"`
	FirstIndex   uint64       `json:"first_index"`
	Members      []MemberJSON `json:"members"`
	// PendingConfIndex is the index of a configuration entry this node
	// has that is not committed yet (thesis §4.1: one change at a time);
	// absent when none.
	PendingConfIndex uint64 `json:"pending_conf_index,omitempty"`
	// TransferringTo is, on a leader handing leadership over (thesis
	// §3.10), the target; absent otherwise.
	TransferringTo string                  `json:"transferring_to,omitempty"`
	Progress       map[string]ProgressJSON `json:"progress,omitempty"`
}

// MemberJSON describes one member in StatusJSON.
type MemberJSON struct {
	ID         string `json:"id"`
	PeerAddr   string `json:"peer_addr"`
	ClientAddr string `json:"client_addr"`
	Voter      bool   `json:"voter"`
}

// ProgressJSON is the leader's view of one follower (§5.3 nextIndex and
// matchIndex).
type ProgressJSON struct {
	Match uint64 `json:"match"`
	Next  uint64 `json:"next"`
	State string `json:"state"`
}

// roleName maps a role to the API's names; a non-voting member is a
// learner whatever its core role.
func roleName(r raft.Role, voter bool) string {
	if !voter {
		return "learner"
	}
	return r.String()
}

func (s *Server) status(ctx context.Context) (StatusJSON, error) {
	st, err := s.node.Status(ctx)
	if err != nil {
		return StatusJSON{}, err
	}
	out := StatusJSON{
		ID: node.FormatID(st.ID), Role: roleName(st.Role, st.Membership.IsVoter(st.ID)),
		Term: st.Term, Leader: node.FormatID(st.Leader),
		CommitIndex: st.Commit, AppliedIndex: st.Applied, LastIndex: st.LastIndex, FirstIndex: st.FirstIndex,
		Members: s.membersJSON().Members, PendingConfIndex: st.PendingConfIndex,
	}
	if st.LeadTransferee != raft.None {
		out.TransferringTo = node.FormatID(st.LeadTransferee)
	}
	if len(st.Progress) > 0 {
		out.Progress = map[string]ProgressJSON{}
		for id, pr := range st.Progress {
			if id != st.ID {
				out.Progress[node.FormatID(id)] = ProgressJSON{Match: pr.Match, Next: pr.Next, State: pr.State.String()}
			}
		}
	}
	return out, nil
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, "GET")
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	st, err := s.status(ctx)
	if err != nil {
		s.writeUnavailable(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// LogJSON is the body of GET /v1/log.
type LogJSON struct {
	FirstIndex uint64      `json:"first_index"`
	LastIndex  uint64      `json:"last_index"`
	Entries    []EntryJSON `json:"entries"`
}

// EntryJSON describes a log entry without its data.
type EntryJSON struct {
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
	Type  string `json:"type"`
	Size  int    `json:"size"`
}

func (s *Server) handleLog(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, "GET")
		return
	}
	tail := 20
	if v := r.URL.Query().Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1000 {
			writeError(w, http.StatusBadRequest, "tail must be a number from 0 to 1000")
			return
		}
		tail = n
	}
	first, last, ents, err := s.node.LogTail(tail)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := LogJSON{FirstIndex: first, LastIndex: last, Entries: []EntryJSON{}}
	for _, e := range ents {
		out.Entries = append(out.Entries, EntryJSON{Index: e.Index, Term: e.Term, Type: e.Type.String(), Size: len(e.Data)})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleHealthz answers 200 while the node runs, and 503 once it stopped
// itself (its storage failed): a liveness probe then restarts it.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET")
		return
	}
	if err := s.node.Err(); err != nil {
		s.writeNotReady(w, "node stopped: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz answers 200 once a leader is known and this node is caught
// up with it: a read barrier (thesis §6.4) returned, so this node applied
// everything the leader had committed when the probe arrived, and a stale
// read here now sees every write acknowledged before the probe.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET")
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	if err := s.node.Err(); err != nil {
		s.writeNotReady(w, "node stopped: "+err.Error())
		return
	}
	if s.leaderName() == "" {
		s.writeNotReady(w, "no leader known")
		return
	}
	if err := s.node.Read(ctx); err != nil {
		s.writeNotReady(w, "not caught up with the leader: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "leader": s.leaderName()})
}

func (s *Server) writeNotReady(w http.ResponseWriter, msg string) {
	name := s.leaderName()
	writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: msg, Leader: &name})
}

// PublishSelf records this node's addresses in the replicated store until
// they are there (etcd publishes member attributes the same way), so the
// others can forward writes to it when it leads. It returns when published
// or when ctx ends; run it in a goroutine.
func (s *Server) PublishSelf(ctx context.Context, info kv.MemberInfo) {
	id := s.node.ID()
	for attempt := 0; ; attempt++ {
		if cur, ok := s.kv.Member(id); ok && cur == info {
			return
		}
		wctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		res, err := s.Write(wctx, kv.PublishMember(id, info))
		cancel()
		switch {
		case err == nil && res.Err == nil:
			attempt = 0 // published: wait for this node to apply it, then confirm
		case err == nil:
			s.log.Warn("publishing member addresses refused", "err", res.Err)
		default:
			s.log.Debug("publishing member addresses", "err", err)
		}
		t := time.NewTimer(time.Duration(min(attempt+1, 20)) * 50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
