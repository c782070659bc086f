package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Deadlines are generous (CI machines are small and shared); polls stop as
// soon as their condition holds, so a healthy run never waits them out.
const (
	deadline  = 60 * time.Second
	pollEvery = 50 * time.Millisecond
	// requestTimeout is every node's --request-timeout: shorter than the
	// default so that a request to a cut-off node answers 503 soon.
	requestTimeout = 2 * time.Second
	// dockerTimeout bounds one docker command.
	dockerTimeout = 2 * time.Minute
)

// probe is the HTTP client of the test's own probes (status, health,
// single requests): its timeout makes a frozen node's silence an error.
var probe = &http.Client{Timeout: 3 * requestTimeout}

// member is one node of a test cluster: a container.
type member struct {
	name      string // "n1": its id, and its host name on the peer network
	container string // the container's name
	ip        string // its fixed address on the peer network
	endpoint  string // 127.0.0.1:port, its client port published on the host
}

func (m *member) url(path string) string { return "http://" + m.endpoint + path }

// cluster is three containers on a peer and a client network.
type cluster struct {
	t         *testing.T
	prefix    string // of every name: raftex-e2e-<run>-<test>
	image     string
	peerNet   string
	clientNet string
	subnet    string // of the peer network: "172.20.0.0/16"
	nodes     []*member
}

// newCluster starts three raftex containers and waits until they agree on
// a leader and have published their client addresses.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, image: testImage(t), prefix: "raftex-e2e-" + runID + "-" + shortName(t.Name())}
	c.peerNet, c.clientNet = c.prefix+"-peer", c.prefix+"-client"
	t.Cleanup(c.cleanup) // first: it removes whatever was created below
	c.createNetworks()
	ports := freePorts(t, 3)
	var initial []string
	for i := range 3 {
		m := &member{name: fmt.Sprintf("n%d", i+1), container: fmt.Sprintf("%s-n%d", c.prefix, i+1),
			endpoint: fmt.Sprintf("127.0.0.1:%d", ports[i])}
		m.ip = c.hostAddr(10 + i + 1)
		initial = append(initial, m.name+"="+m.name+":7000")
		c.nodes = append(c.nodes, m)
	}
	for _, m := range c.nodes {
		c.docker("create", "--name", m.container, "--label", labelRun+"="+runID, "--label", labelPID+"="+strconv.Itoa(os.Getpid()),
			"--network", c.clientNet, "--publish", m.endpoint+":8000",
			c.image, "serve", "--id", m.name, "--data-dir", "/data",
			"--peer-addr", m.name+":7000", "--client-addr", "0.0.0.0:8000",
			"--initial-cluster", strings.Join(initial, ","), "--request-timeout", requestTimeout.String())
		c.connect(m)
	}
	c.docker(append([]string{"start"}, c.containers(c.nodes...)...)...)
	c.waitHealthy(c.nodes...)
	c.leader(c.nodes...)
	c.published()
	return c
}

// shortName turns a test name into part of a Docker name.
func shortName(name string) string {
	name = strings.ToLower(strings.TrimPrefix(name, "TestDocker"))
	return regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(name, "-")
}

// createNetworks makes the client network (published ports; containers
// cannot talk to each other on it) and the internal peer network. The
// peer network gets a subnet of its own choosing, so that a node cut off
// and reconnected gets its address back (`--ip` needs a configured
// subnet): the address its peer listener is bound to. Docker picks a free
// subnet for a probe network, which is then made again with that subnet
// set; another network taking it meanwhile makes the second try fail, and
// it tries again.
func (c *cluster) createNetworks() {
	c.t.Helper()
	label := []string{"--label", labelRun + "=" + runID, "--label", labelPID + "=" + strconv.Itoa(os.Getpid())}
	c.docker(append(append([]string{"network", "create"}, label...),
		"--opt", "com.docker.network.bridge.enable_icc=false", c.clientNet)...)
	var last error
	for range 5 {
		c.docker(append(append([]string{"network", "create"}, label...), "--internal", c.peerNet)...)
		out := c.docker("network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", c.peerNet)
		c.docker("network", "rm", c.peerNet)
		subnet := strings.Fields(out)
		if len(subnet) == 0 {
			c.t.Fatalf("network %s has no subnet: %q", c.peerNet, out)
		}
		c.subnet = subnet[0]
		_, err := run(dockerTimeout, "docker", append(append([]string{"network", "create"}, label...),
			"--internal", "--subnet", c.subnet, c.peerNet)...)
		if err == nil {
			return
		}
		last = err
	}
	c.t.Fatalf("creating the peer network: %v", last)
}

// hostAddr is the i-th address of the peer subnet.
func (c *cluster) hostAddr(i int) string {
	ip, _, err := net.ParseCIDR(c.subnet)
	if err != nil || ip.To4() == nil {
		c.t.Fatalf("peer subnet %q: want an IPv4 CIDR (%v)", c.subnet, err)
	}
	ip4 := ip.To4()
	return net.IPv4(ip4[0], ip4[1], ip4[2], ip4[3]+byte(i)).String()
}

