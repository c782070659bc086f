package inspect

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/raftex/raftex/raft"
)

// ConsoleOptions configure a Console. The zero value prints every category
// without colour, hides heartbeats and names nodes "n1", "n2", ...
type ConsoleOptions struct {
	// Color wraps each line in the ANSI colour of its role (red for
	// refusals and step-downs). Use ColorFor(w) to decide.
	Color bool
	// Categories to print; 0 means AllCategories.
	Categories Categories
	// ShowHeartbeats prints every heartbeat and heartbeat reply.
	ShowHeartbeats bool
	// HeartbeatSummary, when positive and ShowHeartbeats is false, prints
	// per node at most one "♥ N heartbeats" line per interval: the count
	// of heartbeats the node sent or received since its previous summary.
	// Zero hides heartbeats entirely.
	HeartbeatSummary time.Duration
	// Name renders a node id; default NodeName ("n1").
	Name func(id uint64) string
	// Now is the clock of heartbeat summaries; default time.Now.
	Now func() time.Time
}

// Console writes one line per event, in the seed demo's shape:
//
//	[NODE n2] [CANDIDATE] term=1 | follower → candidate
//	[NODE n2] [CANDIDATE] → SEND RequestVote to n1
//
// A node's own term raise (to campaign) and its own leadership are not
// printed: the role change and "WON election" lines already say them, as in
// the seed. Write is safe for concurrent use, so several nodes can share
// one Console.
type Console struct {
	w    io.Writer
	opts ConsoleOptions

	mu    sync.Mutex // guards beats and writes to w
	beats map[uint64]*beatCount
}

// beatCount is one node's heartbeats since its last summary line.
type beatCount struct {
	n    int
	last time.Time
}

// NewConsole returns a Console writing to w.
func NewConsole(w io.Writer, opts ConsoleOptions) *Console {
	if opts.Categories == 0 {
		opts.Categories = AllCategories
	}
	if opts.Name == nil {
		opts.Name = NodeName
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Console{w: w, opts: opts, beats: make(map[uint64]*beatCount)}
}

// Format returns e's line without a trailing newline, and false when the
// options hide e. It keeps no state: heartbeat summaries come only from
// Write.
func (c *Console) Format(e raft.Event) (string, bool) {
	f := Filter{Categories: c.opts.Categories, Heartbeats: c.opts.ShowHeartbeats}
	if !f.Allows(e) || selfEvident(e) {
		return "", false
	}
	return c.line(e, describe(e, c.opts.Name), lineColor(e)), true
}

// Write prints e's line, or counts it toward a heartbeat summary. It
// returns the writer's error.
func (c *Console) Write(e raft.Event) error {
	s, ok := c.Format(e)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !ok {
		s, ok = c.summarize(e)
	}
	if !ok {
		return nil
	}
	_, err := io.WriteString(c.w, s+"\n")
	return err
}

// summarize counts a hidden heartbeat and returns a summary line when the
// node's interval has passed. c.mu must be held.
func (c *Console) summarize(e raft.Event) (string, bool) {
	every := c.opts.HeartbeatSummary
	if every <= 0 || !IsHeartbeat(e) || !c.opts.Categories.Has(CategoryRPC) {
		return "", false
	}
	now := c.opts.Now()
	b := c.beats[e.Node]
	if b == nil {
		b = &beatCount{last: now}
		c.beats[e.Node] = b
	}
	b.n++
	if now.Sub(b.last) < every {
		return "", false
	}
	text := "♥ " + plural(b.n, "heartbeat", "heartbeats")
	b.n, b.last = 0, now
	return c.line(e, text, roleColor(e.Role)), true
}

func (c *Console) line(e raft.Event, text, color string) string {
	s := fmt.Sprintf("[NODE %s] [%s] %s", c.opts.Name(e.Node), roleTag(e), text)
	if c.opts.Color {
		s = color + s + ansiReset
	}
	return s
}

// selfEvident reports the events that other lines already show: those
// about a node's own campaign, and the configuration change that the lines
// of its added, promoted or removed members have told (the core narrates
// member by member, then the change; one naming joint consensus, a
// rollback or a restore says more, and is shown).
func selfEvident(e raft.Event) bool {
	return (e.Kind == raft.EventTermChanged || e.Kind == raft.EventLeaderChanged) && e.Peer == e.Node ||
		e.Kind == raft.EventConfChanged && strings.HasPrefix(e.Reason, plainConfChange)
}

// plainConfChange starts the reason of a configuration change that the
// core narrated member by member (TestConsoleConfigurationChange keeps it
// in step with package raft).
const plainConfChange = "configuration entry appended"
