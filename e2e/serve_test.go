package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftex/raftex/internal/e2etest"
)

// TestServeFromEnvironment configures every node through RAFTEX_<FLAG>
// variables only, and checks each took effect; a flag on the command line
// beats its variable.
func TestServeFromEnvironment(t *testing.T) {
	t.Parallel()
	c := e2etest.PlanCluster(t, clusterConfig(3))
	for _, nd := range c.Nodes {
		env := []string{
			"RAFTEX_ID=" + nd.Name,
			"RAFTEX_DATA_DIR=" + nd.DataDir,
			"RAFTEX_PEER_ADDR=" + nd.PeerAddr,
			"RAFTEX_CLIENT_ADDR=" + nd.ClientAddr,
			"RAFTEX_INITIAL_CLUSTER=" + c.Initial,
			"RAFTEX_REQUEST_TIMEOUT=1500ms",
			"RAFTEX_LOG_FORMAT=json",
		}
		args := []string{"serve"}
		if nd.Name == "n3" {
			args = append(args, "--log-format", "text") // beats RAFTEX_LOG_FORMAT
		}
		c.StartArgs(nd, args, env...)
	}
	lead := c.Leader()
	for _, nd := range c.Nodes {
		st, err := nd.Status()
		if err != nil {
			t.Fatal(err)
		}
		if st.ID != nd.Name || len(st.Members) != 3 {
			t.Fatalf("status of %s: %+v", nd.Name, st)
		}
		for i, m := range st.Members {
			if m.PeerAddr != c.Nodes[i].PeerAddr {
				t.Errorf("%s lists %s at %s, want %s", nd.Name, m.ID, m.PeerAddr, c.Nodes[i].PeerAddr)
			}
		}
	}
	if err := putRetrying503(t, c.Followers(lead)[0], "env", "ok").Want(http.StatusOK); err != nil { // the request timeout is short
		t.Fatalf("PUT env: %v", err)
	}

	// The lines of the node's story come from a goroutine of their own,
	// and "serving" follows the listeners: wait for them, then check
	// every line written so far.
	for _, nd := range c.Nodes {
		if nd.Name == "n3" {
			waitLog(t, nd.Proc, `msg=serving`)
			continue
		}
		// The node's story at INFO (package inspect's Logger), in JSON.
		waitLog(t, nd.Proc, `"msg":"serving"`, `"msg":"log recovered"`, `"msg":"node started"`)
	}
	if lead.Name == "n3" {
		waitLog(t, lead.Proc, `msg="became leader" node=`+lead.Name)
	} else {
		waitLog(t, lead.Proc, `"msg":"became leader","node":"`+lead.Name+`"`)
	}
	// RAFTEX_LOG_FORMAT=json: every line is a JSON object; n3's flag
	// made its lines text.
	for _, nd := range c.Nodes {
		lines := strings.Split(strings.TrimSpace(nd.Proc.Log()), "\n")
		for _, line := range lines {
			var obj map[string]any
			isJSON := json.Unmarshal([]byte(line), &obj) == nil
			if wantJSON := nd.Name != "n3"; isJSON != wantJSON {
				t.Fatalf("%s logged %q (want JSON: %v)", nd.Name, line, wantJSON)
			}
		}
	}

	// RAFTEX_REQUEST_TIMEOUT=1500ms: a write without a quorum gives up
	// after it, and says so.
	survivor := c.Nodes[0]
	c.Kill(c.Nodes[1])
	c.Kill(c.Nodes[2])
	start := time.Now()
	r := must(t, http.MethodPut, survivor.URL("/v1/kv/no-quorum"), []byte("v"))
	want503(t, r)
	if !strings.Contains(string(r.Body), "within 1.5s") || time.Since(start) < 1500*time.Millisecond {
		t.Fatalf("503 after %s: %s; want one after the 1.5s request timeout", time.Since(start), r.Body)
	}
}