// cleanup saves the containers' logs if the test failed, then removes the
// containers and the networks.
func (c *cluster) cleanup() {
	if c.t.Failed() {
		c.saveLogs()
	}
	for _, m := range c.nodes {
		run(dockerTimeout, "docker", "unpause", m.container) // rm -f of a paused container may hang
		if _, err := run(dockerTimeout, "docker", "rm", "-f", "-v", m.container); err != nil && !strings.Contains(err.Error(), "No such container") {
			c.t.Errorf("removing %s: %v", m.container, err)
		}
	}
	for _, n := range []string{c.peerNet, c.clientNet} {
		if _, err := run(dockerTimeout, "docker", "network", "rm", n); err != nil && !strings.Contains(err.Error(), "not found") {
			c.t.Errorf("removing network %s: %v", n, err)
		}
	}
}

// saveLogs writes each container's log to $RAFTEX_ARTIFACTS/docker/<test>/
// and its tail to the test log.
func (c *cluster) saveLogs() {
	dir := artifactDir(c.t)
	for _, m := range c.nodes {
		out := dockerLogs(m.container, "")
		if dir != "" {
			path := filepath.Join(dir, m.name+".log")
			if err := os.WriteFile(path, []byte(out), 0o644); err == nil {
				c.t.Logf("%s's log saved to %s", m.name, path)
			}
		}
		c.t.Logf("last lines of %s's log (%s):\n%s", m.name, m.container, lastLines(out, 25))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// docker runs a docker command and fails the test if it fails.
func (c *cluster) docker(args ...string) string {
	c.t.Helper()
	started := time.Now()
	out, err := run(dockerTimeout, "docker", args...)
	if os.Getenv("RAFTEX_DOCKER_TRACE") != "" {
		c.t.Logf("%s docker %s (%s)", time.Now().Format("15:04:05.000"), strings.Join(args, " "), time.Since(started).Round(time.Millisecond))
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

func (c *cluster) containers(ms ...*member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.container)
	}
	return out
}

// others returns the members other than m.
func (c *cluster) others(m *member) []*member {
	var out []*member
	for _, o := range c.nodes {
		if o != m {
			out = append(out, o)
		}
	}
	return out
}

func (c *cluster) endpoints() []string {
	var out []string
	for _, m := range c.nodes {
		out = append(out, m.endpoint)
	}
	return out
}

// ---- faults

// kill SIGKILLs m's container (`docker kill`) and checks it is down.
func (c *cluster) kill(ms ...*member) {
	c.t.Helper()
	c.docker(append([]string{"kill", "--signal", "KILL"}, c.containers(ms...)...)...)
	for _, m := range ms {
		eventually(c.t, deadline, m.name+" is down", func() error {
			if st := c.state(m); st != "exited" {
				return fmt.Errorf("%s is %q after docker kill, want exited", m.container, st)
			}
			return nil
		})
	}
}

// start starts m's container again and waits until it serves HTTP.
func (c *cluster) start(ms ...*member) {
	c.t.Helper()
	c.docker(append([]string{"start"}, c.containers(ms...)...)...)
	c.waitHealthy(ms...)
}

// restart restarts the containers (`docker restart`: SIGTERM, then start;
// the CLI does one container after the other).
func (c *cluster) restart(ms ...*member) {
	c.t.Helper()
	c.docker(append([]string{"restart", "--time", "10"}, c.containers(ms...)...)...)
	c.waitHealthy(ms...)
}

func (c *cluster) pause(m *member)   { c.t.Helper(); c.docker("pause", m.container) }
func (c *cluster) unpause(m *member) { c.t.Helper(); c.docker("unpause", m.container) }

// disconnect cuts m off the peer network: from the other nodes, not from
// the test.
func (c *cluster) disconnect(m *member) {
	c.t.Helper()
	c.docker("network", "disconnect", c.peerNet, m.container)
}

// connect attaches m to the peer network at its fixed address, reachable
// as m.name.
func (c *cluster) connect(m *member) {
	c.t.Helper()
	c.docker("network", "connect", "--ip", m.ip, "--alias", m.name, c.peerNet, m.container)
}

// state is the container's status: running, paused, exited, ...
func (c *cluster) state(m *member) string {
	c.t.Helper()
	return strings.TrimSpace(c.docker("inspect", "--format", "{{.State.Status}}", m.container))
}

// ---- waiting

// waitHealthy waits until each member's container runs and its /healthz
// answers.
func (c *cluster) waitHealthy(ms ...*member) {
	c.t.Helper()
	for _, m := range ms {
		eventually(c.t, deadline, m.name+" serves /healthz", func() error {
			if st := c.state(m); st != "running" {
				return stopPolling(fmt.Errorf("container %s is %s:\n%s", m.container, st,
					lastLines(dockerLogs(m.container, ""), 20)))
			}
			return getOK(m, "/healthz")
		})
	}
}

// leader waits until the given members all name the same leader, which is
// one of them and says it leads, and each is ready (caught up with it);
// it returns the leader.
func (c *cluster) leader(among ...*member) *member {
	c.t.Helper()
	var lead *member
	eventually(c.t, deadline, fmt.Sprintf("%s agree on a leader among them", names(among)), func() error {
		var err error
		lead, err = agreedLeader(among)
		return err
	})
	return lead
}

func agreedLeader(among []*member) (*member, error) {
	var lead *member
	name := ""
	for _, m := range among {
		st, err := status(m)
		if err != nil {
			return nil, err
		}
		if st.Leader == "" || (name != "" && st.Leader != name) {
			return nil, fmt.Errorf("%s sees leader %q, others %q", m.name, st.Leader, name)
		}
		name = st.Leader
		if st.Role == "leader" {
			lead = m
		}
	}
	if lead == nil || lead.name != name {
		return nil, fmt.Errorf("leader %q is not among %s or does not lead yet", name, names(among))
	}
	for _, m := range among {
		if err := getOK(m, "/readyz"); err != nil {
			return nil, fmt.Errorf("%s not ready: %w", m.name, err)
		}
	}
	return lead, nil
}

// published waits until every node lists a client address for every
// member, one another host can dial (not 0.0.0.0:8000 or [::]:8000, the
// listeners' own), and then checks that a write through each node applies:
// a follower forwards it to the leader at that address.
func (c *cluster) published() {
	c.t.Helper()
	eventually(c.t, deadline, "every node lists every member's client address", func() error {
		for _, m := range c.nodes {
			st, err := status(m)
			if err != nil {
				return err
			}
			if len(st.Members) != len(c.nodes) {
				return fmt.Errorf("%s lists %d members", m.name, len(st.Members))
			}
			for _, mm := range st.Members {
				host, _, err := net.SplitHostPort(mm.ClientAddr)
				if ip := net.ParseIP(host); err != nil || host == "" || (ip != nil && ip.IsUnspecified()) {
					return fmt.Errorf("%s lists %s's client address as %q, which another node cannot dial", m.name, mm.ID, mm.ClientAddr)
				}
			}
		}
		return nil
	})
	for i, m := range c.nodes {
		start := time.Now()
		code, body, _, err := do(http.MethodPut, m.url("/v1/kv/setup/"+m.name), []byte("v"),
			"Raftex-Client-Id", c.prefix+"-setup", "Raftex-Request-Seq", strconv.Itoa(i+1))
		if err != nil || code != http.StatusOK {
			c.t.Fatalf("a write through %s = %d %s (%v) after %s, want 200", m.name, code, body, err, time.Since(start).Round(time.Millisecond))
		}
	}
}

func names(ms []*member) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.name)
	}
	return strings.Join(out, ",")
}

