package inspect

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftex/raftex/raft"
)

// LogConfig configures a Logger.
type LogConfig struct {
	// Logger receives the lines (with the node's attributes already, as
	// Logger.With("node", "n1") gives). Required.
	Logger *slog.Logger
	// SlowFsync: a durable write that took at least this long is logged as
	// a warning. Default 150 ms, the default election timeout: a leader
	// whose disk stalls that long steps down.
	SlowFsync time.Duration
	// RepeatEvery: an election that keeps failing for the same term (a node
	// cut off, stuck in PreVote) is logged once, then once per RepeatEvery
	// with the number of attempts. Default 30 s.
	RepeatEvery time.Duration
	// Buffer is how many observations may wait for the logging goroutine;
	// beyond it they are dropped, and counted in a warning. Default 1024.
	Buffer int
}

// Recovery summarises what a node found on its disk when it started.
type Recovery struct {
	Entries       uint64 // log entries after the snapshot
	FirstIndex    uint64 // first entry still in the log
	LastIndex     uint64
	SnapshotIndex uint64 // 0 if none
	Term          uint64 // from the hard state
	Duration      time.Duration
}

// Logger tells a node's story in its log: at INFO, the node starting and
// stopping, what recovery found, elections started and their result
// (repeated failures for the same term coalesced), becoming leader or
// follower with the term, leader changes, snapshots taken, installed and
// sent; at WARN, step-downs (CheckQuorum, disk stall) and slow fsyncs;
// votes and term changes at DEBUG. Messages, commits and applies are left
// to metrics and the event stream.
//
// It is a node.Observer fed by the node's typed events and measurements:
// the node calls it on its own goroutines, so it only queues what it is
// given, and one goroutine of its own writes the lines: a slow log never
// delays the node. Close stops that goroutine once the queue is written.
type Logger struct {
	cfg     LogConfig
	queue   chan observation
	dropped atomic.Uint64
	done    chan struct{}

	closeOnce sync.Once
	mu        sync.RWMutex // held to send, so that Close never races a send
	closed    bool

	// State of the logging goroutine.
	now         func() time.Time // read by the node's goroutines, when observing
	at          time.Time        // when the observation being logged was made
	role        raft.Role
	lead        uint64
	campaign    campaign
	stepDown    string      // the reason of a step-down reported just before its role change
	higherFrom  uint64      // who carried the term that just rose (0: none, or the node itself)
	termRose    bool        // the term rose since the last role change
	taken       observation // the measurement of the snapshot about to be reported taken
	installed   observation // likewise, installed
	lastDropped uint64
}

// campaign is the election the node runs, for coalescing repeats.
type campaign struct {
	active  bool
	term    uint64    // the term it asks for
	repeats int       // attempts since the last line about them
	last    time.Time // when a line about them was last written
}

type observationKind uint8

const (
	obsEvent observationKind = iota + 1
	obsFsync
	obsSnapshot
	obsRecovery
)

type observation struct {
	kind      observationKind
	at        time.Time // when the node reported it
	event     raft.Event
	d         time.Duration
	entries   int
	bytes     int64
	installed bool
	recovery  Recovery
}

// NewLogger returns a Logger and starts its goroutine.
func NewLogger(cfg LogConfig) *Logger {
	if cfg.SlowFsync <= 0 {
		cfg.SlowFsync = 150 * time.Millisecond
	}
	if cfg.RepeatEvery <= 0 {
		cfg.RepeatEvery = 30 * time.Second
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 1024
	}
	l := &Logger{cfg: cfg, queue: make(chan observation, cfg.Buffer), done: make(chan struct{}), now: time.Now}
	go l.run()
	return l
}

// Close writes what is queued and stops the logging goroutine; later
// observations are ignored. It is idempotent.
func (l *Logger) Close() {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.queue)
		l.mu.Unlock()
		<-l.done
	})
}

func (l *Logger) offer(o observation) {
	o.at = l.now()
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return
	}
	select {
	case l.queue <- o:
	default:
		l.dropped.Add(1)
	}
}

// ObserveEvent implements node.Observer.
func (l *Logger) ObserveEvent(e raft.Event) {
	switch e.Kind {
	case raft.EventMessageSent, raft.EventMessageReceived, raft.EventCommitAdvanced, raft.EventApplied:
		return // not logged: keep the queue for what is
	}
	l.offer(observation{kind: obsEvent, event: e})
}

