package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftex/raftex"
	"github.com/raftex/raftex/node"
)

func serveCmd() *cobra.Command {
	var (
		id, dataDir, peerAddr, clientAddr, initialCluster, logFormat string
		requestTimeout                                               time.Duration
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run one cluster member (every flag is also RAFTEX_<FLAG>)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd); err != nil {
				return &exitError{2, err}
			}
			logger, err := newLogger(logFormat)
			if err != nil {
				return &exitError{2, err}
			}
			nodeID, err := node.ParseID(id)
			if err != nil {
				return &exitError{2, fmt.Errorf("--id: %w", err)}
			}
			if dataDir == "" || peerAddr == "" || clientAddr == "" {
				return &exitError{2, fmt.Errorf("--data-dir, --peer-addr and --client-addr are required")}
			}
			var cluster map[uint64]string
			if initialCluster != "" {
				if cluster, err = raftex.ParseInitialCluster(initialCluster); err != nil {
					return &exitError{2, fmt.Errorf("--initial-cluster: %w", err)}
				}
			}
			n, err := raftex.StartNode(raftex.Config{
				ID: nodeID, DataDir: dataDir, PeerAddr: peerAddr, ClientAddr: clientAddr,
				InitialCluster: cluster, RequestTimeout: requestTimeout, Logger: logger,
			})
			if err != nil {
				return err
			}
			logger.Info("serving", "node", node.FormatID(nodeID), "peer_addr", n.PeerAddr(),
				"client_addr", n.ClientAddr(), "dashboard", "http://"+n.ClientAddr()+"/ui/")
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			s := <-sig
			logger.Info("shutting down", "signal", s.String())
			return n.Stop()
		},
	}
	f := cmd.Flags()
	f.StringVar(&id, "id", "", "node id (n1, n2, ...)")
	f.StringVar(&dataDir, "data-dir", "", "directory of the log, snapshots and cluster file")
	f.StringVar(&peerAddr, "peer-addr", "", "host:port peers reach this node at (listen and advertise)")
	f.StringVar(&clientAddr, "client-addr", "", "host:port of the HTTP API")
	f.StringVar(&initialCluster, "initial-cluster", "", "peer addresses of the initial members: n1=host:port,n2=host:port,... (ignored once the data dir holds state)")
	f.DurationVar(&requestTimeout, "request-timeout", 5*time.Second, "how long a request may wait for a leader and a quorum")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	return cmd
}

func newLogger(format string) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, nil)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, got %q", format)
}