// TestServeUsageErrors: bad flags and variables exit 2 and say what is
// wrong; a data dir without state needs --initial-cluster.
func TestServeUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := ports.Free(t, 2)
	base := []string{"--data-dir", filepath.Join(dir, "d"), "--peer-addr", e2etest.Addr(p[0]), "--client-addr", e2etest.Addr(p[1])}
	ok := append([]string{"--id", "n1", "--initial-cluster", "n1=" + e2etest.Addr(p[0])}, base...)
	cases := []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"no id", nil, append([]string{"--initial-cluster", "n1=" + e2etest.Addr(p[0])}, base...), 2, "--id"},
		{"bad id", nil, append([]string{"--id", "x1"}, base...), 2, "invalid node id"},
		{"no data dir", nil, []string{"--id", "n1", "--peer-addr", e2etest.Addr(p[0]), "--client-addr", e2etest.Addr(p[1])}, 2, "--data-dir"},
		{"bad log format", nil, append(ok, "--log-format", "xml"), 2, "--log-format"},
		{"bad initial cluster", nil, append([]string{"--id", "n1", "--initial-cluster", "n1"}, base...), 2, "--initial-cluster"},
		{"bad timeout variable", []string{"RAFTEX_REQUEST_TIMEOUT=soon"}, ok, 2, "RAFTEX_REQUEST_TIMEOUT"},
		{"bad id variable", []string{"RAFTEX_ID=zz"}, base, 2, "invalid node id"},
		{"unknown flag", nil, append(ok, "--peers", "x"), 2, "unknown flag: --peers"},
		{"argument", nil, append(ok, "extra"), 2, "unknown command"},
		{"not in the initial cluster", nil, append([]string{"--id", "n2", "--initial-cluster", "n1=" + e2etest.Addr(p[0])}, base...), 1, "does not include this node n2"},
		{"no state, no initial cluster", nil, append([]string{"--id", "n1"}, base...), 1, "holds no cluster yet"},
		{"client on every interface without TLS", nil, append(ok, "--listen-client-addr", "0.0.0.0:"+strconv.Itoa(p[1])), 2, "client listener 0.0.0.0:"},
		{"peers on every interface without TLS", []string{"RAFTEX_LISTEN_PEER_ADDR=[::]:" + strconv.Itoa(p[0])}, ok, 2, "peer listener [::]:"},
		{"peer certificate without a key", nil, append(ok, "--peer-cert-file", "n1.crt"), 2, "--peer-cert-file and --peer-key-file go together"},
		{"peer TLS without a CA", nil, append(ok, "--peer-cert-file", "n1.crt", "--peer-key-file", "n1.key"), 2, "--peer-trusted-ca-file is needed"},
		{"missing certificate", nil, append(ok, "--cert-file", filepath.Join(dir, "none.crt"), "--key-file", filepath.Join(dir, "none.key")), 1, "none.crt"},
	}
	for _, tc := range cases {
		out, code := runRaftex(t, tc.env, append([]string{"serve"}, tc.args...)...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%s: exit %d, output %q; want exit %d and %q", tc.name, code, out, tc.code, tc.want)
		}
	}
}

