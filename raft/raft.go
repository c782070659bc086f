package raft

import (
	"bytes"
	"fmt"
	"math/rand/v2"
)

// Raft is one node's protocol core: a deterministic state machine with no
// goroutines, clock or I/O. Time comes in through Tick, messages through
// Step, client work through Propose and ReadIndex; everything the caller
// must do comes out through Ready (see Ready for the rules). A Raft is not
// safe for concurrent use: one goroutine drives it.
type Raft struct {
	id   uint64
	cfg  Config
	rand *rand.Rand

	term uint64
	vote uint64
	role Role
	lead uint64
	log  *raftLog

	// membership is the latest configuration in the log, in force here
	// (thesis §4.1); confs holds it and the ones before it back to the
	// last committed one, so a truncated entry rolls back.
	membership Membership
	confs      []confAt
	// catchups are the leader's catch-up rounds of staging learners
	// (thesis §4.2.1).
	catchups map[uint64]*catchupRound
	prs      map[uint64]*Progress
	// replicas are the ids of prs but ours, sorted: whom the leader
	// replicates to.
	replicas []uint64
	votes    map[uint64]bool

	// ticks counts every Tick since start: the core's only clock.
	ticks                     uint64
	electionElapsed           int
	heartbeatElapsed          int
	randomizedElectionTimeout int

	leadTransferee uint64
	uncommitted    uint64
	pendingBcast   bool
	reads          readIndexState
	forwarded      forwardedProps

	// Output accumulated for the next Ready.
	msgs             []Message
	msgsAfterPersist []Message
	readStates       []ReadState
	proposalResults  []ProposalResult
	events           []Event
	prevHardState    HardState

	// stableTerm is the newest term known durable with its vote; syncTerm
	// is the term of the hard state handed out in the outstanding Ready
	// (0: none), durable once it is advanced. §5.1: no message of a term
	// leaves before that term and our vote in it are on disk.
	stableTerm, syncTerm uint64

	// readyOutstanding: a Ready was handed out and not yet advanced.
	readyOutstanding bool
	// unsyncedTicks counts ticks while a Ready that must be synced is
	// outstanding: how long our disk has been stalled.
	unsyncedTicks int
	mustSyncOut   bool

	tick func()
	step func(m Message)
}

// New returns a core that starts as a follower with the state found in
// cfg.Storage.
func New(cfg Config) (*Raft, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hs, m, err := cfg.Storage.InitialState()
	if err != nil {
		return nil, fmt.Errorf("raft: reading initial state: %w", err)
	}
	if !m.IsEmpty() {
		// An empty membership is a joining server's: it learns the
		// configuration from the log or a snapshot the leader sends.
		if err := m.Validate(); err != nil {
			return nil, err
		}
	}
	lg, err := newLog(cfg.Storage, cfg.Applied, cfg.MaxApplyingBytes)
	if err != nil {
		return nil, err
	}
	r := &Raft{
		id:            cfg.ID,
		cfg:           cfg,
		rand:          cfg.Rand,
		log:           lg,
		term:          hs.Term,
		vote:          hs.Vote,
		prevHardState: hs,
		stableTerm:    hs.Term,
	}
	if r.rand == nil {
		r.rand = rand.New(rand.NewPCG(cfg.ID, 0x5eed))
	}
	if err := r.loadConfs(m); err != nil {
		return nil, err
	}
	r.becomeFollower(hs.Term, None)
	r.events = r.events[:0] // starting is not a transition
	return r, nil
}

// ID returns this node's id.
func (r *Raft) ID() uint64 { return r.id }

// Term returns the current term. Term, Role, Leader and Commit are cheap;
// Status copies the membership and the leader's progress.
func (r *Raft) Term() uint64 { return r.term }

// Role returns the role in the current term.
func (r *Raft) Role() Role { return r.role }

// Leader returns the leader this node knows of in its term (None if none).
func (r *Raft) Leader() uint64 { return r.lead }

// Commit returns the commit index.
func (r *Raft) Commit() uint64 { return r.log.committed }

// Membership returns (a copy of) the latest configuration in the log, the
// one in force here (thesis §4.1).
func (r *Raft) Membership() Membership { return r.membership.Clone() }

