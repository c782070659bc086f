package inspect

import (
	"bytes"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftex/raftex/raft"
)

// syncBuffer is a buffer the logging goroutine writes while a test reads.
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

// testLogger returns a Logger writing text lines without their time to
// the returned buffer.
func testLogger(t *testing.T, cfg LogConfig) (*Logger, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	cfg.Logger = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{ReplaceAttr: noTime}))
	l := NewLogger(cfg)
	t.Cleanup(l.Close)
	return l, buf
}

// clusterLogs runs n real cores, each node's events going to its own
// Logger.
func clusterLogs(t *testing.T, n int) (*cores, map[uint64]*Logger, map[uint64]*syncBuffer) {
	t.Helper()
	loggers, bufs := map[uint64]*Logger{}, map[uint64]*syncBuffer{}
	for id := uint64(1); id <= uint64(n); id++ {
		loggers[id], bufs[id] = testLogger(t, LogConfig{})
	}
	c := newCores(t, n, func(e raft.Event) { loggers[e.Node].ObserveEvent(e) })
	return c, loggers, bufs
}

// wantLines checks that log (closed, so complete) holds a line matching
// each pattern, in order.
func wantLines(t *testing.T, who, log string, patterns ...string) {
	t.Helper()
	rest := log
	for _, p := range patterns {
		loc := regexp.MustCompile(`(?m)^` + p + `$`).FindStringIndex(rest)
		if loc == nil {
			t.Fatalf("%s's log lacks a line %q after the ones before:\n%s", who, p, log)
		}
		rest = rest[loc[1]:]
	}
}

func TestLogElectionAndLeader(t *testing.T) {
	c, loggers, bufs := clusterLogs(t, 3)
	for i := 0; i < 100 && c.leader() == 0; i++ {
		c.tick(1)
	}
	lead := c.leader()
	if lead == 0 {
		t.Fatal("no leader after 100 ticks")
	}
	for id, l := range loggers {
		l.Close()
		log := bufs[id].String()
		if id == lead {
			wantLines(t, NodeName(id), log,
				`level=INFO msg="election started" term=1`,
				`level=INFO msg="election won" term=1 votes=[23]`,
				`level=INFO msg="became leader" term=1`)
			continue
		}
		wantLines(t, NodeName(id), log, `level=INFO msg="leader changed" leader=`+NodeName(lead)+` term=1`)
		if strings.Contains(log, "became leader") {
			t.Errorf("%s logged that it leads:\n%s", NodeName(id), log)
		}
	}
}

// A leader cut off from its followers steps down by CheckQuorum (thesis
// §6.2): a warning with the reason, then the role change.
func TestLogStepDownByCheckQuorum(t *testing.T) {
	c, loggers, bufs := clusterLogs(t, 3)
	c.elect(1)
	c.cut[2], c.cut[3] = true, true
	c.tick(40, 0)
	loggers[1].Close()
	wantLines(t, "n1", bufs[1].String(),
		`level=WARN msg="stepped down" term=1 reason="check quorum: .*"`,
		`level=INFO msg="became follower" term=1 prev_role=leader reason="check quorum: .*"`)
}

// A leader that learns of a higher term (it was cut off while the others
// elected another) says so when it becomes a follower.
func TestLogLeaderLosesToHigherTerm(t *testing.T) {
	c, loggers, bufs := clusterLogs(t, 3)
	c.elect(1)
	c.cut[1] = true
	c.tick(60, 1) // n1 never ticks: no CheckQuorum step-down
	lead := c.leader()
	if lead == 0 || lead == 1 {
		t.Fatalf("no new leader among n2 and n3: %d", lead)
	}
	delete(c.cut, 1)
	c.tick(10, 1) // the new leader's heartbeats carry term 2 to n1
	loggers[1].Close()
	wantLines(t, "n1", bufs[1].String(),
		`level=INFO msg="leader changed" leader=`+NodeName(lead)+` term=2`,
		`level=INFO msg="became follower" term=2 prev_role=leader reason="higher term from `+NodeName(lead)+`"`)
	if strings.Contains(bufs[1].String(), "stepped down") {
		t.Errorf("n1 logged a CheckQuorum step-down:\n%s", bufs[1])
	}
}

// A node cut off campaigns in PreVote for the same term over and over:
// the first attempt is logged, the repeats only once per RepeatEvery and
// when it ends.
func TestLogCoalescesRepeatedElections(t *testing.T) {
	clock := time.Unix(0, 0)
	var loggers [4]*Logger
	var bufs [4]*syncBuffer
	for id := 1; id <= 3; id++ {
		loggers[id], bufs[id] = testLogger(t, LogConfig{RepeatEvery: time.Minute})
		loggers[id].now = func() time.Time { return clock }
	}
	c := newCores(t, 3, func(e raft.Event) { loggers[e.Node].ObserveEvent(e) })
	c.elect(1)
	c.cut[3] = true
	for range 20 {
		c.tick(31) // at least one election timeout of n3 per round
		clock = clock.Add(10 * time.Second)
	}
	delete(c.cut, 3)
	c.tick(10)
	loggers[3].Close()
	log := bufs[3].String()
	wantLines(t, "n3", log,
		`level=INFO msg="election started" term=2`,
		`level=INFO msg="no known leader" term=1`,
		`level=INFO msg="election repeated" term=2 attempts=\d+ since=\dm0s result="no result yet"`,
		`level=INFO msg="election repeated" term=2 attempts=\d+ since=\dm0s result="no result yet"`,
		`level=INFO msg="election repeated" term=2 attempts=\d+ since=\S+ result="leader found"`,
		`level=INFO msg="leader changed" leader=n1 term=1`)
	if n := strings.Count(log, `msg="election started"`); n != 1 {
		t.Errorf("%d election-started lines, want 1:\n%s", n, log)
	}
	if n := strings.Count(log, "\n"); n > 10 {
		t.Errorf("%d lines for one cut-off node:\n%s", n, log)
	}
}

