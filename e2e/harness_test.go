package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Deadlines are generous: CI machines are small and shared. Polls that wait
// on them stop as soon as their condition holds, so a healthy run never
// waits them out.
const (
	startDeadline = 30 * time.Second
	pollEvery     = 25 * time.Millisecond
)

// httpClient is every test's HTTP client; TestMain closes its idle
// connections before looking for leaked goroutines.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// ---- ports

// Ports come from below the kernel's ephemeral range (32768 and up on
// Linux), so no outgoing connection of a running node can take a port a
// test picked for a listener a moment later.
var ports = struct {
	sync.Mutex
	next int
}{next: 20000 + rand.IntN(10000)}

// freePorts returns n distinct loopback ports, each free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	return freeRun(t, n, false)
}

// freeRun returns n free ports; consecutive ones if contiguous (for
// `raftex cluster`, which numbers its ports from a base).
func freeRun(t testing.TB, n int, contiguous bool) []int {
	t.Helper()
	ports.Lock()
	defer ports.Unlock()
	for tries := 0; tries < 1000; tries++ {
		var got []int
		var held []net.Listener
		for len(got) < n {
			p := ports.next
			ports.next++
			if ports.next >= 32000 {
				ports.next = 20000
			}
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				if contiguous {
					break
				}
				continue
			}
			held = append(held, ln)
			got = append(got, p)
		}
		for _, ln := range held {
			ln.Close()
		}
		if len(got) == n {
			return got
		}
	}
	t.Fatalf("no %d free ports", n)
	return nil
}

func addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// ---- processes

// proc is one raftex process started by a test.
type proc struct {
	name    string
	args    []string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed once cmd.Wait returned
}

// startProc runs raftex with args in a process group of its own, output
// appended to logPath, environment env plus ours less any RAFTEX_*
// variable. Cleanup kills the whole group (the process and any child it
// started) and shows the log's tail if the test failed.
func startProc(t testing.TB, name, logPath string, env []string, args ...string) *proc {
	t.Helper()
	return startProcIn(t, "", name, logPath, env, args...)
}

// startProcIn is startProc in the working directory dir ("": ours).
func startProcIn(t testing.TB, dir, name, logPath string, env []string, args ...string) *proc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child holds its own copy
	cmd := exec.Command(raftexBin, args...)
	cmd.Env = append(withoutRaftexEnv(os.Environ()), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = dir
	// Pdeathsig: should this test process die without cleaning up, its
	// children die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{name: name, args: args, logPath: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		if t.Failed() {
			t.Logf("last lines of %s's log (%s):\n%s", name, strings.Join(args, " "), tail(logPath, 30))
		}
	})
	return p
}

func withoutRaftexEnv(env []string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, "RAFTEX_") {
			out = append(out, e)
		}
	}
	return out
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *proc) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling %s with %v: %v", p.name, sig, err)
	}
}

// wait waits for the process to exit and returns its exit code (-1 when a
// signal killed it).
func (p *proc) wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("%s still running after %s", p.name, timeout)
		return 0
	}
}

// log returns everything the process wrote so far.
func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// ---- clusters

// node is one member of a test cluster; proc is its current process.
type node struct {
	id         int
	name       string // "n1"
	peerAddr   string
	clientAddr string
	dataDir    string
	proc       *proc
	starts     int
}

// url returns the node's HTTP origin followed by path.
func (n *node) url(path string) string { return "http://" + n.clientAddr + path }

type cluster struct {
	t       *testing.T
	dir     string
	nodes   []*node
	initial string
	// flags given to every `raftex serve` after the node's own.
	flags []string
}

// newCluster starts n `raftex serve` processes with flags and waits until
// they agree on a leader.
func newCluster(t *testing.T, n int, flags ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), flags: flags}
	ports := freePorts(t, 2*n)
	var initial []string
	for i := range n {
		nd := &node{id: i + 1, name: fmt.Sprintf("n%d", i+1), peerAddr: addr(ports[2*i]), clientAddr: addr(ports[2*i+1])}
		nd.dataDir = filepath.Join(c.dir, nd.name)
		initial = append(initial, nd.name+"="+nd.peerAddr)
		c.nodes = append(c.nodes, nd)
	}
	c.initial = strings.Join(initial, ",")
	for _, nd := range c.nodes {
		c.start(nd, true)
	}
	c.leader()
	c.published()
	return c
}

