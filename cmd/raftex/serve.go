package main

import (
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftex/raftex"
	"github.com/raftex/raftex/internal/tlsutil"
	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/node"
	"github.com/raftex/raftex/server"
)

func serveCmd() *cobra.Command {
	var (
		id, dataDir, peerAddr, clientAddr, initialCluster string
		listenPeerAddr, listenClientAddr                  string
		requestTimeout, tokenTTL                          time.Duration
		enablePprof, learner, insecure, clientCertAuth    bool
		join, user, password                              string
		clusterToken, peerAllowedCN                       string
		peerTLS, clientTLS                                raftex.TLSFiles
		corsOrigins, allowedHosts                         []string
		limits                                            = server.DefaultLimits()
		watchHistory, watchHistoryBytes, maxWatchers      int
	)
	logFormat := newEnum("text", "text", "json")
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run one cluster member",
		Long: "Run one cluster member until SIGINT or SIGTERM (exit 0), or until its storage fails\n" +
			"(exit 1, once the requests in flight are answered).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger := newLogger(logFormat.value)
			nodeID, err := node.ParseID(id)
			if err != nil {
				return usageError("--id: %w", err)
			}
			if err := limits.WithDefaults().Validate(requestTimeout); err != nil {
				return usageError("%w", err)
			}
			for _, o := range corsOrigins {
				if err := server.ValidateOrigin(o); err != nil {
					return usageError("--cors-origins: %w", err)
				}
			}
			for _, h := range allowedHosts {
				if err := server.ValidateAllowedHost(h); err != nil {
					return usageError("--allowed-hosts: %w", err)
				}
			}
			var cluster map[uint64]string
			if initialCluster != "" {
				if cluster, err = raftex.ParseInitialCluster(initialCluster); err != nil {
					return usageError("--initial-cluster: %w", err)
				}
			}
			var joinCfg *raftex.Join
			switch {
			case join != "" && initialCluster != "":
				return usageError("--join and --initial-cluster exclude each other: a node joins a running cluster or bootstraps a new one")
			case join != "":
				joinCfg = &raftex.Join{URL: join, Learner: learner, Username: user, Password: password}
			case learner:
				return usageError("--learner needs --join")
			}
			if password != "" && user == "" {
				return usageError("--password needs --user")
			}
			cfg := raftex.Config{
				ID: nodeID, DataDir: dataDir, PeerAddr: peerAddr, ClientAddr: clientAddr,
				ListenPeerAddr: listenPeerAddr, ListenClientAddr: listenClientAddr,
				InitialCluster: cluster, Join: joinCfg, RequestTimeout: requestTimeout, Logger: logger,
				TokenTTL: tokenTTL, CORSOrigins: corsOrigins, AllowedHosts: allowedHosts, Limits: limits,
				WatchHistory: watchHistory, WatchHistoryBytes: watchHistoryBytes, MaxWatchers: maxWatchers,
				InitialClusterToken: clusterToken, PeerCertAllowedCN: peerAllowedCN, ClientCertAuth: clientCertAuth,
			}
			if cfg.PeerTLS, err = tlsFiles("peer-", peerTLS); err != nil {
				return err
			}
			if cfg.ClientTLS, err = tlsFiles("", clientTLS); err != nil {
				return err
			}
			if joinCfg != nil && cfg.ClientTLS != nil && cfg.ClientTLS.TrustedCAFile != "" {
				// The members serve https with certificates of the CA that
				// signs this node's: verify them against it and present
				// this node's certificate (--client-cert-auth asks for one).
				tc, err := tlsutil.ProbeConfig(tlsutil.Files{Cert: cfg.ClientTLS.CertFile, Key: cfg.ClientTLS.KeyFile, CA: cfg.ClientTLS.TrustedCAFile})
				if err != nil {
					return err
				}
				joinCfg.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
			}
			if exposed := exposedWithoutTLS(cfg); len(exposed) > 0 {
				if !insecure {
					return usageError("%s: listening beyond loopback without TLS lets anyone on the network read and forge the cluster's traffic; "+
						"give --peer-cert-file etc. and --cert-file etc. (raftex certs makes them), or --insecure to do it anyway", strings.Join(exposed, ", "))
				}
				logger.Warn("INSECURE: listening beyond loopback without TLS (--insecure): anyone who reaches these addresses can read and forge the cluster's traffic",
					"listeners", exposed)
			}
			if enablePprof {
				cfg.Debug = pprofHandler()
			}
			if slices.Contains(allowedHosts, "*") && cfg.ClientTLS == nil {
				logger.Warn("DNS rebinding protection is off (--allowed-hosts *): a web page whose name its owner points at this node's address can use the HTTP API with the browser's access")
			}
			n, err := raftex.StartNode(cfg)
			if err != nil {
				return err
			}
			scheme := n.TLSScheme()
			if enablePprof {
				logger.Warn("pprof is on: anyone who reaches the client address can read this process's profiles, stacks and command line under /debug/pprof/",
					"url", scheme+"://"+n.ClientAddr()+"/debug/pprof/", "block_profile_rate", pprofBlockRate, "mutex_profile_fraction", pprofMutexFraction)
			}
			logger.Info("serving", "node", node.FormatID(nodeID),
				"peer_addr", n.PeerAddr(), "listen_peer_addr", n.ListenPeerAddr(),
				"client_addr", n.ClientAddr(), "listen_client_addr", n.ListenClientAddr(),
				"peer_tls", cfg.PeerTLS != nil, "client_tls", cfg.ClientTLS != nil,
				"dashboard", dashboardURL(scheme, n.ClientAddr()))
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
			defer signal.Stop(sig)
			for {
				var s os.Signal
				select {
				case s = <-sig:
				case <-n.Done():
					return stoppedByItself(logger, n)
				}
				if s != syscall.SIGHUP {
					logger.Info("shutting down", "signal", s.String())
					return n.Stop()
				}
				if err := n.ReloadTLS(); err != nil {
					logger.Error("SIGHUP: the certificates in use stay", "err", err)
				} else {
					logger.Info("SIGHUP: reloaded the certificates", "peer_tls", cfg.PeerTLS != nil, "client_tls", cfg.ClientTLS != nil)
				}
			}
		},
	}
	f := cmd.Flags()

	f.StringVar(&id, "id", "", "node id (n1, n2, ...)")
	f.StringVar(&dataDir, "data-dir", "", "directory of the log, snapshots and cluster file")
	f.StringVar(&peerAddr, "peer-addr", "", "host:port peers reach this node at (advertised; listened on unless --listen-peer-addr)")
	f.StringVar(&clientAddr, "client-addr", "", "host:port of the HTTP API (advertised; listened on unless --listen-client-addr)")
	f.StringVar(&listenPeerAddr, "listen-peer-addr", "", "host:port to listen for peers on (default --peer-addr), e.g. 0.0.0.0:7000")
	f.StringVar(&listenClientAddr, "listen-client-addr", "", "host:port to serve the HTTP API on (default --client-addr), e.g. 0.0.0.0:8000")
	f.StringVar(&initialCluster, "initial-cluster", "", "peer addresses of the initial members: n1=host:port,n2=host:port,... (ignored once the data dir holds state)")
	f.StringVar(&join, "join", "", "client address of a member (http://host:port): a node with an empty data dir asks it to add this node, instead of --initial-cluster (ignored once the data dir holds state)")
	f.BoolVar(&learner, "learner", false, "with --join: stay a learner (a non-voting member) until raftex member promote")
	f.StringVar(&user, "user", "", "with --join: log in as this user (a root one) when the cluster has auth enabled")
	f.StringVar(&password, "password", "", "the user's password (prefer RAFTEX_PASSWORD: a flag shows in the process list)")
	f.DurationVar(&requestTimeout, "request-timeout", 5*time.Second, "how long a request may wait for a leader and a quorum")
	f.Var(logFormat, "log-format", "text or json")
	f.BoolVar(&enablePprof, "enable-pprof", false, "serve Go's profiles (CPU, heap, allocations, block, mutex, goroutines, trace) under /debug/pprof/ on the client address; samples blocking and contention while on")
	f.DurationVar(&tokenTTL, "token-ttl", 10*time.Minute, "how long an auth token lasts (raftex auth enable turns auth on)")
	f.StringSliceVar(&corsOrigins, "cors-origins", nil, "browser origins allowed besides the members' own client addresses: https://host:port,...")
	f.StringSliceVar(&allowedHosts, "allowed-hosts", nil, "host names (no port) the HTTP API answers to over plain http besides IP addresses, localhost, the members' client hosts and --cors-origins' hosts (others get 403, against DNS rebinding); * allows any")
	f.IntVar(&limits.MaxRequests, "max-requests", limits.MaxRequests, "requests served at once; beyond, 429")
	f.IntVar(&limits.MaxRequestsPerClient, "max-requests-per-client", 0, "requests of one client address served at once; beyond, 429 (0: a quarter of --max-requests)")
	f.IntVar(&limits.MaxStreams, "max-streams", limits.MaxStreams, "event streams open at once; beyond, 429")
	f.IntVar(&watchHistory, "watch-history", kv.DefaultHistoryCount, "revisions of changes this node keeps for watches; a watch from before them answers 410")
	f.IntVar(&watchHistoryBytes, "watch-history-bytes", kv.DefaultHistoryBytes, "bytes of keys and values those revisions may hold at most")
	f.IntVar(&maxWatchers, "max-watchers", kv.DefaultMaxWatchers, "watches open at once on this node; beyond, 429 (not counted in --max-streams)")
	f.StringVar(&clusterToken, "initial-cluster-token", "", "mixed into the cluster id, so that two clusters with the same --initial-cluster refuse each other (ignored once the data dir holds state)")
	f.StringVar(&peerTLS.CertFile, "peer-cert-file", "", "certificate peers verify: it must name this node (n1) as a DNS name or common name")
	f.StringVar(&peerTLS.KeyFile, "peer-key-file", "", "key of --peer-cert-file")
	f.StringVar(&peerTLS.TrustedCAFile, "peer-trusted-ca-file", "", "CA that signs every peer's certificate")
	f.StringVar(&peerAllowedCN, "peer-cert-allowed-cn", "", "the only common name a peer's certificate may have")
	f.StringVar(&clientTLS.CertFile, "cert-file", "", "certificate of the HTTP API (serves https)")
	f.StringVar(&clientTLS.KeyFile, "key-file", "", "key of --cert-file")
	f.StringVar(&clientTLS.TrustedCAFile, "trusted-ca-file", "", "CA that signs client certificates (their common name names the user)")
	f.BoolVar(&clientCertAuth, "client-cert-auth", false, "refuse HTTP API clients without a certificate --trusted-ca-file signed")
	f.BoolVar(&insecure, "insecure", false, "allow listening beyond loopback without TLS (logs a warning)")
	requireFlags(cmd, "id", "data-dir", "peer-addr", "client-addr")
	return cmd
}

