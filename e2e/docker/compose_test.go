package docker

import (
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

// composeFile is the one users run: `docker compose up` of three nodes.
var composeFile = filepath.Join("..", "..", "deploy", "docker-compose.yml")

// TestDockerCompose brings up deploy/docker-compose.yml with this run's
// image and its client ports on free loopback ports, and checks that it is
// a working cluster: one leader, a write through every node (followers
// forward it), read back through every node; `down -v` leaves nothing.
func TestDockerCompose(t *testing.T) {
	img := testImage(t)
	compose := composeCommand(t)
	project := "raftex-e2e-" + runID + "-compose"
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
	c := &cluster{t: t, nodes: nodes}
	lead := c.leader(nodes...)
	for _, m := range nodes {
		key := "compose/" + m.Name
		r, err := e2etest.Do(probe, http.MethodPut, m.URL("/v1/kv/"+key), []byte(m.Name))
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
