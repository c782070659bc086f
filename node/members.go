package node

import (
	"context"
	"errors"
)

var (
	// ErrTransferAborted is returned by TransferLeadership when the
	// target did not take over within an election timeout (thesis §3.10).
	ErrTransferAborted = errors.New("node: leadership transfer aborted")
	// ErrUnknownMember is returned for a change naming an id that is not
	// a member.
	ErrUnknownMember = errors.New("node: unknown member")
	// ErrDuplicateMember is returned for adding an id or a peer address
	// that a member already has.
	ErrDuplicateMember = errors.New("node: duplicate member")
)

// Member is one member of the configuration: its id, the address its peers
// reach it at, and whether it votes.
type Member struct {
	ID       uint64
	PeerAddr string
	Voter    bool
}

var errMembersTODO = errors.New("node: membership changes: not implemented yet")

// Members returns the latest configuration this node has in its log (thesis
// §4.1: a server uses the latest configuration in its log, committed or
// not), with the members' peer addresses.
func (n *Node) Members() []Member { return nil }

// AddMember adds id, reachable at peerAddr, as a learner (thesis §4.2.1).
// The leader promotes it to voter once it has caught up, unless learner is
// true. It returns once the change is committed.
func (n *Node) AddMember(ctx context.Context, id uint64, peerAddr string, learner bool) error {
	return errMembersTODO
}

// PromoteMember makes the learner id a voter (thesis §4.1). It returns once
// the change is committed.
func (n *Node) PromoteMember(ctx context.Context, id uint64) error { return errMembersTODO }

// RemoveMember removes id from the configuration (thesis §4.2.2); it may be
// this node, the leader, which then steps down once the change commits. It
// returns once the change is committed.
func (n *Node) RemoveMember(ctx context.Context, id uint64) error { return errMembersTODO }

// ChangeVoters adds the voters of add (id to peer address) and removes the
// members of remove in one step, through joint consensus (thesis §4.3). It
// returns once the new configuration is committed.
func (n *Node) ChangeVoters(ctx context.Context, add map[uint64]string, remove []uint64) error {
	return errMembersTODO
}
