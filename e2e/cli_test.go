package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/raftex/raftex/internal/e2etest"
)

// TestCLI runs `raftex put/get/del/status` against a cluster and checks
// what they print and how they exit: 0 done, 2 usage, 3 not found, 4 CAS
// mismatch, 5 unavailable.
func TestCLI(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	lead := c.Leader()
	eps := "--endpoints=" + strings.Join(c.Endpoints(), ",")
	// A follower alone: it forwards.
	one := "--endpoints=" + c.Followers(lead)[0].ClientAddr

	type run struct {
		args   []string
		env    []string
		code   int
		stdout string // a regexp the whole stdout must match
		stderr string // likewise stderr
	}
	check := func(t *testing.T, r run) []string {
		t.Helper()
		stdout, stderr, code := runCLI(t, r.env, r.args...)
		if code != r.code {
			t.Fatalf("raftex %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), code, r.code, stdout, stderr)
		}
		var groups []string
		for _, s := range []struct{ name, got, want string }{{"stdout", stdout, r.stdout}, {"stderr", stderr, r.stderr}} {
			m := regexp.MustCompile(`^(?s:` + s.want + `)$`).FindStringSubmatch(s.got)
			if m == nil {
				t.Fatalf("raftex %s: %s %q does not match %q", strings.Join(r.args, " "), s.name, s.got, s.want)
			}
			groups = append(groups, m[1:]...)
		}
		return groups
	}
	revOf := func(s string) uint64 {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("PutGetDel", func(t *testing.T) {
		rev := revOf(check(t, run{args: []string{"put", "greeting", "hello world", eps}, stdout: `OK revision=(\d+)\n`})[0])
		got := check(t, run{args: []string{"get", "greeting", one}, stdout: "hello world\n", stderr: `revision=(\d+)\n`})
		if revOf(got[0]) != rev {
			t.Fatalf("get revision %s, put said %d", got[0], rev)
		}
		for _, cons := range []string{"linearizable", "lease", "stale"} {
			check(t, run{args: []string{"get", "greeting", eps, "--consistency", cons}, stdout: "hello world\n", stderr: `revision=\d+\n`})
		}
		// Keys with slashes and spaces, values with newlines.
		check(t, run{args: []string{"put", "dir/sub dir/key", "line 1\nline 2", one}, stdout: `OK revision=\d+\n`})
		check(t, run{args: []string{"get", "dir/sub dir/key", eps}, stdout: "line 1\nline 2\n", stderr: `revision=\d+\n`})
		// Delete, then it is gone: get and del say not found, exit 3.
		delRev := revOf(check(t, run{args: []string{"del", "greeting", one}, stdout: `deleted revision=(\d+)\n`})[0])
		if delRev <= rev {
			t.Fatalf("delete revision %d not after %d", delRev, rev)
		}
		check(t, run{args: []string{"get", "greeting", eps}, code: 3, stderr: `raftex: key "greeting" not found\n`})
		check(t, run{args: []string{"del", "greeting", eps}, code: 3, stderr: `raftex: key "greeting" not found\n`})
	})

	t.Run("CAS", func(t *testing.T) {
		rev := revOf(check(t, run{args: []string{"put", "counter", "1", eps, "--cas", "0"}, stdout: `OK revision=(\d+)\n`})[0])
		check(t, run{args: []string{"put", "counter", "x", eps, "--cas", "0"}, code: 4,
			stderr: fmt.Sprintf(`raftex: revision mismatch: key "counter" is at revision %d\n`, rev)})
		check(t, run{args: []string{"put", "absent", "x", eps, "--cas", "3"}, code: 4,
			stderr: `raftex: revision mismatch: key "absent" is absent \(revision 0\)\n`})
		check(t, run{args: []string{"put", "counter", "2", one, "--cas", strconv.FormatUint(rev, 10)}, stdout: `OK revision=\d+\n`})
		check(t, run{args: []string{"del", "counter", eps, "--cas", strconv.FormatUint(rev, 10)}, code: 4, stderr: `raftex: revision mismatch: .*\n`})
		check(t, run{args: []string{"get", "counter", eps}, stdout: "2\n", stderr: `revision=\d+\n`})
	})

	t.Run("Status", func(t *testing.T) {
		// From one endpoint it finds every member. The rows must name the
		// leader the nodes agree on; an election since the cluster
		// started (a loaded machine) may have moved it, and one while
		// the command runs leaves rows that disagree: then it is run
		// again.
		soon.Until(t, "raftex status shows the leader the nodes agree on", func() error {
			lead := c.Leader()
			out, stderr, code := runCLI(t, nil, "status", one)
			switch {
			case code == 5: // no leader known: mid-election
				return fmt.Errorf("exit 5: %s", stderr)
			case code != 0 || stderr != "" || !regexp.MustCompile(`^ID +ENDPOINT +ROLE +TERM +LEADER +COMMIT +APPLIED +LAST\n(?:n\d.*\n){3}$`).MatchString(out):
				t.Fatalf("raftex status %s: exit %d\nstdout: %s\nstderr: %s", one, code, out, stderr)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")[1:]
			leaders := 0
			for i, line := range lines {
				f := strings.Fields(line)
				nd := c.Nodes[i]
				if len(f) != 8 || f[0] != nd.Name || f[1] != nd.ClientAddr {
					t.Fatalf("row %q: want %s at %s", line, nd.Name, nd.ClientAddr)
				}
				if f[4] != lead.Name {
					return fmt.Errorf("row %q: want %s led by %s", line, nd.Name, lead.Name)
				}
				if f[2] == "leader" {
					leaders++
				}
			}
			if leaders != 1 {
				return fmt.Errorf("%d leaders in\n%s", leaders, out)
			}
			return nil
		})
	})

	t.Run("Environment", func(t *testing.T) {
		env := []string{"RAFTEX_ENDPOINTS=" + strings.Join(c.Endpoints(), ",")}
		check(t, run{args: []string{"put", "from-env", "v"}, env: env, stdout: `OK revision=\d+\n`})
		check(t, run{args: []string{"get", "from-env"}, env: env, stdout: "v\n", stderr: `revision=\d+\n`})
		// A bare port takes the host before it, as in the default.
		ports := make([]string, 0, 3)
		for _, e := range c.Endpoints() {
			ports = append(ports, e[strings.LastIndex(e, ":")+1:])
		}
		short := "--endpoints=127.0.0.1:" + strings.Join(ports, ",")
		check(t, run{args: []string{"get", "from-env", short}, stdout: "v\n", stderr: `revision=\d+\n`})
		check(t, run{args: []string{"status", short}, stdout: `ID .*\n(?:n\d.*\n){3}`})
	})

	t.Run("Usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"put", "k"},
			{"put", "k", "v", "extra"},
			{"get"},
			{"del"},
			{"status", "x"},
			{"put", "k", "v", "--cas", "-1"},
			{"put", "k", "v", "--cas", "x"},
			{"del", "k", "--cas", "-2"},
			{"get", "k", "--consistency", "strong"},
			{"get", "k", "--timeout", "0s"},
			{"get", "k", "--endpoints", ","},
			{"get", "k", "--nosuch"},
			{"nosuch"},
			{"put", "", "v"},
			{"put", strings.Repeat("k", 1025), "v"},
		} {
			if !slices.Contains(args, "--endpoints") {
				args = append(args, eps)
			}
			check(t, run{args: args, code: 2, stderr: `raftex: .+\n`})
		}
		check(t, run{args: []string{"get", "k", eps}, code: 3, stderr: `raftex: key "k" not found\n`})
	})

	t.Run("Help", func(t *testing.T) {
		for _, cmd := range []string{"put", "get", "del", "status"} {
			check(t, run{args: []string{cmd, "--help"}, stdout: `.*--endpoints string .*\(default "127\.0\.0\.1:8001,127\.0\.0\.1:8002,127\.0\.0\.1:8003"\).*`})
		}
	})
}

// TestCLIUnavailable: with no node answering, every command exits 5
// after --timeout; status prints a row per endpoint that did not answer.
func TestCLIUnavailable(t *testing.T) {
	t.Parallel()
	p := ports.Free(t, 2)
	eps := fmt.Sprintf("--endpoints=%s,%s", e2etest.Addr(p[0]), e2etest.Addr(p[1]))
	for _, args := range [][]string{
		{"put", "k", "v"},
		{"get", "k"},
		{"del", "k"},
	} {
		stdout, stderr, code := runCLI(t, nil, append(args, eps, "--timeout", "500ms")...)
		if code != 5 || stdout != "" || !strings.Contains(stderr, "raftex: client: cluster unavailable") {
			t.Errorf("raftex %s: exit %d, stdout %q, stderr %q; want exit 5 and cluster unavailable", args[0], code, stdout, stderr)
		}
	}
	stdout, stderr, code := runCLI(t, nil, "status", eps, "--timeout", "500ms")
	if code != 5 || strings.Count(stdout, "unreachable") != 2 || stderr != "raftex: no member reachable\n" {
		t.Errorf("status: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestCLIStatusWithAMemberDown lists the member that is down as
// unreachable, at its published address, and exits 0.
func TestCLIStatusWithAMemberDown(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	lead := c.Leader()
	down := c.Followers(lead)[0]
	c.Kill(down)
	stdout, stderr, code := runCLI(t, nil, "status", "--endpoints="+lead.ClientAddr)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, stdout, stderr)
	}
	want := regexp.MustCompile(`(?m)^` + down.Name + ` +` + regexp.QuoteMeta(down.ClientAddr) + ` +unreachable( +-){5}$`)
	if !want.MatchString(stdout) || strings.Count(stdout, "\n") != 4 {
		t.Fatalf("status with %s down:\n%s", down.Name, stdout)
	}
}

// TestCLITimeoutSaysWhy: when --timeout ends while the client retries, the
// CLI prints the server's explanation (no quorum within its request
// timeout), not only its own deadline; status exits 5 with no leader.
func TestCLITimeoutSaysWhy(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, "--request-timeout", "1s")
	survivor := c.Nodes[0]
	c.Kill(c.Nodes[1])
	c.Kill(c.Nodes[2])
	// --timeout is well past the first 503 (1s after the request arrives,
	// however long the CLI took to start): the client has the server's
	// explanation by the time it gives up, retrying.
	stdout, stderr, code := runCLI(t, nil, "put", "k", "v", "--endpoints", survivor.ClientAddr, "--timeout", "10s")
	if code != 5 || stdout != "" || !strings.Contains(stderr, "no leader or no quorum answered within 1s") {
		t.Errorf("put without a quorum: exit %d, stdout %q, stderr %q; want exit 5 and the server's reason", code, stdout, stderr)
	}
	soon.Until(t, "status exits 5 once no leader is known", func() error {
		stdout, stderr, code := runCLI(t, nil, "status", "--endpoints", survivor.ClientAddr)
		if code != 5 || !strings.Contains(stderr, "no leader known") {
			return fmt.Errorf("exit %d: %s%s", code, stdout, stderr)
		}
		return nil
	})
}
