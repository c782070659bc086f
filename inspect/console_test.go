package inspect

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftex/raftex/raft"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// everyKind holds at least one event of each kind, with its variants.
var everyKind = []raft.Event{
	{Kind: raft.EventNodeStarted, Node: 1, Role: raft.Follower},
	{Kind: raft.EventNodeStarted, Node: 1, Term: 4, Role: raft.Follower, Index: 17},
	{Kind: raft.EventElectionTimeout, Node: 2, Term: 1, Role: raft.Follower},
	{Kind: raft.EventElectionTimeout, Node: 3, Term: 5, Role: raft.Follower, Reason: "leadership transfer"},
	{Kind: raft.EventRoleChanged, Node: 2, Role: raft.PreCandidate, PrevRole: raft.Follower},
	{Kind: raft.EventRoleChanged, Node: 2, Term: 1, Role: raft.Candidate, PrevRole: raft.PreCandidate},
	{Kind: raft.EventTermChanged, Node: 1, Term: 2, Role: raft.Follower, Peer: 3},
	{Kind: raft.EventTermChanged, Node: 1, Term: 3, Role: raft.Follower},
	{Kind: raft.EventMessageSent, Node: 2, Term: 1, Role: raft.PreCandidate, Peer: 1, MsgType: raft.MsgPreVote},
	{Kind: raft.EventMessageSent, Node: 2, Term: 1, Role: raft.Candidate, Peer: 1, MsgType: raft.MsgVote},
	{Kind: raft.EventMessageReceived, Node: 1, Term: 1, Role: raft.Follower, Peer: 2, MsgType: raft.MsgVote},
	{Kind: raft.EventVoteGranted, Node: 1, Term: 1, Role: raft.Follower, Peer: 2, MsgType: raft.MsgVote},
	{Kind: raft.EventVoteRejected, Node: 3, Term: 1, Role: raft.Follower, Peer: 2, MsgType: raft.MsgVote, Reason: "already voted"},
	{Kind: raft.EventMessageSent, Node: 1, Term: 1, Role: raft.Follower, Peer: 2, MsgType: raft.MsgVoteResp},
	{Kind: raft.EventMessageReceived, Node: 2, Term: 1, Role: raft.Candidate, Peer: 3, MsgType: raft.MsgVoteResp, Reject: true},
	{Kind: raft.EventElectionWon, Node: 2, Term: 1, Role: raft.Candidate, Count: 2},
	{Kind: raft.EventLeaderChanged, Node: 1, Term: 1, Role: raft.Follower, Peer: 2},
	{Kind: raft.EventLeaderChanged, Node: 1, Term: 2, Role: raft.Candidate},
	{Kind: raft.EventMessageSent, Node: 2, Term: 1, Role: raft.Leader, Peer: 3, MsgType: raft.MsgApp, Count: 3, Index: 4},
	{Kind: raft.EventMessageSent, Node: 2, Term: 1, Role: raft.Leader, Peer: 3, MsgType: raft.MsgApp, Count: 1, Index: 7},
	{Kind: raft.EventMessageSent, Node: 2, Term: 1, Role: raft.Leader, Peer: 3, MsgType: raft.MsgApp, Index: 8},
	{Kind: raft.EventMessageReceived, Node: 2, Term: 1, Role: raft.Leader, Peer: 3, MsgType: raft.MsgAppResp, Index: 7},
	{Kind: raft.EventMessageReceived, Node: 2, Term: 1, Role: raft.Leader, Peer: 3, MsgType: raft.MsgAppResp, Index: 9, Reject: true},
	{Kind: raft.EventMessageSent, Node: 1, Term: 1, Role: raft.Follower, Peer: 2, MsgType: raft.MsgReadIndex},
	{Kind: raft.EventMessageReceived, Node: 1, Term: 1, Role: raft.Follower, Peer: 2, MsgType: raft.MsgReadIndexResp, Index: 12},
	{Kind: raft.EventMessageSent, Node: 2, Term: 1, Role: raft.Leader, Peer: 3, MsgType: raft.MsgSnap},
	{Kind: raft.EventMessageSent, Node: 2, Term: 1, Role: raft.Leader, Peer: 3, MsgType: raft.MsgTimeoutNow},
	{Kind: raft.EventCommitAdvanced, Node: 2, Term: 1, Role: raft.Leader, PrevIndex: 1, Index: 5},
	{Kind: raft.EventApplied, Node: 1, Term: 1, Role: raft.Follower, Index: 5, Count: 4},
	{Kind: raft.EventApplied, Node: 1, Term: 1, Role: raft.Follower, Index: 6, Count: 1},
	{Kind: raft.EventSnapshotTaken, Node: 2, Term: 1, Role: raft.Leader, Index: 10000, PrevIndex: 5000},
	{Kind: raft.EventSnapshotSent, Node: 2, Term: 1, Role: raft.Leader, Peer: 3, Index: 10000},
	{Kind: raft.EventSnapshotRestored, Node: 3, Term: 1, Role: raft.Follower, Peer: 2, Index: 10000},
	{Kind: raft.EventSnapshotInstalled, Node: 3, Term: 1, Role: raft.Follower, Peer: 2, Index: 10000},
	{Kind: raft.EventSnapshotInstalled, Node: 3, Term: 1, Role: raft.Follower, Index: 10000},
	{Kind: raft.EventStepDown, Node: 2, Term: 1, Role: raft.Leader, Reason: "check quorum: no majority heard within an election timeout"},
	{Kind: raft.EventLeadershipTransfer, Node: 2, Term: 4, Role: raft.Leader, Peer: 3},
	{Kind: raft.EventLeadershipTransferAborted, Node: 2, Term: 4, Role: raft.Leader, Peer: 3, Reason: "n3 did not win within an election timeout"},
	{Kind: raft.EventMemberAdded, Node: 1, Term: 4, Role: raft.Follower, Peer: 4, Index: 12, Reason: "learner"},
	{Kind: raft.EventMemberAdded, Node: 1, Term: 4, Role: raft.Follower, Peer: 5, Index: 14, Reason: "learner (promoted once caught up)"},
	{Kind: raft.EventMemberPromoted, Node: 1, Term: 4, Role: raft.Follower, Peer: 5, Index: 15},
	{Kind: raft.EventMemberRemoved, Node: 1, Term: 4, Role: raft.Follower, Peer: 3, Index: 16},
	{Kind: raft.EventConfChanged, Node: 1, Term: 4, Role: raft.Follower, Index: 17, Reason: "joint consensus entered"},
	{Kind: raft.EventNodeStopped, Node: 3, Term: 4, Role: raft.Follower},
}