// TestRestartKeepsEverything stops nodes with SIGTERM and SIGINT (each
// exits 0), writes while they are down, and restarts them without
// --initial-cluster (or with one that must be ignored): they rejoin, catch
// up, and after a restart of the whole cluster every write is there.
func TestRestartKeepsEverything(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	written := map[string]uint64{}
	write := func(key string) {
		lead := c.Leader()
		written[key] = c.Followers(lead)[0].Put(t, key, "value of "+key)
	}
	write("a")

	// A follower stops on SIGTERM, misses writes, comes back without
	// --initial-cluster and catches up.
	lead := c.Leader()
	f := c.Followers(lead)[0]
	if code := c.Stop(f); code != 0 {
		t.Fatalf("%s exited %d on SIGTERM:\n%s", f.Name, code, f.Proc.Tail(10))
	}
	if !strings.Contains(f.Proc.Log(), `msg="shutting down" signal=terminated`) {
		t.Errorf("%s did not log its shutdown:\n%s", f.Name, f.Proc.Tail(5))
	}
	for i := range 20 {
		written[fmt.Sprintf("while-down/%d", i)] = lead.Put(t, fmt.Sprintf("while-down/%d", i), fmt.Sprintf("value of while-down/%d", i))
	}
	c.Restart(f)
	// Once ready, the node has caught up: its own state holds every
	// write acknowledged before.
	soon.Until(t, f.Name+" ready", func() error {
		r, err := get(f.URL("/readyz"))
		if err != nil {
			return err
		}
		return r.Want(http.StatusOK)
	})
	checkAll(t, []*e2etest.Node{f}, written, "?consistency=stale")

	// The leader stops on SIGINT; the others go on.
	if code := func() int { lead.Proc.Signal(t, syscall.SIGINT); return lead.Proc.Wait(t, startDeadline) }(); code != 0 {
		t.Fatalf("leader %s exited %d on SIGINT", lead.Name, code)
	}
	write("b")
	// An --initial-cluster given to a node with state is ignored, even a
	// wrong one.
	c.StartArgs(lead, append(c.ServeArgs(lead, false), "--initial-cluster", lead.Name+"="+lead.PeerAddr+",n9=127.0.0.1:1"))
	write("c")

	// The whole cluster stops and starts again.
	for _, nd := range c.Nodes {
		if code := c.Stop(nd); code != 0 {
			t.Fatalf("%s exited %d on SIGTERM", nd.Name, code)
		}
	}
	for _, nd := range c.Nodes {
		c.Restart(nd)
	}
	c.Leader()
	checkAll(t, c.Nodes, written, "")
	write("d")
	checkAll(t, c.Nodes, written, "")
}

// checkAll reads every key of written on every node of nodes.
func checkAll(t *testing.T, nodes []*e2etest.Node, written map[string]uint64, query string) {
	t.Helper()
	for _, nd := range nodes {
		for key, rev := range written {
			r := must(t, http.MethodGet, nd.URL("/v1/kv/"+key+query), nil)
			if r.Code != http.StatusOK || string(r.Body) != "value of "+key || headerRevision(t, r) != rev {
				t.Fatalf("%s%s on %s = %d %q rev %s, want revision %d", key, query, nd.Name, r.Code, r.Body, r.Header.Get("Raftex-Revision"), rev)
			}
		}
	}
}

// TestRestartWithNewClientAddresses restarts the whole cluster with the
// client ports rotated (each node takes another's old one): every node
// publishes its new address through the log, /v1/status shows them, and
// followers forward writes to the leader's new address.
func TestRestartWithNewClientAddresses(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	lead := c.Leader()
	rev := c.Followers(lead)[0].Put(t, "k", "v")
	for _, nd := range c.Nodes {
		c.Stop(nd)
	}
	old := c.Endpoints()
	fresh := ports.Free(t, 1)
	for i, nd := range c.Nodes {
		if i+1 < len(old) {
			nd.ClientAddr = old[i+1]
		} else {
			nd.ClientAddr = e2etest.Addr(fresh[0])
		}
	}
	for _, nd := range c.Nodes {
		c.Restart(nd)
	}
	lead = c.Leader()
	c.Published()
	for _, nd := range c.Followers(lead) {
		nd.Put(t, "via/"+nd.Name, "v")
	}
	r := must(t, http.MethodGet, c.Nodes[2].URL("/v1/kv/k"), nil)
	if string(r.Body) != "v" || headerRevision(t, r) != rev {
		t.Fatalf("k = %q rev %d after the restart, want v rev %d", r.Body, headerRevision(t, r), rev)
	}
}