// PendingConfIndex returns the index of the latest configuration entry if
// it is not committed yet, else 0.
func (r *Raft) PendingConfIndex() uint64 {
	if i := r.lastConfIndex(); i > r.log.committed {
		return i
	}
	return 0
}

// LeadTransferee returns the target of the leadership transfer in
// progress, or None.
func (r *Raft) LeadTransferee() uint64 { return r.leadTransferee }

// Tick advances the core's clock by one tick (the runtime's default tick
// is 10 ms).
func (r *Raft) Tick() {
	r.ticks++
	if r.readyOutstanding && r.mustSyncOut {
		r.unsyncedTicks++
	}
	r.tick()
}

// tickElection is the follower and candidate clock: §5.2 "if a follower
// receives no communication over a period of time called the election
// timeout, it ... begins an election".
func (r *Raft) tickElection() {
	r.electionElapsed++
	if r.promotable() && r.electionElapsed >= r.randomizedElectionTimeout {
		r.electionElapsed = 0
		r.emit(Event{Kind: EventElectionTimeout, Term: r.term + 1})
		r.hup(false)
	}
}

// tickHeartbeat is the leader clock: heartbeats every HeartbeatTick (§5.2),
// and every ElectionTick the CheckQuorum test (thesis §6.2).
func (r *Raft) tickHeartbeat() {
	r.heartbeatElapsed++
	r.electionElapsed++
	if r.unsyncedTicks >= r.cfg.ElectionTick {
		// Our own disk has not confirmed a write for a whole election
		// timeout: we cannot serve, so we stop leading.
		r.stepDown("disk stall: no fsync for an election timeout")
		return
	}
	if r.electionElapsed >= r.cfg.ElectionTick {
		r.electionElapsed = 0
		if r.cfg.CheckQuorum {
			if !r.quorumActive() {
				r.stepDown("check quorum: no majority heard within an election timeout")
				return
			}
			for id, pr := range r.prs {
				pr.RecentActive = id == r.id
			}
		}
		if r.leadTransferee != None {
			r.abortTransfer("no election by the target within an election timeout") // §3.10
		}
		r.reads.expire(r.ticks, uint64(r.cfg.ElectionTick))
	}
	r.retryLostSnapshots()
	r.maybePromote()
	if r.heartbeatElapsed >= r.cfg.HeartbeatTick {
		r.heartbeatElapsed = 0
		r.startReadRound()
	}
}

// retryLostSnapshots gives up on a snapshot transfer that has not been
// reported (ReportSnapshot) for an election timeout and probes again, so
// a snapshot the transport lost without a word (a sender that crashed, a
// connection dropped unseen) does not leave its follower behind forever.
// A transfer still streaming is not harmed: the probe finds the follower
// still behind, and the new InstallSnapshot is the same one.
func (r *Raft) retryLostSnapshots() {
	for id, pr := range r.prs {
		if pr.State != StateSnapshot {
			continue
		}
		if pr.snapshotTicks++; pr.snapshotTicks >= r.cfg.ElectionTick {
			r.ReportSnapshot(id, false)
		}
	}
}

func (r *Raft) quorumActive() bool {
	return r.membership.HasQuorum(func(id uint64) bool {
		pr := r.prs[id]
		return pr != nil && pr.RecentActive
	})
}

func (r *Raft) stepDown(reason string) {
	r.emit(Event{Kind: EventStepDown, Reason: reason})
	r.becomeFollower(r.term, None)
}

// promotable reports whether this node may campaign: only voters do, of
// the latest configuration in the log (thesis §4.1) or of the committed
// one while a later entry that removes this node is not committed yet.
// Without the latter, a server whose uncommitted entry removes it, and
// whose log is the only one to hold that entry, would refuse to campaign
// while the voters it refuses its vote to (their logs are behind) cannot
// win without it. Votes are counted in the latest configuration either
// way, as a leader removed by its own entry manages the cluster until it
// commits (§4.2.2).
func (r *Raft) promotable() bool {
	if r.membership.IsVoter(r.id) {
		return true
	}
	if r.lastConfIndex() <= r.log.committed {
		return false
	}
	m := r.confs[0].m
	for _, c := range r.confs {
		if c.index <= r.log.committed {
			m = c.m
		}
	}
	return m.IsVoter(r.id)
}

