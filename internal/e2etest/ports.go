package e2etest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// Ports hands out loopback ports from [low, high), a range below the
// kernel's ephemeral ports (32768 and up on Linux), so that no outgoing
// connection of a running node takes a port a test picked a moment before
// for a listener.
//
// A port is free only "a moment ago": Ports keeps one test process from
// handing a port out twice, not two processes. go test runs the packages
// of ./e2e/... at once, each in its own process, so each package takes a
// range of its own.
type Ports struct {
	mu        sync.Mutex
	low, high int
	next      int // where the next search starts; low <= next < high
}

// NewPorts returns the ports of [low, high), starting the search at a
// random one of them.
func NewPorts(low, high int) *Ports {
	return &Ports{low: low, high: high, next: low + rand.IntN(high-low)}
}

// Free returns n distinct loopback ports, each free a moment ago.
func (p *Ports) Free(t testing.TB, n int) []int {
	t.Helper()
	return p.find(t, n, false)
}

// Run returns n consecutive loopback ports, each free a moment ago (for
// `raftex cluster`, which numbers its ports from a base).
func (p *Ports) Run(t testing.TB, n int) []int {
	t.Helper()
	return p.find(t, n, true)
}

// Take is Free for code without a testing.TB (an Example): it returns an
// error where Free fails the test.
func (p *Ports) Take(n int) ([]int, error) { return p.take(n, false) }

func (p *Ports) find(t testing.TB, n int, consecutive bool) []int {
	t.Helper()
	got, err := p.take(n, consecutive)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// take holds a listener on each port it finds until it has n of them,
// then closes them all.
func (p *Ports) take(n int, consecutive bool) ([]int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range 1000 {
		var got []int
		var held []net.Listener
		if consecutive && p.next+n > p.high {
			p.next = p.low // a run never wraps past high to low
		}
		for len(got) < n {
			port := p.next
			if p.next++; p.next >= p.high {
				p.next = p.low
			}
			ln, err := net.Listen("tcp", Addr(port))
			if err != nil {
				if consecutive {
					break
				}
				continue
			}
			held = append(held, ln)
			got = append(got, port)
		}
		for _, ln := range held {
			ln.Close()
		}
		if len(got) == n {
			return got, nil
		}
	}
	return nil, fmt.Errorf("no %d free ports in [%d, %d)", n, p.low, p.high)
}

// Addr is the loopback address of port.
func Addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
