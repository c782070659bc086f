package e2e

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/raftex/raftex/internal/e2etest"
)

// TestServeRefusesALockedDataDir: a second `raftex serve` on the data dir
// of a running node exits 1 and names the process that holds it; the
// running node goes on.
func TestServeRefusesALockedDataDir(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	nd := c.Nodes[0]
	p := ports.Free(t, 2)
	out, code := runRaftex(t, nil, "serve", "--id", nd.Name, "--data-dir", nd.DataDir,
		"--peer-addr", e2etest.Addr(p[0]), "--client-addr", e2etest.Addr(p[1]))
	pid := strconv.Itoa(nd.Proc.Cmd.Process.Pid)
	if code != 1 || !strings.Contains(out, "data dir is in use") || !strings.Contains(out, "process "+pid) {
		t.Fatalf("second serve on %s: exit %d, output %q; want exit 1 naming process %s", nd.DataDir, code, out, pid)
	}
	nd.Put(t, "still", "serving")
}

// TestServeAfterAFailedFirstStart: a first start whose peer port is taken
// fails and leaves no cluster file, so a start with the corrected
// --peer-addr and --initial-cluster takes them; given another
// --initial-cluster later, the node says in its log that its data dir's
// wins.
func TestServeAfterAFailedFirstStart(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	c := e2etest.PlanCluster(t, clusterConfig(1))
	nd := c.Nodes[0]
	out, code := runRaftex(t, nil, "serve", "--id", nd.Name, "--data-dir", nd.DataDir, "--peer-addr", taken.Addr().String(),
		"--client-addr", nd.ClientAddr, "--initial-cluster", nd.Name+"="+taken.Addr().String())
	if code != 1 || !strings.Contains(out, "address already in use") {
		t.Fatalf("serve on a taken peer port: exit %d, output %q; want exit 1", code, out)
	}
	if _, err := os.Stat(filepath.Join(nd.DataDir, "cluster.json")); err == nil {
		t.Fatal("the failed start left cluster.json")
	}
	c.Start(nd)
	c.Leader()
	st, err := nd.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 1 || st.Members[0].PeerAddr != nd.PeerAddr {
		t.Fatalf("members %+v, want %s at the corrected %s", st.Members, nd.Name, nd.PeerAddr)
	}
	b, err := os.ReadFile(filepath.Join(nd.DataDir, "cluster.json"))
	var stored struct{ Members map[string]string }
	if err != nil || json.Unmarshal(b, &stored) != nil || stored.Members["1"] != nd.PeerAddr {
		t.Fatalf("cluster.json = %s (%v), want n1 at %s", b, err, nd.PeerAddr)
	}

	c.Stop(nd)
	c.StartArgs(nd, append(c.ServeArgs(nd, false), "--initial-cluster", nd.Name+"="+taken.Addr().String()))
	c.Leader()
	if log := nd.Proc.Log(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, `given="n1=`+taken.Addr().String()+`"`) {
		t.Fatalf("no WARN naming the ignored --initial-cluster:\n%s", nd.Proc.Tail(10))
	}
}
