// Package raftex is the easy way in: StartNode runs one member of a
// replicated key-value store — the Raft core, its write-ahead log, the TCP
// transport, the key-value state machine and the HTTP API with metrics,
// events and the dashboard — and Node.Set, Get and Delete use it. Writes on
// any node are forwarded to the leader; Get is linearizable.
//
// For another state machine, use package node directly.
package raftex

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/raftex/raftex/client"
	"github.com/raftex/raftex/inspect"
	"github.com/raftex/raftex/internal/tlsutil"
	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/kvapi"
	"github.com/raftex/raftex/node"
	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/server"
	"github.com/raftex/raftex/storage"
	"github.com/raftex/raftex/storage/vfs"
	"github.com/raftex/raftex/transport/tcp"
	"github.com/raftex/raftex/ui"
)

// Config configures StartNode. ID, DataDir and PeerAddr are required;
// InitialCluster too when DataDir holds no state yet.
type Config struct {
	// ID of this node (1, 2, ...; shown as n1, n2, ...).
	ID uint64
	// DataDir holds the log, the snapshots and the cluster file; a node
	// locks it while it runs.
	DataDir string
	// PeerAddr is where peers reach this node: it is advertised to them,
	// and listened on unless ListenPeerAddr is set.
	PeerAddr string
	// ClientAddr is the address of the HTTP API. Without ListenClientAddr
	// it is listened on, and advertised to the others (who forward to it)
	// except that a host listening on every interface (0.0.0.0, ::) is
	// advertised with the host of PeerAddr. Default "127.0.0.1:0" (a free
	// port; see Node.ClientAddr).
	ClientAddr string
	// ListenPeerAddr and ListenClientAddr, when set, are where the node
	// listens (for example 0.0.0.0:7000 in a container), and PeerAddr and
	// ClientAddr are only advertised (a routable name).
	ListenPeerAddr   string
	ListenClientAddr string
	// InitialCluster maps every initial member's id to its peer address.
	// It bootstraps a new cluster and is ignored once DataDir holds state
	// (a WARN names both when they differ).
	InitialCluster map[uint64]string
	// Join, instead of InitialCluster, makes a node with an empty DataDir
	// join a running cluster (see Join); ignored once DataDir holds its
	// cluster file.
	Join *Join
	// RequestTimeout bounds each request, waiting for a leader included.
	// Default 5 s.
	RequestTimeout time.Duration
	// Logger for structured logs. Default slog.Default().
	Logger *slog.Logger
	// Tune adjusts the runtime configuration (tick, snapshot thresholds)
	// before the node starts.
	Tune func(*node.Config)
	// Storage options (UnsafeNoSync is for benchmarks only).
	Storage storage.Options
	// Debug, if set, serves the routes under /debug/ of the HTTP API, GET
	// and HEAD only, like /metrics: `raftex serve --enable-pprof` gives
	// net/http/pprof's handlers. Browsers of other origins may not read
	// them. Nil (the default): no /debug/ route.
	Debug http.Handler
	// TokenTTL is how long an auth token lasts. Default 10 min.
	TokenTTL time.Duration
	// CORSOrigins are browser origins (scheme://host:port) allowed besides
	// the members' own client addresses.
	CORSOrigins []string
	// AllowedHosts are host names a request's Host may name over plain
	// http besides IP addresses, localhost and the members' client hosts
	// (the others get 403, against DNS rebinding; docs/security.md). "*"
	// allows any host. Like etcd's --host-whitelist.
	AllowedHosts []string
	// Limits bound the HTTP API's connections and requests; zero fields
	// take server.DefaultLimits'.
	Limits server.Limits
	// WatchHistory and WatchHistoryBytes bound the changes this node keeps
	// for watches (a watch from before them answers 410); MaxWatchers
	// bounds its open watches. Zero: kv.DefaultHistoryCount,
	// kv.DefaultHistoryBytes, kv.DefaultMaxWatchers.
	WatchHistory, WatchHistoryBytes, MaxWatchers int
	// InitialClusterToken, like etcd's, mixes into the cluster id that
	// every peer handshake checks, so two clusters with the same initial
	// members are told apart. Ignored once DataDir holds a cluster.
	InitialClusterToken string
	// PeerTLS, when set, runs the peer connections over mutual TLS: every
	// peer must present a certificate the CA file signed that names its
	// node id ("n2") as a DNS or URI name or as its common name, and a
	// connection is bound to that node (docs/security.md). Nil: plain TCP.
	PeerTLS *TLSFiles
	// PeerCertAllowedCN, when set, is the only common name a peer's
	// certificate may have (like etcd's --peer-cert-allowed-cn).
	PeerCertAllowedCN string
	// ClientTLS, when set, serves the HTTP API over HTTPS with this
	// certificate. With a CA file a client certificate it signed is
	// verified, and its common name names the user (auth).
	ClientTLS *TLSFiles
	// ClientCertAuth refuses any client without a certificate ClientTLS's
	// CA signed (like etcd's --client-cert-auth).
	ClientCertAuth bool
}

