package raftex_test

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/raftex/raftex"
)

// A join the cluster refuses (another member has this node's peer
// address; a change is pending) fails the start with the reason and
// leaves no cluster file, so the next start joins anew; Join and
// InitialCluster exclude each other.
func TestRefusedJoinLeavesNoClusterFile(t *testing.T) {
	defer goleak.VerifyNone(t)
	peer := loopbackAddr(t)
	var asked []string
	taken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"members":[{"id":"n1","peer_addr":"` + peer + `","client_addr":"","voter":true}],"leader":"n1","cluster_id":"c1"}`))
	}))
	defer taken.Close()
	member := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		asked = append(asked, r.Method+" "+r.URL.Path+" "+string(b))
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error":"raft: a configuration change is pending","code":"change_pending"}`))
			return
		}
		w.Write([]byte(`{"members":[{"id":"n1","peer_addr":"127.0.0.1:1","client_addr":"","voter":true}],"leader":"n1","cluster_id":"c1"}`))
	}))
	defer member.Close()
	dir := t.TempDir()
	cfg := raftex.Config{ID: 4, DataDir: dir, PeerAddr: peer, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Join: &raftex.Join{URL: member.URL}}
	_, err := raftex.StartNode(cfg)
	if err == nil || !strings.Contains(err.Error(), "a configuration change is pending") {
		t.Fatalf("join refused with 409: %v", err)
	}
	if len(asked) != 3 || asked[1] != `POST /v1/members {"id":"n4","peer_addr":"`+peer+`"}` {
		t.Fatalf("requests %q: want the list, the add, and the list again", asked)
	}
	if _, err := os.Stat(filepath.Join(dir, "cluster.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the refused join left a cluster file: %v", err)
	}
	cfg.Join.URL = taken.URL
	if _, err := raftex.StartNode(cfg); err == nil || !strings.Contains(err.Error(), "member n1 has the peer address") {
		t.Fatalf("join at a taken peer address: %v", err)
	}
	cfg.InitialCluster = map[uint64]string{4: peer}
	if _, err := raftex.StartNode(cfg); err == nil || !strings.Contains(err.Error(), "exclude each other") {
		t.Fatalf("Join with InitialCluster: %v", err)
	}
}
