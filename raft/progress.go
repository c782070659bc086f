package raft

import (
	"fmt"
	"slices"
)

// ProgressState is how the leader currently replicates to one follower.
type ProgressState uint8

const (
	// StateProbe: the leader does not know where the follower's log
	// matches, and sends one AppendEntries at a time until it learns
	// (§5.3 "the leader decrements nextIndex and retries").
	StateProbe ProgressState = iota
	// StateReplicate: the logs match up to Match; the leader pipelines
	// AppendEntries optimistically, advancing Next as it sends.
	StateReplicate
	// StateSnapshot: the follower needs compacted entries; the leader has
	// sent a snapshot and waits (§7).
	StateSnapshot
)

func (s ProgressState) String() string {
	switch s {
	case StateProbe:
		return "probe"
	case StateReplicate:
		return "replicate"
	case StateSnapshot:
		return "snapshot"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Progress is the leader's view of one member (Figure 2 "Volatile state on
// leaders": nextIndex and matchIndex).
//
// Invariant: Match < Next.
type Progress struct {
	Match, Next uint64
	State       ProgressState
	// ProbeSent pauses a probing follower until it answers or a heartbeat
	// round passes.
	ProbeSent bool
	// PendingSnapshot is the index of the snapshot sent in StateSnapshot.
	PendingSnapshot uint64
	// snapshotTicks counts the ticks spent in StateSnapshot.
	snapshotTicks int
	// RecentActive: the member spoke this election timeout (CheckQuorum).
	RecentActive bool
	// ReadAcked is the highest heartbeat round the member acknowledged.
	ReadAcked uint64
	IsLearner bool

	inflights inflights
}

func newProgress(next uint64, maxInflight int, learner bool) *Progress {
	return &Progress{Next: next, IsLearner: learner, inflights: inflights{buf: make([]uint64, maxInflight)}}
}

func (p *Progress) reset(state ProgressState) {
	p.State = state
	p.ProbeSent = false
	p.PendingSnapshot = 0
	p.snapshotTicks = 0
	p.inflights.reset()
}

func (p *Progress) becomeProbe() {
	if p.State == StateSnapshot {
		pending := p.PendingSnapshot
		p.reset(StateProbe)
		p.Next = max(p.Match+1, pending+1)
		return
	}
	p.reset(StateProbe)
	p.Next = p.Match + 1
}

func (p *Progress) becomeReplicate() {
	p.reset(StateReplicate)
	p.Next = p.Match + 1
}

func (p *Progress) becomeSnapshot(i uint64) {
	p.reset(StateSnapshot)
	p.PendingSnapshot = i
}

// maybeUpdate records that the follower's log matches through n.
func (p *Progress) maybeUpdate(n uint64) bool {
	updated := false
	if p.Match < n {
		p.Match = n
		updated = true
		p.ProbeSent = false
	}
	p.Next = max(p.Next, n+1)
	return updated
}

// sentEntries records an AppendEntries whose last entry is last.
func (p *Progress) sentEntries(last uint64) {
	switch p.State {
	case StateReplicate:
		p.Next = last + 1
		p.inflights.add(last)
	case StateProbe:
		p.ProbeSent = true
	}
}

// maybeDecrTo handles a rejection of the AppendEntries whose previous index
// was rejected; next is where the conflict hint says to try. It returns
// false for a stale rejection, which changes nothing. In StateReplicate
// the logs are known to match up to Match, so the caller probes from
// there (becomeProbe) and the hint is not needed.
func (p *Progress) maybeDecrTo(rejected, next uint64) bool {
	if p.State == StateReplicate {
		return rejected > p.Match
	}
	if p.Next-1 != rejected {
		return false
	}
	p.Next = max(p.Match+1, min(next, rejected))
	p.ProbeSent = false
	return true
}

// isPaused reports whether the leader should hold back AppendEntries.
func (p *Progress) isPaused() bool {
	switch p.State {
	case StateProbe:
		return p.ProbeSent
	case StateReplicate:
		return p.inflights.full()
	default:
		return true
	}
}

func (p *Progress) String() string {
	return fmt.Sprintf("match=%d next=%d %s", p.Match, p.Next, p.State)
}

// inflights is a ring buffer of the last index of each AppendEntries sent
// to a follower in StateReplicate and not yet acknowledged: flow control
// for pipelining.
type inflights struct {
	buf   []uint64
	start int
	count int
}

func (in *inflights) full() bool { return in.count == len(in.buf) }

func (in *inflights) add(last uint64) {
	if in.full() {
		panic("raft: inflights overflow")
	}
	in.buf[(in.start+in.count)%len(in.buf)] = last
	in.count++
}

// freeLE releases every message whose last index is <= to.
func (in *inflights) freeLE(to uint64) {
	for in.count > 0 && in.buf[in.start] <= to {
		in.start = (in.start + 1) % len(in.buf)
		in.count--
	}
}

// freeFirst releases the oldest message.
func (in *inflights) freeFirst() {
	if in.count > 0 {
		in.start = (in.start + 1) % len(in.buf)
		in.count--
	}
}

func (in *inflights) reset() { in.start, in.count = 0, 0 }

// quorumIndex returns the highest value that a quorum of voters has reached
// (§5.3: the commit index is the match index replicated on a majority).
func quorumIndex(voters []uint64, value func(id uint64) uint64) uint64 {
	if len(voters) == 0 {
		return 0
	}
	var stack [8]uint64
	vals := stack[:0]
	for _, id := range voters {
		vals = append(vals, value(id))
	}
	slices.Sort(vals)
	return vals[len(vals)-(len(vals)/2+1)]
}