// Campaign starts an election now, as if the election timeout fired. With
// LeaseRead, a follower that heard from a leader within the election
// timeout refuses: it promised that leader not to vote in that time, and a
// vote for itself counts (thesis §6.4.1).
func (r *Raft) Campaign() {
	if r.role == Leader {
		return
	}
	if r.cfg.LeaseRead && r.inLease() {
		r.emit(Event{Kind: EventVoteRejected, Peer: r.id, Reason: "campaign refused: leader lease"})
		return
	}
	r.hup(false)
}

// hup starts an election: a pre-vote first when configured (thesis §9.6),
// unless forced by leadership transfer.
func (r *Raft) hup(transfer bool) {
	if !r.promotable() {
		return
	}
	if r.cfg.PreVote && !transfer {
		r.campaign(MsgPreVote, nil)
		return
	}
	var ctx []byte
	if transfer {
		ctx = contextTransfer
	}
	r.campaign(MsgVote, ctx)
}

func (r *Raft) campaign(kind MessageType, ctx []byte) {
	term := r.term + 1
	if kind == MsgPreVote {
		r.becomePreCandidate()
	} else {
		r.becomeCandidate()
		term = r.term
	}
	if r.poll(r.id, true) {
		return // a single-voter cluster wins at once
	}
	for _, id := range r.membership.Members() {
		if id == r.id || !r.membership.IsVoter(id) {
			continue
		}
		r.send(Message{Type: kind, To: id, Term: term, Index: r.log.lastIndex(), LogTerm: r.log.lastTerm(), Context: ctx})
	}
}

// poll records a (pre-)vote and acts when the election is decided (§5.2:
// a candidate wins with votes from a majority; with a majority against it,
// it returns to follower and waits for its next timeout).
func (r *Raft) poll(id uint64, granted bool) bool {
	if _, seen := r.votes[id]; !seen {
		r.votes[id] = granted
	}
	// §4.3: during joint consensus an election needs a majority of both
	// C_old and C_new.
	won := r.membership.HasQuorum(func(id uint64) bool { return r.votes[id] })
	lost := !r.membership.HasQuorum(func(id uint64) bool { g, ok := r.votes[id]; return g || !ok })
	switch {
	case won:
		yes := 0
		for _, g := range r.votes {
			if g {
				yes++
			}
		}
		if r.role == PreCandidate {
			r.campaign(MsgVote, nil)
		} else {
			r.emit(Event{Kind: EventElectionWon, Count: yes})
			r.becomeLeader()
		}
		return true
	case lost:
		r.becomeFollower(r.term, None)
		return true
	}
	return false
}

// Propose appends data to the log as a new entry (§5.3 "the leader appends
// the command to its log as a new entry") and returns its index and term.
// The entry is committed once a majority stores it; watch CommittedEntries
// for that index with that term. On a follower it returns a
// *NotLeaderError naming the known leader.
func (r *Raft) Propose(data []byte) (index, term uint64, err error) {
	if r.role != Leader {
		return 0, 0, &NotLeaderError{Leader: r.lead}
	}
	return r.proposeBatch([][]byte{data})
}

func (r *Raft) appendEntry(ents ...Entry) {
	for _, e := range ents {
		r.uncommitted += e.size()
	}
	r.log.append(ents...)
	r.logWritten(ents)
	// Replication waits for the next Ready, so every proposal made until
	// then travels in one AppendEntries per follower.
	r.pendingBcast = true
}