// ObserveFsync implements node.Observer: a write slower than SlowFsync is
// logged.
func (l *Logger) ObserveFsync(d time.Duration, entries int, bytes int) {
	if d >= l.cfg.SlowFsync {
		l.offer(observation{kind: obsFsync, d: d, entries: entries, bytes: int64(bytes)})
	}
}

// ObserveSnapshot implements node.Observer; the duration and size go on
// the line of the snapshot event that follows.
func (l *Logger) ObserveSnapshot(installed bool, d time.Duration, bytes int64) {
	l.offer(observation{kind: obsSnapshot, installed: installed, d: d, bytes: bytes})
}

// ObserveApply implements node.Observer (applies are not logged).
func (l *Logger) ObserveApply(time.Duration, int) {}

// ObserveProposal implements node.Observer (proposals are not logged).
func (l *Logger) ObserveProposal(bool) {}

// ObserveRecovery logs what the node's storage recovered at start.
func (l *Logger) ObserveRecovery(r Recovery) { l.offer(observation{kind: obsRecovery, recovery: r}) }

func (l *Logger) run() {
	defer close(l.done)
	for o := range l.queue {
		if n := l.dropped.Load(); n != l.lastDropped {
			l.warn("log lines dropped: the log is slower than the node", "dropped_total", n)
			l.lastDropped = n
		}
		l.at = o.at
		switch o.kind {
		case obsEvent:
			l.event(o.event)
		case obsFsync:
			l.warn("slow fsync", "duration", o.d, "entries", o.entries, "bytes", o.bytes, "threshold", l.cfg.SlowFsync)
		case obsSnapshot:
			if o.installed {
				l.installed = o
			} else {
				l.taken = o
			}
		case obsRecovery:
			r := o.recovery
			l.info("log recovered", "entries", r.Entries, "first_index", r.FirstIndex, "last_index", r.LastIndex,
				"snapshot_index", r.SnapshotIndex, "term", r.Term, "duration", r.Duration)
		}
	}
	l.flushCampaign("")
}

func (l *Logger) info(msg string, args ...any)  { l.cfg.Logger.Info(msg, args...) }
func (l *Logger) warn(msg string, args ...any)  { l.cfg.Logger.Warn(msg, args...) }
func (l *Logger) debug(msg string, args ...any) { l.cfg.Logger.Debug(msg, args...) }

func (l *Logger) event(e raft.Event) {
	switch e.Kind {
	case raft.EventNodeStarted:
		l.role = e.Role
		l.info("node started", "term", e.Term, "role", e.Role.String(), "applied_index", e.Index)
	case raft.EventNodeStopped:
		l.flushCampaign("")
		l.info("node stopped", "term", e.Term, "role", e.Role.String())
	case raft.EventTermChanged:
		l.termRose = true
		l.higherFrom = e.Peer
		if e.Peer == e.Node {
			l.higherFrom = raft.None
		}
		l.debug("term changed", "term", e.Term, "from", peerName(e.Peer))
	case raft.EventElectionTimeout:
		l.electionStarted(e)
	case raft.EventElectionWon:
		l.flushCampaign("won")
		l.campaign.active = false
		l.info("election won", "term", e.Term, "votes", e.Count)
	case raft.EventRoleChanged:
		l.roleChanged(e)
	case raft.EventLeaderChanged:
		l.leaderChanged(e)
	case raft.EventStepDown:
		l.stepDown = e.Reason
		l.warn("stepped down", "term", e.Term, "reason", e.Reason)
	case raft.EventVoteGranted:
		l.debug("vote granted", "term", e.Term, "to", peerName(e.Peer), "type", e.MsgType.String())
	case raft.EventVoteRejected:
		l.debug("vote rejected", "term", e.Term, "from", peerName(e.Peer), "type", e.MsgType.String(), "reason", e.Reason)
	case raft.EventLeadershipTransfer:
		l.info("leadership transfer started", "term", e.Term, "to", peerName(e.Peer))
	case raft.EventLeadershipTransferAborted:
		l.warn("leadership transfer aborted", "term", e.Term, "to", peerName(e.Peer), "reason", e.Reason)
	case raft.EventMemberAdded:
		l.info("member added", "member", peerName(e.Peer), "as", e.Reason, "index", e.Index)
	case raft.EventMemberPromoted:
		l.info("member promoted to voter", "member", peerName(e.Peer), "index", e.Index)
	case raft.EventMemberRemoved:
		l.info("member removed", "member", peerName(e.Peer), "index", e.Index)
	case raft.EventConfChanged:
		l.info("configuration changed", "index", e.Index, "how", e.Reason)
	case raft.EventSnapshotTaken:
		args := []any{"index", e.Index, "compacted_through", e.PrevIndex}
		l.info("snapshot taken", append(args, measured(&l.taken)...)...)
	case raft.EventSnapshotInstalled:
		args := []any{"index", e.Index, "from", peerName(e.Peer)}
		l.info("snapshot installed", append(args, measured(&l.installed)...)...)
	case raft.EventSnapshotSent:
		l.info("snapshot sent", "to", peerName(e.Peer), "index", e.Index)
	case raft.EventSnapshotRestored:
		l.debug("snapshot accepted by the core", "from", peerName(e.Peer), "index", e.Index)
	}
}

