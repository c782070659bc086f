package sim

import (
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	nodepkg "github.com/raftex/raftex/node"
)

// Options select one run. The same Options always give the same run.
type Options struct {
	// Seed drives every random choice of the run.
	Seed uint64
	// Nodes is the cluster size: 3, 5 or 7 (any size from 1 works).
	Nodes int
	// Faults are the rates of the injected faults.
	Faults Faults
	// Trace, if set, receives a readable line for everything that
	// happens. It slows the run; the trace hash is computed either way.
	Trace io.Writer
	// CheckTimeout bounds the linearizability check (wall clock); a
	// check that does not finish in time fails the run. Default 60 s:
	// histories that transactions tie into one group of keys take up to
	// 12 s on a loaded 2-core machine (seed 1563, 7 nodes).
	CheckTimeout time.Duration
}

func (o *Options) validate() error {
	if o.Nodes < 1 || o.Nodes > 15 {
		return fmt.Errorf("sim: %d nodes: want 1 to 15", o.Nodes)
	}
	return o.Faults.validate()
}

// The random streams of a run: each part of the simulator draws from its
// own PCG stream of the seed, so a change in how one part draws leaves the
// others' choices alone.
const (
	streamParams uint64 = iota + 1
	streamNet
	streamFaults
	streamClients
	streamDisk
	streamMix
	streamAuth
	streamNode // + node id

	// Streams added later, past every node's: drawing from them leaves
	// the runs of older seeds as they were wherever they are off.
	streamKV    uint64 = 1000
	streamWatch uint64 = 1001
)

// Time of the model: the runtime's own defaults (node.DefaultConfig, which
// holds the core's), so the simulation runs what users run.
var (
	// tickInterval is the runtime's tick: election and heartbeat timeouts
	// are counted in ticks of each node's clock.
	tickInterval = nodepkg.DefaultConfig(1).TickInterval
	// electionTimeout is the longest randomized election timeout,
	// 2*ElectionTick ticks (§5.2).
	electionTimeout = 2 * time.Duration(nodepkg.DefaultConfig(1).ElectionTick) * tickInterval
	// livenessBound is how long after the faults stop a leader must be
	// elected and every pending operation completed: ten election
	// timeouts.
	livenessBound = 10 * electionTimeout
	// convergeBound is how long after that every node must have applied
	// the whole committed log.
	convergeBound = 10 * electionTimeout
)

// params are the settings a run draws from its seed, beyond Options: they
// vary the configuration so different seeds cover different code paths.
type params struct {
	faultPhase time.Duration // faults and new client operations stop after it

	maxSizePerMsg uint64 // raft.Config.MaxSizePerMsg: 1 byte means one entry per message
	maxInflight   int
	segmentSize   int64  // small, so segments roll and compaction deletes them
	snapEvery     uint64 // take a snapshot every snapEvery applied entries (§7)
	snapTrailing  uint64 // entries kept behind a snapshot for slow followers
	// maxApplying and maxUncommitted: raft.Config.MaxApplyingBytes and
	// MaxUncommittedBytes; small ones put a slow state machine's
	// back-pressure to work.
	maxApplying, maxUncommitted uint64
	// leaseRead turns on the leader lease (thesis §6.4.1); then half the
	// reads ask for it, and clock skew stays within the lease's drift
	// bound (raft.Config.LeaseRead).
	leaseRead bool
	// oneVoter: node 1 is the only voter, the others learners.
	oneVoter bool
	// sessionTTL is kv.Config.SessionTTL (0: the default): short ones
	// make sessions expire under the clients (thesis §6.3).
	sessionTTL uint64

	latencyMin, latencyMax time.Duration // one-way network latency
	fsyncMin, fsyncMax     time.Duration // a healthy disk's fsync

	clients       int
	keys          int
	thinkMax      time.Duration // a client waits up to this between operations
	clientTimeout time.Duration // a client retries an attempt after this

	// auth: an administrator adds users and a role and enables auth
	// while the clients run; the clients then log in, and their tokens
	// last tokenTTL on each node's clock (docs/security.md).
	auth     bool
	tokenTTL time.Duration
	// maxSessions is kv.Config.MaxSessions (0: the default): a small one
	// evicts sessions under the clients (thesis §6.3's LRU bound).
	maxSessions int
	// txns: a tenth of the operations are transactions (a compare-and-set
	// over two keys); watchers: clients that watch a prefix through node
	// crashes and snapshot installs; historyCount is kv.Config.HistoryCount
	// (0: the default): a small one compacts watches under them.
	txns         bool
	watchers     int
	historyCount int
}

