package raftex

import "testing"

// A node listening for clients on every interface (--client-addr
// 0.0.0.0:8000, as in a container) must publish an address the others can
// forward writes to: the peer address's host with the client port. Found by
// e2e/docker (every test: newCluster writes through each node): followers
// forwarded to "[::]:8000", reached themselves, and every write through a
// follower timed out.
func TestAdvertisedClientAddr(t *testing.T) {
	for _, tc := range []struct{ listen, peer, want string }{
		{"127.0.0.1:8001", "127.0.0.1:7001", "127.0.0.1:8001"},
		{"10.0.0.1:8001", "n1:7000", "10.0.0.1:8001"},
		{"[::]:8000", "n1:7000", "n1:8000"},
		{"0.0.0.0:8000", "n1:7000", "n1:8000"},
		{"[::]:8000", "[fd00::1]:7000", "[fd00::1]:8000"},
		{":8000", "10.0.0.3:7000", "10.0.0.3:8000"},
		{"[::]:8000", "0.0.0.0:7000", "[::]:8000"}, // nothing better to offer
		{"[::]:8000", ":7000", "[::]:8000"},
		{"localhost:8000", "n1:7000", "localhost:8000"},
	} {
		if got := advertisedClientAddr(tc.listen, tc.peer); got != tc.want {
			t.Errorf("advertisedClientAddr(%q, %q) = %q, want %q", tc.listen, tc.peer, got, tc.want)
		}
	}
}