// TestWALDump runs `raftex wal dump` on a stopped node's data dir (and on
// its raft/ dir) after some writes: it lists every entry up to the last.
func TestWALDump(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	lead := c.Leader()
	var last uint64
	for i := range 5 {
		last = lead.Put(t, fmt.Sprintf("dump/%d", i), "v")
	}
	nd := c.Followers(lead)[0]
	soon.Until(t, nd.Name+" applied the writes", func() error {
		st, err := nd.Status()
		if err != nil {
			return err
		}
		if st.AppliedIndex < last {
			return fmt.Errorf("applied %d of %d", st.AppliedIndex, last)
		}
		return nil
	})
	c.Stop(nd)
	for _, dir := range []string{nd.DataDir, filepath.Join(nd.DataDir, "raft")} {
		out, code := runRaftex(t, nil, "wal", "dump", dir)
		if code != 0 {
			t.Fatalf("wal dump %s: exit %d\n%s", dir, code, out)
		}
		for _, want := range []string{
			"== log " + filepath.Join(nd.DataDir, "raft", "wal"),
			"segment ",
			"membership voters=[1 2 3]",
			"hardstate  term=",
			fmt.Sprintf("entry      index=%d term=", last),
			"== snapshots",
		} {
			if !strings.Contains(out, want) {
				t.Fatalf("wal dump %s lacks %q:\n%s", dir, want, out)
			}
		}
	}
	if out, code := runRaftex(t, nil, "wal", "dump", filepath.Join(c.Dir, "nowhere")); code == 0 {
		t.Fatalf("wal dump of a missing dir exited 0:\n%s", out)
	}
}

// TestServeFlags: serve has exactly the flags of the issue, with their
// defaults.
func TestServeFlags(t *testing.T) {
	t.Parallel()
	out, code := runRaftex(t, nil, "serve", "--help")
	if code != 0 {
		t.Fatalf("serve --help: exit %d\n%s", code, out)
	}
	var flags []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for _, w := range f {
			if strings.HasPrefix(w, "--") {
				flags = append(flags, w)
				break
			}
		}
	}
	want := "--allowed-hosts --cert-file --client-addr --client-cert-auth --cors-origins --data-dir --enable-pprof --help --id --initial-cluster --initial-cluster-token " +
		"--insecure --join --key-file --learner --listen-client-addr --listen-peer-addr --log-format --max-requests --max-requests-per-client --max-streams --max-watchers --password --peer-addr " +
		"--peer-cert-allowed-cn --peer-cert-file --peer-key-file --peer-trusted-ca-file --request-timeout --token-ttl --trusted-ca-file --user --watch-history --watch-history-bytes"
	if got := strings.Join(flags, " "); got != want {
		t.Errorf("serve flags: %s\nwant: %s", got, want)
	}
	for _, d := range []string{`--request-timeout duration`, `(default 5s)`, `--log-format string`, `(default "text")`,
		"[env RAFTEX_REQUEST_TIMEOUT]", "[required; env RAFTEX_ID]"} {
		if !strings.Contains(out, d) {
			t.Errorf("serve --help lacks %q:\n%s", d, out)
		}
	}
}

