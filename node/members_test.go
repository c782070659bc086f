package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage/vfs"
)

// join starts id as a new server (Config.Join: empty data directory, no
// initial membership) that waits to be added.
func (c *testCluster) join(id uint64) {
	c.t.Helper()
	if c.joiners == nil {
		c.joiners = map[uint64]bool{}
	}
	c.joiners[id] = true
	c.mu.Lock()
	c.ids = append(c.ids, id)
	c.mu.Unlock()
	c.faults[id] = &diskFault{}
	c.dirs[id] = "/data"
	c.disks[id] = vfs.NewMem()
	c.start(id)
}

func (c *testCluster) node(id uint64) *Node {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.nodes[id]
}

func voters(n *Node) []uint64 {
	var out []uint64
	for _, m := range n.Members() {
		if m.Voter {
			out = append(out, m.ID)
		}
	}
	return out
}

// syncBuffer is a log sink safe for the nodes' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Thesis §4.2.1, §4.2.2, §4.3: a node joins with an empty data directory,
// is added as a learner, promoted once caught up and gets every write; the
// cluster grows 3 → 5 and shrinks back 5 → 3 (joint consensus) while
// clients write, and every acknowledged write is on every member.
func TestMembers_JoinPromoteAndResize(t *testing.T) {
	bubble(t, func(t *testing.T) {
		const timeout = 30 * time.Second
		ctx := t.Context()
		c := newTestCluster(t, 3, withMemNetwork(3))
		lead := c.waitLeader(timeout)
		c.writeMany("a", 50, 4)
		w := c.startWriter("b")

		c.join(4)
		if err := c.node(lead).AddMember(ctx, 4, "h4:7000", false); err != nil {
			t.Fatalf("AddMember(4): %v", err)
		}
		c.eventually(timeout, "4 promoted", func() bool {
			return slices.Equal(voters(c.node(lead)), []uint64{1, 2, 3, 4}) && slices.Equal(voters(c.node(4)), []uint64{1, 2, 3, 4}) &&
				c.status(lead).PendingConfIndex == 0
		})
		m := c.node(4).Members()
		if i := slices.IndexFunc(m, func(m Member) bool { return m.ID == 4 }); i < 0 || m[i].PeerAddr != "h4:7000" || !m[i].Voter {
			t.Fatalf("4's view of itself: %+v", m)
		}

		c.join(5)
		c.join(6)
		// 3 → 5: two voters at once, through joint consensus.
		if err := c.node(lead).ChangeVoters(ctx, map[uint64]string{5: "h5:7000", 6: "h6:7000"}, []uint64{4}); err != nil {
			t.Fatalf("ChangeVoters: %v", err)
		}
		expect := []uint64{1, 2, 3, 5, 6}
		if got := voters(c.node(lead)); !slices.Equal(got, expect) {
			t.Fatalf("voters %v, want %v", got, expect)
		}
		if m := c.node(lead).Membership(); m.Joint() {
			t.Fatalf("still joint: %v", m)
		}
		c.stop(4)
		// 5 → 3.
		if err := c.node(lead).ChangeVoters(ctx, nil, []uint64{5, 6}); err != nil {
			t.Fatalf("ChangeVoters back to 3: %v", err)
		}
		c.stop(5)
		c.stop(6)
		acked := w.stop()
		c.waitConverged(timeout)
		for _, id := range []uint64{1, 2, 3} {
			if got := voters(c.node(id)); !slices.Equal(got, []uint64{1, 2, 3}) {
				t.Errorf("node %d: voters %v", id, got)
			}
			cmds := c.fsms[id].commands()
			for _, cmd := range acked {
				if !cmds[cmd] {
					t.Fatalf("node %d lacks acknowledged write %q", id, cmd)
				}
			}
		}
	})
}