func formatAll(c *Console, events []raft.Event) string {
	var b strings.Builder
	for _, e := range events {
		if s, ok := c.Format(e); ok {
			b.WriteString(s + "\n")
		}
	}
	return b.String()
}

func TestConsoleEveryKind(t *testing.T) {
	golden(t, "every_kind.golden", formatAll(NewConsole(nil, ConsoleOptions{}), everyKind))
}

func TestConsoleEveryKindColor(t *testing.T) {
	golden(t, "every_kind_color.golden", formatAll(NewConsole(nil, ConsoleOptions{Color: true}), everyKind))
}

// TestConsoleSeedElection replays the seed demo's election; the output must
// keep its shape line for line.
func TestConsoleSeedElection(t *testing.T) {
	ev := func(k raft.EventKind, node, term uint64, role raft.Role) raft.Event {
		return raft.Event{Kind: k, Node: node, Term: term, Role: role}
	}
	msg := func(k raft.EventKind, node uint64, role raft.Role, t raft.MessageType, peer uint64) raft.Event {
		return raft.Event{Kind: k, Node: node, Term: 1, Role: role, MsgType: t, Peer: peer}
	}
	timeout := ev(raft.EventElectionTimeout, 2, 1, raft.Follower)
	selfTerm := ev(raft.EventTermChanged, 2, 1, raft.Follower)
	selfTerm.Peer = 2
	toCandidate := ev(raft.EventRoleChanged, 2, 1, raft.Candidate)
	toCandidate.PrevRole = raft.Follower
	won := ev(raft.EventElectionWon, 2, 1, raft.Candidate)
	won.Count = 2
	selfLeader := ev(raft.EventLeaderChanged, 2, 1, raft.Candidate)
	selfLeader.Peer = 2
	toLeader := ev(raft.EventRoleChanged, 2, 1, raft.Leader)
	toLeader.PrevRole = raft.Candidate
	heartbeat := msg(raft.EventMessageSent, 2, raft.Leader, raft.MsgHeartbeat, 1)

	var buf bytes.Buffer
	c := NewConsole(&buf, ConsoleOptions{})
	for _, e := range []raft.Event{
		ev(raft.EventNodeStarted, 1, 0, raft.Follower),
		ev(raft.EventNodeStarted, 2, 0, raft.Follower),
		ev(raft.EventNodeStarted, 3, 0, raft.Follower),
		timeout, selfTerm, toCandidate,
		msg(raft.EventMessageSent, 2, raft.Candidate, raft.MsgVote, 1),
		msg(raft.EventMessageSent, 2, raft.Candidate, raft.MsgVote, 3),
		msg(raft.EventMessageReceived, 1, raft.Follower, raft.MsgVote, 2),
		msg(raft.EventMessageSent, 1, raft.Follower, raft.MsgVoteResp, 2),
		won, selfLeader, toLeader, heartbeat,
	} {
		if err := c.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "seed_election.golden", buf.String())
}