// TLSFiles names the PEM files of a TLS endpoint: its certificate and key,
// and the CA that verifies the other end.
type TLSFiles struct {
	CertFile, KeyFile, TrustedCAFile string
}

func (f *TLSFiles) reloader() (*tlsutil.Reloader, error) {
	r, err := tlsutil.NewReloader(tlsutil.Files{Cert: f.CertFile, Key: f.KeyFile, CA: f.TrustedCAFile})
	if err != nil {
		return nil, fmt.Errorf("raftex: %w", err)
	}
	return r, nil
}

// Node is a running member. Its methods are safe for concurrent use.
type Node struct {
	cfg      Config
	log      *slog.Logger
	node     *node.Node
	kv       *kv.Store
	server   *server.Server
	http     *http.Server
	listener net.Listener
	registry *prometheus.Registry
	metrics  *inspect.Metrics
	story    *inspect.Logger
	trans    *tcp.Transport
	lock     *dataDirLock
	// peerTLS and clientTLS hold the certificates in use (nil without
	// TLS); ReloadTLS swaps them.
	peerTLS, clientTLS *tlsutil.Reloader

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
}

// StartNode starts a member and returns once it serves (a leader may not
// be elected yet: requests wait for one up to RequestTimeout). It holds
// an exclusive lock on DataDir until Stop (ErrDataDirInUse if another
// process holds it). A start that fails leaves no cluster file behind
// unless the log was bootstrapped from it, so a corrected InitialCluster
// takes effect on the next start.
func StartNode(cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", node.FormatID(cfg.ID)), registry: prometheus.NewRegistry()}
	if err := vfs.MkdirAllSync(vfs.OS(), cfg.DataDir); err != nil {
		return nil, fmt.Errorf("raftex: making the data dir: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if !lockSupported {
		n.log.Warn("this system has no flock: a second node on the same data dir is not refused", "data_dir", cfg.DataDir)
	}
	n.lock = lock
	if err := n.loadTLS(); err != nil {
		lock.release()
		return nil, err
	}
	// Bind the client port before anything is made durable: a port in
	// use fails the start early.
	ln, err := net.Listen("tcp", cfg.listenClientAddr())
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("raftex: client address: %w", err)
	}
	if n.clientTLS != nil {
		ln = tls.NewListener(ln, n.clientTLS.ServerConfig(cfg.clientAuth()))
	}
	n.metrics = inspect.NewMetrics(n.registry, cfg.ID)
	cluster, err := n.startRaft()
	if err != nil {
		ln.Close()
		lock.release()
		return nil, err
	}
	n.startHTTP(ln, cluster)
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Add(3)
	go func() {
		defer n.wg.Done()
		n.watchFailure(ctx)
	}()
	go func() {
		defer n.wg.Done()
		n.server.PublishSelf(ctx, kv.MemberInfo{PeerAddr: cfg.PeerAddr, ClientAddr: n.ClientAddr()})
	}()
	go func() {
		defer n.wg.Done()
		n.feedMetrics(ctx)
	}()
	return n, nil
}

