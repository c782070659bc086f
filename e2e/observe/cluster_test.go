// Package observe tests what issue 6 promises to show, end to end: the
// real raftex binary runs as three `raftex serve` processes on loopback,
// and the tests read them as an operator would, through /metrics and
// through the dashboard in a headless browser.
//
// The package holds test files only. TestMain builds the binary once;
// every test starts its own cluster in its own temporary directory and
// kills it in t.Cleanup.
package observe

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// raftexBin is the binary TestMain built.
var raftexBin string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "raftex-observe-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "observe:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	raftexBin = filepath.Join(dir, "raftex")
	// go test puts its own GOROOT/bin first on PATH, so "go" is the
	// toolchain running these tests.
	build := exec.Command("go", "build", "-o", raftexBin, "github.com/raftex/raftex/cmd/raftex")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "observe: building raftex: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// Deadlines are generous: CI machines are small and shared. Polls that
// wait on them stop as soon as the condition holds.
const (
	electionDeadline = 60 * time.Second
	settleDeadline   = 30 * time.Second
	pollEvery        = 100 * time.Millisecond
)

// proc is one `raftex serve` process.
type proc struct {
	id         string // "n1"
	peerAddr   string
	clientAddr string
	dataDir    string
	logPath    string
	args       []string
	cmd        *exec.Cmd
	exited     chan struct{} // closed once cmd.Wait returned
}

// url returns the node's HTTP origin followed by path.
func (p *proc) url(path string) string { return "http://" + p.clientAddr + path }

// cluster is a local cluster of raftex processes.
type cluster struct {
	t     *testing.T
	nodes []*proc
	http  *http.Client
}

// startCluster starts n nodes on free loopback ports, each with its own
// data directory under a fresh temporary directory, and kills them all
// when the test ends (showing their logs if it failed).
func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	dir := t.TempDir() // registered first, so removed after the kills below
	ports := freePorts(t, 2*n)
	c := &cluster{t: t, http: &http.Client{Timeout: 10 * time.Second}}
	var initial []string
	for i := range n {
		p := &proc{
			id:         fmt.Sprintf("n%d", i+1),
			peerAddr:   ports[2*i],
			clientAddr: ports[2*i+1],
		}
		p.dataDir = filepath.Join(dir, p.id)
		p.logPath = filepath.Join(dir, p.id+".log")
		initial = append(initial, p.id+"="+p.peerAddr)
		c.nodes = append(c.nodes, p)
	}
	for _, p := range c.nodes {
		p.args = []string{"serve", "--id", p.id, "--data-dir", p.dataDir,
			"--peer-addr", p.peerAddr, "--client-addr", p.clientAddr,
			"--initial-cluster", strings.Join(initial, ",")}
	}
	t.Cleanup(c.stop)
	for _, p := range c.nodes {
		c.start(p)
	}
	return c
}

// freePorts returns n distinct loopback addresses that were free a moment
// ago: all are held open together, then closed for the nodes to take.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// start runs p's process, appending its output to p.logPath. It also
// restarts a killed node, with the same data directory and addresses.
func (c *cluster) start(p *proc) {
	c.t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer logf.Close() // the child holds its own copy
	cmd := exec.Command(raftexBin, p.args...)
	cmd.Env = withoutRaftexEnv(os.Environ())
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("starting %s: %v", p.id, err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(p.exited)
}

// kill SIGKILLs p, the way a crash or an OOM kill stops a node, and waits
// until the process is gone.
func (c *cluster) kill(p *proc) {
	c.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		c.t.Logf("killing %s: %v", p.id, err)
	}
	<-p.exited
}

