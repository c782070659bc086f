package observe

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/raftex/raftex/internal/e2etest"
)

// An election can happen at any moment: on a loaded CI machine a process
// that stalls for longer than the election timeout (150–300 ms) loses the
// lead. The tests therefore read who leads when they evaluate a condition
// rather than comparing with a leader or a term captured earlier, and a
// step that needs one leader throughout (a write through the page, a
// pending change on the leader's card) is tried again, a bounded number
// of times, when the evidence shows that an election intervened: the
// nodes agree on a leader in a higher term than the one the step began
// in. A step that fails without the term moving fails the test.

// electionPoll waits for the nodes to agree on a leader.
var electionPoll = e2etest.Poll{Within: electionDeadline, Every: pollEvery}

// stepAttempts bounds how often a step is tried when elections keep
// intervening.
const stepAttempts = 3

// retryOnElection runs step under the leader the nodes among() agree on
// and its term. A step that fails returns its error: if the nodes then
// agree on a leader in a higher term, an election intervened and the
// step runs again from its start (under the new leader), at most
// stepAttempts times in all; otherwise the test fails with the error.
func retryOnElection(t *testing.T, what string, among func() []*e2etest.Node, step func(lead *e2etest.Node, term uint64) error) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		lead, term := e2etest.WaitLeader(t, electionPoll, among()...)
		err := step(lead, term)
		if err == nil {
			return
		}
		now, nowTerm := e2etest.WaitLeader(t, electionPoll, among()...)
		if nowTerm == term {
			t.Fatalf("%s (%s leading term %d throughout): %v", what, lead.Name, term, err)
		}
		if attempt == stepAttempts {
			t.Fatalf("%s: an election intervened in each of %d attempts (last: %s in term %d, now %s in term %d): %v",
				what, stepAttempts, lead.Name, term, now.Name, nowTerm, err)
		}
		t.Logf("%s: an election intervened (%s in term %d, now %s in term %d); trying again: %v",
			what, lead.Name, term, now.Name, nowTerm, err)
	}
}

// errUnavailable marks a 503: no leader, or no quorum, answered in time.
var errUnavailable = errors.New("503")

// put writes value at key (escaped) through nd. A 503 (an election under
// way) is tried again if the nodes then agree on a leader in a higher
// term than before the write, a bounded number of times; any other
// failure fails the test. It returns the write's revision.
func put(t *testing.T, c *e2etest.Cluster, nd *e2etest.Node, key, value string) uint64 {
	t.Helper()
	var rev uint64
	retryOnElection(t, "PUT "+key+" through "+nd.Name, func() []*e2etest.Node { return c.Running() }, func(*e2etest.Node, uint64) error {
		r, err := e2etest.Do(nd.HTTP, http.MethodPut, nd.URL("/v1/kv/"+key), []byte(value))
		if err != nil {
			t.Fatalf("PUT %s on %s: %v", key, nd.Name, err)
		}
		if r.Code == http.StatusServiceUnavailable {
			return fmt.Errorf("%w: %s", errUnavailable, r.Body)
		}
		if err := r.Want(http.StatusOK); err != nil {
			t.Fatalf("PUT %s on %s: %v", key, nd.Name, err)
		}
		if rev = r.Revision(t); rev == 0 {
			t.Fatalf("PUT %s on %s: revision 0: %s", key, nd.Name, r.Body)
		}
		return nil
	})
	return rev
}
