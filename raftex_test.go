package raftex_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/raftex/raftex"
)

// Get on a cluster that has not elected its leader yet waits for one, as
// Set does, rather than fail with "no leader".
func TestGetWaitsForALeader(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cluster := map[uint64]string{1: freeAddr(), 2: freeAddr(), 3: freeAddr()}
	var nodes []*raftex.Node
	for id := uint64(1); id <= 3; id++ {
		n, err := raftex.StartNode(raftex.Config{ID: id, DataDir: filepath.Join(dir, fmt.Sprint("n", id)),
			PeerAddr: cluster[id], InitialCluster: cluster, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Stop()
		nodes = append(nodes, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := nodes[1].Get(ctx, "k"); !errors.Is(err, raftex.ErrNotFound) {
		t.Fatalf("Get right after the start = %v, want ErrNotFound", err)
	}
	if _, err := nodes[0].Set(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := nodes[2].Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
}