// Thesis §4.1: every invalid change gets its error.
func TestMembers_InvalidChanges(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ctx := t.Context()
		c := newTestCluster(t, 3, withMemNetwork(4))
		lead := c.waitLeader(30 * time.Second)
		c.write(30*time.Second, "first") // the leader has committed in its term (thesis §4.1)
		n := c.node(lead)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(n.AddMember(ctx, 4, "h4:1", true))
		for _, tc := range []struct {
			what string
			err  error
			want error
		}{
			{"add an existing id", n.AddMember(ctx, 2, "h9:1", false), ErrDuplicateMember},
			{"add a taken address", n.AddMember(ctx, 5, "h4:1", false), ErrDuplicateMember},
			{"add without address", n.AddMember(ctx, 5, "", false), raft.ErrInvalidConfChange},
			{"remove an unknown id", n.RemoveMember(ctx, 9), ErrUnknownMember},
			{"promote an unknown id", n.PromoteMember(ctx, 9), ErrUnknownMember},
			{"promote a voter", n.PromoteMember(ctx, 2), raft.ErrInvalidConfChange},
			{"change on a follower", c.node(c.follower(lead)).RemoveMember(ctx, 4), raft.ErrNotLeader},
			{"transfer to a learner", n.TransferLeadership(ctx, 4), raft.ErrTransferTarget},
		} {
			if !errors.Is(tc.err, tc.want) || (tc.want == ErrDuplicateMember && !errors.Is(tc.err, raft.ErrInvalidConfChange)) {
				t.Errorf("%s: %v, want %v", tc.what, tc.err, tc.want)
			}
		}
		// The learner stays a learner, then is promoted on request.
		time.Sleep(2 * time.Second)
		if got := voters(n); !slices.Equal(got, []uint64{1, 2, 3}) {
			t.Fatalf("voters %v: the learner added with learner=true was promoted", got)
		}
		must(n.PromoteMember(ctx, 4))
		if got := voters(n); !slices.Equal(got, []uint64{1, 2, 3, 4}) {
			t.Fatalf("voters after PromoteMember: %v", got)
		}
	})
}

// Thesis §4.2.2 and §4.2.3: the leader removes itself and steps down once
// the change commits; restarted with its old data it stays out, says why
// in its log, and does not disturb the new leader.
func TestMembers_RemoveLeaderThenRestartItStaysOut(t *testing.T) {
	bubble(t, func(t *testing.T) {
		const timeout = 30 * time.Second
		logs := &syncBuffer{}
		c := newTestCluster(t, 3, withMemNetwork(5))
		c.logs = logs
		lead := c.waitLeader(timeout)
		c.writeMany("a", 20, 2)
		if err := c.node(lead).RemoveMember(t.Context(), lead); err != nil {
			t.Fatalf("RemoveMember(leader): %v", err)
		}
		var rest []uint64
		for _, id := range c.ids {
			if id != lead {
				rest = append(rest, id)
			}
		}
		next := c.waitLeaderAmong(timeout, rest...)
		c.eventually(timeout, "old leader stepped down", func() bool { return c.node(lead).Role() != raft.Leader })
		c.stop(lead)
		c.start(lead)
		_, term := c.node(next).Leader()
		time.Sleep(5 * time.Second) // many election timeouts
		if l, tm := c.node(next).Leader(); l != next || tm != term {
			t.Fatalf("the removed node disturbed the cluster: leader %d term %d, was %d term %d", l, tm, next, term)
		}
		if c.node(lead).Role() != raft.Follower {
			t.Fatalf("removed node's role: %v", c.node(lead).Role())
		}
		if !strings.Contains(logs.String(), "stays out") {
			t.Errorf("the removed node did not say why it stays out:\n%s", logs.String())
		}
		c.stop(lead)
		for i := range 10 {
			c.write(timeout, fmt.Sprint("b", i))
		}
	})
}