func (cfg *Config) setDefaults() error {
	switch {
	case cfg.ID == raft.None:
		return errors.New("raftex: Config.ID must be set (1, 2, ...)")
	case cfg.DataDir == "":
		return errors.New("raftex: Config.DataDir must be set")
	case cfg.PeerAddr == "":
		return errors.New("raftex: Config.PeerAddr must be set")
	}
	if cfg.ClientAddr == "" {
		cfg.ClientAddr = "127.0.0.1:0"
	}
	if cfg.ListenClientAddr != "" && cfg.ClientAddr == "127.0.0.1:0" {
		return errors.New("raftex: Config.ClientAddr must be set (the address to advertise) with ListenClientAddr")
	}
	if cfg.Join != nil && len(cfg.InitialCluster) > 0 {
		return errors.New("raftex: Config.Join and InitialCluster exclude each other: a node joins a running cluster or bootstraps a new one")
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for _, o := range cfg.CORSOrigins {
		if err := server.ValidateOrigin(o); err != nil {
			return fmt.Errorf("raftex: Config.CORSOrigins: %w", err)
		}
	}
	for _, h := range cfg.AllowedHosts {
		if err := server.ValidateAllowedHost(h); err != nil {
			return fmt.Errorf("raftex: Config.AllowedHosts: %w", err)
		}
	}
	if cfg.ClientCertAuth && (cfg.ClientTLS == nil || cfg.ClientTLS.TrustedCAFile == "") {
		return errors.New("raftex: Config.ClientCertAuth needs ClientTLS with a trusted CA file")
	}
	if cfg.PeerTLS != nil && cfg.PeerTLS.TrustedCAFile == "" {
		return errors.New("raftex: Config.PeerTLS needs a trusted CA file (peers verify each other)")
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	return cfg.Limits.Validate(cfg.RequestTimeout)
}

// clientAuth is how the HTTP API asks for client certificates: required
// with ClientCertAuth, else verified when given if there is a CA to
// verify them.
func (cfg *Config) clientAuth() tls.ClientAuthType {
	switch {
	case cfg.ClientCertAuth:
		return tls.RequireAndVerifyClientCert
	case cfg.ClientTLS.TrustedCAFile != "":
		return tls.VerifyClientCertIfGiven
	}
	return tls.NoClientCert
}

// loadTLS loads the certificates of cfg.PeerTLS and cfg.ClientTLS.
func (n *Node) loadTLS() error {
	var err error
	if n.cfg.PeerTLS != nil {
		if n.peerTLS, err = n.cfg.PeerTLS.reloader(); err != nil {
			return err
		}
		// Every peer would refuse it: say so now, not in their logs.
		if err := tlsutil.CheckNode(n.peerTLS.Leaf(), node.FormatID(n.cfg.ID), n.cfg.PeerCertAllowedCN); err != nil {
			return fmt.Errorf("raftex: the peer certificate %s: %w", n.cfg.PeerTLS.CertFile, err)
		}
	}
	if n.cfg.ClientTLS != nil {
		if n.clientTLS, err = n.cfg.ClientTLS.reloader(); err != nil {
			return err
		}
	}
	return nil
}

// relayTLS is how this node reaches another member's HTTP API when it
// relays a membership request: nil without ClientTLS (plain http); else it
// verifies the member against the CA file when there is one (raftex certs
// signs every certificate with one CA) and presents this node's own
// certificate, or uses the system's roots and host names.
func (n *Node) relayTLS() *tls.Config {
	switch {
	case n.clientTLS == nil:
		return nil
	case n.cfg.ClientTLS.TrustedCAFile != "":
		return n.clientTLS.PeerClientConfig()
	}
	return &tls.Config{MinVersion: tlsutil.MinVersion}
}

// ReloadTLS reads the certificate, key and CA files again (raftex serve
// does on SIGHUP): later handshakes use them, connections already open
// keep theirs. If any file fails to load, the certificates in use stay
// and the error says which.
func (n *Node) ReloadTLS() error {
	var errs []error
	for _, r := range []*tlsutil.Reloader{n.peerTLS, n.clientTLS} {
		if r != nil {
			errs = append(errs, r.Reload())
		}
	}
	return errors.Join(errs...)
}

// TLSScheme is the scheme of the HTTP API: "https" with ClientTLS, else
// "http".
func (n *Node) TLSScheme() string {
	if n.clientTLS != nil {
		return "https"
	}
	return "http"
}

// startRaft opens the storage, picks the cluster (see chooseCluster),
// starts the transport and the node, and then records the cluster in
// DataDir if it is new there.
func (n *Node) startRaft() (clusterFile, error) {
	cfg := n.cfg
	store, err := storage.Open(vfs.OS(), filepath.Join(cfg.DataDir, "raft"), withLogger(cfg.Storage, n.log))
	if err != nil {
		return clusterFile{}, err
	}
	joining, err := n.joining(store)
	if err != nil {
		store.Close()
		return clusterFile{}, err
	}
	// Joining takes a few round trips to the cluster and the commit of
	// the change, beside waiting for a leader.
	jctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
	defer cancel()
	var cluster clusterFile
	save := true
	if joining != nil {
		cluster, err = n.joinCluster(jctx, joining)
		defer joining.Close()
	} else {
		cluster, save, err = chooseCluster(cfg, store, n.log)
	}
	if err != nil {
		store.Close()
		return clusterFile{}, err
	}
	if cfg.Storage.UnsafeNoSync {
		n.log.Warn("UNSAFE: fsync is off; a crash can lose acknowledged writes and break Raft's guarantees")
	}
	rec := store.Recovered()
	tcfg := tcp.DefaultConfig()
	tcfg.ID, tcfg.ClusterID, tcfg.ListenAddr, tcfg.Logger = cfg.ID, cluster.ClusterID, cfg.listenPeerAddr(), cfg.Logger
	if n.peerTLS != nil {
		tcfg.TLS = &tcp.TLS{
			Server: n.peerTLS.ServerConfig(tls.RequireAndVerifyClientCert),
			Client: n.peerTLS.PeerClientConfig(),
			VerifyPeer: func(id uint64, cert *x509.Certificate) error {
				return tlsutil.CheckNode(cert, node.FormatID(id), cfg.PeerCertAllowedCN)
			},
		}
	}
	tcfg.Peers = map[uint64]string{}
	for id, addr := range cluster.members() {
		if id != cfg.ID {
			tcfg.Peers[id] = addr
		}
	}
	trans, err := tcp.New(tcfg)
	if err != nil {
		store.Close()
		return clusterFile{}, err
	}
	ncfg := node.DefaultConfig(cfg.ID)
	if joining != nil {
		ncfg.Join = true // the leader's log or snapshot brings the configuration
	} else {
		// Each member's peer address travels in the configuration, as
		// those of members added later do: a change can then refuse an
		// address taken, and the transport follows it.
		ncfg.InitialMembership = raft.NewMembership(cluster.ids()...)
		ncfg.InitialMembership.Contexts = map[uint64][]byte{}
		for id, addr := range cluster.members() {
			ncfg.InitialMembership.Contexts[id] = []byte(addr)
		}
	}
	ncfg.Logger = cfg.Logger // node and tcp add node=nX themselves
	// ?consistency=lease asks for the leader's lease (thesis §6.4.1); the
	// default linearizable reads still take a heartbeat round.
	ncfg.LeaseRead = true
	if cfg.Tune != nil {
		cfg.Tune(&ncfg)
	}
	// The node's story in its log, told from its events and measurements
	// (package inspect): an fsync as long as an election timeout is slow,
	// as a leader whose disk stalls that long steps down.
	n.story = inspect.NewLogger(inspect.LogConfig{Logger: n.log,
		SlowFsync: time.Duration(ncfg.ElectionTick) * ncfg.TickInterval})
	n.story.ObserveRecovery(inspect.Recovery{Entries: rec.Entries, FirstIndex: rec.FirstIndex, LastIndex: rec.LastIndex,
		SnapshotIndex: rec.SnapshotIndex, Term: rec.Term, Duration: rec.Duration})
	ncfg.Observer = observers{n.metrics, n.story}
	n.kv = kv.New(kv.Config{HistoryCount: cfg.WatchHistory, HistoryBytes: cfg.WatchHistoryBytes, MaxWatchers: cfg.MaxWatchers})
	n.trans = trans
	n.node, err = node.Start(ncfg, n.kv, store, trans)
	if err != nil {
		trans.Stop()
		store.Close()
		n.story.Close()
		return clusterFile{}, err
	}
	if joining != nil {
		ms, err := n.askToJoin(jctx, joining)
		if err != nil {
			n.node.Stop()
			n.story.Close()
			return clusterFile{}, err
		}
		if cluster, err = joinedCluster(ms, cfg.ID, cfg.PeerAddr); err != nil {
			n.node.Stop()
			n.story.Close()
			return clusterFile{}, err
		}
		for id, addr := range cluster.members() {
			if id != cfg.ID {
				trans.AddPeer(id, addr)
			}
		}
		n.log.Info("joined the cluster", "through", cfg.Join.URL, "cluster", cluster.String(), "learner", cfg.Join.Learner)
	}
	if save {
		// Only now: the log is bootstrapped from this cluster, or the
		// cluster added this node.
		if err := saveClusterFile(cfg.DataDir, cluster); err != nil {
			n.node.Stop()
			n.story.Close()
			return clusterFile{}, err
		}
	}
	return cluster, nil
}

// joinTimeout bounds joining a cluster (Config.Join).
const joinTimeout = 30 * time.Second

// joining returns the client to join through when this node joins a
// cluster: Join is set, and DataDir holds neither a cluster file nor
// state.
func (n *Node) joining(store *storage.Store) (*client.Client, error) {
	if n.cfg.Join == nil {
		return nil, nil
	}
	_, found, err := readClusterFile(filepath.Join(n.cfg.DataDir, clusterFileName))
	switch {
	case err != nil:
		return nil, err
	case found || store.HasState():
		n.log.Info("the data dir holds the cluster this node belongs to: --join is ignored", "data_dir", n.cfg.DataDir)
		return nil, nil
	}
	return n.cfg.Join.client()
}

func withLogger(o storage.Options, l *slog.Logger) storage.Options {
	if o.Logger == nil {
		o.Logger = l
	}
	return o
}

// eventsWriteTimeout bounds each write of a /v1/events stream, as
// server.Config.WatchWriteTimeout does a watch's: a reader that stops
// reading is cut off.
const eventsWriteTimeout = 10 * time.Second

func (n *Node) startHTTP(ln net.Listener, cluster clusterFile) {
	n.listener = ln
	// Event streams never end on their own: Shutdown closes them.
	var streams sync.Map
	subscribe := func() (<-chan raft.Event, func()) {
		sub := n.node.Subscribe()
		streams.Store(sub, struct{}{})
		return sub.C, func() { streams.Delete(sub); sub.Close() }
	}
	extra := map[string]http.Handler{
		"/metrics":   promhttp.HandlerFor(n.registry, promhttp.HandlerOpts{}),
		"/v1/events": inspect.SSEHandler(subscribe, eventsWriteTimeout),
		"/ui/":       http.StripPrefix("/ui", ui.Handler()),
		"/{$}":       http.RedirectHandler("/ui/", http.StatusFound),
	}
	if n.cfg.Debug != nil {
		extra["/debug/"] = sameOrigin(n.cfg.Debug)
	}
	n.server = server.New(server.Config{
		Node: n.node, KV: n.kv, PeerAddrs: cluster.members(), ClusterID: cluster.ClusterID,
		RequestTimeout: n.cfg.RequestTimeout, Logger: n.log,
		TokenTTL: n.cfg.TokenTTL, CORSOrigins: n.cfg.CORSOrigins, Limits: n.cfg.Limits,
		ClientAddr: n.ClientAddr(), AllowedHosts: n.cfg.AllowedHosts,
		Extra: extra, RelayTLS: n.relayTLS(),
	})
	n.http = n.server.HTTPServer()
	n.http.RegisterOnShutdown(func() {
		streams.Range(func(sub, _ any) bool { sub.(*node.Subscription).Close(); return true })
	})
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "err", err)
		}
	}()
}