func drawParams(seed uint64) params {
	rng := rand.New(rand.NewPCG(seed, streamParams))
	pick := func(vs ...uint64) uint64 { return vs[rng.IntN(len(vs))] }
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }
	p := params{
		faultPhase:     between(5*time.Second, 16*time.Second),
		maxSizePerMsg:  pick(1, 256, 4096, 1<<20),
		maxInflight:    int(pick(1, 4, 64, 256)),
		segmentSize:    int64(pick(4<<10, 16<<10, 64<<10)),
		snapEvery:      50 + rng.Uint64N(151),
		snapTrailing:   pick(0, 5, 50),
		maxApplying:    pick(64<<20, 4096, 256),
		maxUncommitted: pick(64<<20, 16<<10, 2<<10),
		leaseRead:      rng.IntN(2) == 0,
		oneVoter:       rng.IntN(6) == 0,
		sessionTTL:     pick(0, 0, 400),
		latencyMin:     between(100*time.Microsecond, time.Millisecond),
		fsyncMin:       between(50*time.Microsecond, 500*time.Microsecond),
		clients:        2 + rng.IntN(5),
		keys:           1 + rng.IntN(4),
		thinkMax:       between(5*time.Millisecond, 80*time.Millisecond),
		clientTimeout:  between(150*time.Millisecond, 600*time.Millisecond),
	}
	p.latencyMax = p.latencyMin + between(0, 4*time.Millisecond)
	p.fsyncMax = p.fsyncMin + between(0, 3*time.Millisecond)
	// Drawn from a stream of their own, so the settings above stay what
	// they were for every seed.
	arng := rand.New(rand.NewPCG(seed, streamAuth))
	p.auth = arng.IntN(3) == 0
	p.tokenTTL = []time.Duration{2 * time.Second, 5 * time.Second, time.Minute}[arng.IntN(3)]
	if arng.IntN(4) == 0 {
		p.maxSessions = max(2, p.clients-1)
	}
	krng := rand.New(rand.NewPCG(seed, streamKV))
	p.txns = krng.IntN(2) == 0
	p.watchers = krng.IntN(4)
	p.historyCount = []int{0, 8, 64}[krng.IntN(3)]
	return p
}

func (p params) String() string {
	return fmt.Sprintf("fault phase %v; MaxSizePerMsg %d, MaxInflightMsgs %d, MaxApplyingBytes %d, MaxUncommittedBytes %d, LeaseRead %t, one voter %t, session TTL %d, max sessions %d; WAL segments %d B; snapshot every %d entries keeping %d; latency %v–%v; fsync %v–%v; %d clients on %d keys, think ≤%v, timeout %v; auth %t, token TTL %v; transactions %t, %d watchers, watch history %d",
		p.faultPhase, p.maxSizePerMsg, p.maxInflight, p.maxApplying, p.maxUncommitted, p.leaseRead, p.oneVoter, p.sessionTTL, p.maxSessions,
		p.segmentSize, p.snapEvery, p.snapTrailing,
		p.latencyMin, p.latencyMax, p.fsyncMin, p.fsyncMax, p.clients, p.keys, p.thinkMax, p.clientTimeout, p.auth, p.tokenTTL,
		p.txns, p.watchers, p.historyCount)
}