// stop kills every process still running and, if the test failed, shows
// the tail of every node's log (and keeps the logs as artifacts).
func (c *cluster) stop() {
	for _, p := range c.nodes {
		if p.cmd == nil {
			continue
		}
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	if !c.t.Failed() {
		return
	}
	for _, p := range c.nodes {
		b, err := os.ReadFile(p.logPath)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		c.t.Logf("last lines of %s's log:\n%s", p.id, strings.Join(lines, "\n"))
		if dir := artifactDir(c.t); dir != "" {
			name := strings.ReplaceAll(c.t.Name(), "/", "_") + "-" + p.id + ".log"
			os.WriteFile(filepath.Join(dir, name), b, 0o644)
		}
	}
}

// artifactDir is $RAFTEX_ARTIFACTS (created if need be), where CI keeps
// files for people to look at, or "" when it is not set.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("RAFTEX_ARTIFACTS")
	if dir == "" {
		return ""
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("RAFTEX_ARTIFACTS: %v", err)
		return ""
	}
	return dir
}

// withoutRaftexEnv keeps RAFTEX_* variables meant for the tests (or the
// developer's shell) from setting the nodes' flags.
func withoutRaftexEnv(env []string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, "RAFTEX_") {
			out = append(out, e)
		}
	}
	return out
}

// status is the part of GET /v1/status these tests read.
type status struct {
	ID          string `json:"id"`
	Role        string `json:"role"`
	Term        uint64 `json:"term"`
	Leader      string `json:"leader"`
	CommitIndex uint64 `json:"commit_index"`
}

func (c *cluster) status(p *proc) (status, error) {
	var st status
	resp, err := c.http.Get(p.url("/v1/status"))
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return st, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// waitLeader waits until every node of live reports the same leader, one
// of live, in the same term, and that node says it leads. It returns the
// leader and its term.
func (c *cluster) waitLeader(live []*proc) (*proc, uint64) {
	c.t.Helper()
	var lead *proc
	var term uint64
	waitFor(c.t, electionDeadline, "one leader that every live node knows", func() (bool, string) {
		var seen []string
		var leaders = map[string]bool{}
		var terms = map[uint64]bool{}
		for _, p := range live {
			st, err := c.status(p)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", p.id, err)
			}
			seen = append(seen, fmt.Sprintf("%s: %s term %d leader %q", p.id, st.Role, st.Term, st.Leader))
			leaders[st.Leader] = true
			terms[st.Term] = true
			if st.Role == "leader" {
				lead, term = p, st.Term
			}
		}
		ok := len(leaders) == 1 && len(terms) == 1 && lead != nil && leaders[lead.id]
		return ok, strings.Join(seen, "; ")
	})
	return lead, term
}

// put writes key=value through p over HTTP and returns the revision (the
// log index of the write).
func (c *cluster) put(p *proc, key, value string) uint64 {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPut, p.url("/v1/kv/"+url.PathEscape(key)), strings.NewReader(value))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("put %q through %s: %v", key, p.id, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("put %q through %s: %s %s", key, p.id, resp.Status, b)
	}
	var body struct{ Revision uint64 }
	if err := json.Unmarshal(b, &body); err != nil || body.Revision == 0 {
		c.t.Fatalf("put %q through %s: body %s: %v", key, p.id, b, err)
	}
	return body.Revision
}

// get reads key through p over HTTP (linearizably) and returns its value
// and revision.
func (c *cluster) get(p *proc, key string) (string, string) {
	c.t.Helper()
	resp, err := c.http.Get(p.url("/v1/kv/" + url.PathEscape(key)))
	if err != nil {
		c.t.Fatalf("get %q through %s: %v", key, p.id, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("get %q through %s: %s %s", key, p.id, resp.Status, b)
	}
	return string(b), resp.Header.Get("Raftex-Revision")
}

// others returns the nodes of c other than p.
func (c *cluster) others(p *proc) []*proc {
	var out []*proc
	for _, q := range c.nodes {
		if q != p {
			out = append(out, q)
		}
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes, then fails
// the test with what cond last said about the state it saw.
func waitFor(t *testing.T, deadline time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waited %s for %s; last saw: %s", deadline, what, state)
		case <-tick.C:
		}
	}
}
