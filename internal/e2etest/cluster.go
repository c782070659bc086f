package e2etest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/raftex/raftex/client"
)

// Node is one raftex node as a test reaches it: by its id and the client
// address of its HTTP API. For a node of a Cluster it is also the process
// that runs it; a test that runs nodes some other way (in containers)
// fills in Name, ClientAddr and HTTP only.
type Node struct {
	Name       string // its id: "n1"
	ClientAddr string // the address the test dials: "127.0.0.1:8001"
	PeerAddr   string
	DataDir    string
	HTTP       *http.Client // the client the test reaches it with
	Scheme     string       // of its HTTP API: "https" with TLS; "" is "http"
	Proc       *Proc        // its current process; nil before it started
	starts     int
}

// URL returns the node's HTTP origin followed by path.
func (n *Node) URL(path string) string {
	scheme := n.Scheme
	if scheme == "" {
		scheme = "http"
	}
	return scheme + "://" + n.ClientAddr + path
}

// Running reports whether the node's process runs.
func (n *Node) Running() bool { return n.Proc != nil && n.Proc.Running() }

// Get sends GET path to the node.
func (n *Node) Get(path string) (Response, error) {
	return Do(n.HTTP, http.MethodGet, n.URL(path), nil)
}

// OK returns an error unless GET path answers 200 (on /healthz: it
// serves; on /readyz: it knows a leader and is caught up with it).
func (n *Node) OK(path string) error {
	r, err := n.Get(path)
	if err != nil {
		return err
	}
	if err := r.Want(http.StatusOK); err != nil {
		return fmt.Errorf("GET %s on %s: %w", path, n.Name, err)
	}
	return nil
}

// Status returns the node's GET /v1/status.
func (n *Node) Status() (client.Status, error) {
	var st client.Status
	r, err := n.Get("/v1/status")
	if err != nil {
		return st, err
	}
	if err := r.Want(http.StatusOK); err != nil {
		return st, fmt.Errorf("GET /v1/status on %s: %w", n.Name, err)
	}
	return st, json.Unmarshal(r.Body, &st)
}

// Register registers a client session through the node (POST
// /v1/sessions) and returns its client id, for the Raftex-Client-Id
// header. Anything but 200 with an id fails the test.
func (n *Node) Register(t testing.TB) string {
	t.Helper()
	r, err := Do(n.HTTP, http.MethodPost, n.URL("/v1/sessions"), nil)
	if err == nil {
		err = r.Want(http.StatusOK)
	}
	var body struct {
		ClientID uint64 `json:"client_id"`
	}
	if err == nil {
		err = json.Unmarshal(r.Body, &body)
	}
	if err != nil || body.ClientID == 0 {
		t.Fatalf("registering a session on %s: %v (%s)", n.Name, err, r.Body)
	}
	return strconv.FormatUint(body.ClientID, 10)
}

// Put writes value at key (the rest of the path after /v1/kv/, used as
// it is: it may carry a query) through the node, and returns the write's
// revision. Anything but 200 with a revision fails the test.
func (n *Node) Put(t testing.TB, key, value string, header ...string) uint64 {
	t.Helper()
	r, err := Do(n.HTTP, http.MethodPut, n.URL("/v1/kv/"+key), []byte(value), header...)
	if err != nil {
		t.Fatalf("PUT %s on %s: %v", key, n.Name, err)
	}
	if err := r.Want(http.StatusOK); err != nil {
		t.Fatalf("PUT %s on %s: %v", key, n.Name, err)
	}
	rev := r.Revision(t)
	if rev == 0 {
		t.Fatalf("PUT %s on %s: revision 0: %s", key, n.Name, r.Body)
	}
	return rev
}

// WaitLeader polls until the nodes of among agree on a leader and returns
// it and its term: each names the same leader in the same term, that
// leader is one of them and says it leads, and each is ready (caught up
// with it).
func WaitLeader(t testing.TB, p Poll, among ...*Node) (*Node, uint64) {
	t.Helper()
	var names []string
	for _, n := range among {
		names = append(names, n.Name)
	}
	return waitLeader(t, p, strings.Join(names, ",")+" agree on a leader", func() []*Node { return among })
}

// waitLeader is WaitLeader among the nodes among returns at each try.
func waitLeader(t testing.TB, p Poll, what string, among func() []*Node) (*Node, uint64) {
	t.Helper()
	var lead *Node
	var term uint64
	p.Until(t, what, func() error {
		var err error
		lead, term, err = AgreedLeader(among()...)
		return err
	})
	return lead, term
}

