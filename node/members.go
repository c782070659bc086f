package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/raftex/raftex/raft"
)

var (
	// ErrTransferAborted is returned by TransferLeadership when the
	// target did not take over: the leader gave up after an election
	// timeout (thesis §3.10), or another node took over.
	ErrTransferAborted = errors.New("node: leadership transfer aborted")
	// ErrUnknownMember is returned for a change naming an id that is not
	// a member (it also matches raft.ErrInvalidConfChange).
	ErrUnknownMember = errors.New("node: unknown member")
	// ErrDuplicateMember is returned for adding an id or a peer address
	// that a member already has (it also matches
	// raft.ErrInvalidConfChange).
	ErrDuplicateMember = errors.New("node: duplicate member")
)

// Member is one member of the configuration: its id, the address its peers
// reach it at (from the configuration entry that added it; empty for a
// member of the bootstrap configuration, whose address the transport was
// given at start), and whether it votes.
type Member struct {
	ID       uint64
	PeerAddr string
	Voter    bool
}

// confMirror holds the configuration in force for goroutines other than
// the core's.
type confMirror struct {
	mu sync.Mutex
	m  raft.Membership
}

// set replaces the configuration and returns the one before.
func (c *confMirror) set(m raft.Membership) raft.Membership {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.m
	c.m = m
	return prev
}

func (c *confMirror) get() raft.Membership {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.Clone()
}

// Members returns the latest configuration this node has in its log (thesis
// §4.1: a server uses the latest configuration in its log, committed or
// not), with the members' peer addresses, voters first.
func (n *Node) Members() []Member {
	m := n.conf.get()
	out := make([]Member, 0, len(m.Voters)+len(m.Learners))
	for _, id := range m.Members() {
		out = append(out, Member{ID: id, PeerAddr: string(m.Context(id)), Voter: m.IsVoter(id)})
	}
	return out
}

// AddMember adds id, reachable at peerAddr, as a learner (thesis §4.2.1):
// it receives the log or a snapshot, and the leader promotes it to voter
// once it has caught up, unless learner is true. The peer address travels
// in the configuration entry, so every member (and a restarted one, and
// one restored from a snapshot) reaches id there. It returns once the
// change is committed; on a follower, a *raft.NotLeaderError.
func (n *Node) AddMember(ctx context.Context, id uint64, peerAddr string, learner bool) error {
	if peerAddr == "" {
		return fmt.Errorf("%w: node %s needs a peer address", raft.ErrInvalidConfChange, FormatID(id))
	}
	typ := raft.AddVoter
	if learner {
		typ = raft.AddLearner
	}
	return n.changeConf(ctx, func(m raft.Membership) error {
		return addable(m, id, peerAddr)
	}, raft.ConfChange{Type: typ, ID: id, Context: []byte(peerAddr)})
}

// PromoteMember makes the learner id a voter now (thesis §4.1), caught up
// or not. It returns once the change is committed.
func (n *Node) PromoteMember(ctx context.Context, id uint64) error {
	return n.changeConf(ctx, func(m raft.Membership) error {
		if !m.Contains(id) {
			return unknown(id)
		}
		return nil
	}, raft.ConfChange{Type: raft.AddVoter, ID: id})
}

// RemoveMember removes id from the configuration (thesis §4.2.2); it may be
// this node, the leader, which keeps leading until the change commits and
// then steps down. It returns once the change is committed.
func (n *Node) RemoveMember(ctx context.Context, id uint64) error {
	return n.changeConf(ctx, func(m raft.Membership) error {
		if !m.Contains(id) {
			return unknown(id)
		}
		return nil
	}, raft.ConfChange{Type: raft.RemoveMember, ID: id})
}

func unknown(id uint64) error {
	return fmt.Errorf("%w: %w: %s is not a member", ErrUnknownMember, raft.ErrInvalidConfChange, FormatID(id))
}