// published waits until every running node lists every node's client
// address, published through the log.
func (c *cluster) published() {
	c.t.Helper()
	eventually(c.t, startDeadline, "every node lists every client address", func() error {
		for _, nd := range c.running() {
			st, err := status(nd)
			if err != nil {
				return err
			}
			if len(st.Members) != len(c.nodes) {
				return fmt.Errorf("%s lists %d members", nd.name, len(st.Members))
			}
			for i, m := range st.Members {
				if m.ClientAddr != c.nodes[i].clientAddr {
					return fmt.Errorf("%s lists %s at %q, want %s", nd.name, m.ID, m.ClientAddr, c.nodes[i].clientAddr)
				}
			}
		}
		return nil
	})
}

// serveArgs are nd's flags, with --initial-cluster if withInitial.
func (c *cluster) serveArgs(nd *node, withInitial bool) []string {
	args := []string{"serve", "--id", nd.name, "--data-dir", nd.dataDir,
		"--peer-addr", nd.peerAddr, "--client-addr", nd.clientAddr}
	if withInitial {
		args = append(args, "--initial-cluster", c.initial)
	}
	return append(args, c.flags...)
}

// start runs nd's process (again) and waits until its HTTP API answers.
func (c *cluster) start(nd *node, withInitial bool, env ...string) {
	c.t.Helper()
	c.startArgs(nd, c.serveArgs(nd, withInitial), env...)
}

func (c *cluster) startArgs(nd *node, args []string, env ...string) {
	c.t.Helper()
	nd.starts++
	nd.proc = startProc(c.t, fmt.Sprintf("%s#%d", nd.name, nd.starts), filepath.Join(c.dir, nd.name+".log"), env, args...)
	eventually(c.t, startDeadline, nd.name+" serves /healthz", func() error {
		if !nd.proc.running() {
			return stop(fmt.Errorf("%s exited: %s\n%s", nd.name, nd.proc.cmd.ProcessState, tail(nd.proc.logPath, 20)))
		}
		r, err := get(nd.url("/healthz"))
		if err != nil {
			return err
		}
		return r.want(http.StatusOK)
	})
}

// running returns the nodes whose process runs.
func (c *cluster) running() []*node {
	var out []*node
	for _, nd := range c.nodes {
		if nd.proc != nil && nd.proc.running() {
			out = append(out, nd)
		}
	}
	return out
}

// kill SIGKILLs nd, as a crash or an OOM kill would, and waits for it.
func (c *cluster) kill(nd *node) {
	c.t.Helper()
	nd.proc.signal(c.t, syscall.SIGKILL)
	nd.proc.wait(c.t, startDeadline)
}

// stop SIGTERMs nd and returns its exit code.
func (c *cluster) stop(nd *node) int {
	c.t.Helper()
	nd.proc.signal(c.t, syscall.SIGTERM)
	return nd.proc.wait(c.t, startDeadline)
}

// leader waits until every running node names the same leader, that
// leader says it leads, and every running node is ready; it returns it.
func (c *cluster) leader() *node {
	c.t.Helper()
	var lead *node
	eventually(c.t, startDeadline, "the running nodes agree on a leader", func() error {
		lead = nil
		name := ""
		for _, nd := range c.running() {
			st, err := status(nd)
			if err != nil {
				return err
			}
			if st.Leader == "" || (name != "" && st.Leader != name) {
				return fmt.Errorf("%s sees leader %q, others %q", nd.name, st.Leader, name)
			}
			name = st.Leader
			if st.Role == "leader" {
				lead = nd
			}
		}
		if lead == nil || lead.name != name {
			return fmt.Errorf("leader %q is not running or does not lead yet", name)
		}
		for _, nd := range c.running() {
			r, err := get(nd.url("/readyz"))
			if err != nil {
				return err
			}
			if err := r.want(http.StatusOK); err != nil {
				return fmt.Errorf("%s: %w", nd.name, err)
			}
		}
		return nil
	})
	return lead
}