// Thesis §3.10: a transfer to no one in particular picks a follower and
// returns once it leads; a transfer to an unreachable follower aborts
// after an election timeout, and proposals resume.
func TestMembers_TransferLeadership(t *testing.T) {
	bubble(t, func(t *testing.T) {
		const timeout = 30 * time.Second
		c := newTestCluster(t, 3, withMemNetwork(6))
		lead := c.waitLeader(timeout)
		w := c.startWriter("a")
		if err := c.node(lead).TransferLeadership(t.Context(), raft.None); err != nil {
			t.Fatalf("TransferLeadership: %v", err)
		}
		next := c.waitLeader(timeout)
		if next == lead {
			t.Fatalf("leadership stayed on %d", lead)
		}
		f := c.follower(next)
		c.network.Partition([]uint64{f})
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := c.node(next).TransferLeadership(ctx, f); !errors.Is(err, ErrTransferAborted) {
			t.Fatalf("transfer to an unreachable node: %v", err)
		}
		if _, err := c.node(next).Propose(t.Context(), []byte("after")); err != nil {
			t.Fatalf("proposal after the aborted transfer: %v", err)
		}
		c.network.Heal()
		w.stop()
	})
}

// The peer addresses travel in the configuration: they survive a restart
// (configuration entries in the log) and reach a server that catches up
// from a snapshot (its metadata), with the configuration itself.
func TestMembers_PeerAddressesSurviveRestartAndSnapshot(t *testing.T) {
	bubble(t, func(t *testing.T) {
		const timeout = 30 * time.Second
		c := newTestCluster(t, 3, withMemNetwork(7), withConfig(snapshotEvery(20, 0)))
		lead := c.waitLeader(timeout)
		c.write(timeout, "first") // the leader has committed in its term (thesis §4.1)
		if err := c.node(lead).AddMember(t.Context(), 4, "h4:7000", true); err != nil {
			t.Fatal(err)
		}
		addrOf := func(n *Node, id uint64) string {
			for _, m := range n.Members() {
				if m.ID == id {
					return m.PeerAddr
				}
			}
			return "(not a member)"
		}
		f := c.follower(lead)
		c.stop(f)
		c.start(f)
		if got := addrOf(c.node(f), 4); got != "h4:7000" {
			t.Fatalf("after a restart, node %d has 4 at %q", f, got)
		}
		c.writeMany("a", 100, 4) // several snapshots; the log is compacted past the change
		c.join(5)
		if err := c.node(c.waitLeaderAmong(timeout, 1, 2, 3)).AddMember(t.Context(), 5, "h5:7000", false); err != nil {
			t.Fatal(err)
		}
		c.eventually(timeout, "5 caught up", func() bool { return c.fsms[5].contains("a99") })
		if st := c.status(5); st.FirstIndex <= 1 {
			t.Fatalf("5 caught up from the log (first index %d), not a snapshot", st.FirstIndex)
		}
		if got := addrOf(c.node(5), 4); got != "h4:7000" {
			t.Fatalf("5 has 4 at %q", got)
		}
	})
}

// Thesis §4.3 with §4.2.2: ChangeVoters may remove the leader it runs on;
// the leader steps down once C_new commits, and the call reports the
// change done, not a lost leadership.
func TestMembers_ChangeVotersRemovingTheLeader(t *testing.T) {
	bubble(t, func(t *testing.T) {
		const timeout = 30 * time.Second
		c := newTestCluster(t, 3, withMemNetwork(11))
		lead := c.waitLeader(timeout)
		c.write(timeout, "first") // the leader has committed in its term (thesis §4.1)
		c.join(4)
		c.join(5)
		other := c.follower(lead)
		if err := c.node(lead).ChangeVoters(t.Context(), map[uint64]string{4: "h4:7000", 5: "h5:7000"}, []uint64{lead, other}); err != nil {
			t.Fatalf("ChangeVoters removing the leader: %v (membership %v)", err, c.node(lead).Membership())
		}
		want := []uint64{4, 5}
		for _, id := range []uint64{1, 2, 3} {
			if id != lead && id != other {
				want = []uint64{id, 4, 5}
			}
		}
		if m := c.node(lead).Membership(); !slices.Equal(m.Voters, want) || m.Joint() {
			t.Fatalf("membership %v, want voters %v", m, want)
		}
		c.eventually(timeout, "the old leader stepped down", func() bool { return c.node(lead).Role() != raft.Leader })
		c.waitLeaderAmong(timeout, want...)
	})
}
