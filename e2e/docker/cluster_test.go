package docker

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftex/raftex/client"
	"github.com/raftex/raftex/internal/e2etest"
	"github.com/raftex/raftex/internal/kvload"
)

// Deadlines are generous (CI machines are small and shared); polls stop as
// soon as their condition holds, so a healthy run never waits them out.
var poll = e2etest.Poll{Within: 60 * time.Second, Every: 50 * time.Millisecond}

const (
	// requestTimeout is every node's --request-timeout: shorter than the
	// default so that a request to a cut-off node answers 503 soon.
	requestTimeout = 2 * time.Second
	// dockerTimeout bounds one docker command.
	dockerTimeout = 2 * time.Minute
)

// probe is the HTTP client of the test's own probes (status, health,
// single requests): its timeout makes a frozen node's silence an error.
// Once auth is enabled it carries root's token (auth_test.go).
var probe = &http.Client{Timeout: 3 * requestTimeout, Transport: probeAuth}

// Host ports come from 10000-20000, a range of this package's own (e2e
// takes 20000-32000, e2e/observe 32000-32768).
var ports = e2etest.NewPorts(10000, 20000)

// member is one node of a test cluster: a container. Its Name is its id
// and its host name on the peer network; its ClientAddr, 127.0.0.1:port,
// is its client port published on the host.
type member struct {
	*e2etest.Node
	container string // the container's name
	ip        string // its fixed address on the peer network
}

// newMember is node n<i> (from 1), its client port published at port.
func newMember(i, port int) *member {
	return &member{Node: &e2etest.Node{Name: fmt.Sprintf("n%d", i), ClientAddr: e2etest.Addr(port), HTTP: probe}}
}

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

// newCluster starts three raftex containers with TLS (tls_test.go), waits
// until they agree on a leader and have published their client addresses,
// and enables auth.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, image: testImage(t), prefix: "raftex-e2e-" + runID + "-" + shortName(t.Name())}
	c.peerNet, c.clientNet = c.prefix+"-peer", c.prefix+"-client"
	t.Cleanup(c.cleanup) // first: it removes whatever was created below
	c.createNetworks()
	hostPorts := ports.Free(t, 3)
	var initial []string
	for i := range 3 {
		m := newMember(i+1, hostPorts[i])
		m.container = fmt.Sprintf("%s-n%d", c.prefix, i+1)
		m.ip = c.hostAddr(10 + i + 1)
		initial = append(initial, m.Name+"="+m.Name+":7000")
		c.nodes = append(c.nodes, m)
	}
	for _, m := range c.nodes {
		m.Scheme = "https"
		args := []string{"create", "--name", m.container, "--label", labelRun + "=" + runID, "--label", labelPID + "=" + strconv.Itoa(os.Getpid()),
			"--network", c.clientNet, "--publish", m.ClientAddr + ":8000"}
		args = append(append(args, tlsEnv(m.Name)...), c.image, "serve", "--id", m.Name, "--data-dir", "/data",
			"--peer-addr", m.Name+":7000", "--client-addr", "0.0.0.0:8000",
			"--initial-cluster", strings.Join(initial, ","), "--request-timeout", requestTimeout.String(),
			"--token-ttl", tokenTTL.String())
		c.docker(args...)
		c.docker("cp", certDir+"/.", m.container+":/certs")
		c.connect(m)
	}
	c.docker(append([]string{"start"}, c.containers(c.nodes...)...)...)
	c.waitHealthy(c.nodes...)
	c.leader(c.nodes...)
	c.published()
	c.enableAuth()
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

// artifactDir is $RAFTEX_ARTIFACTS/docker/<test>, made; "" without
// RAFTEX_ARTIFACTS.
func artifactDir(t *testing.T) string { return e2etest.ArtifactDir(t, "docker", shortName(t.Name())) }

// saveLogs writes each container's log to $RAFTEX_ARTIFACTS/docker/<test>/
// and its tail to the test log.
func (c *cluster) saveLogs() {
	dir := artifactDir(c.t)
	for _, m := range c.nodes {
		out := dockerLogs(m.container, "")
		if dir != "" {
			path := filepath.Join(dir, m.Name+".log")
			if err := os.WriteFile(path, []byte(out), 0o644); err == nil {
				c.t.Logf("%s's log saved to %s", m.Name, path)
			}
		}
		c.t.Logf("last lines of %s's log (%s):\n%s", m.Name, m.container, e2etest.LastLines(out, 25))
	}
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
	return slices.DeleteFunc(slices.Clone(c.nodes), func(o *member) bool { return o == m })
}

// endpoints returns the members' client addresses on the host.
func (c *cluster) endpoints() []string {
	out := make([]string, len(c.nodes))
	for i, m := range c.nodes {
		out[i] = m.ClientAddr
	}
	return out
}

