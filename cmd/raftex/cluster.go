package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/raftex/raftex/node"
)

func clusterCmd() *cobra.Command {
	var (
		nodes                int
		dataDir, host        string
		peerBase, clientBase int
	)
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Run a local cluster of N `raftex serve` processes until Ctrl-C",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd); err != nil {
				return &exitError{2, err}
			}
			if nodes < 1 || nodes > 9 {
				return &exitError{2, fmt.Errorf("--nodes must be 1 to 9, got %d", nodes)}
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			var initial, endpoints []string
			for i := 1; i <= nodes; i++ {
				initial = append(initial, fmt.Sprintf("n%d=%s:%d", i, host, peerBase+i))
				endpoints = append(endpoints, fmt.Sprintf("%s:%d", host, clientBase+i))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			var mu sync.Mutex
			var wg sync.WaitGroup
			procs := make([]*exec.Cmd, 0, nodes)
			for i := 1; i <= nodes; i++ {
				p := exec.Command(self, "serve",
					"--id", node.FormatID(uint64(i)),
					"--data-dir", filepath.Join(dataDir, node.FormatID(uint64(i))),
					"--peer-addr", fmt.Sprintf("%s:%d", host, peerBase+i),
					"--client-addr", endpoints[i-1],
					"--initial-cluster", strings.Join(initial, ","))
				p.Env = withoutRaftexEnv(os.Environ())
				pipe, err := p.StderrPipe()
				if err != nil {
					return err
				}
				p.Stdout = p.Stderr
				if err := p.Start(); err != nil {
					return fmt.Errorf("starting n%d: %w", i, err)
				}
				procs = append(procs, p)
				wg.Add(1)
				go prefixLines(&wg, &mu, out, fmt.Sprintf("[n%d] ", i), pipe)
			}
			mu.Lock()
			fmt.Fprintf(out, "raftex cluster: %d nodes, data in %s\n", nodes, dataDir)
			for i, e := range endpoints {
				fmt.Fprintf(out, "  n%d  client http://%s   peer %s:%d   dashboard http://%s/ui/\n", i+1, e, host, peerBase+i+1, e)
			}
			fmt.Fprintf(out, "try:\n  raftex put greeting hello\n  raftex get greeting\n  raftex status\n  curl -X PUT --data hello http://%s/v1/kv/greeting\nCtrl-C stops every node.\n", endpoints[0])
			mu.Unlock()

			exited := make(chan int, nodes)
			for i, p := range procs {
				go func() { p.Wait(); exited <- i }()
			}
			select {
			case <-ctx.Done():
			case i := <-exited:
				fmt.Fprintf(out, "raftex cluster: n%d exited (%s); stopping the others\n", i+1, procs[i].ProcessState)
			}
			for _, p := range procs {
				p.Process.Signal(syscall.SIGTERM)
			}
			wg.Wait()
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&nodes, "nodes", 3, "number of nodes")
	f.StringVar(&dataDir, "data-dir", "./raftex-data", "parent directory of every node's data")
	f.StringVar(&host, "host", "127.0.0.1", "address to listen on")
	f.IntVar(&peerBase, "peer-port-base", 7000, "node i listens for peers on this + i")
	f.IntVar(&clientBase, "client-port-base", 8000, "node i serves HTTP on this + i")
	return cmd
}

// prefixLines copies r to out line by line, each prefixed.
func prefixLines(wg *sync.WaitGroup, mu *sync.Mutex, out io.Writer, prefix string, r io.Reader) {
	defer wg.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mu.Lock()
		fmt.Fprintln(out, prefix+sc.Text())
		mu.Unlock()
	}
}

// withoutRaftexEnv keeps the cluster's own flags from being overridden by
// RAFTEX_* variables meant for the parent.
func withoutRaftexEnv(env []string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, "RAFTEX_") {
			out = append(out, e)
		}
	}
	return out
}