// followers returns the running nodes other than lead.
func (c *cluster) followers(lead *node) []*node {
	var out []*node
	for _, nd := range c.running() {
		if nd != lead {
			out = append(out, nd)
		}
	}
	return out
}

// endpoints returns every node's client address.
func (c *cluster) endpoints() []string {
	var out []string
	for _, nd := range c.nodes {
		out = append(out, nd.clientAddr)
	}
	return out
}

// ---- HTTP

type statusBody struct {
	ID           string `json:"id"`
	Role         string `json:"role"`
	Term         uint64 `json:"term"`
	Leader       string `json:"leader"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	LastIndex    uint64 `json:"last_index"`
	Members      []struct {
		ID         string `json:"id"`
		PeerAddr   string `json:"peer_addr"`
		ClientAddr string `json:"client_addr"`
		Voter      bool   `json:"voter"`
	} `json:"members"`
}

func status(nd *node) (statusBody, error) {
	var st statusBody
	r, err := get(nd.url("/v1/status"))
	if err != nil {
		return st, err
	}
	if err := r.want(http.StatusOK); err != nil {
		return st, err
	}
	return st, json.Unmarshal(r.body, &st)
}

// response is an HTTP answer, read whole.
type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) want(code int) error {
	if r.code != code {
		return fmt.Errorf("status %d, want %d: %s", r.code, code, r.body)
	}
	return nil
}

// fields decodes a JSON object body.
func (r response) fields(t testing.TB) map[string]any {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json; body %q", ct, r.body)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// request sends method to url (used as it is: not cleaned, not
// re-escaped) with body and header pairs.
func request(method, url string, body []byte, header ...string) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return response{}, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{code: resp.StatusCode, header: resp.Header, body: b}, err
}

func get(url string) (response, error) { return request(http.MethodGet, url, nil) }

// must is request that fails the test on a transport error.
func must(t testing.TB, method, url string, body []byte, header ...string) response {
	t.Helper()
	r, err := request(method, url, body, header...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// put writes value at key through nd and returns the new revision.
func put(t testing.TB, nd *node, key, value string, header ...string) uint64 {
	t.Helper()
	r := must(t, http.MethodPut, nd.url("/v1/kv/"+key), []byte(value), header...)
	if err := r.want(http.StatusOK); err != nil {
		t.Fatalf("PUT %s on %s: %v", key, nd.name, err)
	}
	return revisionOf(t, r)
}

func revisionOf(t testing.TB, r response) uint64 {
	t.Helper()
	var body struct {
		Revision *uint64 `json:"revision"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || body.Revision == nil {
		t.Fatalf("body %q has no revision (%v)", r.body, err)
	}
	return *body.Revision
}

// headerRevision parses the Raftex-Revision header.
func headerRevision(t testing.TB, r response) uint64 {
	t.Helper()
	rev, err := strconv.ParseUint(r.header.Get("Raftex-Revision"), 10, 64)
	if err != nil {
		t.Fatalf("Raftex-Revision %q: %v", r.header.Get("Raftex-Revision"), err)
	}
	return rev
}

// ---- polling

// errStop ends a poll at once.
type errStop struct{ error }

func stop(err error) error { return errStop{err} }

// eventually polls f until it returns nil, failing the test with f's last
// error after timeout or at once when f returns stop(err).
func eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		var s errStop
		if errors.As(err, &s) {
			t.Fatalf("%s: %v", what, s.error)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(pollEvery)
	}
}

// rawStatus sends requestLine (with a Host header, no body) on a new
// connection to nd, for requests Go's client refuses to send, and returns
// the status code.
func rawStatus(t testing.TB, nd *node, requestLine string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", nd.clientAddr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "%s\r\nHost: %s\r\nConnection: close\r\n\r\n", requestLine, nd.clientAddr)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s: %v", requestLine, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// runCLI runs raftex with args to its end (the environment: ours less any
// RAFTEX_* variable, plus env) and returns what it printed and its exit
// code.
func runCLI(t testing.TB, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, raftexBin, args...)
	cmd.Env = append(withoutRaftexEnv(os.Environ()), env...)
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
