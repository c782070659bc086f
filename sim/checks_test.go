package sim

import (
	"testing"

	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage"
	"github.com/raftex/raftex/storage/vfs"
)

// checkScript feeds the checker Readys and messages as nodes would, to
// show each check catches what it is for.
type checkScript struct{ s *sim }

func newCheckScript(nodes int) checkScript {
	s := newSim(Options{Seed: 1, Nodes: nodes})
	for _, n := range s.nodes {
		n.kv = kv.New(kv.Config{})
	}
	return checkScript{s}
}

func (c checkScript) ready(id uint64, rd raft.Ready) { c.s.chk.ready(c.s.node(id), &rd) }

// readyDurable is a Ready whose write completed.
func (c checkScript) readyDurable(id uint64, rd raft.Ready) {
	c.ready(id, rd)
	c.s.chk.persisted(c.s.node(id), rd)
}
func (c checkScript) sent(m raft.Message)           { c.s.chk.sent(c.s.node(m.From), m) }
func (c checkScript) apply(id uint64, e raft.Entry) { c.s.chk.applied(c.s.node(id), e) }

func lead(id, term uint64) []raft.Event {
	return []raft.Event{{Kind: raft.EventRoleChanged, Node: id, Term: term, Role: raft.Leader}}
}

func follow(id, term uint64) []raft.Event {
	return []raft.Event{{Kind: raft.EventTermChanged, Node: id, Term: term, Role: raft.Follower}}
}

// ents returns entries from..to of term, each carrying data.
func ents(term, from, to uint64, data string) []raft.Entry {
	var es []raft.Entry
	for i := from; i <= to; i++ {
		es = append(es, raft.Entry{Term: term, Index: i, Data: []byte(data)})
	}
	return es
}

func hs(term, vote, commit uint64) raft.HardState {
	return raft.HardState{Term: term, Vote: vote, Commit: commit}
}

