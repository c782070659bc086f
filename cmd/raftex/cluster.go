package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftex/raftex/internal/tlsutil"
	"github.com/raftex/raftex/node"
)

func clusterCmd() *cobra.Command {
	var (
		nodes                int
		dataDir, host        string
		peerBase, clientBase int
		useTLS               bool
	)
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Run a local cluster of N `raftex serve` processes until Ctrl-C",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 1 || nodes > 9 {
				return &exitError{2, fmt.Errorf("--nodes must be 1 to 9, got %d", nodes)}
			}
			if !useTLS && !loopback(net.JoinHostPort(host, "0")) {
				return usageError("--host %s is reachable from other machines: add --tls", host)
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			var tlsArgs []string
			scheme, cliFlags := "http", ""
			if useTLS {
				certs := filepath.Join(dataDir, "certs")
				req := tlsutil.Request{Dir: certs, Hosts: []string{host, "localhost"}, ClientCN: "root"}
				for i := 1; i <= nodes; i++ {
					req.Nodes = append(req.Nodes, node.FormatID(uint64(i)))
				}
				if _, err := tlsutil.Generate(req); err != nil {
					return err
				}
				ca := filepath.Join(certs, tlsutil.CACert)
				tlsArgs = []string{"--peer-trusted-ca-file", ca, "--trusted-ca-file", ca}
				scheme = "https"
				cliFlags = fmt.Sprintf(" --cacert %s --cert %s --key %s", ca, filepath.Join(certs, tlsutil.ClientCert), filepath.Join(certs, tlsutil.ClientKey))
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
			exited := make(chan int, nodes)
			procs := make([]*exec.Cmd, 0, nodes)
			defer func() { stopAll(procs, exited, len(procs)) }() // on an early return
			for i := 1; i <= nodes; i++ {
				name := node.FormatID(uint64(i))
				args := []string{"serve", "--id", name,
					"--data-dir", filepath.Join(dataDir, name),
					"--peer-addr", fmt.Sprintf("%s:%d", host, peerBase+i),
					"--client-addr", endpoints[i-1],
					"--initial-cluster", strings.Join(initial, ",")}
				if useTLS {
					crt, key := filepath.Join(dataDir, "certs", name+".crt"), filepath.Join(dataDir, "certs", name+".key")
					args = append(append(args, tlsArgs...), "--peer-cert-file", crt, "--peer-key-file", key, "--cert-file", crt, "--key-file", key)
				}
				p := exec.Command(self, args...)
				p.Env = withoutRaftexEnv(os.Environ())
				p.SysProcAttr = childProcAttr()
				pipe, err := p.StderrPipe()
				if err != nil {
					return err
				}
				p.Stdout = p.Stderr
				if err := p.Start(); err != nil {
					return fmt.Errorf("starting n%d: %w", i, err)
				}
				procs = append(procs, p)
				go func() {
					// Wait only once the output is read to its end (as
					// os/exec requires of StderrPipe).
					prefixLines(&mu, out, fmt.Sprintf("[n%d] ", i), pipe)
					p.Wait()
					exited <- i - 1
				}()
			}
			mu.Lock()
			fmt.Fprintf(out, "raftex cluster: %d nodes, data in %s\n", nodes, dataDir)
			for i, e := range endpoints {
				fmt.Fprintf(out, "  n%d  client %s://%s   peer %s:%d   dashboard %s://%s/ui/\n", i+1, scheme, e, host, peerBase+i+1, scheme, e)
			}
			epFlag := cliFlags
			if eps := strings.Join(endpoints, ","); eps != defaultEndpoints {
				epFlag = " --endpoints " + eps + epFlag
			}
			curl := ""
			if useTLS {
				certs := filepath.Join(dataDir, "certs")
				curl = fmt.Sprintf("--cacert %s --cert %s --key %s ", filepath.Join(certs, tlsutil.CACert), filepath.Join(certs, tlsutil.ClientCert), filepath.Join(certs, tlsutil.ClientKey))
			}
			me := invokedAs(os.Args[0])
			fmt.Fprintf(out, "try:\n  %[1]s put greeting hello%[2]s\n  %[1]s get greeting%[2]s\n  %[1]s status%[2]s\n  curl %[5]s-X PUT --data hello %[4]s://%[3]s/v1/kv/greeting\nCtrl-C stops every node.\n",
				me, epFlag, endpoints[0], scheme, curl)
			mu.Unlock()

			// A node stopped by a signal (kill -9 to watch a failover,
			// or a kill to stop it) leaves the others running; a node
			// that fails (exits with an error) stops them all.
			var failed error
			pending := len(procs)
		wait:
			for pending > 0 {
				select {
				case <-ctx.Done():
					break wait
				case i := <-exited:
					pending--
					st := procs[i].ProcessState
					if st.ExitCode() > 0 {
						failed = fmt.Errorf("n%d exited (%s); stopped the others", i+1, st)
						break wait
					}
					mu.Lock()
					fmt.Fprintf(out, "raftex cluster: n%d exited (%s); the others go on (Ctrl-C stops them)\n", i+1, st)
					mu.Unlock()
				}
			}
			if err := stopAll(procs, exited, pending); err != nil && failed == nil {
				failed = err
			}
			procs = nil
			if failed != nil {
				return &exitError{1, failed}
			}
			mu.Lock()
			fmt.Fprintln(out, "raftex cluster: every node stopped")
			mu.Unlock()
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&nodes, "nodes", 3, "number of nodes")
	f.StringVar(&dataDir, "data-dir", "./raftex-data", "parent directory of every node's data")
	f.StringVar(&host, "host", "127.0.0.1", "address to listen on")
	f.IntVar(&peerBase, "peer-port-base", 7000, "node i listens for peers on this + i")
	f.IntVar(&clientBase, "client-port-base", 8000, "node i serves HTTP on this + i")
	f.BoolVar(&useTLS, "tls", false, "mutual TLS between the nodes and https for clients, with certificates raftex certs writes into DATA_DIR/certs (kept across runs)")
	return cmd
}