// AgreedLeader looks once at the nodes of among and returns the leader
// they agree on and its term, as WaitLeader waits for, or why they do not
// (yet) agree: for a condition that must hold under the leader of the
// moment, wherever an election may have moved it.
func AgreedLeader(among ...*Node) (*Node, uint64, error) {
	var lead, first *Node
	var st0 client.Status
	for _, n := range among {
		st, err := n.Status()
		if err != nil {
			return nil, 0, err
		}
		if first == nil {
			first, st0 = n, st
		}
		if st.Leader == "" || st.Leader != st0.Leader || st.Term != st0.Term {
			return nil, 0, fmt.Errorf("%s sees leader %q in term %d, %s sees %q in term %d",
				n.Name, st.Leader, st.Term, first.Name, st0.Leader, st0.Term)
		}
		if st.Role == "leader" {
			lead = n
		}
	}
	if lead == nil || lead.Name != st0.Leader {
		return nil, 0, fmt.Errorf("leader %q is not among them or does not lead yet", st0.Leader)
	}
	for _, n := range among {
		if err := n.OK("/readyz"); err != nil {
			return nil, 0, err
		}
	}
	return lead, st0.Term, nil
}

// ClusterConfig describes a Cluster.
type ClusterConfig struct {
	Nodes int      // how many: n1, n2, ...
	Flags []string // given to every `raftex serve` after the node's own
	Ports *Ports   // where the nodes' ports come from
	Poll  Poll     // how long a node may take to serve, an election to end
	HTTP  *http.Client
}

// Cluster is a cluster of `raftex serve` processes on loopback, each with
// its data directory under Dir and its log in Dir/<name>.log.
type Cluster struct {
	Dir     string
	Nodes   []*Node
	Initial string // the --initial-cluster of its first start
	Poll    Poll
	flags   []string
	ports   *Ports
	http    *http.Client
	t       testing.TB
}

// NewCluster starts the nodes of cfg and waits until they agree on a
// leader and every node lists every node's client address.
func NewCluster(t testing.TB, cfg ClusterConfig) *Cluster {
	t.Helper()
	c := PlanCluster(t, cfg)
	for _, n := range c.Nodes {
		c.Start(n)
	}
	c.Leader()
	c.Published()
	return c
}

// PlanCluster lays out the nodes of cfg, each on two free ports (peer,
// client), and starts none of them.
func PlanCluster(t testing.TB, cfg ClusterConfig) *Cluster {
	t.Helper()
	// Made before any process starts, so removed after they are killed.
	c := &Cluster{Dir: t.TempDir(), Poll: cfg.Poll, flags: cfg.Flags, ports: cfg.Ports, http: cfg.HTTP, t: t}
	ports := cfg.Ports.Free(t, 2*cfg.Nodes)
	var initial []string
	for i := range cfg.Nodes {
		n := &Node{Name: fmt.Sprintf("n%d", i+1), PeerAddr: Addr(ports[2*i]), ClientAddr: Addr(ports[2*i+1]), HTTP: cfg.HTTP}
		n.DataDir = filepath.Join(c.Dir, n.Name)
		initial = append(initial, n.Name+"="+n.PeerAddr)
		c.Nodes = append(c.Nodes, n)
	}
	c.Initial = strings.Join(initial, ",")
	return c
}

// ServeArgs are n's arguments, with --initial-cluster if withInitial.
func (c *Cluster) ServeArgs(n *Node, withInitial bool) []string {
	args := []string{"serve", "--id", n.Name, "--data-dir", n.DataDir,
		"--peer-addr", n.PeerAddr, "--client-addr", n.ClientAddr}
	if withInitial {
		args = append(args, "--initial-cluster", c.Initial)
	}
	return append(args, c.flags...)
}

// Plan lays out one more node, named name, on two free ports, and starts
// nothing: start it with Join. Its Nodes entry comes after the others'.
func (c *Cluster) Plan(name string) *Node {
	c.t.Helper()
	ports := c.ports.Free(c.t, 2)
	n := &Node{Name: name, PeerAddr: Addr(ports[0]), ClientAddr: Addr(ports[1]), HTTP: c.http}
	n.DataDir = filepath.Join(c.Dir, n.Name)
	c.Nodes = append(c.Nodes, n)
	return n
}

