// Package node is the raftex runtime: it drives the deterministic core
// (package raft) with a clock, a disk (package storage) and a network
// (package transport), and gives applications an easy API: implement FSM,
// Start a node, Propose commands and Read linearizably.
//
// Goroutines (docs/threads.md has the full list): the core goroutine owns
// the *raft.Raft and is the only code that touches it; the storage
// goroutine makes Ready batches durable (group commit: everything proposed
// while one fsync runs goes into the next); the apply goroutine feeds
// committed entries to the FSM, so a slow FSM never delays heartbeats; a
// snapshot goroutine writes FSM snapshots. Stop ends them all.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage"
	"github.com/raftex/raftex/transport"
)

// Node is one running member of a cluster. Its methods are safe for
// concurrent use.
type Node struct {
	cfg   Config
	log   *slog.Logger
	store *storage.Store
	trans transport.Transport

	inbox     chan raft.Message
	propc     chan *Proposal
	readc     chan *ReadRequest
	ctrlc     chan func(*Machine)
	persistc  chan raft.Ready
	persisted chan error
	// appliedc wakes the core goroutine when the FSM applied more
	// (raft.Raft.AppliedTo); one pending wake-up is enough.
	appliedc chan struct{}

	machine *Machine // core goroutine only
	applier *Applier // apply goroutine only
	queue   *applyQueue
	props   *registry
	waits   *indexWaiters
	events  *broker

	// Mirrors of the core's state for other goroutines, written by the
	// core goroutine.
	term atomic.Uint64
	role atomic.Uint32
	lead atomic.Uint64

	// conf is the configuration in force, for other goroutines; peers
	// are the addresses the transport was given (core goroutine only).
	conf  confMirror
	peers map[uint64]string
	// seen are the members of every configuration told since the last
	// committed one: those it lacks are removed from the transport.
	seen map[uint64]bool

	dropped  atomic.Uint64
	fatal    atomic.Pointer[error]
	failOnce sync.Once
	failc    chan struct{}
	stopOnce sync.Once
	stopc    chan struct{}
	coreDone chan struct{}
	wg       sync.WaitGroup
}

// Start opens a node over store (which it owns from now on and closes on
// Stop) and trans (likewise), restores fsm from the newest snapshot, and
// starts the goroutines. A store without state is bootstrapped with
// cfg.InitialMembership.
func Start(cfg Config, fsm FSM, store *storage.Store, trans transport.Transport) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger.With("node", FormatID(cfg.ID)),
		store: store, trans: trans,
		inbox:     make(chan raft.Message, cfg.InboxSize),
		propc:     make(chan *Proposal, 1024),
		readc:     make(chan *ReadRequest, 1024),
		ctrlc:     make(chan func(*Machine), 256),
		persistc:  make(chan raft.Ready, 1),
		persisted: make(chan error, 1),
		appliedc:  make(chan struct{}, 1),
		queue:     newApplyQueue(),
		events:    newBroker(cfg.EventBuffer),
		stopc:     make(chan struct{}),
		failc:     make(chan struct{}),
		coreDone:  make(chan struct{}),
	}
	var err error
	n.machine, n.applier, err = NewMachine(&n.cfg, store, fsm, coreEnv{n}, n.publishRuntime)
	if err != nil {
		return nil, err
	}
	n.props, n.waits = n.machine.props, n.machine.waits
	r := n.machine.Raft()
	n.term.Store(r.Term())
	n.peers, n.seen = map[uint64]string{}, map[uint64]bool{}
	n.machine.ConfChanged() // reach the members at their addresses in the log
	n.logStandingAtStart()
	if err := trans.Start(handler{n}, snapshotSource{store}); err != nil {
		return nil, fmt.Errorf("node: starting transport: %w", err)
	}
	n.publish(raft.Event{Kind: raft.EventNodeStarted, Node: cfg.ID, Term: r.Term(), Index: n.applier.Applied()})
	n.wg.Add(3)
	go n.runCore()
	go n.runStorage()
	go n.runApply()
	return n, nil
}

// ID returns this node's id.
func (n *Node) ID() uint64 { return n.cfg.ID }

// Propose replicates cmd and returns what the FSM's Apply returned for it,
// once applied on this node. On a follower the command travels to the
// leader over the peer connection (MsgProp, §8) and this node waits for
// its own FSM to apply it. The node keeps cmd: do not modify it after the
// call. Errors, and what they say about the command:
//   - certainly not applied (propose again): raft.ErrNoLeader, a
//     *raft.NotLeaderError, raft.ErrProposalDropped (a leadership
//     transfer, or over the uncommitted-bytes limit), ErrNotCommitted
//     (another leader's entry took its index);
//   - outcome unknown (retry with the same client session to stay
//     exactly-once): ErrLeadershipLost, ErrForwardLost, ErrStopped,
//     ErrStorageFailed and ctx's error.
func (n *Node) Propose(ctx context.Context, cmd []byte) (any, error) {
	done := make(chan proposalResult, 1)
	p := &Proposal{Data: cmd, Done: func(v any, err error) { done <- proposalResult{v, err} }}
	if err := submit(n, ctx, n.propc, p); err != nil {
		return nil, err
	}
	select {
	case res := <-done:
		n.observeProposal(res.err == nil)
		return res.value, res.err
	case <-ctx.Done():
		n.observeProposal(false)
		return nil, ctx.Err()
	case <-n.coreDone:
		return nil, n.stoppedErr()
	}
}

