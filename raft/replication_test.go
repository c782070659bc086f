package raft

import (
	"fmt"
	"strings"
	"testing"
)

// Log replication (§5.3, Figure 2 "AppendEntries RPC"): the follower's
// receiver rules, then the leader's side — the conflict hint, pipelining,
// flow control and the probe / replicate / snapshot states.

func app(from, to, term, prevIndex, prevTerm, commit uint64, terms ...uint64) Message {
	m := Message{Type: MsgApp, From: from, To: to, Term: term, Index: prevIndex, LogTerm: prevTerm, Commit: commit}
	for i, t := range terms {
		idx := prevIndex + 1 + uint64(i)
		m.Entries = append(m.Entries, Entry{Index: idx, Term: t, Data: fmt.Appendf(nil, "%d/%d", idx, t)})
	}
	return m
}

func appResp(from, to, term, index uint64) Message {
	return Message{Type: MsgAppResp, From: from, To: to, Term: term, Index: index}
}

// Figure 2, receiver rule 2: reply false if the log has no entry at
// prevLogIndex; the hint says where the log ends.
func TestAppend_5_3_ConsistencyCheckRejectsMissingEntry(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}, 1, 1))
	n.step(app(1, 2, 1, 3, 1, 0, 1))
	expectMsgs(t, n.sent(), "AppendEntriesReply 2→1 term=1 index=3 reject hint=3/0")
	expectEq(t, "log", logTermsOf(n.Raft), "1 1")
}

// Figure 2, receiver rule 2: reply false if the entry at prevLogIndex has
// another term; the hint is that term and the first index of it.
func TestAppend_5_3_ConsistencyCheckRejectsTermMismatch(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 3}, 1, 1, 2, 2, 2))
	n.step(app(1, 2, 3, 4, 3, 0, 3))
	expectMsgs(t, n.sent(), "AppendEntriesReply 2→1 term=3 index=4 reject hint=3/2")
	expectEq(t, "log", logTermsOf(n.Raft), "1 1 2 2 2")
}

// Figure 2, receiver rule 3: an existing entry that conflicts with a new
// one (same index, other term) is deleted with all that follow it.
func TestAppend_5_3_ConflictingSuffixIsTruncated(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 3}, 1, 1, 2, 2))
	n.step(app(1, 2, 3, 2, 1, 0, 3))
	rd := n.ready()
	expectEq(t, "log", logTermsOf(n.Raft), "1 1 3")
	expectEq(t, "entries to persist", len(rd.Entries), 1)
	expectEq(t, "first entry to persist", rd.Entries[0].Index, 3)
	expectMsgs(t, renderMsgs(rd.MessagesAfterPersist), "AppendEntriesReply 2→1 term=3 index=3")
	expectEq(t, "stored log", storedTerms(n.st), "1 1 3")
}

// Figure 2, receiver rules 3 and 4: entries already in the log are not
// appended again, and a delayed, duplicated or reordered AppendEntries
// whose entries all match never truncates what follows them.
func TestAppend_5_3_IdempotentAppendNeverTruncatesMatchingEntries(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}, 1, 1, 1, 1))
	n.step(app(1, 2, 1, 1, 1, 0, 1)) // entry 2 again, from an old message
	rd := n.ready()
	expectEq(t, "log", logTermsOf(n.Raft), "1 1 1 1")
	expectEq(t, "entries to persist", len(rd.Entries), 0)
	// It acknowledges only what the message proved: entries up to 2.
	expectMsgs(t, renderMsgs(rd.MessagesAfterPersist), "AppendEntriesReply 2→1 term=1 index=2")

	n.step(app(1, 2, 1, 0, 0, 0, 1, 1, 1, 1, 1)) // overlaps, then one new
	rd = n.ready()
	expectEq(t, "log", logTermsOf(n.Raft), "1 1 1 1 1")
	expectEq(t, "entries to persist", len(rd.Entries), 1)
}

// Figure 2, receiver rule 5: commitIndex = min(leaderCommit, index of the
// last new entry).
func TestAppend_5_3_FollowerCommitIsMinOfLeaderCommitAndLastNewEntry(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}, 1, 1, 1, 1))
	n.step(app(1, 2, 1, 1, 1, 9, 1)) // the leader has committed 9
	expectEq(t, "commit", n.log.committed, 2)
	n.step(app(1, 2, 1, 3, 1, 3))
	expectEq(t, "commit", n.log.committed, 3)
}

