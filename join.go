package raftex

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/raftex/raftex/client"
	"github.com/raftex/raftex/node"
)

// Join makes a node with an empty data dir join a running cluster rather
// than bootstrap one (raftex serve --join): it asks a member to add it
// (POST /v1/members, thesis §4.2.1: as a learner, promoted to voter once
// caught up unless Learner), learns the members' peer addresses and the
// cluster id from the answer, and waits for the leader to send it the log
// or a snapshot. It needs no InitialCluster. Once the data dir holds the
// cluster file, Join is ignored: a restart uses the data dir.
type Join struct {
	// URL is the client address of any member (http://host:port).
	URL string
	// Learner keeps this node a learner (a non-voting member).
	Learner bool
	// Username and Password log in when the cluster has auth enabled
	// (adding a member needs the root role).
	Username, Password string
	// HTTPClient talks to the member. Default: the Go client's.
	HTTPClient *http.Client
}

// joinCluster asks the member at j.URL about the cluster: its members and
// id, which the node needs before it listens (its peer handshakes carry
// the cluster id). It refuses an id or peer address another member has.
func (n *Node) joinCluster(ctx context.Context, c *client.Client) (clusterFile, error) {
	cfg := n.cfg
	ms, err := c.Members(ctx)
	if err != nil {
		return clusterFile{}, fmt.Errorf("raftex: joining through %s: %w", cfg.Join.URL, err)
	}
	if ms.ClusterID == "" {
		return clusterFile{}, fmt.Errorf("raftex: joining through %s: the member named no cluster id", cfg.Join.URL)
	}
	self := node.FormatID(cfg.ID)
	for _, m := range ms.Members {
		switch {
		case m.ID == self && m.PeerAddr != cfg.PeerAddr:
			return clusterFile{}, fmt.Errorf("raftex: joining through %s: %s is a member already, at peer address %s (remove it first)", cfg.Join.URL, self, m.PeerAddr)
		case m.ID != self && m.PeerAddr == cfg.PeerAddr:
			return clusterFile{}, fmt.Errorf("raftex: joining through %s: member %s has the peer address %s", cfg.Join.URL, m.ID, m.PeerAddr)
		}
	}
	return joinedCluster(ms, cfg.ID, cfg.PeerAddr)
}

// joinedCluster is the cluster file of a node that joined: the cluster's
// id and its members as the answer listed them, this node included.
func joinedCluster(ms client.Members, self uint64, peerAddr string) (clusterFile, error) {
	members := map[uint64]string{self: peerAddr}
	for _, m := range ms.Members {
		id, err := node.ParseID(m.ID)
		if err != nil {
			return clusterFile{}, fmt.Errorf("raftex: joining: the member list names %q: %w", m.ID, err)
		}
		if id != self {
			members[id] = m.PeerAddr
		}
	}
	c := newClusterFile(members, "") // the id is the cluster's, from its answer
	c.ClusterID = ms.ClusterID
	return c, nil
}

// askToJoin asks the cluster to add this node, which listens by now. A
// retried request whose first attempt added it is refused (the id is
// taken, or that attempt's change is pending): then the member list,
// naming this node at its address, says it was added.
func (n *Node) askToJoin(ctx context.Context, c *client.Client) (client.Members, error) {
	cfg := n.cfg
	ms, err := c.MemberAdd(ctx, node.FormatID(cfg.ID), cfg.PeerAddr, cfg.Join.Learner)
	if errors.Is(err, client.ErrConflict) {
		if list, lerr := c.Members(ctx); lerr == nil && isMember(list, cfg.ID, cfg.PeerAddr) {
			return list, nil
		}
	}
	if err != nil {
		return ms, fmt.Errorf("raftex: asking %s to add %s: %w", cfg.Join.URL, node.FormatID(cfg.ID), err)
	}
	return ms, nil
}

func isMember(ms client.Members, id uint64, peerAddr string) bool {
	for _, m := range ms.Members {
		if m.ID == node.FormatID(id) && m.PeerAddr == peerAddr {
			return true
		}
	}
	return false
}

func (j *Join) client() (*client.Client, error) {
	if j.URL == "" {
		return nil, errors.New("raftex: Config.Join.URL must be set (a member's client address)")
	}
	return client.New([]string{j.URL}, client.Options{HTTPClient: j.HTTPClient, Username: j.Username, Password: j.Password})
}