// startWorkload starts internal/kvload's client load on c: its clients log
// in as the workload's user, over TLS.
func startWorkload(t *testing.T, c *cluster) *kvload.Load {
	t.Helper()
	return kvload.Start(t, c.endpoints(), kvload.Options{
		Client: client.Options{
			// A frozen node answers nothing: give up on it soon after
			// the servers' own request timeout would have answered 503.
			AttemptTimeout: requestTimeout + time.Second,
			MaxBackoff:     500 * time.Millisecond,
			Username:       workloadUser, Password: workloadPassword,
			TLS: certTLS,
		},
		Poll: poll,
		// check waits until every node is caught up with the leader: a
		// stale read then shows what the node holds.
		Stored: func(n *e2etest.Node, key string) (e2etest.Response, error) {
			return n.Get("/v1/kv/" + key + "?consistency=stale")
		},
		Artifacts: func() string { return artifactDir(t) },
	})
}

// check stops the workload and, once every node is up and caught up with
// the leader, checks it through every node (kvload.Load.Check).
func (c *cluster) check(w *kvload.Load) {
	c.t.Helper()
	w.Halt()
	if c.t.Failed() {
		return
	}
	c.leader(c.nodes...)
	nodes := make([]*e2etest.Node, len(c.nodes))
	for i, m := range c.nodes {
		nodes[i] = m.Node
	}
	w.Check(nodes...)
}

// ---- faults

// kill SIGKILLs m's container (`docker kill`) and checks it is down.
func (c *cluster) kill(ms ...*member) {
	c.t.Helper()
	c.docker(append([]string{"kill", "--signal", "KILL"}, c.containers(ms...)...)...)
	for _, m := range ms {
		poll.Until(c.t, m.Name+" is down", func() error {
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
// as m.Name.
func (c *cluster) connect(m *member) {
	c.t.Helper()
	c.docker("network", "connect", "--ip", m.ip, "--alias", m.Name, c.peerNet, m.container)
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
		poll.Until(c.t, m.Name+" serves /healthz", func() error {
			if st := c.state(m); st != "running" {
				return e2etest.StopPolling(fmt.Errorf("container %s is %s:\n%s", m.container, st,
					e2etest.LastLines(dockerLogs(m.container, ""), 20)))
			}
			return m.OK("/healthz")
		})
	}
}

// leader waits until the given members agree on a leader, as
// e2etest.WaitLeader says, and returns it.
func (c *cluster) leader(among ...*member) *member {
	c.t.Helper()
	nodes := make([]*e2etest.Node, len(among))
	for i, m := range among {
		nodes[i] = m.Node
	}
	lead, _ := e2etest.WaitLeader(c.t, poll, nodes...)
	return among[slices.Index(nodes, lead)]
}

// published waits until every node lists a client address for every
// member, one another host can dial (not 0.0.0.0:8000 or [::]:8000, the
// listeners' own), and then checks that a write through each node applies:
// a follower forwards it to the leader at that address.
func (c *cluster) published() {
	c.t.Helper()
	poll.Until(c.t, "every node lists every member's client address", func() error {
		for _, m := range c.nodes {
			st, err := m.Status()
			if err != nil {
				return err
			}
			if len(st.Members) != len(c.nodes) {
				return fmt.Errorf("%s lists %d members", m.Name, len(st.Members))
			}
			for _, mm := range st.Members {
				host, _, err := net.SplitHostPort(mm.ClientAddr)
				if ip := net.ParseIP(host); err != nil || host == "" || (ip != nil && ip.IsUnspecified()) {
					return fmt.Errorf("%s lists %s's client address as %q, which another node cannot dial", m.Name, mm.ID, mm.ClientAddr)
				}
			}
		}
		return nil
	})
	for _, m := range c.nodes {
		start := time.Now()
		var r e2etest.Response
		var err error
		// The nodes' request timeout is short (requestTimeout): a write
		// can outlast it on a loaded machine, or in an election, and
		// answer 503 (outcome unknown); it is sent again. (The key is
		// the node's own and the value always the same.)
		poll.Until(c.t, "a write through "+m.Name+" answers", func() error {
			r, err = e2etest.Do(probe, http.MethodPut, m.URL("/v1/kv/setup/"+m.Name), []byte("v"))
			if err == nil && r.Code == http.StatusServiceUnavailable {
				return fmt.Errorf("503 after %s: %s", time.Since(start).Round(time.Millisecond), r.Body)
			}
			return nil
		})
		if err != nil || r.Code != http.StatusOK {
			c.t.Fatalf("a write through %s = %d %s (%v) after %s, want 200", m.Name, r.Code, r.Body, err, time.Since(start).Round(time.Millisecond))
		}
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