func TestConsoleCategories(t *testing.T) {
	c := NewConsole(nil, ConsoleOptions{Categories: CategoryCommit | CategorySnapshot})
	golden(t, "commit_snapshot.golden", formatAll(c, everyKind))
}

func TestConsoleHeartbeats(t *testing.T) {
	hb := raft.Event{Kind: raft.EventMessageReceived, Node: 1, Term: 1, Role: raft.Follower, Peer: 2, MsgType: raft.MsgHeartbeat}
	hbResp := raft.Event{Kind: raft.EventMessageSent, Node: 1, Term: 1, Role: raft.Follower, Peer: 2, MsgType: raft.MsgHeartbeatResp}
	if s, ok := NewConsole(nil, ConsoleOptions{}).Format(hb); ok {
		t.Errorf("heartbeat shown by default: %q", s)
	}
	shown := NewConsole(nil, ConsoleOptions{ShowHeartbeats: true})
	for _, e := range []raft.Event{hb, hbResp} {
		if _, ok := shown.Format(e); !ok {
			t.Errorf("ShowHeartbeats hides %v", e)
		}
	}
	if _, ok := NewConsole(nil, ConsoleOptions{ShowHeartbeats: true, Categories: CategoryState}).Format(hb); ok {
		t.Error("heartbeat shown although rpc is filtered out")
	}
}