// TestServeListenAndAdvertise: with --listen-peer-addr and
// --listen-client-addr a node listens on every interface and advertises
// the names given as --peer-addr and --client-addr: the members list them,
// followers forward to them, and the log's dashboard URL is one a browser
// opens. Listening on every interface without TLS needs --insecure, and
// logs a warning.
func TestServeListenAndAdvertise(t *testing.T) {
	t.Parallel()
	c := e2etest.PlanCluster(t, clusterConfig(3))
	var initial []string
	for _, nd := range c.Nodes {
		initial = append(initial, nd.Name+"=localhost:"+port(nd.PeerAddr))
	}
	for _, nd := range c.Nodes {
		c.StartArgs(nd, []string{"serve", "--id", nd.Name, "--data-dir", nd.DataDir,
			"--peer-addr", "localhost:" + port(nd.PeerAddr), "--listen-peer-addr", "0.0.0.0:" + port(nd.PeerAddr),
			"--client-addr", "localhost:" + port(nd.ClientAddr), "--listen-client-addr", "0.0.0.0:" + port(nd.ClientAddr),
			"--initial-cluster", strings.Join(initial, ","), "--insecure"})
	}
	lead := c.Leader()
	soon.Until(t, "every member listed at its advertised addresses", func() error {
		st, err := lead.Status()
		if err != nil {
			return err
		}
		for i, m := range st.Members {
			nd := c.Nodes[i]
			if m.PeerAddr != "localhost:"+port(nd.PeerAddr) || m.ClientAddr != "localhost:"+port(nd.ClientAddr) {
				return fmt.Errorf("%s listed at peer %q client %q", m.ID, m.PeerAddr, m.ClientAddr)
			}
		}
		return nil
	})
	c.Followers(lead)[0].Put(t, "advertised", "v") // forwarded to the leader's advertised address
	for _, nd := range c.Nodes {
		// The "serving" line, which names the addresses, follows the
		// listeners: the node may answer before it is written.
		waitLog(t, nd.Proc, fmt.Sprintf("dashboard=http://localhost:%s/ui/", port(nd.ClientAddr)),
			"listen_client_addr=[::]:"+port(nd.ClientAddr),
			"level=WARN msg=\"INSECURE: listening beyond loopback without TLS")
	}
}

func port(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }

// TestServeExitsAfterStorageFailure: when the leader's disk refuses a
// write (here: a file size limit, as a full disk would), the write in
// flight is answered (503, outcome unknown), and the process exits 1, so
// that a supervisor restarts it; the restarted node has every write
// acknowledged before.
func TestServeExitsAfterStorageFailure(t *testing.T) {
	t.Parallel()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("prlimit (util-linux) is required in CI: %v", err)
		}
		t.Skip("prlimit (util-linux) is not installed")
	}
	c := newCluster(t, 3)
	lead := c.Leader()
	// Grow the log well past the size of the node's own log file, so the
	// limit below stops the WAL, not the node's log lines.
	big := strings.Repeat("v", 256<<10)
	var acked []uint64
	for i := range 3 {
		acked = append(acked, lead.Put(t, fmt.Sprintf("big%d", i), big))
	}
	var walSize int64
	filepath.Walk(filepath.Join(lead.DataDir, "raft", "wal"), func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && info.Size() > walSize {
			walSize = info.Size()
		}
		return nil
	})
	if logSize := int64(len(lead.Proc.Log())); walSize < 4*logSize {
		t.Fatalf("the WAL (%d bytes) is not well past the log file (%d bytes)", walSize, logSize)
	}
	if out, err := exec.Command(prlimit, "--pid", fmt.Sprint(lead.Proc.Cmd.Process.Pid), fmt.Sprintf("--fsize=%d", walSize)).CombinedOutput(); err != nil {
		t.Fatalf("prlimit: %v: %s", err, out)
	}
	r := must(t, http.MethodPut, lead.URL("/v1/kv/after-the-limit"), []byte(big))
	want503(t, r)
	code := lead.Proc.Wait(t, startDeadline)
	if code != 1 {
		t.Fatalf("the node exited %d after its storage failed, want 1:\n%s", code, lead.Proc.Tail(10))
	}
	for _, want := range []string{"storage failed", `msg="exiting: the node stopped"`} {
		if !strings.Contains(lead.Proc.Log(), want) {
			t.Errorf("the log lacks %q:\n%s", want, lead.Proc.Tail(10))
		}
	}
	c.Restart(lead)
	c.Leader()
	for i, rev := range acked {
		r := must(t, http.MethodGet, lead.URL(fmt.Sprintf("/v1/kv/big%d", i)), nil)
		if r.Code != http.StatusOK || headerRevision(t, r) != rev {
			t.Fatalf("big%d after the restart: %d, revision %s, want %d", i, r.Code, r.Header.Get("Raftex-Revision"), rev)
		}
	}
}