// TransferLeadership hands leadership to the voter to (thesis §3.10), or,
// with to == None, to the voter whose log is the most up to date: the
// leader stops taking proposals (ErrTransferring), brings the target up to
// date, then tells it to campaign at once (TimeoutNow). The transfer is
// abandoned after an election timeout (EventLeadershipTransferAborted)
// and proposals resume.
func (r *Raft) TransferLeadership(to uint64) error {
	if r.role != Leader {
		return &NotLeaderError{Leader: r.lead}
	}
	if to == None {
		for _, id := range r.membership.Voters {
			if pr := r.prs[id]; id != r.id && pr != nil && (to == None || pr.Match > r.prs[to].Match) {
				to = id
			}
		}
		if to == None {
			return fmt.Errorf("%w: no other voter", ErrTransferTarget)
		}
	}
	if to == r.id || !r.membership.IsVoter(to) {
		return fmt.Errorf("%w: %d", ErrTransferTarget, to)
	}
	if r.leadTransferee == to {
		return nil
	}
	r.leadTransferee = to
	r.electionElapsed = 0
	r.emit(Event{Kind: EventLeadershipTransfer, Peer: to})
	if r.prs[to].Match == r.log.lastIndex() {
		r.sendTimeoutNow(to)
	} else {
		r.sendAppend(to)
	}
	return nil
}

// abortTransfer gives up the transfer in progress; proposals resume.
func (r *Raft) abortTransfer(reason string) {
	r.emit(Event{Kind: EventLeadershipTransferAborted, Peer: r.leadTransferee, Reason: reason})
	r.leadTransferee = None
}

// ReportUnreachable tells the leader that sending to id failed; it stops
// pipelining to id and probes instead.
func (r *Raft) ReportUnreachable(id uint64) {
	if pr := r.prs[id]; r.role == Leader && pr != nil && pr.State == StateReplicate {
		pr.becomeProbe()
	}
}

// ReportSnapshot tells the leader that streaming a snapshot to id ended.
// On failure the leader probes again (and sends a new snapshot if still
// needed); on success it waits for id's acknowledgement as in probe state.
func (r *Raft) ReportSnapshot(id uint64, ok bool) {
	pr := r.prs[id]
	if r.role != Leader || pr == nil || pr.State != StateSnapshot {
		return
	}
	if !ok {
		pr.PendingSnapshot = 0
	}
	pr.becomeProbe()
	pr.ProbeSent = ok
}

// Step feeds a message from another node into the core.
func (r *Raft) Step(m Message) error {
	if m.From == None || m.From == r.id {
		return fmt.Errorf("raft: message from invalid node %d", m.From)
	}
	if !m.Type.Valid() {
		return fmt.Errorf("raft: message of unknown type %d", m.Type)
	}
	r.emit(Event{Kind: EventMessageReceived, Peer: m.From, MsgType: m.Type, Index: m.Index, Count: len(m.Entries), Reject: m.Reject})
	if m.Type.termless() {
		r.step(m) // a request handed on to the leader: no term to check
		return nil
	}
	switch {
	case m.Term > r.term:
		if (m.Type == MsgVote || m.Type == MsgPreVote) && r.inLease() && !bytes.Equal(m.Context, contextTransfer) {
			// Thesis §4.2.3: a server that heard from a current leader
			// within the minimum election timeout does not update its term
			// or grant its vote.
			r.emit(Event{Kind: EventVoteRejected, Peer: m.From, MsgType: m.Type, Reason: "leader lease"})
			return nil
		}
		switch {
		case m.Type == MsgPreVote:
			// A pre-vote never changes anyone's term.
		case m.Type == MsgPreVoteResp && !m.Reject:
			// A granted pre-vote carries the term we will campaign for.
		case m.Type == MsgApp || m.Type == MsgHeartbeat || m.Type == MsgSnap:
			// §5.1: a higher term makes us a follower of its sender.
			r.becomeFollower(m.Term, m.From)
		default:
			r.adoptTerm(m.Term, m.From)
		}
	case m.Term < r.term:
		r.stepStale(m)
		return nil
	}

	switch m.Type {
	case MsgVote, MsgPreVote:
		r.handleVoteRequest(m)
	case MsgPropResp:
		r.handlePropResp(m)
	default:
		r.step(m)
	}
	return nil
}

