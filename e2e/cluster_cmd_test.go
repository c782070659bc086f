package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/raftex/raftex/internal/e2etest"
)

// clusterCmd starts `raftex cluster --nodes 3` on free ports in its own
// temporary working directory (so its data goes to ./raftex-data there)
// and waits until its nodes serve and agree on a leader.
func clusterCmd(t *testing.T) (p *e2etest.Proc, dir string, nodes []*e2etest.Node) {
	t.Helper()
	run := ports.Run(t, 6) // peers base+1..3, clients base+4..6
	peerBase, clientBase := run[0]-1, run[3]-1
	dir = t.TempDir()
	p = startClusterCmd(t, dir, peerBase, clientBase)
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, &e2etest.Node{Name: fmt.Sprintf("n%d", i), PeerAddr: e2etest.Addr(peerBase + i), ClientAddr: e2etest.Addr(clientBase + i),
			DataDir: filepath.Join(dir, "raftex-data", fmt.Sprintf("n%d", i)), HTTP: httpClient, Proc: p})
	}
	e2etest.WaitLeader(t, soon, nodes...)
	return p, dir, nodes
}

// startClusterCmd starts `raftex cluster --nodes 3` in dir, its nodes'
// ports numbered from the bases.
func startClusterCmd(t *testing.T, dir string, peerBase, clientBase int) *e2etest.Proc {
	t.Helper()
	return e2etest.StartProc(t, e2etest.ProcSpec{Name: "cluster", Dir: dir, Log: filepath.Join(dir, "cluster.log"),
		Args: []string{"cluster", "--nodes", "3", "--peer-port-base", strconv.Itoa(peerBase), "--client-port-base", strconv.Itoa(clientBase)}})
}

// TestClusterCommand runs `raftex cluster`: three serve processes, the
// endpoints and usage printed, logs prefixed by node, data under
// ./raftex-data; a node killed leaves the others running; SIGINT stops
// them all and it exits 0.
func TestClusterCommand(t *testing.T) {
	t.Parallel()
	p, _, nodes := clusterCmd(t)
	children := childPIDs(t, p)
	if len(children) != 3 {
		t.Fatalf("raftex cluster runs %d children, want 3: %v", len(children), children)
	}
	rev := nodes[1].Put(t, "via-cluster", "v")
	stdout, stderr, code := runCLI(t, nil, "get", "via-cluster", "--endpoints", nodes[2].ClientAddr)
	if code != 0 || stdout != "v\n" || stderr != fmt.Sprintf("revision=%d\n", rev) {
		t.Fatalf("get: exit %d, %q %q", code, stdout, stderr)
	}
	// A node's lines reach the output through the cluster's pipe from
	// it, and "serving" follows the node's listeners: maybe not there yet.
	waitLog(t, p, "[n1] ", "[n2] ", "[n3] ")
	soon.Until(t, "a node's log line in the output, prefixed by its id", func() error {
		if !regexp.MustCompile(`(?m)^\[n\d\] .*msg=serving`).MatchString(p.Log()) {
			return fmt.Errorf("none yet:\n%s", p.Tail(10))
		}
		return nil
	})
	out := p.Log()
	for _, nd := range nodes {
		for _, want := range []string{
			fmt.Sprintf("  %s  client http://%s   peer %s", nd.Name, nd.ClientAddr, nd.PeerAddr),
			fmt.Sprintf("[%s] ", nd.Name),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("the cluster's output lacks %q:\n%s", want, out)
			}
		}
		if _, err := os.Stat(filepath.Join(nd.DataDir, "cluster.json")); err != nil {
			t.Errorf("no data for %s under ./raftex-data: %v", nd.Name, err)
		}
	}
	if !strings.Contains(out, "raftex put greeting hello --endpoints ") || !strings.Contains(out, "Ctrl-C stops every node.") {
		t.Errorf("no usage in the cluster's output:\n%s", out)
	}

	// kill -9 of one node (the leader) to watch a failover: the others
	// go on and elect another. (Asked again: an election may have moved
	// the lead since the start.)
	lead, _ := e2etest.WaitLeader(t, soon, nodes...)
	for _, pid := range children {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(b), "\x00--id\x00"+lead.Name+"\x00") {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	var survivors []*e2etest.Node
	for _, nd := range nodes {
		if nd != lead {
			survivors = append(survivors, nd)
		}
	}
	soon.Until(t, "a new leader among the survivors", func() error {
		for _, nd := range survivors {
			if st, err := nd.Status(); err == nil && st.Role == "leader" {
				return nil
			}
		}
		return fmt.Errorf("none leads")
	})
	survivors[0].Put(t, "after-kill", "v")
	// The cluster says so once it has waited for the killed node, which
	// need not be before the others elected a leader.
	waitLog(t, p, fmt.Sprintf("raftex cluster: %s exited (signal: killed); the others go on (Ctrl-C stops them)", lead.Name))

	p.Signal(t, syscall.SIGINT) // the cluster process only, not its group
	if code := p.Wait(t, startDeadline); code != 0 {
		t.Fatalf("raftex cluster exited %d on SIGINT:\n%s", code, p.Tail(20))
	}
	for _, pid := range children {
		if alive(pid) {
			t.Errorf("node process %d still runs after the cluster stopped", pid)
		}
	}
	out = p.Log()
	for _, nd := range survivors {
		if !strings.Contains(out, fmt.Sprintf(`[%s] time=`, nd.Name)) || !regexp.MustCompile(`\[`+nd.Name+`\] .*msg="shutting down"`).MatchString(out) {
			t.Errorf("%s's shutdown is not in the output:\n%s", nd.Name, p.Tail(20))
		}
	}
	if !strings.HasSuffix(out, "raftex cluster: every node stopped\n") {
		t.Errorf("the output does not end with the stop:\n%s", p.Tail(10))
	}
}