// sameOrigin serves h without the API's permission for any origin to
// read the answer (Access-Control-Allow-Origin): a page a developer visits
// must not read the process's profiles and command line.
func sameOrigin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Del("Access-Control-Allow-Origin")
		h.ServeHTTP(w, r)
	})
}

// watchFailure waits for the runtime to stop by itself (a fatal storage
// error): then the node has no role any more, and its metrics say so.
func (n *Node) watchFailure(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-n.node.Done():
		if err := n.node.Err(); err != nil {
			n.metrics.ObserveStopped()
			n.log.Error("the node stopped itself; stop it and restart it once the cause is fixed", "err", err)
		}
	}
}

// observers hands the runtime's measurements and events to each of its
// observers in turn.
type observers []node.Observer

func (o observers) ObserveFsync(d time.Duration, entries int, bytes int) {
	for _, x := range o {
		x.ObserveFsync(d, entries, bytes)
	}
}

func (o observers) ObserveApply(d time.Duration, entries int) {
	for _, x := range o {
		x.ObserveApply(d, entries)
	}
}

func (o observers) ObserveProposal(ok bool) {
	for _, x := range o {
		x.ObserveProposal(ok)
	}
}

func (o observers) ObserveSnapshot(installed bool, d time.Duration, bytes int64) {
	for _, x := range o {
		x.ObserveSnapshot(installed, d, bytes)
	}
}

