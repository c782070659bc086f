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
)

// clusterCmd starts `raftex cluster --nodes 3` on free ports in its own
// temporary working directory (so its data goes to ./raftex-data there)
// and waits until its nodes serve and agree on a leader.
func clusterCmd(t *testing.T) (p *proc, dir string, nodes []*node) {
	t.Helper()
	run := freeRun(t, 6, true) // peers base+1..3, clients base+4..6
	peerBase, clientBase := run[0]-1, run[3]-1
	dir = t.TempDir()
	p = startProcIn(t, dir, "cluster", filepath.Join(dir, "cluster.log"), nil, "cluster", "--nodes", "3",
		"--peer-port-base", strconv.Itoa(peerBase), "--client-port-base", strconv.Itoa(clientBase))
	c := &cluster{t: t, dir: dir}
	for i := 1; i <= 3; i++ {
		nd := &node{id: i, name: fmt.Sprintf("n%d", i), peerAddr: addr(peerBase + i), clientAddr: addr(clientBase + i),
			dataDir: filepath.Join(dir, "raftex-data", fmt.Sprintf("n%d", i)), proc: p}
		c.nodes = append(c.nodes, nd)
	}
	c.leader()
	return p, dir, c.nodes
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
	rev := put(t, nodes[1], "via-cluster", "v")
	stdout, stderr, code := runCLI(t, nil, "get", "via-cluster", "--endpoints", nodes[2].clientAddr)
	if code != 0 || stdout != "v\n" || stderr != fmt.Sprintf("revision=%d\n", rev) {
		t.Fatalf("get: exit %d, %q %q", code, stdout, stderr)
	}
	out := p.log()
	for _, nd := range nodes {
		for _, want := range []string{
			fmt.Sprintf("  %s  client http://%s   peer %s", nd.name, nd.clientAddr, nd.peerAddr),
			fmt.Sprintf("[%s] ", nd.name),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("the cluster's output lacks %q:\n%s", want, out)
			}
		}
		if _, err := os.Stat(filepath.Join(nd.dataDir, "cluster.json")); err != nil {
			t.Errorf("no data for %s under ./raftex-data: %v", nd.name, err)
		}
	}
	if !strings.Contains(out, "raftex put greeting hello --endpoints ") || !strings.Contains(out, "Ctrl-C stops every node.") {
		t.Errorf("no usage in the cluster's output:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^\[n\d\] .*msg=serving`).MatchString(out) {
		t.Errorf("no node log line prefixed by its id:\n%s", out)
	}

	// kill -9 of one node (the leader) to watch a failover: the others
	// go on and elect another.
	var lead *node
	for _, nd := range nodes {
		if st, err := status(nd); err == nil && st.Role == "leader" {
			lead = nd
		}
	}
	if lead == nil {
		t.Fatal("no leader")
	}
	for _, pid := range children {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(b), "\x00--id\x00"+lead.name+"\x00") {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	var survivors []*node
	for _, nd := range nodes {
		if nd != lead {
			survivors = append(survivors, nd)
		}
	}
	eventually(t, startDeadline, "a new leader among the survivors", func() error {
		for _, nd := range survivors {
			if st, err := status(nd); err == nil && st.Role == "leader" {
				return nil
			}
		}
		return fmt.Errorf("none leads")
	})
	put(t, survivors[0], "after-kill", "v")
	if want := fmt.Sprintf("raftex cluster: %s exited (signal: killed); the others go on (Ctrl-C stops them)", lead.name); !strings.Contains(p.log(), want) {
		t.Errorf("the output lacks %q:\n%s", want, tail(p.logPath, 10))
	}

	p.signal(t, syscall.SIGINT) // the cluster process only, not its group
	if code := p.wait(t, startDeadline); code != 0 {
		t.Fatalf("raftex cluster exited %d on SIGINT:\n%s", code, tail(p.logPath, 20))
	}
	for _, pid := range children {
		if alive(pid) {
			t.Errorf("node process %d still runs after the cluster stopped", pid)
		}
	}
	out = p.log()
	for _, nd := range survivors {
		if !strings.Contains(out, fmt.Sprintf(`[%s] time=`, nd.name)) || !regexp.MustCompile(`\[`+nd.name+`\] .*msg="shutting down"`).MatchString(out) {
			t.Errorf("%s's shutdown is not in the output:\n%s", nd.name, tail(p.logPath, 20))
		}
	}
	if !strings.HasSuffix(out, "raftex cluster: every node stopped\n") {
		t.Errorf("the output does not end with the stop:\n%s", tail(p.logPath, 10))
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
	p.signal(t, syscall.SIGKILL)
	p.wait(t, startDeadline)
	eventually(t, startDeadline, "the nodes stop", func() error {
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
	run := freeRun(t, 6, true)
	peerBase, clientBase := run[0]-1, run[3]-1
	busy, err := listen(addr(clientBase + 2))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	p := startProcIn(t, dir, "cluster", filepath.Join(dir, "cluster.log"), nil, "cluster", "--nodes", "3",
		"--peer-port-base", strconv.Itoa(peerBase), "--client-port-base", strconv.Itoa(clientBase))
	if code := p.wait(t, startDeadline); code != 1 {
		t.Fatalf("raftex cluster exited %d with n2's port taken, want 1:\n%s", code, p.log())
	}
	if !strings.Contains(p.log(), "raftex: n2 exited (exit status 1); stopped the others") {
		t.Fatalf("output:\n%s", p.log())
	}
	if _, err := http.Get("http://" + addr(clientBase+1) + "/healthz"); err == nil {
		t.Fatal("n1 still serves")
	}
}

// childPIDs returns the pids of p's children (the children of each of
// its threads), from /proc.
func childPIDs(t *testing.T, p *proc) []int {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p.cmd.Process.Pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads of %s: %v", p.name, err)
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
