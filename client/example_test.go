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

// Example_members replaces a failed member n3 by n4 and then moves
// leadership off the leader before its maintenance (docs/operations.md).
// n4's process runs `raftex serve --id n4 ... --join http://127.0.0.1:8001`,
// which adds it itself; MemberAdd is for adding a member whose process
// starts later. Compiled, not run: it needs a running cluster.
func Example_members() {
	c, err := client.New([]string{"127.0.0.1:8001", "127.0.0.1:8002"}, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if _, err := c.MemberRemove(ctx, "n3"); err != nil && !errors.Is(err, client.ErrUnknownMember) {
		log.Fatal(err)
	}
	ms, err := c.MemberAdd(ctx, "n4", "10.0.0.4:7001", false) // a learner, promoted once caught up
	switch {
	case errors.Is(err, client.ErrConflict):
		fmt.Println("a change is pending, or n4 or its address is taken:", err)
	case err != nil:
		log.Fatal(err)
	}
	for _, m := range ms.Members {
		fmt.Println(m.ID, m.PeerAddr, m.Voter)
	}
	leader, term, err := c.TransferLeadership(ctx, "") // to the most up-to-date follower
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s leads term %d\n", leader, term)
}