func (o observers) ObserveEvent(e raft.Event) {
	for _, x := range o {
		x.ObserveEvent(e)
	}
}

// feedMetrics samples the node's status into metrics every second (its
// events reach the metrics directly: they are its node.Observer).
func (n *Node) feedMetrics(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			n.sampleMetrics(ctx)
		}
	}
}

func (n *Node) sampleMetrics(ctx context.Context) {
	st, err := n.node.Status(ctx)
	if err != nil {
		return
	}
	sample := inspect.StatusSample{Commit: st.Commit, Applied: st.Applied, LastIndex: st.LastIndex}
	if len(st.Progress) > 0 {
		sample.Peers = map[uint64]inspect.PeerSample{}
		for id, pr := range st.Progress {
			if id != st.ID {
				sample.Peers[id] = inspect.PeerSample{Match: pr.Match, Next: pr.Next, State: pr.State.String()}
			}
		}
	}
	n.metrics.ObserveStatus(sample)
	ts := n.trans.Stats()
	n.metrics.ObserveTransport(ts.BytesSent, ts.BytesReceived, ts.Dropped)
	n.metrics.ObserveDroppedEvents(st.DroppedEvents)
}

// advertisedClientAddr is the client address this node publishes for the
// others to forward writes to. A listener on every interface (0.0.0.0:8000,
// [::]:8000, as in a container) gives no address another host can dial, and
// dialing it reaches the dialer itself; so the host of the peer address,
// which the others already reach, stands in with the listener's port.
func advertisedClientAddr(listen, peer string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return listen
	}
	peerHost, _, err := net.SplitHostPort(peer)
	if ip := net.ParseIP(peerHost); err != nil || peerHost == "" || (ip != nil && ip.IsUnspecified()) {
		return listen
	}
	return net.JoinHostPort(peerHost, port)
}

