package observe

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

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

// termMoved returns an error once a node of among reports a term above
// term (a node that does not answer says nothing): the end of a wait
// whose condition belongs to the leader of term.
func termMoved(among []*e2etest.Node, term uint64) func() error {
	return func() error {
		for _, n := range among {
			if st, err := n.Status(); err == nil && st.Term > term {
				return fmt.Errorf("%s is in term %d, above %d: an election intervened", n.Name, st.Term, term)
			}
		}
		return nil
	}
}

// tryUntil calls f until it returns nil, or until abort (if not nil)
// returns an error, or for settleDeadline, and returns the last error.
func tryUntil(f func() error, abort func() error) error {
	deadline := time.Now().Add(settleDeadline)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if abort != nil {
			if aerr := abort(); aerr != nil {
				return fmt.Errorf("%w (%v)", aerr, err)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not after %s: %w", settleDeadline, err)
		}
		time.Sleep(pollEvery)
	}
}

// transferTo makes to the leader of among through POST
// /v1/leader/transfer, tried a bounded number of times, and returns its
// term: for a step that needs a given node to lead after an election
// moved the lead elsewhere.
func transferTo(t *testing.T, to *e2etest.Node, among ...*e2etest.Node) uint64 {
	t.Helper()
	for attempt := 1; ; attempt++ {
		lead, term := e2etest.WaitLeader(t, electionPoll, among...)
		if lead == to {
			return term
		}
		if attempt > stepAttempts {
			t.Fatalf("%s does not take the lead: %s leads term %d after %d transfers", to.Name, lead.Name, term, stepAttempts)
		}
		body, _ := json.Marshal(map[string]string{"to": to.Name})
		r, err := e2etest.Do(httpClient, http.MethodPost, lead.URL("/v1/leader/transfer"), body, "Content-Type", "application/json")
		if err == nil {
			err = r.Want(http.StatusOK)
		}
		t.Logf("transferring the lead from %s (term %d) to %s: %v", lead.Name, term, to.Name, err)
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

// asUser returns copies of nodes that read the API as user (a bearer
// token got from POST /v1/auth/token): with auth enabled, /v1/status
// needs a login, and the steps read who leads from it.
func asUser(t *testing.T, nodes []*e2etest.Node, user, password string) []*e2etest.Node {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": user, "password": password})
	var tok string
	// A login passes a read barrier: it waits out an election.
	settle.Until(t, "a token for "+user, func() error {
		var errs []error
		for _, n := range nodes {
			r, err := e2etest.Do(httpClient, http.MethodPost, n.URL("/v1/auth/token"), body, "Content-Type", "application/json")
			if err == nil {
				err = r.Want(http.StatusOK)
			}
			var answer struct {
				Token string `json:"token"`
			}
			if err == nil {
				if err = json.Unmarshal(r.Body, &answer); err == nil && answer.Token == "" {
					err = fmt.Errorf("no token in %s", r.Body)
				}
			}
			if err == nil {
				tok = answer.Token
				return nil
			}
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
		}
		return errors.Join(errs...)
	})
	cl := &http.Client{Timeout: httpClient.Timeout, Transport: bearer{tok}}
	t.Cleanup(cl.CloseIdleConnections)
	var out []*e2etest.Node
	for _, n := range nodes {
		cp := *n
		cp.HTTP = cl
		out = append(out, &cp)
	}
	return out
}

// bearer sends every request with its token.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}