func TestLogSlowFsyncSnapshotsAndRecovery(t *testing.T) {
	l, buf := testLogger(t, LogConfig{SlowFsync: 100 * time.Millisecond})
	l.ObserveRecovery(Recovery{Entries: 42, FirstIndex: 5001, LastIndex: 5042, SnapshotIndex: 5000, Term: 3, Duration: 12 * time.Millisecond})
	l.ObserveFsync(99*time.Millisecond, 10, 4096) // under the threshold
	l.ObserveFsync(250*time.Millisecond, 3, 300)
	l.ObserveSnapshot(false, 20*time.Millisecond, 1<<20)
	l.ObserveEvent(raft.Event{Kind: raft.EventSnapshotTaken, Node: 1, Term: 3, Index: 10000, PrevIndex: 5000})
	l.ObserveSnapshot(true, 30*time.Millisecond, 2<<20)
	l.ObserveEvent(raft.Event{Kind: raft.EventSnapshotInstalled, Node: 1, Term: 3, Index: 20000, Peer: 2})
	l.ObserveEvent(raft.Event{Kind: raft.EventSnapshotSent, Node: 1, Term: 3, Index: 20000, Peer: 3})
	l.ObserveEvent(raft.Event{Kind: raft.EventCommitAdvanced, Node: 1, Term: 3, Index: 7})
	l.Close()
	want := `level=INFO msg="log recovered" entries=42 first_index=5001 last_index=5042 snapshot_index=5000 term=3 duration=12ms
level=WARN msg="slow fsync" duration=250ms entries=3 bytes=300 threshold=100ms
level=INFO msg="snapshot taken" index=10000 compacted_through=5000 duration=20ms bytes=1048576
level=INFO msg="snapshot installed" index=20000 from=n2 duration=30ms bytes=2097152
level=INFO msg="snapshot sent" to=n3 index=20000
`
	if got := buf.String(); got != want {
		t.Errorf("log:\n%s\nwant:\n%s", got, want)
	}
}

// blockingWriter holds every write until released.
type blockingWriter struct {
	release chan struct{}
	buf     syncBuffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	return w.buf.Write(p)
}

// A log slower than the node drops observations rather than delay the
// node, and says how many.
func TestLogDropsRatherThanBlock(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{})}
	l := NewLogger(LogConfig{Logger: slog.New(slog.NewTextHandler(w, nil)), Buffer: 2})
	for i := range 10 {
		l.ObserveEvent(raft.Event{Kind: raft.EventSnapshotSent, Node: 1, Peer: 2, Index: uint64(i)})
	}
	close(w.release)
	l.ObserveEvent(raft.Event{Kind: raft.EventNodeStopped, Node: 1})
	l.Close()
	if !regexp.MustCompile(`level=WARN msg="log lines dropped: the log is slower than the node" dropped_total=\d+`).MatchString(w.buf.String()) {
		t.Errorf("no warning about dropped lines:\n%s", w.buf.String())
	}
}

// Configuration changes and an aborted transfer each get a line naming
// the member, how it joined, and the entry's index (thesis §4.1, §3.10).
func TestLogConfigurationChanges(t *testing.T) {
	l, buf := testLogger(t, LogConfig{})
	for _, e := range []raft.Event{
		{Kind: raft.EventMemberAdded, Node: 1, Term: 2, Peer: 4, Index: 12, Reason: "learner (promoted once caught up)"},
		{Kind: raft.EventMemberPromoted, Node: 1, Term: 2, Peer: 4, Index: 13},
		{Kind: raft.EventMemberRemoved, Node: 1, Term: 2, Peer: 3, Index: 14},
		{Kind: raft.EventConfChanged, Node: 1, Term: 2, Index: 15, Reason: "joint consensus left"},
		{Kind: raft.EventLeadershipTransferAborted, Node: 1, Term: 2, Peer: 2, Reason: "n2 did not win within an election timeout"},
	} {
		l.ObserveEvent(e)
	}
	l.Close()
	wantLines(t, "n1", buf.String(),
		`level=INFO msg="member added" member=n4 as="learner \(promoted once caught up\)" index=12`,
		`level=INFO msg="member promoted to voter" member=n4 index=13`,
		`level=INFO msg="member removed" member=n3 index=14`,
		`level=INFO msg="configuration changed" index=15 how="joint consensus left"`,
		`level=WARN msg="leadership transfer aborted" term=2 to=n2 reason="n2 did not win within an election timeout"`)
}