func TestChecksCatch(t *testing.T) {
	for _, tc := range []struct {
		want   string
		script func(c checkScript)
	}{
		{"Election Safety", func(c checkScript) {
			c.ready(1, raft.Ready{Events: lead(1, 2)})
			c.ready(2, raft.Ready{Events: lead(2, 2)})
		}},
		{"Leader Append-Only", func(c checkScript) {
			c.ready(1, raft.Ready{Events: lead(1, 1), Entries: ents(1, 1, 3, "a"), HardState: hs(1, 1, 0)})
			c.ready(1, raft.Ready{Entries: ents(1, 2, 2, "b")})
		}},
		{"Log Matching", func(c checkScript) {
			c.readyDurable(1, raft.Ready{Events: follow(1, 1), Entries: ents(1, 1, 2, "a")})
			c.ready(2, raft.Ready{Events: follow(2, 1), Entries: append(ents(1, 1, 1, "x"), ents(1, 2, 2, "a")...)})
		}},
		{"Log Matching", func(c checkScript) {
			// Sent counts as existing, durable or not.
			c.ready(1, raft.Ready{Events: lead(1, 1), Entries: ents(1, 1, 2, "a"), HardState: hs(1, 1, 0)})
			c.sent(raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 1, Entries: ents(1, 1, 2, "a")})
			c.ready(2, raft.Ready{Events: follow(2, 1), Entries: append(ents(1, 1, 1, "x"), ents(1, 2, 2, "a")...)})
		}},
		{"Leader Completeness", func(c checkScript) {
			c.ready(1, raft.Ready{Events: lead(1, 1), Entries: ents(1, 1, 2, "a"), HardState: hs(1, 1, 0)})
			c.ready(1, raft.Ready{HardState: hs(1, 1, 2)})
			c.ready(2, raft.Ready{Events: follow(2, 1), Entries: ents(1, 1, 1, "a"), HardState: hs(1, 0, 0)})
			c.ready(2, raft.Ready{Events: lead(2, 2), Entries: ents(2, 2, 2, ""), HardState: hs(2, 2, 0)})
		}},
		{"State Machine Safety", func(c checkScript) {
			c.ready(1, raft.Ready{Events: follow(1, 1), Entries: ents(1, 1, 1, "a"), HardState: hs(1, 0, 1)})
			c.ready(2, raft.Ready{Events: follow(2, 2), Entries: ents(2, 1, 1, "b"), HardState: hs(2, 0, 1)})
		}},
		{"State Machine Safety", func(c checkScript) {
			c.ready(1, raft.Ready{Events: follow(1, 1), Entries: ents(1, 1, 1, "a"), HardState: hs(1, 0, 1)})
			c.ready(2, raft.Ready{Events: follow(2, 1), Entries: ents(1, 1, 1, "a"), HardState: hs(1, 0, 1)})
			c.apply(1, ents(1, 1, 1, "a")[0])
			c.apply(2, ents(2, 1, 1, "b")[0])
		}},
		{"Commit monotonic", func(c checkScript) {
			c.ready(1, raft.Ready{Events: follow(1, 1), Entries: ents(1, 1, 2, "a"), HardState: hs(1, 0, 2)})
			c.ready(1, raft.Ready{HardState: hs(1, 0, 1)})
		}},
		{"Commit within log", func(c checkScript) {
			c.ready(1, raft.Ready{Events: follow(1, 1), Entries: ents(1, 1, 2, "a"), HardState: hs(1, 0, 3)})
		}},
		{"Apply only committed", func(c checkScript) {
			c.ready(1, raft.Ready{Events: follow(1, 1), Entries: ents(1, 1, 2, "a"), HardState: hs(1, 0, 1)})
			c.apply(1, ents(1, 1, 1, "a")[0])
			c.apply(1, ents(1, 2, 2, "a")[0])
		}},
		{"Commit by counting replicas", func(c checkScript) {
			c.ready(1, raft.Ready{Events: follow(1, 1), Entries: ents(1, 1, 2, "a"), HardState: hs(1, 0, 0)})
			c.ready(1, raft.Ready{Events: lead(1, 2), Entries: ents(2, 3, 3, ""), HardState: hs(2, 1, 0)})
			c.ready(1, raft.Ready{HardState: hs(2, 1, 2)})
		}},
		{"Committed entries kept", func(c checkScript) {
			c.ready(1, raft.Ready{Events: follow(1, 1), Entries: ents(1, 1, 3, "a"), HardState: hs(1, 0, 2)})
			c.ready(1, raft.Ready{Events: follow(1, 2), Entries: ents(2, 2, 2, "b"), HardState: hs(2, 0, 2)})
		}},
		{"Acknowledged entries kept", func(c checkScript) {
			c.ready(1, raft.Ready{Events: follow(1, 1), Entries: ents(1, 1, 3, "a"), HardState: hs(1, 0, 0)})
			c.sent(raft.Message{Type: raft.MsgAppResp, From: 1, To: 2, Term: 1, Index: 3})
			c.ready(1, raft.Ready{Entries: ents(1, 2, 2, "a")})
		}},
		{"One vote per term", func(c checkScript) {
			c.sent(raft.Message{Type: raft.MsgVoteResp, From: 1, To: 2, Term: 3})
			c.sent(raft.Message{Type: raft.MsgVoteResp, From: 1, To: 3, Term: 3})
		}},
		{"Durable before speech", func(c checkScript) {
			c.sent(raft.Message{Type: raft.MsgVoteResp, From: 1, To: 2, Term: 3})
			n := c.s.node(1)
			st, err := storage.Open(vfs.NewMem(), "/data", storage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Bootstrap(c.s.membership); err != nil {
				t.Fatal(err)
			}
			n.store = st
			if n.core, err = raft.New(raft.DefaultConfig(1, st)); err != nil {
				t.Fatal(err)
			}
			if err := c.s.chk.started(n); err != nil {
				t.Fatal(err)
			}
		}},
		{"", func(c checkScript) {
			// Not a violation: entries a crash took before they were
			// durable or sent never existed. A single voter that lost its
			// new term that way wins the same term again and writes other
			// entries in it.
			c.ready(1, raft.Ready{Events: lead(1, 2), Entries: ents(2, 1, 2, "a"), HardState: hs(2, 1, 0)})
			n := c.s.node(1)
			st, err := storage.Open(vfs.NewMem(), "/data", storage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Bootstrap(c.s.membership); err != nil {
				t.Fatal(err)
			}
			n.store = st
			if n.core, err = raft.New(raft.DefaultConfig(1, st)); err != nil {
				t.Fatal(err)
			}
			if err := c.s.chk.started(n); err != nil {
				t.Fatal(err)
			}
			c.readyDurable(1, raft.Ready{Events: lead(1, 2), Entries: ents(2, 1, 2, "b"), HardState: hs(2, 1, 0)})
		}},
	} {
		c := newCheckScript(3)
		tc.script(c)
		if tc.want == "" {
			if v := c.s.violation; v != nil {
				t.Errorf("false alarm: %v", v)
			}
			continue
		}
		if v := c.s.violation; v == nil || v.Check != tc.want {
			t.Errorf("%s: got %v", tc.want, v)
		} else {
			t.Logf("%s caught: %s", tc.want, v.Detail)
		}
	}
}

// TestChecksPassLegalHistory: a leader change that truncates an
// uncommitted, unacknowledged suffix is legal.
func TestChecksPassLegalHistory(t *testing.T) {
	c := newCheckScript(3)
	c.ready(1, raft.Ready{Events: lead(1, 1), Entries: ents(1, 1, 3, "a"), HardState: hs(1, 1, 0)})
	c.ready(1, raft.Ready{HardState: hs(1, 1, 1)})
	c.ready(2, raft.Ready{Events: follow(2, 1), Entries: ents(1, 1, 1, "a"), HardState: hs(1, 0, 1)})
	c.sent(raft.Message{Type: raft.MsgAppResp, From: 2, To: 1, Term: 1, Index: 1})
	c.ready(2, raft.Ready{Events: lead(2, 2), Entries: ents(2, 2, 2, ""), HardState: hs(2, 2, 1)})
	c.ready(2, raft.Ready{HardState: hs(2, 2, 2)})
	c.ready(1, raft.Ready{Events: follow(1, 2), Entries: ents(2, 2, 2, ""), HardState: hs(2, 0, 2)})
	c.apply(1, ents(1, 1, 1, "a")[0])
	c.apply(2, ents(1, 1, 1, "a")[0])
	if v := c.s.violation; v != nil {
		t.Fatal(v)
	}
}