// TestClusterCommandKilled: when `raftex cluster` is SIGKILLed (it cannot
// clean up) its nodes stop anyway.
func TestClusterCommandKilled(t *testing.T) {
	t.Parallel()
	p, _, _ := clusterCmd(t)
	children := childPIDs(t, p)
	if len(children) != 3 {
		t.Fatalf("raftex cluster runs %d children, want 3: %v", len(children), children)
	}
	p.Signal(t, syscall.SIGKILL)
	p.Wait(t, startDeadline)
	soon.Until(t, "the nodes stop", func() error {
		for _, pid := range children {
			if alive(pid) {
				return fmt.Errorf("node process %d still runs", pid)
			}
		}
		return nil
	})
}

// TestClusterCommandNodeFails: a node that cannot start (its client port
// is taken) stops the cluster, which exits 1 and says which.
func TestClusterCommandNodeFails(t *testing.T) {
	t.Parallel()
	run := ports.Run(t, 6)
	peerBase, clientBase := run[0]-1, run[3]-1
	busy, err := listen(e2etest.Addr(clientBase + 2))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	p := startClusterCmd(t, dir, peerBase, clientBase)
	if code := p.Wait(t, startDeadline); code != 1 {
		t.Fatalf("raftex cluster exited %d with n2's port taken, want 1:\n%s", code, p.Log())
	}
	if !strings.Contains(p.Log(), "raftex: n2 exited (exit status 1); stopped the others") {
		t.Fatalf("output:\n%s", p.Log())
	}
	if _, err := http.Get("http://" + e2etest.Addr(clientBase+1) + "/healthz"); err == nil {
		t.Fatal("n1 still serves")
	}
}

// childPIDs returns the pids of p's children (the children of each of
// its threads), from /proc.
func childPIDs(t *testing.T, p *e2etest.Proc) []int {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p.Cmd.Process.Pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads of %s: %v", p.Name, err)
	}
	var pids []int
	for _, task := range tasks {
		b, _ := os.ReadFile(task)
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			pids = append(pids, pid)
		}
	}
	return pids
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// TestClusterCommandTLS runs `raftex cluster --tls`: it writes the
// certificates under its data dir, its nodes speak https (plain http is
// refused), and the put and get it prints as hints work as printed.
func TestClusterCommandTLS(t *testing.T) {
	t.Parallel()
	run := ports.Run(t, 6)
	peerBase, clientBase := run[0]-1, run[3]-1
	dir := t.TempDir()
	p := e2etest.StartProc(t, e2etest.ProcSpec{Name: "cluster", Dir: dir, Log: filepath.Join(dir, "cluster.log"),
		Args: []string{"cluster", "--tls", "--nodes", "3", "--peer-port-base", strconv.Itoa(peerBase), "--client-port-base", strconv.Itoa(clientBase)}})
	soon.Until(t, "the hints", func() error {
		if !strings.Contains(p.Log(), "Ctrl-C stops every node") {
			return fmt.Errorf("not yet:\n%s", p.Tail(5))
		}
		return nil
	})
	https := tlsClient(t, filepath.Join(dir, "raftex-data", "certs"))
	var nodes []*e2etest.Node
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, &e2etest.Node{Name: fmt.Sprintf("n%d", i), ClientAddr: e2etest.Addr(clientBase + i), HTTP: https, Scheme: "https", Proc: p})
	}
	e2etest.WaitLeader(t, soon, nodes...)
	if r, err := get("http://" + nodes[0].ClientAddr + "/v1/kv/x"); err == nil && r.Code != http.StatusBadRequest {
		t.Errorf("plain http to a TLS node answered %d", r.Code)
	}
	for _, verb := range []string{"put greeting hello", "get greeting"} {
		m := regexp.MustCompile(`(?m)^  \S+ (` + verb + ` .*)$`).FindStringSubmatch(p.Log())
		if m == nil {
			t.Fatalf("no hint for %q in:\n%s", verb, p.Tail(20))
		}
		if !strings.Contains(m[1], "--cacert") || !strings.Contains(m[1], "--cert") {
			t.Errorf("the hint %q lacks the TLS flags", m[1])
		}
		// The hint's paths are relative to the cluster's directory.
		hint := strings.ReplaceAll(m[1], " raftex-data/", " "+dir+"/raftex-data/")
		if out, code := runRaftex(t, nil, strings.Fields(hint)...); code != 0 {
			t.Fatalf("%s: exit %d: %s", m[1], code, out)
		}
	}
	if !strings.Contains(p.Log(), "dashboard https://") {
		t.Errorf("the dashboard is not shown at https:\n%s", p.Tail(20))
	}
}

// TestClusterCommandBeyondLoopbackNeedsTLS: `raftex cluster` on a host
// other machines reach refuses to start without --tls.
func TestClusterCommandBeyondLoopbackNeedsTLS(t *testing.T) {
	t.Parallel()
	out, code := runRaftex(t, nil, "cluster", "--host", "0.0.0.0", "--data-dir", t.TempDir())
	if code != 2 || !strings.Contains(out, "add --tls") {
		t.Fatalf("cluster --host 0.0.0.0: exit %d, output %q; want exit 2 asking for --tls", code, out)
	}
}
