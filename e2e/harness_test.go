package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftex/raftex/client"
	"github.com/raftex/raftex/internal/e2etest"
	"github.com/raftex/raftex/internal/kvload"
)

// startDeadline bounds a start, a stop, an election; soon polls with it.
const startDeadline = 30 * time.Second

var soon = e2etest.Poll{Within: startDeadline, Every: 25 * time.Millisecond}

// httpClient is every test's HTTP client; TestMain closes its idle
// connections before looking for leaked goroutines.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// ports: 20000-32000, a range of this package's own (e2e/docker takes
// 10000-20000, e2e/observe 32000-32768).
var ports = e2etest.NewPorts(20000, 32000)

// newCluster starts n `raftex serve` processes with flags and waits until
// they agree on a leader.
func newCluster(t *testing.T, n int, flags ...string) *e2etest.Cluster {
	t.Helper()
	return e2etest.NewCluster(t, clusterConfig(n, flags...))
}

func clusterConfig(n int, flags ...string) e2etest.ClusterConfig {
	return e2etest.ClusterConfig{Nodes: n, Flags: flags, Ports: ports, Poll: soon, HTTP: httpClient}
}

// ---- HTTP

// request sends method to url (used as it is: not cleaned, not
// re-escaped) with body and header pairs.
func request(method, url string, body []byte, header ...string) (e2etest.Response, error) {
	return e2etest.Do(httpClient, method, url, body, header...)
}

func get(url string) (e2etest.Response, error) { return request(http.MethodGet, url, nil) }

// must is request that fails the test on a transport error.
func must(t testing.TB, method, url string, body []byte, header ...string) e2etest.Response {
	t.Helper()
	r, err := request(method, url, body, header...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// headerRevision parses the Raftex-Revision header.
func headerRevision(t testing.TB, r e2etest.Response) uint64 {
	t.Helper()
	rev, err := strconv.ParseUint(r.Header.Get("Raftex-Revision"), 10, 64)
	if err != nil {
		t.Fatalf("Raftex-Revision %q: %v", r.Header.Get("Raftex-Revision"), err)
	}
	return rev
}

// rawStatus sends requestLine (with a Host header, no body) on a new
// connection to nd, for requests Go's client refuses to send, and returns
// the status code.
func rawStatus(t testing.TB, nd *e2etest.Node, requestLine string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", nd.ClientAddr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "%s\r\nHost: %s\r\nConnection: close\r\n\r\n", requestLine, nd.ClientAddr)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s: %v", requestLine, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// ---- the CLI

// runCLI runs raftex with args to its end (the environment: ours less any
// RAFTEX_* variable, plus env) and returns what it printed and its exit
// code.
func runCLI(t testing.TB, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e2etest.Bin(), args...)
	cmd.Env = e2etest.Env(env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil:
		code = exit.ExitCode()
	default:
		t.Fatalf("raftex %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String(), errOut.String(), code
}

// runRaftex is runCLI with stdout and stderr together.
func runRaftex(t testing.TB, env []string, args ...string) (string, int) {
	t.Helper()
	stdout, stderr, code := runCLI(t, env, args...)
	return stdout + stderr, code
}

func listen(address string) (net.Listener, error) { return net.Listen("tcp", address) }

// ---- the client load

// startLoad starts internal/kvload's client load on endpoints: puts, CASes,
// transactions, deletes and linearizable gets through any member while the
// cluster changes, checked with porcupine.
func startLoad(t *testing.T, endpoints []string) *kvload.Load {
	t.Helper()
	return kvload.Start(t, endpoints, kvload.Options{
		Client:    client.Options{AttemptTimeout: 6 * time.Second, MaxBackoff: 200 * time.Millisecond},
		Poll:      soon,
		Artifacts: func() string { return e2etest.ArtifactDir(t, t.Name()) },
	})
}

// waitLog waits until p's log holds every string of want. A process
// writes some lines after it starts serving (the "serving" line follows
// the listeners), and a node's story (elections, recovery, becoming
// leader) is written by a goroutine of its own from the node's events:
// neither is in the log yet at the moment the state it tells of shows.
func waitLog(t testing.TB, p *e2etest.Proc, want ...string) {
	t.Helper()
	soon.Until(t, p.Name+"'s log tells what the test waits for", func() error {
		log := p.Log()
		for _, w := range want {
			if !strings.Contains(log, w) {
				return fmt.Errorf("%s's log lacks %q:\n%s", p.Name, w, p.Tail(10))
			}
		}
		return nil
	})
}

// putRetrying503 writes value at key (the path after /v1/kv/, maybe with
// a query) through nd, again while it answers 503, and returns the first
// other answer. A cluster started with a short --request-timeout (to see the
// 503 without a quorum sooner) can also time out a write that has its
// quorum, on a loaded machine or in an election; where the test is not
// about that 503, the write is sent again. In a session (header) the
// retries apply it at most once, and answer as the first.
func putRetrying503(t *testing.T, nd *e2etest.Node, key, value string, header ...string) e2etest.Response {
	t.Helper()
	var r e2etest.Response
	soon.Until(t, "PUT "+key+" through "+nd.Name+" answers", func() error {
		r = must(t, http.MethodPut, nd.URL("/v1/kv/"+key), []byte(value), header...)
		if r.Code == http.StatusServiceUnavailable {
			return fmt.Errorf("503: %s", r.Body)
		}
		return nil
	})
	return r
}

// registerRetrying503 is nd.Register, again while nd answers 503 (as
// putRetrying503 says).
func registerRetrying503(t *testing.T, nd *e2etest.Node) string {
	t.Helper()
	var r e2etest.Response
	soon.Until(t, "a session registered through "+nd.Name, func() error {
		r = must(t, http.MethodPost, nd.URL("/v1/sessions"), nil)
		if r.Code == http.StatusServiceUnavailable {
			return fmt.Errorf("503: %s", r.Body)
		}
		return nil
	})
	var body struct {
		ClientID uint64 `json:"client_id"`
	}
	if err := r.Want(http.StatusOK); err != nil || json.Unmarshal(r.Body, &body) != nil || body.ClientID == 0 {
		t.Fatalf("registering a session through %s: %v %s", nd.Name, err, r.Body)
	}
	return strconv.FormatUint(body.ClientID, 10)
}
