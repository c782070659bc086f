package raftex_test

import (
	"testing"

	"github.com/raftex/raftex/internal/e2etest"
)

// ports hands out the peer ports of this package's tests from a range of
// its own below the kernel's ephemeral ports (32768 and up on Linux; see
// e2etest.Ports). A port taken from the kernel (127.0.0.1:0) and closed
// again is an ephemeral one: before the node listens on it, another node's
// outgoing connection or client listener (127.0.0.1:0) can take it, and
// the start fails with "address already in use". The package's internal
// tests (counters_internal_test.go) take 6000–7000, package node's TCP
// clusters 7000–8000.
var ports = e2etest.NewPorts(5000, 6000)

// loopbackAddr returns a loopback address whose port was free a moment
// ago, for a node to listen on.
func loopbackAddr(t testing.TB) string {
	t.Helper()
	return e2etest.Addr(ports.Free(t, 1)[0])
}
