package docker

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftex/raftex/internal/e2etest"
)

// The compose files users run: `docker compose up` of three nodes, without
// and with TLS.
var (
	composeFile    = filepath.Join("..", "..", "deploy", "docker-compose.yml")
	composeTLSFile = filepath.Join("..", "..", "deploy", "docker-compose.tls.yml")
)

// TestDockerCompose brings up deploy/docker-compose.yml with this run's
// image and its client ports on free loopback ports, and checks that it is
// a working cluster: one leader, a write through every node (followers
// forward it), read back through every node; `down -v` leaves nothing.
func TestDockerCompose(t *testing.T) { testCompose(t, composeFile, "compose") }

// TestDockerComposeTLS does the same with deploy/docker-compose.tls.yml,
// through https with the client certificate its certs service made (the
// nodes require one), as its header tells users to.
func TestDockerComposeTLS(t *testing.T) { testCompose(t, composeTLSFile, "compose-tls") }

func testCompose(t *testing.T, composeFile, name string) {
	img := testImage(t)
	compose := composeCommand(t)
	project := "raftex-e2e-" + runID + "-" + name
	hostPorts := ports.Free(t, 3)
	var nodes []*member
	env := append(os.Environ(), "RAFTEX_IMAGE="+img)
	for i, p := range hostPorts {
		m := newMember(i+1, p)
		env = append(env, fmt.Sprintf("RAFTEX_N%d_PORT=%s", i+1, m.ClientAddr))
		nodes = append(nodes, m)
	}
	run := func(args ...string) (string, error) {
		args = append(append(append([]string{}, compose[1:]...), "--project-name", project, "--file", composeFile), args...)
		cmd := exec.Command(compose[0], args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("%s %s: %w\n%s", compose[0], strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := run("logs", "--no-color", "--timestamps")
			if dir := artifactDir(t); dir != "" {
				os.WriteFile(filepath.Join(dir, "compose.log"), []byte(logs), 0o644)
			}
			t.Logf("last lines of the cluster's log:\n%s", e2etest.LastLines(logs, 40))
		}
		if _, err := run("down", "--volumes", "--remove-orphans", "--timeout", "10"); err != nil {
			t.Errorf("compose down: %v", err)
		}
		filter := "label=com.docker.compose.project=" + project
		for _, kind := range []string{"container", "network", "volume"} {
			args := []string{kind, "ls", "-q", "--filter", filter}
			if kind == "container" {
				args = append(args, "--all")
			}
			out, err := combined(dockerTimeout, "docker", args...)
			if left := strings.Fields(out); err != nil || len(left) > 0 {
				t.Errorf("after compose down: %ss of project %s left: %v %v", kind, project, left, err)
				for _, id := range left {
					remove(kind, id)
				}
			}
		}
	})
	if _, err := run("up", "--detach", "--no-build"); err != nil {
		t.Fatal(err)
	}
	writer := probe
	if composeFile == composeTLSFile {
		writer = composeClient(t, run)
		for _, m := range nodes {
			m.Scheme, m.HTTP = "https", writer
		}
	}
	c := &cluster{t: t, nodes: nodes}
	lead := c.leader(nodes...)
	for _, m := range nodes {
		key := "compose/" + m.Name
		r, err := e2etest.Do(writer, http.MethodPut, m.URL("/v1/kv/"+key), []byte(m.Name))
		if err != nil || r.Code != http.StatusOK {
			t.Fatalf("write through %s (leader %s) = %d %s (%v), want 200", m.Name, lead.Name, r.Code, r.Body, err)
		}
	}
	for _, m := range nodes {
		for _, w := range nodes {
			r, err := m.Get("/v1/kv/compose/" + w.Name)
			if err != nil || r.Code != http.StatusOK || string(r.Body) != w.Name {
				t.Errorf("read of compose/%s through %s = %d %q (%v), want %q", w.Name, m.Name, r.Code, r.Body, err, w.Name)
			}
		}
	}
}

// composeClient copies the certificates out of the TLS compose project's
// certs service (once it has written them) and returns an https client
// that trusts its CA and presents its client certificate.
func composeClient(t *testing.T, run func(args ...string) (string, error)) *http.Client {
	t.Helper()
	dir := t.TempDir()
	poll.Until(t, "the certs service's certificates", func() error {
		out, err := run("ps", "--all", "--quiet", "certs")
		ids := strings.Fields(out) // the id is the last line; warnings may come first
		if err != nil || len(ids) == 0 {
			return fmt.Errorf("no certs container yet: %q %v", out, err)
		}
		_, err = combined(dockerTimeout, "docker", "cp", ids[len(ids)-1]+":/data/.", dir)
		return err
	})
	pem, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: probe.Timeout, Transport: tr}
}

// composeCommand is `docker compose` (v2) or `docker-compose` (v1),
// whichever works; without either the test skips, or fails under CI.
func composeCommand(t *testing.T) []string {
	t.Helper()
	if _, err := run(time.Minute, "docker", "compose", "version"); err == nil {
		return []string{"docker", "compose"}
	}
	_, err := run(time.Minute, "docker-compose", "version")
	if err == nil {
		return []string{"docker-compose"}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("docker compose is required in CI: neither `docker compose` nor `docker-compose` works: %v", err)
	}
	t.Skipf("skipped: neither `docker compose` nor `docker-compose` works (%v)", err)
	return nil
}