func (cfg *Config) listenPeerAddr() string {
	if cfg.ListenPeerAddr != "" {
		return cfg.ListenPeerAddr
	}
	return cfg.PeerAddr
}

func (cfg *Config) listenClientAddr() string {
	if cfg.ListenClientAddr != "" {
		return cfg.ListenClientAddr
	}
	return cfg.ClientAddr
}

// ID returns the node's id.
func (n *Node) ID() uint64 { return n.cfg.ID }

// ClientAddr returns the address the node's HTTP API is advertised at: the
// one its members forward to and /v1/status lists.
func (n *Node) ClientAddr() string {
	addr := n.listener.Addr().String()
	if n.cfg.ListenClientAddr != "" {
		addr = n.cfg.ClientAddr
	}
	return advertisedClientAddr(addr, n.cfg.PeerAddr)
}

// ListenClientAddr returns the address the HTTP API listens on.
func (n *Node) ListenClientAddr() string { return n.listener.Addr().String() }

// PeerAddr returns the address peers reach this node at (advertised).
func (n *Node) PeerAddr() string {
	if n.cfg.ListenPeerAddr != "" {
		return n.cfg.PeerAddr
	}
	return n.trans.Addr()
}

// ListenPeerAddr returns the address the node listens for peers on.
func (n *Node) ListenPeerAddr() string { return n.trans.Addr() }

