package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/raftex/raftex/client"
	"github.com/raftex/raftex/internal/loadgen"
	"github.com/raftex/raftex/kvapi"
)

// buildRaftex builds the raftex binary from the repository this module
// replaces github.com/raftex/raftex with (../..), with the repository's own
// go.mod, into dir/bin.
func buildRaftex(dir string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/raftex/raftex").Output()
	if err != nil {
		return "", fmt.Errorf("finding the repository (run from bench/compare, or pass --raftex-bin): %w", err)
	}
	repo := strings.TrimSpace(string(out))
	bin := filepath.Join(dir, "bin", "raftex")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/raftex")
	cmd.Dir, cmd.Stderr = repo, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building raftex in %s: %w", repo, err)
	}
	return bin, nil
}

// raftexCluster is three `raftex serve` processes on loopback, fsync on
// (serve has no way to turn it off), driven through the Go client
// round-robin over the nodes.
type raftexCluster struct {
	members []*proc
	load    *loadgen.Raftex
}

func startRaftex(ctx context.Context, bin, dir string) (*raftexCluster, error) {
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	var initial, endpoints []string
	for i := range 3 {
		initial = append(initial, fmt.Sprintf("n%d=127.0.0.1:%d", i+1, ports[2*i]))
		endpoints = append(endpoints, fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]))
	}
	c := &raftexCluster{}
	for i := range 3 {
		name := fmt.Sprintf("raftex-n%d", i+1)
		p, err := startProc(dir, name, bin, "serve", "--id", fmt.Sprintf("n%d", i+1),
			"--data-dir", filepath.Join(dir, name), "--peer-addr", fmt.Sprintf("127.0.0.1:%d", ports[2*i]),
			"--client-addr", endpoints[i], "--initial-cluster", strings.Join(initial, ","), "--log-format", "json")
		if err != nil {
			c.stop()
			return nil, err
		}
		c.members = append(c.members, p)
	}
	if c.load, err = loadgen.NewRaftex(endpoints, kvapi.Linearizable, client.Options{}); err != nil {
		c.stop()
		return nil, err
	}
	err = until(ctx, time.Minute, "a raftex write", c.members, func(ctx context.Context) error {
		return c.load.Put(ctx, "compare/ready", []byte("yes"))
	})
	if err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func (c *raftexCluster) name() string           { return "raftex" }
func (c *raftexCluster) target() loadgen.Target { return c.load }
func (c *raftexCluster) procs() []*proc         { return c.members }

func (c *raftexCluster) stop() {
	if c.load != nil {
		c.load.Close()
	}
	for _, p := range c.members {
		p.stop()
	}
}

// snapshot is a "snapshot taken" line of a node's log.
type snapshot struct {
	Index    uint64        `json:"index"`
	Duration time.Duration `json:"duration"`
	Bytes    int64         `json:"bytes"`
}

// lastSnapshot reads the last snapshot a node took from its log.
func lastSnapshot(p *proc) (snapshot, bool) {
	f, err := os.Open(p.log)
	if err != nil {
		return snapshot{}, false
	}
	defer f.Close()
	var last snapshot
	found := false
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Msg string `json:"msg"`
			snapshot
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "snapshot taken" {
			last, found = line.snapshot, true
		}
	}
	return last, found
}

// applied waits until every node applied what the first one committed.
func (c *raftexCluster) applied(ctx context.Context) error {
	cl, err := client.New([]string{"127.0.0.1:1"}, client.Options{})
	if err != nil {
		return err
	}
	defer cl.Close()
	endpoints := c.endpoints()
	return until(ctx, 5*time.Minute, "every raftex node applied the load", c.members, func(ctx context.Context) error {
		var commit uint64
		for i, e := range endpoints {
			st, err := cl.Status(ctx, e)
			if err != nil {
				return err
			}
			if i == 0 {
				commit = st.CommitIndex
			}
			if st.AppliedIndex < commit {
				return fmt.Errorf("%s applied %d of %d", st.ID, st.AppliedIndex, commit)
			}
		}
		return nil
	})
}

func (c *raftexCluster) endpoints() []string {
	var out []string
	for _, p := range c.members {
		args := p.cmd.Args
		for i, a := range args {
			if a == "--client-addr" {
				out = append(out, args[i+1])
			}
		}
	}
	return out
}
