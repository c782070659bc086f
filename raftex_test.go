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
	"github.com/raftex/raftex/kvapi"
)

// Get on a cluster that has not elected its leader yet waits for one, as
// Set does, rather than fail with "no leader".
func TestGetWaitsForALeader(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the nodes stop (cleanups run last first)
	nodes := startThree(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, _, err := nodes[1].Get(ctx, "k"); !errors.Is(err, kvapi.ErrNotFound) {
		t.Fatalf("Get right after the start = %v, want ErrNotFound", err)
	}
	if _, err := nodes[0].Set(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, _, err := nodes[2].Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
}

// TestNode_RangesTxnAndWatch: the library has the client's vocabulary:
// Set and Get with revisions, CAS through WithCAS, List, DeletePrefix,
// Txn, and a Watch on a follower that sees every change of its prefix in
// order.
func TestNode_RangesTxnAndWatch(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	nodes := startThree(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := nodes[2].Watch(ctx, "cfg/", 1)
	rev, err := nodes[0].Set(ctx, "cfg/a", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[1].Set(ctx, "cfg/a", []byte("x"), kvapi.WithCAS(rev-1)); !errors.Is(err, kvapi.ErrCASMismatch) {
		t.Fatalf("stale CAS = %v", err)
	}
	if v, got, err := nodes[1].Get(ctx, "cfg/a"); err != nil || string(v) != "1" || got != rev {
		t.Fatalf("Get = %q %d %v, want 1 at %d", v, got, err, rev)
	}
	resp, err := nodes[1].Txn(ctx, kvapi.Txn{
		Compare: []kvapi.Compare{kvapi.RevisionIs("cfg/a", rev), kvapi.Exists("cfg/b", false)},
		Success: []kvapi.Op{kvapi.Put("cfg/a", []byte("2")), kvapi.Put("cfg/b", []byte("3")), kvapi.Put("other", nil)},
	})
	if err != nil || !resp.Succeeded {
		t.Fatalf("Txn = %+v %v", resp, err)
	}
	page, err := nodes[2].List(ctx, "cfg/", kvapi.ListOptions{Limit: 1})
	if err != nil || len(page.KVs) != 1 || !page.More || string(page.KVs[0].Value) != "2" || page.Revision < resp.Revision {
		t.Fatalf("List = %+v %v", page, err)
	}
	n, drev, err := nodes[0].DeletePrefix(ctx, "cfg/", false)
	if err != nil || n != 2 {
		t.Fatalf("DeletePrefix = %d %v", n, err)
	}
	want := []string{
		fmt.Sprintf("%d [put cfg/a 1]", rev),
		fmt.Sprintf("%d [put cfg/a 2 put cfg/b 3]", resp.Revision),
		fmt.Sprintf("%d [delete cfg/a  delete cfg/b ]", drev),
	}
	for _, w := range want {
		ev := <-events
		got := fmt.Sprint(ev.Revision, " [")
		for i, c := range ev.Changes {
			if i > 0 {
				got += " "
			}
			got += fmt.Sprintf("%s %s %s", c.Type, c.Key, c.Value)
		}
		if got += "]"; got != w || ev.Err != nil {
			t.Fatalf("event %q (err %v), want %q", got, ev.Err, w)
		}
	}
	cancel()
	for range events { // closes once ctx ends
	}
}

// startThree starts a three-node cluster in this process, stopped when the
// test ends.
func startThree(t *testing.T) []*raftex.Node {
	t.Helper()
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cluster := map[uint64]string{1: loopbackAddr(t), 2: loopbackAddr(t), 3: loopbackAddr(t)}
	var nodes []*raftex.Node
	for id := uint64(1); id <= 3; id++ {
		n, err := raftex.StartNode(raftex.Config{ID: id, DataDir: filepath.Join(dir, fmt.Sprint("n", id)),
			PeerAddr: cluster[id], InitialCluster: cluster, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Stop() })
		nodes = append(nodes, n)
	}
	return nodes
}