// Done is closed once the node's runtime has stopped: after Stop, or by
// itself on a fatal storage error, which Err then returns. A node that
// stopped by itself no longer reports a role or a leader (/healthz answers
// 503), but its HTTP API answers until Stop: call Stop, then exit non-zero.
func (n *Node) Done() <-chan struct{} { return n.node.Done() }

// Err returns the error that stopped the node by itself (it wraps
// node.ErrStorageFailed), or nil.
func (n *Node) Err() error { return n.node.Err() }

// Raft returns the underlying runtime node (status, events, leadership).
func (n *Node) Raft() *node.Node { return n.node }

// KV returns the local key-value state machine (reads from it are stale;
// use Get for linearizable reads).
func (n *Node) KV() *kv.Store { return n.kv }

// Set sets key to value through the leader and returns its revision (the
// log index of the write); kvapi.WithCAS makes it conditional (a
// mismatch returns a *kvapi.CASMismatchError). Retries inside are
// exactly-once (thesis §6.3): the writes of a Node go in its server's own
// client session, registered on the first write and again when it
// expires. The same vocabulary as package client's Client.
func (n *Node) Set(ctx context.Context, key string, value []byte, opts ...kvapi.WriteOption) (uint64, error) {
	o := kvapi.ApplyWrite(opts)
	res, err := n.write(ctx, kv.Command{Op: kv.OpSet, Key: []byte(key), Value: value, CAS: o.CAS, Revision: o.Revision})
	return res.Revision, err
}

// Delete removes key, reports whether it existed, and returns the
// revision of the delete.
func (n *Node) Delete(ctx context.Context, key string, opts ...kvapi.WriteOption) (deleted bool, revision uint64, err error) {
	o := kvapi.ApplyWrite(opts)
	res, err := n.write(ctx, kv.Command{Op: kv.OpDelete, Key: []byte(key), CAS: o.CAS, Revision: o.Revision})
	return res.Deleted, res.Revision, err
}

// DeletePrefix deletes every key under prefix as one revision and returns
// how many it deleted; an empty prefix needs all.
func (n *Node) DeletePrefix(ctx context.Context, prefix string, all bool) (deleted, revision uint64, err error) {
	if prefix == "" && !all {
		return 0, 0, errors.New("raftex: an empty prefix deletes every key: pass all")
	}
	if len(prefix) > kv.MaxKeySize {
		return 0, 0, kv.ErrKeyTooLong
	}
	ctx, cancel := n.bounded(ctx)
	defer cancel()
	res, err := n.server.Write(ctx, kv.DeletePrefix([]byte(prefix)))
	if err == nil {
		err = res.Err
	}
	return res.Count, res.Revision, err
}

// Txn runs a transaction as one log entry, exactly once. A compare that
// fails is no error: Succeeded is false.
func (n *Node) Txn(ctx context.Context, t kvapi.Txn) (kvapi.TxnResponse, error) {
	c, err := n.kv.TxnCommand(t)
	if err != nil {
		return kvapi.TxnResponse{}, err
	}
	ctx, cancel := n.bounded(ctx)
	defer cancel()
	res, err := n.server.Write(ctx, c)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return kvapi.TxnResponse{}, err
	}
	return *res.Txn, nil
}

