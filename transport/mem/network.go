package mem

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Network connects the in-memory transports of one test and injects its
// faults. Create it inside the synctest bubble, if any. Safe for
// concurrent use.
type Network struct {
	seed uint64

	mu      sync.Mutex // never held while taking a Transport's mu or calling a Handler
	nodes   map[uint64]*Transport
	group   map[uint64]int // partition group of each listed node; nil when whole
	cuts    map[route]bool // one-way cuts
	links   map[route]*linkState
	drop    float64
	dup     float64
	reorder float64
	window  time.Duration // the most a reordered message is held back
	delayLo time.Duration
	delayHi time.Duration
}

// route is a directed link.
type route struct{ from, to uint64 }

// linkState is the fault state of one directed link.
type linkState struct {
	rng  *rand.Rand
	last time.Time // delivery time of the link's last in-order message
}

// NewNetwork returns a network with no faults whose random choices all
// derive from seed.
func NewNetwork(seed uint64) *Network {
	return &Network{seed: seed, nodes: map[uint64]*Transport{}, links: map[route]*linkState{}}
}

// Transport returns node id's transport, creating it if the node has none
// or its last one was stopped (a restart).
func (n *Network) Transport(id uint64) *Transport {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t := n.nodes[id]; t != nil && !t.stopped.Load() {
		return t
	}
	t := newTransport(n, id)
	n.nodes[id] = t
	return t
}

// Partition splits the network: nodes in different groups cannot reach
// each other. Nodes not named in any group form one more group together.
// It replaces any earlier partition; cuts stay.
func (n *Network) Partition(groups ...[]uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = map[uint64]int{}
	for i, g := range groups {
		for _, id := range g {
			n.group[id] = i + 1
		}
	}
}

// Cut drops every message from from to to (one way).
func (n *Network) Cut(from, to uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cuts == nil {
		n.cuts = map[route]bool{}
	}
	n.cuts[route{from, to}] = true
}

// Heal removes the partition and every cut. Rates and delays stay.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group, n.cuts = nil, nil
}

// SetDropRate makes each message lost with probability p.
func (n *Network) SetDropRate(p float64) { n.setRate(&n.drop, "drop", p) }

// SetDuplicateRate makes each message delivered twice with probability p.
func (n *Network) SetDuplicateRate(p float64) { n.setRate(&n.dup, "duplicate", p) }

// SetReorder holds each message back with probability p by an extra delay
// drawn from [0, window], so later messages on its link may overtake it.
// Other messages keep their order on each link.
func (n *Network) SetReorder(p float64, window time.Duration) {
	if window < 0 {
		panic(fmt.Sprintf("mem: reorder window %s is negative", window))
	}
	n.setRate(&n.reorder, "reorder", p)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.window = window
}

// SetDelay delays each message by a time drawn from [lo, hi].
func (n *Network) SetDelay(lo, hi time.Duration) {
	if lo < 0 || hi < lo {
		panic(fmt.Sprintf("mem: delay [%s, %s] is not a range of non-negative durations", lo, hi))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.delayLo, n.delayHi = lo, hi
}

func (n *Network) setRate(rate *float64, what string, p float64) {
	if !(p >= 0 && p <= 1) {
		panic(fmt.Sprintf("mem: %s rate %v is outside [0, 1]", what, p))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	*rate = p
}

// plan draws the fate of one message sent now from from to to: the times
// to deliver its copies, none if it is lost.
func (n *Network) plan(from, to uint64, now time.Time) []time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.blocked(from, to) {
		return nil
	}
	l := n.link(from, to)
	if l.rng.Float64() < n.drop {
		return nil
	}
	copies := 1
	if l.rng.Float64() < n.dup {
		copies = 2
	}
	at := make([]time.Time, copies)
	for i := range at {
		at[i] = now.Add(n.delayLo + l.draw(n.delayHi-n.delayLo))
		if l.rng.Float64() < n.reorder {
			at[i] = at[i].Add(l.draw(n.window))
			continue
		}
		if at[i].Before(l.last) {
			at[i] = l.last // in order: never before the previous message
		}
		l.last = at[i]
	}
	return at
}

// blocked reports whether a partition or cut separates from from to.
// Called with mu held.
func (n *Network) blocked(from, to uint64) bool {
	return n.cuts[route{from, to}] || (n.group != nil && n.group[from] != n.group[to])
}

// link returns the fault state of a directed link. Called with mu held.
func (n *Network) link(from, to uint64) *linkState {
	r := route{from, to}
	l := n.links[r]
	if l == nil {
		l = &linkState{rng: rand.New(rand.NewPCG(n.seed, from*0x9e3779b97f4a7c15^to))}
		n.links[r] = l
	}
	return l
}

// draw returns a duration in [0, d].
func (l *linkState) draw(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(l.rng.Int64N(int64(d) + 1))
}

// reach returns to's current transport (nil if it has none) for a message
// from from being delivered now, or lost if a fault separates them.
func (n *Network) reach(from, to uint64) (t *Transport, lost bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.blocked(from, to) {
		return nil, true
	}
	return n.nodes[to], false
}