// An AppendEntries older than the follower's commit index is answered
// with the commit index: everything up to it matches any current leader.
func TestAppend_5_3_StaleAppendBelowCommitIsAnsweredWithCommit(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1, Commit: 3}, 1, 1, 1, 1))
	n.step(app(1, 2, 1, 1, 1, 1, 1))
	expectMsgs(t, n.sent(), "AppendEntriesReply 2→1 term=1 index=3")
	expectEq(t, "log", logTermsOf(n.Raft), "1 1 1 1")
}

// §5.1: the follower acknowledges entries only after persisting them: the
// reply is in MessagesAfterPersist of the Ready that carries the entries.
func TestAppend_5_1_FollowerAcknowledgesOnlyAfterPersisting(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}))
	n.step(app(1, 2, 1, 0, 0, 0, 1, 1))
	rd := n.Ready()
	expectEq(t, "entries", len(rd.Entries), 2)
	expectMsgs(t, renderMsgs(rd.Messages))
	expectMsgs(t, renderMsgs(rd.MessagesAfterPersist), "AppendEntriesReply 2→1 term=1 index=2")
}

// The conflict hint (term and first index of that term) lets the leader
// skip a whole term per round trip: a follower whose last 40 entries
// diverge, all in one term, is found in one rejection, not forty.
func TestAppend_5_3_ConflictHintFindsLaggingFollowerInOTermsRoundTrips(t *testing.T) {
	rep := func(t uint64, n int) []uint64 {
		out := make([]uint64, n)
		for i := range out {
			out[i] = t
		}
		return out
	}
	leaderLog := append(append([]uint64{1}, rep(2, 10)...), rep(4, 30)...) // 41 entries
	followerLog := append(append([]uint64{1}, rep(2, 10)...), rep(3, 40)...)
	logs := map[uint64][]uint64{1: leaderLog, 2: leaderLog, 3: followerLog}
	c := newClusterWithStores(t, voters3, func(id uint64) *MemoryStorage {
		return storeWith(voters3, HardState{Term: 4}, logs[id]...)
	}, noPreVote)
	var trace []string
	c.trace = &trace
	c.campaign(1)

	var rejects []string
	for _, m := range trace {
		if strings.HasPrefix(m, "AppendEntriesReply 3→1") && strings.Contains(m, "reject") {
			rejects = append(rejects, m)
		}
	}
	// The follower's entry at 41 has term 3, which starts at 12; the
	// leader has no entry of term 3, so it retries after 11, which matches.
	expectEq(t, "rejections", strings.Join(rejects, "\n"),
		"AppendEntriesReply 3→1 term=5 index=41 reject hint=12/3")
	expectEq(t, "follower's log", c.logTerms(3), c.logTerms(1))
}

// storedTerms renders the terms in a MemoryStorage.
func storedTerms(st *MemoryStorage) string {
	first, _ := st.FirstIndex()
	last, _ := st.LastIndex()
	var b strings.Builder
	for i := first; i <= last; i++ {
		t, _ := st.Term(i)
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, t)
	}
	return b.String()
}

// leaderWithFollowers makes node 1 leader of term 1 over a fresh log, with
// followers 2 and 3 acknowledging its no-op: both in StateReplicate.
func leaderWithFollowers(t *testing.T, opts ...func(*Config)) *testNode {
	t.Helper()
	n := newTestNode(t, 1, storeWith(voters3, HardState{}), opts...)
	n.becomeLeaderAt(1)
	n.step(appResp(2, 1, 1, 1), appResp(3, 1, 1, 1))
	n.ready()
	expectEq(t, "progress of 2", n.prs[2].State, StateReplicate)
	return n
}