// stopGrace is how long a node may take to stop on SIGTERM before it is
// killed.
const stopGrace = 10 * time.Second

// stopAll sends SIGTERM to every node and waits for the pending ones
// still running (each sends its index on exited once waited for), killing
// them after stopGrace, and reports those that did not stop cleanly.
func stopAll(procs []*exec.Cmd, exited <-chan int, pending int) error {
	for _, p := range procs {
		p.Process.Signal(syscall.SIGTERM) // fails harmlessly for the exited
	}
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
	var errs []error
	for range pending {
		var i int
		select {
		case i = <-exited:
		case <-grace.C:
			for _, p := range procs {
				p.Process.Kill()
			}
			i = <-exited
		}
		if st := procs[i].ProcessState; !st.Success() {
			errs = append(errs, fmt.Errorf("n%d: %s", i+1, st))
		}
	}
	return errors.Join(errs...)
}

// prefixLines copies r to out line by line, each prefixed.
func prefixLines(mu *sync.Mutex, out io.Writer, prefix string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mu.Lock()
		fmt.Fprintln(out, prefix+sc.Text())
		mu.Unlock()
	}
	io.Copy(io.Discard, r) // a line too long ended the scan: drain
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

// invokedAs is how to run this binary again from the same shell, for the
// hints a command prints: as typed when it was a relative path
// ("./raftex") or a name found on PATH ("raftex"); a binary that `go run`
// built in a temporary directory is "go run ./cmd/raftex"; any other
// absolute path as it is.
func invokedAs(arg0 string) string {
	switch {
	case !filepath.IsAbs(arg0):
		return arg0
	case strings.HasPrefix(arg0, os.TempDir()) && strings.Contains(arg0, string(filepath.Separator)+"go-build"):
		return "go run ./cmd/raftex"
	}
	return arg0
}
