package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func healthCmd() *cobra.Command {
	var clientAddr, listenClientAddr string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check that the node serving at --listen-client-addr (else --client-addr) is alive: exit 0 if its /healthz answers 200, else 1",
		Long: "Check a node's liveness through its GET /healthz, as a container HEALTHCHECK or a\n" +
			"supervisor does. It reads the same flags and variables as serve, so in the node's\n" +
			"environment it needs none. A host of every interface (0.0.0.0, ::) is dialed on loopback.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return usageError("--timeout must be positive, got %s", timeout)
			}
			addr := clientAddr
			if listenClientAddr != "" {
				addr = listenClientAddr
			}
			status, body, err := checkHealth(cmd.Context(), loopbackFor(addr), timeout)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), body)
			if status != 200 {
				return fmt.Errorf("%s/healthz answered %d", addr, status)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&clientAddr, "client-addr", "127.0.0.1:8000", "host:port of the node's HTTP API")
	f.StringVar(&listenClientAddr, "listen-client-addr", "", "host:port the node serves its HTTP API on, if not --client-addr")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	return cmd
}

// loopbackFor dials a listener on every interface through loopback.
func loopbackFor(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if wildcard(host) {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// checkHealth sends GET /healthz to addr and returns the status code and
// the body (trimmed); err is set when no answer came.
func checkHealth(ctx context.Context, addr string, timeout time.Duration) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return 0, "", &exitError{exitUsage, err}
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("%s: no answer: %w", addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}