// Join runs n with an empty data dir, joining the cluster through via's
// client address (--join), with extra arguments (--learner), and waits
// until it serves HTTP: by then the cluster has added it.
func (c *Cluster) Join(n, via *Node, extra ...string) {
	c.t.Helper()
	args := append(c.ServeArgs(n, false), "--join", "http://"+via.ClientAddr)
	c.StartArgs(n, append(args, extra...))
}

// Forget drops n from Nodes (a member removed from the cluster); its
// process, if any, runs on until the test stops it.
func (c *Cluster) Forget(n *Node) {
	c.Nodes = slices.DeleteFunc(c.Nodes, func(o *Node) bool { return o == n })
}

// Start runs n, with --initial-cluster, and waits until it serves HTTP.
func (c *Cluster) Start(n *Node, env ...string) {
	c.t.Helper()
	c.StartArgs(n, c.ServeArgs(n, true), env...)
}

// Restart runs n again, from the state in its data directory (no
// --initial-cluster), and waits until it serves HTTP.
func (c *Cluster) Restart(n *Node, env ...string) {
	c.t.Helper()
	c.StartArgs(n, c.ServeArgs(n, false), env...)
}

// StartArgs runs raftex with args and env as n's process and waits until
// n serves /healthz; n exiting meanwhile fails the test at once.
func (c *Cluster) StartArgs(n *Node, args []string, env ...string) {
	c.t.Helper()
	n.starts++
	n.Proc = StartProc(c.t, ProcSpec{Name: fmt.Sprintf("%s#%d", n.Name, n.starts), Args: args, Env: env,
		Log: filepath.Join(c.Dir, n.Name+".log")})
	c.Poll.Until(c.t, n.Name+" serves /healthz", func() error {
		if !n.Proc.Running() {
			return StopPolling(fmt.Errorf("%s exited: %s\n%s", n.Name, n.Proc.Cmd.ProcessState, n.Proc.Tail(20)))
		}
		return n.OK("/healthz")
	})
}

// Kill SIGKILLs n, as a crash or an OOM kill would, and waits until it is
// gone.
func (c *Cluster) Kill(n *Node) {
	c.t.Helper()
	n.Proc.Signal(c.t, syscall.SIGKILL)
	n.Proc.Wait(c.t, c.Poll.Within)
}

// Stop SIGTERMs n and returns its exit code.
func (c *Cluster) Stop(n *Node) int {
	c.t.Helper()
	n.Proc.Signal(c.t, syscall.SIGTERM)
	return n.Proc.Wait(c.t, c.Poll.Within)
}

// Running returns the nodes whose process runs.
func (c *Cluster) Running() []*Node {
	return slices.DeleteFunc(slices.Clone(c.Nodes), func(n *Node) bool { return !n.Running() })
}

// Leader waits until the nodes of among (by default: the running ones)
// agree on a leader, as WaitLeader does, and returns it.
func (c *Cluster) Leader(among ...*Node) *Node {
	c.t.Helper()
	lead, _ := c.LeaderTerm(among...)
	return lead
}

// LeaderTerm is Leader, also returning the leader's term.
func (c *Cluster) LeaderTerm(among ...*Node) (*Node, uint64) {
	c.t.Helper()
	if len(among) > 0 {
		return WaitLeader(c.t, c.Poll, among...)
	}
	return waitLeader(c.t, c.Poll, "the running nodes agree on a leader", c.Running)
}

// Followers returns the running nodes other than lead.
func (c *Cluster) Followers(lead *Node) []*Node {
	return slices.DeleteFunc(c.Running(), func(n *Node) bool { return n == lead })
}

// Others returns the nodes other than n, running or not.
func (c *Cluster) Others(n *Node) []*Node {
	return slices.DeleteFunc(slices.Clone(c.Nodes), func(o *Node) bool { return o == n })
}

// Endpoints returns every node's client address.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.ClientAddr)
	}
	return out
}

// Published waits until every running node lists every node's client
// address, published through the log.
func (c *Cluster) Published() {
	c.t.Helper()
	c.Poll.Until(c.t, "every node lists every client address", func() error {
		for _, n := range c.Running() {
			st, err := n.Status()
			if err != nil {
				return err
			}
			if len(st.Members) != len(c.Nodes) {
				return fmt.Errorf("%s lists %d members", n.Name, len(st.Members))
			}
			for i, m := range st.Members {
				if m.ClientAddr != c.Nodes[i].ClientAddr {
					return fmt.Errorf("%s lists %s at %q, want %s", n.Name, m.ID, m.ClientAddr, c.Nodes[i].ClientAddr)
				}
			}
		}
		return nil
	})
}