// ---- HTTP

// statusBody is GET /v1/status.
type statusBody struct {
	ID           string `json:"id"`
	Role         string `json:"role"`
	Term         uint64 `json:"term"`
	Leader       string `json:"leader"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	Members      []struct {
		ID         string `json:"id"`
		ClientAddr string `json:"client_addr"`
	} `json:"members"`
}

func status(m *member) (statusBody, error) {
	var st statusBody
	code, body, _, err := do(http.MethodGet, m.url("/v1/status"), nil)
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("%s: status %d: %s", m.name, code, body)
	}
	return st, json.Unmarshal(body, &st)
}

func getOK(m *member, path string) error {
	code, body, _, err := do(http.MethodGet, m.url(path), nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s on %s: %d %s", path, m.name, code, body)
	}
	return nil
}

// do sends one request with the probe client and reads the answer whole.
func do(method, url string, body []byte, header ...string) (code int, respBody []byte, h http.Header, err error) {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := probe.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header, err
}

// ---- ports

// Host ports come from below the kernel's ephemeral range (32768 and up),
// and from another range than package e2e's (20000-32000).
var ports = struct {
	sync.Mutex
	next int
}{next: 10000 + rand.IntN(9000)}

// freePorts returns n loopback ports, each free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports.Lock()
	defer ports.Unlock()
	var got []int
	for tries := 0; len(got) < n && tries < 1000; tries++ {
		p := ports.next
		if ports.next++; ports.next >= 20000 {
			ports.next = 10000
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ln.Close()
		got = append(got, p)
	}
	if len(got) < n {
		t.Fatalf("no %d free ports", n)
	}
	return got
}

// ---- polling

type errStop struct{ error }

// stopPolling ends a poll at once with err.
func stopPolling(err error) error { return errStop{err} }

// eventually polls f until it returns nil, failing the test with f's last
// error after timeout, or at once when f returns stopPolling(err).
func eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	end := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		var s errStop
		if errors.As(err, &s) {
			t.Fatalf("%s: %v", what, s.error)
		}
		if time.Now().After(end) {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(pollEvery)
	}
}

// dockerLogs returns the container's whole log, stdout and stderr (raftex
// logs on stderr); fallback if docker cannot tell.
func dockerLogs(container, fallback string) string {
	out, err := combined(dockerTimeout, "docker", "logs", "--timestamps", container)
	if err != nil {
		return fallback + "\n(" + err.Error() + ")"
	}
	return out
}
