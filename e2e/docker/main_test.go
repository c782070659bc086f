// Package docker runs fault tests on a raftex cluster in containers: the
// real binary, built static into an image FROM scratch (deploy/Dockerfile),
// three containers on Docker networks, and the faults Docker can inject —
// SIGKILL (`docker kill`), a network partition (`docker network
// disconnect`), a frozen process (`docker pause`) and restarts of the whole
// cluster. While each fault happens, clients of package client run a
// workload whose history porcupine checks for linearizability, and every
// acknowledged write must be on every node afterwards.
//
// The package holds test files only. Run it with
//
//	go test ./e2e/docker -count=1 -timeout 15m
//
// Without Docker (no `docker` command, or `docker info` fails) every test
// that needs it skips, except under CI (the CI variable set), where it
// fails: CI must run them. When a test fails, its containers' logs (and
// porcupine's picture of a history that is not linearizable) go to
// $RAFTEX_ARTIFACTS/docker/<test>/; RAFTEX_DOCKER_TRACE=1 logs every docker
// command with its duration.
//
// Layout of a test cluster (names carry a run id, so runs and tests never
// collide):
//
//	host (this test)     127.0.0.1:P1       127.0.0.1:P2       127.0.0.1:P3
//	                          |                  |                  |
//	client network       [ n1:8000 ]        [ n2:8000 ]        [ n3:8000 ]    (ports published; no
//	                          |                  |                  |          container-to-container traffic)
//	peer network         n1:7000 ---------- n2:7000 ---------- n3:7000       (internal; aliases n1..n3,
//	                                                                          fixed addresses)
//
// Cutting a node off the peer network partitions it from the other nodes
// while the test still reaches its HTTP API through the published port.
// The test talks to the nodes only through 127.0.0.1, never to a
// container's own address.
// Every container, network and image is removed in cleanups; TestMain
// checks afterwards that none is left (and removes what a killed earlier
// run left behind).
package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Labels on every container, network and image the tests create.
const (
	labelRun = "raftex.e2e.docker.run" // the run id
	labelPID = "raftex.e2e.docker.pid" // the test process, to find leftovers of dead runs
)

// runID names this run's resources: unique per process on this machine.
var runID = fmt.Sprintf("%d%03d", os.Getpid(), time.Now().UnixMilli()%1000)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	if dockerAvailable() == nil {
		removeDeadRuns()
	}
	cleanup, err := makeCerts()
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e/docker: FAIL: making the certificates: %v\n", err)
		return 1
	}
	code := m.Run()
	if dockerAvailable() == nil {
		removeImage()
		if left := leftovers(); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "e2e/docker: FAIL: left behind (removed now):\n  %s\n", strings.Join(left, "\n  "))
			code = 1
		}
	}
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e/docker: FAIL: leaked goroutines: %v\n", err)
		code = 1
	}
	return code
}

// ---- is Docker here?

var docker struct {
	once sync.Once
	err  error
}

// dockerAvailable reports why Docker cannot be used (nil: it can).
func dockerAvailable() error {
	docker.once.Do(func() {
		if _, err := exec.LookPath("docker"); err != nil {
			docker.err = fmt.Errorf("no docker command: %w", err)
			return
		}
		if out, err := run(30*time.Second, "docker", "info", "--format", "{{.ServerVersion}}"); err != nil {
			docker.err = fmt.Errorf("docker info: %w", err)
		} else if strings.TrimSpace(out) == "" {
			docker.err = errors.New("docker info: no server version")
		}
	})
	return docker.err
}

// needDocker skips the test without Docker, or fails it under CI.
func needDocker(t *testing.T) {
	t.Helper()
	if err := dockerAvailable(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("docker is required in CI (CI=%q): %v", os.Getenv("CI"), err)
		}
		t.Skipf("skipped: Docker is not available (%v); CI fails instead", err)
	}
}

// ---- the image

var image struct {
	once sync.Once
	tag  string
	err  error
}

// testImage builds the image once per run, as deploy/Dockerfile says to.
// TestMain removes it.
func testImage(t *testing.T) string {
	t.Helper()
	needDocker(t)
	image.once.Do(func() { image.tag, image.err = buildImage() })
	if image.err != nil {
		t.Fatalf("building the image: %v", image.err)
	}
	return image.tag
}

// buildImage builds the image the documented way (deploy/build-image,
// which `make image` runs), labelled for this run.
func buildImage() (string, error) {
	tag := "raftex-e2e:" + runID
	if _, err := run(5*time.Minute, filepath.Join("..", "..", "deploy", "build-image"), tag,
		"--label", labelRun+"="+runID, "--label", labelPID+"="+strconv.Itoa(os.Getpid())); err != nil {
		return "", err
	}
	return tag, nil
}

func removeImage() {
	if image.tag != "" {
		run(time.Minute, "docker", "rmi", "-f", image.tag)
	}
}

// ---- leftovers

// leftovers lists (and removes) what this run left: containers, networks,
// volumes, the image.
func leftovers() []string {
	var left []string
	filter := "label=" + labelRun + "=" + runID
	for _, kind := range [][]string{
		{"container", "ls", "-a"}, {"network", "ls"}, {"volume", "ls"}, {"image", "ls"},
	} {
		args := append(append([]string{}, kind...), "-q", "--filter", filter)
		out, err := run(time.Minute, "docker", args...)
		if err != nil {
			left = append(left, fmt.Sprintf("cannot list %ss: %v", kind[0], err))
			continue
		}
		for _, id := range strings.Fields(out) {
			left = append(left, kind[0]+" "+id)
			remove(kind[0], id)
		}
	}
	return left
}

func remove(kind, id string) {
	switch kind {
	case "container":
		run(time.Minute, "docker", "rm", "-f", "-v", id)
	case "image":
		run(time.Minute, "docker", "rmi", "-f", id)
	default:
		run(time.Minute, "docker", kind, "rm", id)
	}
}

// removeDeadRuns removes what earlier runs left when they were killed
// before their cleanups ran (a test binary timing out panics): resources
// whose test process is gone. Those of live runs are left alone.
func removeDeadRuns() {
	for _, kind := range [][]string{
		{"container", "ls", "-a"}, {"network", "ls"}, {"volume", "ls"}, {"image", "ls"},
	} {
		args := append(append([]string{}, kind...), "--filter", "label="+labelPID,
			"--format", `{{.ID}} {{.Label "`+labelPID+`"}}`)
		out, err := run(time.Minute, "docker", args...)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) != 2 {
				continue
			}
			if pid, err := strconv.Atoi(f[1]); err == nil && !alive(pid) {
				remove(kind[0], f[0])
			}
		}
	}
}

func alive(pid int) bool {
	return pid == os.Getpid() || syscall.Kill(pid, 0) == nil
}

// ---- commands

// run runs a command to its end within timeout and returns its stdout; an
// error carries stderr.
func run(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// combined runs a command to its end within timeout and returns its
// stdout and stderr together.
func combined(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}