// measured returns the duration and size of the snapshot measurement o
// (held until its event came) and clears it.
func measured(o *observation) []any {
	if o.kind == 0 {
		return nil
	}
	args := []any{"duration", o.d, "bytes", o.bytes}
	*o = observation{}
	return args
}

// electionStarted logs the start of a campaign for e.Term, or counts it
// when it repeats one that found no result for the same term (a pre-vote
// campaign does not raise the term, so a node that cannot win asks for
// the same term over and over).
func (l *Logger) electionStarted(e raft.Event) {
	c := &l.campaign
	if c.active && c.term == e.Term {
		c.repeats++
		if l.at.Sub(c.last) >= l.cfg.RepeatEvery {
			l.flushCampaign("no result yet")
		}
		return
	}
	l.flushCampaign("")
	*c = campaign{active: true, term: e.Term, last: l.at}
	args := []any{"term", e.Term}
	if e.Reason != "" {
		args = append(args, "reason", e.Reason)
	}
	l.info("election started", args...)
}

// flushCampaign logs the attempts not logged yet, with how the last ended.
func (l *Logger) flushCampaign(result string) {
	c := &l.campaign
	if c.repeats == 0 {
		return
	}
	args := []any{"term", c.term, "attempts", c.repeats, "since", l.at.Sub(c.last).Round(time.Millisecond)}
	if result != "" {
		args = append(args, "result", result)
	}
	l.info("election repeated", args...)
	c.repeats, c.last = 0, l.at
}

func (l *Logger) roleChanged(e raft.Event) {
	prev := e.PrevRole
	l.role = e.Role
	termRose, from, reason := l.termRose, l.higherFrom, l.stepDown
	l.termRose, l.higherFrom, l.stepDown = false, raft.None, ""
	switch {
	case e.Role == raft.Leader:
		l.info("became leader", "term", e.Term)
	case prev == raft.Leader:
		if reason == "" && termRose {
			reason = "higher term"
			if from != raft.None {
				reason += " from " + NodeName(from)
			}
		}
		l.info("became follower", "term", e.Term, "prev_role", prev.String(), "reason", reason)
	case e.Role == raft.Follower && (prev == raft.Candidate || prev == raft.PreCandidate):
		if l.campaign.repeats > 0 {
			return // a repeat of the failure already logged
		}
		args := []any{"term", e.Term, "role", prev.String()}
		if l.lead != raft.None {
			args = append(args, "leader", NodeName(l.lead))
		}
		l.info("election lost", args...)
	default:
		l.debug("role changed", "term", e.Term, "role", e.Role.String(), "prev_role", prev.String())
	}
}

func (l *Logger) leaderChanged(e raft.Event) {
	l.lead = e.Peer
	switch e.Peer {
	case e.Node:
		// "became leader" says it.
	case raft.None:
		l.info("no known leader", "term", e.Term)
	default:
		l.flushCampaign("leader found")
		l.campaign.active = false
		l.info("leader changed", "leader", NodeName(e.Peer), "term", e.Term)
	}
}

func peerName(id uint64) string {
	if id == raft.None {
		return ""
	}
	return NodeName(id)
}