// stoppedByItself ends serve after the node stopped by itself (its
// storage failed): it answers the requests in flight, then exits non-zero
// so that a supervisor restarts it.
func stoppedByItself(logger *slog.Logger, n *raftex.Node) error {
	cause := n.Err()
	logger.Error("exiting: the node stopped", "err", cause)
	if err := n.Stop(); err != nil {
		cause = err // it wraps the cause
	}
	return &exitError{exitFailed, cause}
}

// tlsFiles checks the TLS flags with prefix: none (nil: no TLS), or a
// certificate and a key, the peers' with a CA too.
func tlsFiles(prefix string, f raftex.TLSFiles) (*raftex.TLSFiles, error) {
	switch {
	case f == (raftex.TLSFiles{}):
		return nil, nil
	case f.CertFile == "" || f.KeyFile == "":
		return nil, usageError("--%scert-file and --%skey-file go together", prefix, prefix)
	case prefix != "" && f.TrustedCAFile == "":
		return nil, usageError("--%strusted-ca-file is needed to verify the peers", prefix)
	}
	return &f, nil
}

// exposedWithoutTLS lists the listeners of cfg beyond loopback that have
// no TLS.
func exposedWithoutTLS(cfg raftex.Config) []string {
	var out []string
	peer, client := cfg.ListenPeerAddr, cfg.ListenClientAddr
	if peer == "" {
		peer = cfg.PeerAddr
	}
	if client == "" {
		client = cfg.ClientAddr
	}
	if cfg.PeerTLS == nil && !loopback(peer) {
		out = append(out, "peer listener "+peer)
	}
	if cfg.ClientTLS == nil && !loopback(client) {
		out = append(out, "client listener "+client)
	}
	return out
}

// loopback reports whether the listener at addr is reachable from this
// machine only: localhost or a loopback IP.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newLogger(format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}

// dashboardURL is the dashboard at the client address addr, with a host a
// browser can open: a host of every interface (0.0.0.0, ::, none) is
// shown as localhost.
func dashboardURL(scheme, addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return scheme + "://" + addr + "/ui/"
	}
	if wildcard(host) {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/ui/"
}

// wildcard reports whether host means every interface: "", 0.0.0.0, ::.
func wildcard(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}