// ChangeVoters adds the voters of add (id to peer address) and removes the
// members of remove in one step, through joint consensus (thesis §4.3).
// New servers first join as learners and catch up (§4.2.1: a server that
// must first receive the whole log would hold up commitment as a voter);
// then one entry enters C_old,new, and the leader leaves it for C_new by
// itself. It returns once C_new is committed, or with the first error (the
// changes already committed stay).
func (n *Node) ChangeVoters(ctx context.Context, add map[uint64]string, remove []uint64) error {
	ids := sortedKeys(add)
	var learners []raft.ConfChange
	if err := n.onCore(ctx, func(r *raft.Raft) {
		m := r.Membership()
		for _, id := range ids {
			if !m.Contains(id) {
				learners = append(learners, raft.ConfChange{Type: raft.AddLearner, ID: id, Context: []byte(add[id])})
			}
		}
	}); err != nil {
		return err
	}
	if len(learners) > 0 {
		if err := n.changeConf(ctx, func(m raft.Membership) error {
			for _, cc := range learners {
				if err := addable(m, cc.ID, string(cc.Context)); err != nil {
					return err
				}
			}
			return nil
		}, learners...); err != nil {
			return err
		}
		if err := n.awaitCaughtUp(ctx, ids); err != nil {
			return err
		}
	}
	var ccs []raft.ConfChange
	for _, id := range ids {
		ccs = append(ccs, raft.ConfChange{Type: raft.AddVoter, ID: id})
	}
	for _, id := range remove {
		ccs = append(ccs, raft.ConfChange{Type: raft.RemoveMember, ID: id})
	}
	if err := n.changeConf(ctx, func(m raft.Membership) error {
		for _, id := range remove {
			if !m.Contains(id) {
				return unknown(id)
			}
		}
		return nil
	}, ccs...); err != nil {
		return err
	}
	// §4.3: the leader leaves C_old,new for C_new by itself; wait for it.
	// C_new committed is success also on a leader it removed, which has
	// stepped down by then (§4.2.2).
	return n.poll(ctx, func(r *raft.Raft) (bool, error) {
		if !r.Membership().Joint() && r.PendingConfIndex() == 0 {
			return true, nil
		}
		if r.Role() != raft.Leader {
			return false, &raft.NotLeaderError{Leader: r.Leader()}
		}
		return false, nil
	})
}

// addable reports why id at addr cannot be added to m, if it cannot.
func addable(m raft.Membership, id uint64, addr string) error {
	if m.Contains(id) {
		return fmt.Errorf("%w: %w: %s is already a member", ErrDuplicateMember, raft.ErrInvalidConfChange, FormatID(id))
	}
	for _, o := range m.Members() {
		if addr != "" && string(m.Context(o)) == addr {
			return fmt.Errorf("%w: %w: %s already has peer address %s", ErrDuplicateMember, raft.ErrInvalidConfChange, FormatID(o), addr)
		}
	}
	return nil
}

// awaitCaughtUp waits until the leader has replicated to each of ids
// everything committed when the wait began.
func (n *Node) awaitCaughtUp(ctx context.Context, ids []uint64) error {
	var target uint64
	return n.poll(ctx, func(r *raft.Raft) (bool, error) {
		if r.Role() != raft.Leader {
			return false, &raft.NotLeaderError{Leader: r.Leader()}
		}
		if target == 0 {
			target = r.Commit()
		}
		st := r.Status()
		return !slices.ContainsFunc(ids, func(id uint64) bool { return st.Progress[id].Match < target }), nil
	})
}

// poll runs cond on the core goroutine every tick until it is true or
// fails.
func (n *Node) poll(ctx context.Context, cond func(*raft.Raft) (bool, error)) error {
	t := time.NewTicker(n.cfg.TickInterval)
	defer t.Stop()
	for {
		var ok bool
		var err error
		if e := n.onCore(ctx, func(r *raft.Raft) { ok, err = cond(r) }); e != nil {
			return e
		}
		if ok || err != nil {
			return err
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// changeConf proposes ccs on the core goroutine, after check accepted the
// configuration in force there, and waits until the entry is applied
// here: committed.
func (n *Node) changeConf(ctx context.Context, check func(raft.Membership) error, ccs ...raft.ConfChange) error {
	done := make(chan error, 1)
	p := &Proposal{Done: func(_ any, err error) { done <- err }}
	if err := n.onMachine(ctx, func(m *Machine) {
		if m.Raft().Role() != raft.Leader {
			p.Done(nil, &raft.NotLeaderError{Leader: m.Raft().Leader()})
			return
		}
		if err := check(m.Raft().Membership()); err != nil {
			p.Done(nil, err)
			return
		}
		m.ProposeConfChange(ccs, p)
	}); err != nil {
		return err
	}
	return n.await(ctx, done)
}

// logStandingAtStart says in the log why this node stays out of
// elections, if it does: it joins, it is a learner, or it was removed
// (thesis §4.2.3: a removed server restarted with its data stays out; it
// may pre-vote while its removal is not known committed, §4.2.3's PreVote
// keeps that harmless).
func (n *Node) logStandingAtStart() {
	m := n.conf.get()
	switch {
	case m.IsVoter(n.cfg.ID):
	case m.IsEmpty():
		n.log.Info("joining: waiting for a leader to send the log or a snapshot; this node will not campaign until it is a voter")
	case m.IsLearner(n.cfg.ID):
		n.log.Info("this node is a learner: it receives the log but does not vote or campaign", "membership", m.String())
	default:
		n.log.Warn("this node is not a member of the latest configuration in its log: it was removed from the cluster and stays out unless it is added again (the members refuse its messages; until it learns the removal committed it may ask them for pre-votes, which cannot disrupt them)", "membership", m.String())
	}
}