// Get returns key's value and revision, linearizably (thesis §6.4) unless
// kvapi.WithConsistency says otherwise, or kvapi.ErrNotFound. Like the
// writes, it waits through elections, up to RequestTimeout when ctx has
// no deadline.
func (n *Node) Get(ctx context.Context, key string, opts ...kvapi.ReadOption) ([]byte, uint64, error) {
	ctx, cancel := n.bounded(ctx)
	defer cancel()
	if err := n.server.ReadAt(ctx, kvapi.ApplyRead(opts).Consistency); err != nil {
		return nil, 0, err
	}
	v, rev, ok := n.kv.Get([]byte(key))
	if !ok {
		return nil, 0, kvapi.ErrNotFound
	}
	return v, rev, nil
}

// List returns a page of the keys under prefix in key order (see
// kvapi.ListOptions), at the consistency it asks (linearizable by
// default).
func (n *Node) List(ctx context.Context, prefix string, o kvapi.ListOptions) (kvapi.ListResult, error) {
	ctx, cancel := n.bounded(ctx)
	defer cancel()
	if o.Consistency == "" {
		o.Consistency = kvapi.Linearizable
	}
	if err := n.server.ReadAt(ctx, o.Consistency); err != nil {
		return kvapi.ListResult{}, err
	}
	return n.kv.List([]byte(prefix), o), nil
}

// Watch delivers the changes this node applies to the keys under prefix
// from revision fromRev (0: from now), one Event per revision, in order,
// until ctx ends (the channel then closes). When this node no longer has
// the changes (its history is bounded, and a snapshot install skips
// changes), it lists the prefix and delivers it as a Reset event, then
// goes on from the listing's revision, so nothing is missed. The same
// vocabulary as package client's Client.Watch.
func (n *Node) Watch(ctx context.Context, prefix string, fromRev uint64) <-chan kvapi.Event {
	ch := make(chan kvapi.Event)
	go func() {
		defer close(ch)
		emit := func(ev kvapi.Event) bool {
			select {
			case ch <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		from := fromRev
		if from == 0 {
			from = n.kv.AppliedIndex() + 1
		}
		for {
			w, err := n.kv.Watch([]byte(prefix), from)
			for err == nil {
				var ev kvapi.Event
				if ev, err = w.Next(ctx); err == nil && !emit(ev) {
					err = ctx.Err()
				}
			}
			if w != nil {
				w.Close()
			}
			if !errors.Is(err, kvapi.ErrCompacted) {
				if ctx.Err() == nil {
					emit(kvapi.Event{Err: err})
				}
				return
			}
			reset, err := kvapi.ResetEvent([]byte(prefix), func(o kvapi.ListOptions) (kvapi.ListResult, error) {
				return n.List(ctx, prefix, o)
			})
			if err != nil {
				if ctx.Err() == nil {
					emit(kvapi.Event{Err: err})
				}
				return
			}
			if !emit(reset) {
				return
			}
			from = reset.Revision + 1
		}
	}()
	return ch
}

func (n *Node) write(ctx context.Context, c kv.Command) (kv.Result, error) {
	if err := kv.ValidateKey(c.Key); err != nil {
		return kv.Result{}, err
	}
	if err := n.kv.ValidateValue(c.Value); err != nil {
		return kv.Result{}, err
	}
	ctx, cancel := n.bounded(ctx)
	defer cancel()
	res, err := n.server.Write(ctx, c)
	if err != nil {
		return res, err
	}
	return res, res.Err
}

// bounded gives ctx the RequestTimeout when it has no deadline of its own.
func (n *Node) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, n.cfg.RequestTimeout)
}

// Stop stops the node: the HTTP server (gracefully), then the runtime. It
// is idempotent.
func (n *Node) Stop() error {
	n.stopOnce.Do(func() {
		n.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := n.http.Shutdown(ctx); err != nil {
			n.http.Close()
		}
		n.stopErr = n.node.Stop()
		n.wg.Wait()
		n.story.Close()
		n.lock.release()
	})
	return n.stopErr
}
