package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/raftex/raftex/client"
	"github.com/raftex/raftex/kvapi"
)

// Example writes, reads, compares-and-sets and deletes a key on the
// cluster `raftex cluster` starts (docs/api.md shows the same in full).
// It is compiled, not run: it needs a running cluster.
func Example() {
	c, err := client.New([]string{"127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003"}, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Retried through failures with one session: applied exactly once.
	rev, err := c.Set(ctx, "users/alice", []byte("hello"))
	if err != nil {
		log.Fatal(err)
	}
	value, rev, err := c.Get(ctx, "users/alice")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s at revision %d\n", value, rev)

	// Compare-and-set: write only if nobody wrote since.
	_, err = c.Set(ctx, "users/alice", []byte("hi"), kvapi.WithCAS(rev))
	var mismatch *kvapi.CASMismatchError
	switch {
	case errors.As(err, &mismatch):
		fmt.Println("lost the race; the key is now at revision", mismatch.Revision)
	case errors.Is(err, client.ErrUnavailable):
		fmt.Println("no quorum before the deadline; the outcome is unknown")
	case err != nil:
		log.Fatal(err)
	}

	if _, _, err := c.Delete(ctx, "users/alice"); err != nil {
		log.Fatal(err)
	}
	if _, _, err := c.Get(ctx, "users/alice"); errors.Is(err, kvapi.ErrNotFound) {
		fmt.Println("gone")
	}
}
