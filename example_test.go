package raftex_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/raftex/raftex"
	"github.com/raftex/raftex/internal/e2etest"
)

// Example starts a three-node cluster in one process, writes through one
// node and reads linearizably through another.
func Example() {
	dir, _ := os.MkdirTemp("", "raftex-example")
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	cluster := map[uint64]string{1: freeAddr(), 2: freeAddr(), 3: freeAddr()}
	var nodes []*raftex.Node
	for id := uint64(1); id <= 3; id++ {
		n, err := raftex.StartNode(raftex.Config{
			ID:             id,
			DataDir:        filepath.Join(dir, fmt.Sprint("n", id)),
			PeerAddr:       cluster[id],
			InitialCluster: cluster,
			Logger:         quiet,
		})
		if err != nil {
			fmt.Println("start:", err)
			return
		}
		defer n.Stop()
		nodes = append(nodes, n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := nodes[0].Set(ctx, "greeting", []byte("hello, raft")); err != nil {
		fmt.Println("set:", err)
		return
	}
	v, _, err := nodes[2].Get(ctx, "greeting")
	if err != nil {
		fmt.Println("get:", err)
		return
	}
	fmt.Println(string(v))
	deleted, _, _ := nodes[1].Delete(ctx, "greeting")
	fmt.Println("deleted:", deleted)
	_, _, err = nodes[0].Get(ctx, "greeting")
	fmt.Println(err)
	// Output:
	// hello, raft
	// deleted: true
	// raftex: key not found
}

// freeAddr returns a loopback address whose port was free a moment ago,
// below the kernel's ephemeral ports (ports_test.go says why).
func freeAddr() string {
	port, err := ports.Take(1)
	if err != nil {
		panic(err)
	}
	return e2etest.Addr(port[0])
}
