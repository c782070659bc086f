package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftex/raftex/internal/tlsutil"
)

func healthCmd() *cobra.Command {
	var clientAddr, listenClientAddr string
	var files tlsutil.Files
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
			var tlsCfg *tls.Config
			if files.Cert != "" {
				var err error
				if tlsCfg, err = tlsutil.ProbeConfig(files); err != nil {
					return &exitError{exitUsage, err}
				}
			}
			status, body, err := checkHealth(cmd.Context(), loopbackFor(addr), tlsCfg, timeout)
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
	f.StringVar(&files.Cert, "cert-file", "", "the node's HTTPS certificate: speak https, presenting it as the client certificate")
	f.StringVar(&files.Key, "key-file", "", "key of --cert-file")
	f.StringVar(&files.CA, "trusted-ca-file", "", "CA that verifies the node's certificate (needed with --cert-file)")
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

// checkHealth sends GET /healthz to addr (over https with tlsCfg) and
// returns the status code and the body (trimmed); err is set when no
// answer came.
func checkHealth(ctx context.Context, addr string, tlsCfg *tls.Config, timeout time.Duration) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+"/healthz", nil)
	if err != nil {
		return 0, "", &exitError{exitUsage, err}
	}
	tr := &http.Transport{TLSClientConfig: tlsCfg}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("%s: no answer: %w", addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}