// stepStale answers a message from an older term: §5.1 "if a server
// receives a request with a stale term number, it rejects the request".
func (r *Raft) stepStale(m Message) {
	switch m.Type {
	case MsgApp, MsgHeartbeat:
		// Figure 2: the reply carries our term, so the stale leader steps
		// down. With CheckQuorum or PreVote a partitioned node's higher
		// term never reaches it any other way; nor, after configuration
		// changes (thesis §4), does the term of a member that campaigns
		// among the voters of an older configuration than the leader's.
		r.send(Message{Type: MsgAppResp, To: m.From})
	case MsgPreVote:
		r.send(Message{Type: MsgPreVoteResp, To: m.From, Reject: true})
	case MsgPropResp:
		r.handlePropResp(m)
	}
}

// inLease reports whether this node heard from a leader within the minimum
// election timeout (thesis §4.2.3), and so ignores vote requests.
//
// With LeaseRead a node also counts as in lease for the first election
// timeout after it starts: it may have acknowledged a leader's heartbeat
// just before it stopped, and the leader's lease (thesis §6.4.1) relies on
// that promise surviving a restart.
func (r *Raft) inLease() bool {
	if !r.cfg.CheckQuorum {
		return false
	}
	if r.lead != None && r.electionElapsed < r.cfg.ElectionTick {
		return true
	}
	return r.cfg.LeaseRead && r.ticks < uint64(r.cfg.ElectionTick)
}

// handleVoteRequest answers RequestVote and PreVote (§5.2, §5.4.1).
func (r *Raft) handleVoteRequest(m Message) {
	canVote := r.vote == m.From ||
		(r.vote == None && r.lead == None) || // §5.2: at most one vote per term, first come first served
		(m.Type == MsgPreVote && m.Term > r.term)
	upToDate := r.log.isUpToDate(m.Index, m.LogTerm) || bugs.SkipElectionRestriction
	respType := MsgVoteResp
	if m.Type == MsgPreVote {
		respType = MsgPreVoteResp
	}
	if canVote && upToDate {
		r.emit(Event{Kind: EventVoteGranted, Peer: m.From, MsgType: m.Type})
		// A granted pre-vote answers in the requested term so the
		// pre-candidate counts it; a vote answers in our (equal) term.
		r.send(Message{Type: respType, To: m.From, Term: m.Term})
		if m.Type == MsgVote {
			r.electionElapsed = 0
			r.vote = m.From // §5.1: persisted before the reply leaves
		}
		return
	}
	reason := "already voted"
	if !upToDate {
		reason = "candidate log not up to date (§5.4.1)"
	}
	r.emit(Event{Kind: EventVoteRejected, Peer: m.From, MsgType: m.Type, Reason: reason})
	r.send(Message{Type: respType, To: m.From, Reject: true})
}

// send queues m for the next Ready. Messages from a leader whose term and
// vote are durable go out at once (thesis §10.2.1), as do a follower's
// requests to the leader (MsgProp, MsgReadIndex), which speak of no state
// of ours; every other message waits until the state it speaks of is
// durable (§5.1). A leader whose
// term is not durable yet is one that won at once (a single voter polls
// only itself): were its messages to leave now and it crash, it would
// restart in the old term, win the same term again and write other
// entries at the same indexes, which a learner that kept the first ones
// would never repair (Log Matching).
func (r *Raft) send(m Message) {
	m.From = r.id
	if m.Term == 0 && !m.Type.termless() {
		m.Term = r.term
	}
	r.emit(Event{Kind: EventMessageSent, Peer: m.To, MsgType: m.Type, Index: m.Index, Count: len(m.Entries), Reject: m.Reject})
	early := (r.role == Leader && (r.stableTerm == r.term || bugs.LeadBeforePersist)) ||
		m.Type == MsgProp || m.Type == MsgReadIndex || // they speak of no state of ours
		(bugs.VoteBeforePersist && (m.Type == MsgVoteResp || m.Type == MsgPreVoteResp))
	if early {
		r.msgs = append(r.msgs, m)
	} else {
		r.msgsAfterPersist = append(r.msgsAfterPersist, m)
	}
}

func (r *Raft) emit(e Event) {
	e.Node = r.id
	if e.Term == 0 {
		e.Term = r.term
	}
	e.Role = r.role
	r.events = append(r.events, e)
}

// hardState is the persistent state of Figure 2 (plus the commit index).
func (r *Raft) hardState() HardState {
	return HardState{Term: r.term, Vote: r.vote, Commit: r.log.committed}
}