type proposalResult struct {
	value any
	err   error
}

// Read returns once a linearizable read of the FSM is safe on this node
// (thesis §6.4, ReadIndex): the leader confirmed its leadership with a
// heartbeat round after Read was called, and this node applied everything
// committed before then. Followers obtain the read index from the leader.
// Read the FSM right after Read returns nil. Errors (retry them):
// raft.ErrNoLeader, raft.ErrReadDropped, ErrLeadershipLost, ErrReadLost;
// and ErrStopped, ErrStorageFailed or ctx's error.
func (n *Node) Read(ctx context.Context) error { return n.read(ctx, false) }

// ReadLease is Read answered from the leader's lease, without a heartbeat
// round, when raft.Config.LeaseRead is on and the lease holds (thesis
// §6.4.1; see LeaseRead for the clock assumption it rests on). Otherwise,
// and on followers, it takes a round like Read.
func (n *Node) ReadLease(ctx context.Context) error { return n.read(ctx, true) }

func (n *Node) read(ctx context.Context, lease bool) error {
	done := make(chan error, 1)
	q := &ReadRequest{Lease: lease, Done: func(err error) { done <- err }}
	if err := submit(n, ctx, n.readc, q); err != nil {
		return err
	}
	return n.await(ctx, done)
}

// await returns what done delivers, or why it will not: ctx ended or the
// node stopped.
func (n *Node) await(ctx context.Context, done <-chan error) error {
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.coreDone:
		return n.stoppedErr()
	}
}

// submit hands v to the core goroutine through ch.
func submit[T any](n *Node, ctx context.Context, ch chan T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.coreDone:
		return n.stoppedErr()
	}
}

// onCore runs f on the core goroutine and waits for it.
func (n *Node) onCore(ctx context.Context, f func(*raft.Raft)) error {
	return n.onMachine(ctx, func(m *Machine) { f(m.Raft()) })
}

// onMachine runs f with the Machine on the core goroutine and waits for it.
func (n *Node) onMachine(ctx context.Context, f func(*Machine)) error {
	done := make(chan struct{})
	wrapped := func(m *Machine) { f(m); close(done) }
	select {
	case n.ctrlc <- wrapped:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.coreDone:
		return n.stoppedErr()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.coreDone:
		return n.stoppedErr()
	}
}

// Status describes the node right now.
type Status struct {
	ID   uint64
	Role raft.Role
	Term uint64
	// Vote is the candidate voted for in Term (raft.None if none).
	Vote    uint64
	Leader  uint64
	Commit  uint64
	Applied uint64
	// ApplyingBytes is the size of the committed entries handed to the
	// state machine and not applied yet (bounded by MaxApplyingBytes).
	ApplyingBytes uint64
	// FirstIndex and LastIndex bound the log still on disk.
	FirstIndex uint64
	LastIndex  uint64
	// Membership is the configuration in force: the latest in the log
	// (thesis §4.1), with its learners (and, during joint consensus, the
	// outgoing voters).
	Membership raft.Membership
	// PendingConfIndex is the index of a configuration change not
	// committed yet (0: none).
	PendingConfIndex uint64
	// LeadTransferee is the target of a leadership transfer in progress
	// on this leader (raft.None: none).
	LeadTransferee uint64
	// Progress of every member, on the leader only.
	Progress map[uint64]raft.Progress
	// DroppedMessages counts inbound messages dropped on a full inbox;
	// DroppedEvents counts events dropped on full subscriptions.
	DroppedMessages uint64
	DroppedEvents   uint64
}

// Status returns the node's state; on a stopped node, ErrStopped.
func (n *Node) Status(ctx context.Context) (Status, error) {
	var st raft.Status
	if err := n.onCore(ctx, func(r *raft.Raft) { st = r.Status() }); err != nil {
		return Status{}, err
	}
	return Status{
		ID: st.ID, Role: st.Role, Term: st.Term, Vote: st.Vote, Leader: st.Leader, Commit: st.Commit,
		Applied: n.waits.applied(), ApplyingBytes: st.ApplyingBytes, FirstIndex: st.FirstIndex, LastIndex: st.LastIndex,
		Membership: st.Membership, PendingConfIndex: st.PendingConfIndex, LeadTransferee: st.LeadTransferee,
		Progress:        st.Progress,
		DroppedMessages: n.dropped.Load(), DroppedEvents: n.events.droppedTotal(),
	}, nil
}

// Leader returns the id of the leader this node knows (raft.None if none)
// and the current term, without a round trip to the core goroutine.
func (n *Node) Leader() (id, term uint64) { return n.lead.Load(), n.term.Load() }