// TestConsoleHeartbeatSummary: with a 1 s interval, a node's heartbeats
// are counted and summarised at most once per second of the clock.
func TestConsoleHeartbeatSummary(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	c := NewConsole(&buf, ConsoleOptions{HeartbeatSummary: time.Second, Now: func() time.Time { return now }})
	beat := func(node uint64, role raft.Role) {
		t.Helper()
		e := raft.Event{Kind: raft.EventMessageSent, Node: node, Term: 1, Role: role, Peer: 3, MsgType: raft.MsgHeartbeat}
		if err := c.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 { // t=0..950ms: counted, no line yet
		beat(2, raft.Leader)
		beat(1, raft.Follower)
		now = now.Add(50 * time.Millisecond)
	}
	beat(2, raft.Leader) // t=1s: node 2's summary
	now = now.Add(time.Second)
	beat(2, raft.Leader) // t=2s: node 2 again (one since)
	beat(1, raft.Follower)
	golden(t, "heartbeat_summary.golden", buf.String())
}

func TestConsoleCustomName(t *testing.T) {
	c := NewConsole(nil, ConsoleOptions{Name: func(id uint64) string { return fmt.Sprintf(":n%d", id) }})
	got, _ := c.Format(raft.Event{Kind: raft.EventMessageSent, Node: 2, Term: 1, Role: raft.Candidate, Peer: 1, MsgType: raft.MsgVote})
	if want := "[NODE :n2] [CANDIDATE] → SEND RequestVote to :n1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestConsoleConcurrentWrites: lines written by several goroutines never
// interleave (run with -race).
func TestConsoleConcurrentWrites(t *testing.T) {
	var buf bytes.Buffer
	c := NewConsole(&buf, ConsoleOptions{})
	var wg sync.WaitGroup
	for node := uint64(1); node <= 5; node++ {
		wg.Go(func() {
			for i := range 100 {
				e := raft.Event{Kind: raft.EventCommitAdvanced, Node: node, Term: 1, PrevIndex: uint64(i), Index: uint64(i + 1)}
				if err := c.Write(e); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 500 {
		t.Fatalf("%d lines, want 500", len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "[NODE n") || !strings.Contains(l, "✅ COMMIT index ") {
			t.Fatalf("mangled line %q", l)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestConsoleWriteError(t *testing.T) {
	c := NewConsole(failWriter{}, ConsoleOptions{})
	if err := c.Write(everyKind[0]); err != os.ErrClosed {
		t.Errorf("Write error = %v, want %v", err, os.ErrClosed)
	}
}

func TestColorFor(t *testing.T) {
	t.Setenv("TERM", "xterm")
	t.Setenv("NO_COLOR", "")
	if ColorFor(&bytes.Buffer{}) {
		t.Error("a buffer is not a terminal")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ColorFor(f) {
		t.Error("a regular file is not a terminal")
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer null.Close()
	if !ColorFor(null) {
		t.Error("a character device should get colour")
	}
	t.Setenv("NO_COLOR", "1")
	if ColorFor(null) {
		t.Error("NO_COLOR must disable colour")
	}
	t.Setenv("NO_COLOR", "")
	t.Setenv("TERM", "dumb")
	if ColorFor(null) {
		t.Error("TERM=dumb must disable colour")
	}
}

// TestConsoleConfigurationChange: a learner added on real cores is one
// "⚙ CONFIG" line per node (the core's conf_changed after its member
// events says nothing more), and its promotion one more.
func TestConsoleConfigurationChange(t *testing.T) {
	var buf bytes.Buffer
	console := NewConsole(&buf, ConsoleOptions{Categories: CategoryState})
	c := newCores(t, 3, func(e raft.Event) { console.Write(e) })
	c.elect(1)
	buf.Reset()
	if _, _, err := c.nodes[1].ProposeConfChange(raft.ConfChange{Type: raft.AddLearner, ID: 4}); err != nil {
		t.Fatal(err)
	}
	c.settle()
	if _, _, err := c.nodes[1].ProposeConfChange(raft.ConfChange{Type: raft.AddVoter, ID: 4}); err != nil {
		t.Fatal(err)
	}
	c.settle()
	got := buf.String()
	for _, want := range []string{"⚙ CONFIG n4 added as learner at index", "⚙ CONFIG n4 promoted to voter at index"} {
		if n := strings.Count(got, want); n != 3 {
			t.Errorf("%d lines %q, want one per node:\n%s", n, want, got)
		}
	}
	if n := strings.Count(got, "⚙ CONFIG"); n != 6 {
		t.Errorf("%d configuration lines, want 6:\n%s", n, got)
	}
}