// Pipelining: in StateReplicate the leader sends each new batch at once,
// without waiting for the previous one to be acknowledged, and advances
// nextIndex optimistically.
func TestAppend_5_3_PipeliningAdvancesNextIndexOptimistically(t *testing.T) {
	n := leaderWithFollowers(t)
	for i := range 3 {
		if _, _, err := n.Propose([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		rd := n.ready()
		expectEq(t, "AppendEntries in this Ready", len(rd.Messages), 2)
	}
	expectEq(t, "match of 2", n.prs[2].Match, 1)
	expectEq(t, "next of 2", n.prs[2].Next, 5)
	expectEq(t, "in flight to 2", n.prs[2].inflights.count, 3)
}

// Flow control: at most MaxInflightMsgs unacknowledged AppendEntries per
// follower; an acknowledgement frees room for the next.
func TestAppend_5_3_FlowControlCapsInflightMessages(t *testing.T) {
	n := leaderWithFollowers(t, func(c *Config) { c.MaxInflightMsgs = 2 })
	var sent []int
	for i := range 4 {
		if _, _, err := n.Propose([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, len(n.ready().Messages))
	}
	expectEq(t, "AppendEntries per proposal", fmt.Sprint(sent), "[2 2 0 0]")
	expectEq(t, "paused", n.prs[2].isPaused(), true)
	n.step(appResp(2, 1, 1, 2)) // frees the first slot; 3 stays full
	expectMsgs(t, n.sent(), "AppendEntries 1→2 term=1 prev=3/1 entries=2 commit=2")
}

// Flow control: an AppendEntries carries at most MaxSizePerMsg bytes of
// entries (but always at least one entry).
func TestAppend_5_3_FlowControlCapsMessageSize(t *testing.T) {
	n := leaderWithFollowers(t, func(c *Config) { c.MaxSizePerMsg = 2 * (entryOverhead + 10) })
	for range 5 {
		if _, _, err := n.Propose(make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
	}
	rd := n.ready()
	var sizes []int
	for _, m := range rd.Messages {
		if m.To == 2 {
			sizes = append(sizes, len(m.Entries))
		}
	}
	expectEq(t, "entries per message to 2", fmt.Sprint(sizes), "[2 2 1]")
}

// Batching: every proposal made between two Readies travels in one
// AppendEntries per follower.
func TestAppend_5_3_ManyEntriesPerMessage(t *testing.T) {
	n := leaderWithFollowers(t)
	for i := range 100 {
		if _, _, err := n.Propose([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	expectMsgs(t, n.sent(),
		"AppendEntries 1→2 term=1 prev=1/1 entries=100 commit=1",
		"AppendEntries 1→3 term=1 prev=1/1 entries=100 commit=1")
}

// Probe state: until it learns where a follower's log matches, the leader
// sends one AppendEntries and waits; the answer moves the follower to
// StateReplicate.
func TestAppend_5_3_ProbeStateSendsOneAtATime(t *testing.T) {
	n := newTestNode(t, 1, storeWith(voters3, HardState{}))
	n.becomeLeaderAt(1) // the no-op went out as the probe
	expectEq(t, "state of 2", n.prs[2].State, StateProbe)
	n.Propose([]byte("a"))
	n.Propose([]byte("b"))
	expectMsgs(t, n.sent())
	n.step(appResp(2, 1, 1, 1))
	expectEq(t, "state of 2", n.prs[2].State, StateReplicate)
	// Its answer also commits the no-op (1 and 2 hold it).
	expectMsgs(t, n.sent(), "AppendEntries 1→2 term=1 prev=1/1 entries=2 commit=1")
}

// A rejection in StateReplicate means the pipeline broke (a lost or
// reordered message): the leader probes from Match+1.
func TestAppend_5_3_RejectionInReplicateFallsBackToProbe(t *testing.T) {
	n := leaderWithFollowers(t)
	n.Propose([]byte("a"))
	n.Propose([]byte("b"))
	n.ready()
	n.Propose([]byte("c"))
	n.ready()
	n.step(Message{Type: MsgAppResp, From: 2, To: 1, Term: 1, Index: 3, Reject: true, RejectHint: 2})
	expectEq(t, "state of 2", n.prs[2].State, StateProbe)
	expectMsgs(t, n.sent(), "AppendEntries 1→2 term=1 prev=1/1 entries=3 commit=1")
}

// A stale rejection (for an index the follower has since acknowledged)
// changes nothing.
func TestAppend_5_3_StaleRejectionIsIgnored(t *testing.T) {
	n := leaderWithFollowers(t)
	n.Propose([]byte("a"))
	n.ready()
	n.step(appResp(2, 1, 1, 2))
	n.step(Message{Type: MsgAppResp, From: 2, To: 1, Term: 1, Index: 1, Reject: true, RejectHint: 1})
	expectEq(t, "state of 2", n.prs[2].State, StateReplicate)
	expectEq(t, "match of 2", n.prs[2].Match, 2)
}

// Found by the property test (TestRegress_LostFullPipelineStallsFollower):
// when every AppendEntries of a full pipeline is lost, a heartbeat reply
// lets one more out; the follower rejects it and the leader probes.
func TestAppend_5_3_LostFullPipelineRecoversOnHeartbeat(t *testing.T) {
	n := leaderWithFollowers(t, func(c *Config) { c.MaxInflightMsgs = 1 })
	n.Propose([]byte("a"))
	n.ready() // entry 2 to 2 and 3: lost
	n.Propose([]byte("b"))
	expectMsgs(t, n.sent()) // pipelines full
	n.step(Message{Type: MsgHeartbeatResp, From: 2, To: 1, Term: 1})
	expectMsgs(t, n.sent(), "AppendEntries 1→2 term=1 prev=2/1 entries=1 commit=1")
	n.step(Message{Type: MsgAppResp, From: 2, To: 1, Term: 1, Index: 2, Reject: true, RejectHint: 2})
	expectMsgs(t, n.sent(), "AppendEntries 1→2 term=1 prev=1/1 entries=2 commit=1")
}

// ReportUnreachable: the transport could not deliver, so the leader stops
// pipelining to that follower and probes.
func TestAppend_5_3_ReportUnreachableMovesToProbe(t *testing.T) {
	n := leaderWithFollowers(t)
	n.ReportUnreachable(2)
	expectEq(t, "state of 2", n.prs[2].State, StateProbe)
	expectEq(t, "next of 2", n.prs[2].Next, 2)
}

// After ReportUnreachable the next AppendEntries is a probe; its answer
// resumes pipelining.
func TestAppend_5_3_ProbeAnswerResumesReplication(t *testing.T) {
	n := leaderWithFollowers(t)
	n.ReportUnreachable(2)
	n.Propose([]byte("a"))
	n.Propose([]byte("b"))
	expectMsgs(t, n.sent(),
		"AppendEntries 1→2 term=1 prev=1/1 entries=2 commit=1",
		"AppendEntries 1→3 term=1 prev=1/1 entries=2 commit=1")
	expectEq(t, "paused while probing", n.prs[2].isPaused(), true)
	n.step(appResp(2, 1, 1, 3))
	expectEq(t, "state of 2", n.prs[2].State, StateReplicate)
}

// §5.3 with the write in flight: a follower is still persisting entries
// 2..4 of term 1 when a new leader's AppendEntries replaces 3 and 4. The
// late Advance of the old write must not mark the replacement durable,
// and the next Ready rewrites from 3.
func TestAppend_5_3_TruncatingEntriesWhoseWriteIsInFlight(t *testing.T) {
	n := newTestNode(t, 2, storeWith(voters3, HardState{Term: 1}, 1))
	n.step(app(1, 2, 1, 1, 1, 0, 1, 1, 1))
	rd1 := n.Ready() // writing 2, 3, 4 of term 1
	n.step(app(3, 2, 2, 2, 1, 0, 2))
	expectEq(t, "log", logTermsOf(n.Raft), "1 1 2")
	must(t, n.st.Append(rd1.Entries))
	n.Advance(rd1)
	rd2 := n.ready()
	expectEq(t, "entries rewritten", fmt.Sprint(len(rd2.Entries), rd2.Entries[0].Index, rd2.Entries[0].Term), "1 3 2")
	expectMsgs(t, renderMsgs(rd2.MessagesAfterPersist), "AppendEntriesReply 2→3 term=2 index=3")
	expectEq(t, "stored log", storedTerms(n.st), "1 1 2")
	expectEq(t, "nothing left to write", len(n.log.unstable.entries), 0)
}

// Thesis §10.2.1 with a deposed leader: its own write of entries 2 and 3
// is in flight when a new leader replaces entry 2; the replacement, not
// the old write, is what the next Ready persists.
func TestAppend_10_2_1_DeposedLeaderWriteInFlightIsReplaced(t *testing.T) {
	n := leaderWithFollowers(t)
	n.Propose([]byte("a"))
	n.Propose([]byte("b"))
	rd1 := n.Ready() // the leader writes 2 and 3 of term 1
	n.step(app(2, 1, 2, 1, 1, 0, 2))
	expectEq(t, "role", n.role, Follower)
	must(t, n.st.Append(rd1.Entries))
	n.Advance(rd1)
	rd2 := n.ready()
	expectEq(t, "entries rewritten", fmt.Sprint(len(rd2.Entries), rd2.Entries[0].Index, rd2.Entries[0].Term), "1 2 2")
	expectEq(t, "stored log", storedTerms(n.st), "1 2")
}

// Messages from nodes that are not members are ignored by the leader.
func TestAppend_5_3_LeaderIgnoresNonMembers(t *testing.T) {
	n := leaderWithFollowers(t)
	n.step(appResp(9, 1, 1, 1))
	expectMsgs(t, n.sent())
}