// Role returns this node's role as last seen.
func (n *Node) Role() raft.Role { return raft.Role(n.role.Load()) }

// Membership returns the configuration in force: the latest in the log
// (thesis §4.1).
func (n *Node) Membership() raft.Membership { return n.conf.get() }

// AppliedIndex returns the index of the last entry applied to the FSM.
func (n *Node) AppliedIndex() uint64 { return n.waits.applied() }

// Campaign makes this node start an election now.
func (n *Node) Campaign(ctx context.Context) error {
	return n.onCore(ctx, func(r *raft.Raft) { r.Campaign() })
}

// TransferLeadership asks the leader (this node) to hand leadership to the
// voter to (thesis §3.10), or, with to == raft.None, to the most
// up-to-date voter. While the transfer runs the leader refuses proposals
// (raft.ErrTransferring). It returns nil once this node learns that the
// target leads, and ErrTransferAborted if the leader gave up after an
// election timeout (proposals resume) or another node took over.
func (n *Node) TransferLeadership(ctx context.Context, to uint64) error {
	done := make(chan error, 1)
	if err := n.onMachine(ctx, func(m *Machine) {
		m.TransferLeadership(to, func(err error) { done <- err })
	}); err != nil {
		return err
	}
	return n.await(ctx, done)
}

// Subscribe returns a subscription to every event of this node. Delivery
// never blocks the node: when the subscriber falls behind, events are
// dropped and counted. Close the subscription when done.
func (n *Node) Subscribe() *Subscription { return n.events.subscribe() }

// Stop stops the node and returns once every goroutine it started has
// ended, the storage is closed and consistent, and the transport stopped.
// Pending proposals and reads fail with ErrStopped. If the node had
// already stopped itself on a storage failure, Stop returns that error
// (ErrStorageFailed). Stop is idempotent: later calls return nil.
func (n *Node) Stop() error {
	var err error
	n.stopOnce.Do(func() {
		close(n.stopc)
		<-n.coreDone
		terr := n.trans.Stop()
		n.wg.Wait()
		if e := n.fatal.Load(); e != nil {
			err = *e
		}
		err = errors.Join(err, terr)
		n.props.failAll(ErrStopped)
		n.waits.failAll(ErrStopped)
		err = errors.Join(err, n.store.Close())
		n.publish(raft.Event{Kind: raft.EventNodeStopped, Node: n.cfg.ID, Term: n.term.Load(), Role: n.Role()})
		n.events.closeAll()
	})
	return err
}

// Done is closed once the node has stopped: by Stop, or by itself after a
// storage failure, which Err then returns.
func (n *Node) Done() <-chan struct{} { return n.coreDone }

// Err returns the error that stopped the node by itself (wrapping
// ErrStorageFailed), or nil.
func (n *Node) Err() error {
	if e := n.fatal.Load(); e != nil {
		return *e
	}
	return nil
}

func (n *Node) stoppedErr() error {
	if e := n.fatal.Load(); e != nil {
		return *e
	}
	return ErrStopped
}

func (n *Node) fail(err error) {
	err = fmt.Errorf("%w: %w", ErrStorageFailed, err)
	n.failOnce.Do(func() {
		n.fatal.Store(&err)
		n.log.Error("stopping: storage failed", "err", err)
		close(n.failc)
	})
}

func (n *Node) observeProposal(ok bool) {
	if n.cfg.Observer != nil {
		n.cfg.Observer.ObserveProposal(ok)
	}
}

// snapshotSource gives the transport the bodies of snapshots to send.
type snapshotSource struct{ store *storage.Store }

func (s snapshotSource) OpenSnapshot(meta raft.SnapshotMeta) (io.ReadCloser, int64, error) {
	_, body, size, err := s.store.OpenSnapshot(meta.Index)
	return body, size, err
}

// LogTail returns up to max of the last entries still in the log, with the
// log's first and last index (for status pages; it reads the storage, not
// the core).
func (n *Node) LogTail(max int) (first, last uint64, ents []raft.Entry, err error) {
	if first, err = n.store.FirstIndex(); err != nil {
		return
	}
	if last, err = n.store.LastIndex(); err != nil {
		return
	}
	lo := first
	if last+1 > lo+uint64(max) {
		lo = last + 1 - uint64(max)
	}
	if lo <= last {
		ents, err = n.store.Entries(lo, last+1, ^uint64(0))
	}
	return first, last, ents, err
}

// FormatID renders a node id the way raftex shows it everywhere: n<id>.
func FormatID(id uint64) string {
	if id == raft.None {
		return ""
	}
	return "n" + strconv.FormatUint(id, 10)
}

// ParseID accepts "n3" or "3".
func ParseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(strings.TrimPrefix(s, "n"), 10, 64)
	if err != nil || id == raft.None {
		return 0, fmt.Errorf("node: invalid node id %q (want n1, n2, ... or 1, 2, ...)", s)
	}
	return id, nil
}
