package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// runCLI runs raftex in this process with args (and the environment as the
// test set it) and returns what it printed and its exit code.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCLIInput(t, "", args...)
}

// runCLIInput is runCLI with stdin.
func runCLIInput(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

// golden compares got with testdata/name.golden (-update rewrites it).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/raftex -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./cmd/raftex -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// transcript runs each command and writes what a terminal would show:
// the command, stdout, stderr and a non-zero exit code.
func transcript(t *testing.T, cmds ...[]string) string {
	t.Helper()
	var b strings.Builder
	for _, args := range cmds {
		stdout, stderr, code := runCLI(t, args...)
		b.WriteString("$ raftex " + strings.Join(args, " ") + "\n" + stdout + stderr)
		if code != 0 {
			b.WriteString("[exit " + string(rune('0'+code)) + "]\n")
		}
	}
	return b.String()
}

// TestCLIUsageGolden: what the commands print for usage errors, missing
// flags, bad words from the flag or the environment, each with exit 2 and
// one "raftex: " prefix.
func TestCLIUsageGolden(t *testing.T) {
	got := transcript(t,
		[]string{"serve"},
		[]string{"serve", "--id", "n1", "--log-format", "xml"},
		[]string{"get", "k", "--consistency", "bogus"},
		[]string{"put", "k", "v", "--cas", "-1", "--endpoints", "127.0.0.1:1"},
		[]string{"put", "k"},
		[]string{"status", "-o", "revision"},
		[]string{"nosuch"},
		[]string{"serve", "--id", "n4", "--data-dir", "d", "--peer-addr", "h:7004", "--client-addr", "h:8004",
			"--join", "http://h:8001", "--initial-cluster", "n1=h:7001"},
		[]string{"serve", "--id", "n4", "--data-dir", "d", "--peer-addr", "h:7004", "--client-addr", "h:8004", "--learner"},
	)
	t.Setenv("RAFTEX_CONSISTENCY", "bogus")
	got += transcript(t, []string{"get", "k"})
	golden(t, "usage", got)
	if strings.Contains(got, "raftex: raftex:") {
		t.Errorf("a doubled prefix:\n%s", got)
	}
}

// TestCLIHelpGolden: --help of the key-value commands, serve and the
// membership commands, every flag with its variable.
func TestCLIHelpGolden(t *testing.T) {
	for _, cmd := range []string{"put", "get", "del", "ls", "watch", "txn", "status", "serve", "health", "bench", "member add", "leader transfer"} {
		stdout, _, code := runCLI(t, append(strings.Fields(cmd), "--help")...)
		if code != 0 {
			t.Fatalf("%s --help: exit %d", cmd, code)
		}
		golden(t, "help_"+strings.ReplaceAll(cmd, " ", "_"), stdout)
	}
}

// Every flag of every command shows its variable in --help, and the
// variable sets the flag as the flag would.
func TestEveryFlagHasItsVariable(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if want := "[env " + envName(f) + "]"; f.Name != "help" && !strings.Contains(f.Usage, want) &&
				!strings.Contains(f.Usage, "; env "+envName(f)+"]") {
				t.Errorf("%s --%s: usage %q does not name %s", c.CommandPath(), f.Name, f.Usage, envName(f))
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot())
}

// RAFTEX_CAS makes put and del conditional exactly as --cas does: it was
// read before the environment was bound, and ignored.
func TestCASFromTheEnvironment(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/sessions" { // the client registers its session first
			w.Write([]byte(`{"client_id":1}`))
			return
		}
		seen = append(seen, r.Method+" "+r.URL.RawQuery)
		w.Write([]byte(`{"revision":9,"deleted":true}`))
	}))
	defer srv.Close()
	t.Setenv("RAFTEX_CAS", "7")
	t.Setenv("RAFTEX_ENDPOINTS", srv.Listener.Addr().String())
	for _, args := range [][]string{{"put", "k", "v"}, {"del", "k"}} {
		if _, stderr, code := runCLI(t, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
	}
	if len(seen) != 2 || seen[0] != "PUT cas=7" || seen[1] != "DELETE cas=7" {
		t.Fatalf("requests %q, want cas=7 on both", seen)
	}
}

// fakeStatus serves GET /v1/status with st.
func fakeStatus(t *testing.T, st map[string]any) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestStatusWithoutALeaderGolden: members answer but none leads: the
// table, then exit 5 saying writes are unavailable; -o json the same rows.
func TestStatusWithoutALeaderGolden(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downAddr := down.Listener.Addr().String()
	down.Close() // nothing listens there now
	n2 := fakeStatus(t, nil)
	n2Addr := n2.Listener.Addr().String()
	members := []map[string]any{
		{"id": "n1", "client_addr": downAddr, "voter": true},
		{"id": "n2", "client_addr": n2Addr, "voter": true},
	}
	n2.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": "n2", "role": "precandidate", "term": 4, "leader": "",
			"commit_index": 9, "applied_index": 9, "last_index": 10, "members": members})
	})
	stdout, stderr, code := runCLI(t, "status", "--endpoints", n2Addr)
	got := strings.NewReplacer(downAddr, "N1ADDR", n2Addr, "N2ADDR").Replace(stdout + stderr)
	if code != exitUnavailable {
		t.Errorf("status without a leader: exit %d, want %d", code, exitUnavailable)
	}
	stdout, _, code = runCLI(t, "status", "--endpoints", n2Addr, "-o", "json")
	got += strings.NewReplacer(downAddr, "N1ADDR", n2Addr, "N2ADDR").Replace(stdout)
	if code != exitUnavailable {
		t.Errorf("status -o json without a leader: exit %d", code)
	}
	golden(t, "status_no_leader", got)
}

func TestVersion(t *testing.T) {
	want := regexp.MustCompile(`^raftex \S+\ncommit \S+( \(modified\))?\ngo go1\.\d+\S*\n$`)
	for _, args := range [][]string{{"version"}, {"--version"}} {
		stdout, _, code := runCLI(t, args...)
		if code != 0 || !want.MatchString(stdout) {
			t.Errorf("raftex %s: exit %d, %q", args[0], code, stdout)
		}
	}
}

func TestInvokedAs(t *testing.T) {
	for arg0, want := range map[string]string{
		"./raftex":          "./raftex",
		"raftex":            "raftex",
		"bin/raftex":        "bin/raftex",
		"/usr/local/bin/rx": "/usr/local/bin/rx",
		filepath.Join(os.TempDir(), "go-build123", "b001", "exe", "raftex"): "go run ./cmd/raftex",
	} {
		if got := invokedAs(arg0); got != want {
			t.Errorf("invokedAs(%q) = %q, want %q", arg0, got, want)
		}
	}
}

func TestDashboardURL(t *testing.T) {
	for addr, want := range map[string]string{
		"[::]:8000":      "http://localhost:8000/ui/",
		"0.0.0.0:8001":   "http://localhost:8001/ui/",
		":8002":          "http://localhost:8002/ui/",
		"n1:8000":        "http://n1:8000/ui/",
		"127.0.0.1:8003": "http://127.0.0.1:8003/ui/",
	} {
		if got := dashboardURL("http", addr); got != want {
			t.Errorf("dashboardURL(http, %q) = %q, want %q", addr, got, want)
		}
	}
}
