package raftex_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/raftex/raftex"
	"github.com/raftex/raftex/internal/tlsutil"
	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
)

func storedClusterID(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ClusterID string `json:"cluster_id"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.ClusterID
}

// TestClusterTokenChangesTheID: the same initial members with another
// --initial-cluster-token make another cluster id; without a token the id
// is the one of clusters made before tokens existed.
func TestClusterTokenChangesTheID(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	peer := loopbackAddr(t)
	id := func(token string) string {
		dir := t.TempDir()
		cfg := single(dir, peer, &logBuffer{})
		cfg.InitialClusterToken = token
		n, err := raftex.StartNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Stop(); err != nil {
			t.Fatal(err)
		}
		return storedClusterID(t, dir)
	}
	none, blue, green := id(""), id("blue"), id("green")
	if blue == green || blue == none || green == none {
		t.Errorf("cluster ids: no token %s, blue %s, green %s; want three", none, blue, green)
	}
	// FNV-64a of "1=<peer>", the id before tokens.
	if want := fnv(fmt.Sprintf("1=%s", peer)); none != want {
		t.Errorf("the id without a token is %s, want %s as before", none, want)
	}
}

func fnv(s string) string {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return fmt.Sprintf("%016x", h)
}

// tlsCluster starts three nodes whose peers and clients speak mutual TLS
// with certificates of certs, client certificates required.
func tlsCluster(t *testing.T, certs string) (nodes []*raftex.Node, dataDirs string) {
	t.Helper()
	if _, err := tlsutil.Generate(tlsutil.Request{Dir: certs, Nodes: []string{"n1", "n2", "n3"}, Hosts: []string{"127.0.0.1"}, ClientCN: "root"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cluster := map[uint64]string{1: loopbackAddr(t), 2: loopbackAddr(t), 3: loopbackAddr(t)}
	for id := uint64(1); id <= 3; id++ {
		files := &raftex.TLSFiles{
			CertFile: filepath.Join(certs, fmt.Sprintf("n%d.crt", id)), KeyFile: filepath.Join(certs, fmt.Sprintf("n%d.key", id)),
			TrustedCAFile: filepath.Join(certs, "ca.crt")}
		n, err := raftex.StartNode(raftex.Config{ID: id, DataDir: filepath.Join(dir, fmt.Sprint("n", id)),
			PeerAddr: cluster[id], InitialCluster: cluster, Logger: quiet,
			PeerTLS: files, ClientTLS: files, ClientCertAuth: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Stop() })
		nodes = append(nodes, n)
	}
	return nodes, dir
}

// TestTLSClusterShrugsOffForgedPeers: a cluster with peer TLS serves
// writes; a plain TCP peer that knows the cluster id and sends the leader
// a TimeoutNow and a heartbeat at term 5000 changes neither its term nor
// its leadership.
func TestTLSClusterShrugsOffForgedPeers(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	nodes, dirs := tlsCluster(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := nodes[0].Set(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	st, err := nodes[0].Raft().Status(ctx)
	for err == nil && st.Leader == raft.None { // an election under way
		time.Sleep(10 * time.Millisecond)
		st, err = nodes[0].Raft().Status(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	leader := nodes[st.Leader-1]
	from := uint64(1 + st.Leader%3) // another member
	c, err := net.DialTimeout("tcp", leader.PeerAddr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	var b []byte
	b = transport.AppendFrame(b, transport.KindHello, transport.AppendHello(nil, transport.Hello{Stream: transport.StreamMessages, ClusterID: storedClusterID(t, filepath.Join(dirs, "n1")), From: from, To: st.Leader}))
	b = transport.AppendMessageFrame(b, raft.Message{Type: raft.MsgTimeoutNow, From: from, To: st.Leader, Term: st.Term})
	b = transport.AppendMessageFrame(b, raft.Message{Type: raft.MsgHeartbeat, From: from, To: st.Leader, Term: 5000})
	if _, err := c.Write(b); err == nil {
		_, _ = io.Copy(io.Discard, c) // until the leader closes it
	}
	after, err := leader.Raft().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The forged heartbeat, accepted, would have moved the leader to term
	// 5000 and made it follow the forger. An election of the cluster's own
	// (a loaded machine can delay heartbeats past the 150–300 ms election
	// timeout) moves the term on by a few and is no sign of the forgery;
	// in the same term the leader must not have changed.
	if after.Term >= 5000 || (after.Term == st.Term && after.Leader != st.Leader) {
		t.Fatalf("after the forged messages: term %d leader %d, before term %d leader %d", after.Term, after.Leader, st.Term, st.Leader)
	}
}

// TestClientCertAuth: under ClientCertAuth, an HTTPS client without a
// certificate is refused; one with client.crt is served.
func TestClientCertAuth(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	certs := t.TempDir()
	nodes, _ := tlsCluster(t, certs)
	pem, err := os.ReadFile(filepath.Join(certs, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	get := func(cfg *tls.Config) error {
		tr := &http.Transport{TLSClientConfig: cfg}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("https://" + nodes[0].ClientAddr() + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get(&tls.Config{RootCAs: pool}); err == nil {
		t.Error("a client without a certificate was served")
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(certs, "client.crt"), filepath.Join(certs, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := get(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}); err != nil {
		t.Errorf("a client with client.crt: %v", err)
	}
}

// TestPeerCertificateMustNameThisNode: a node given another node's peer
// certificate does not start (every peer would refuse it).
func TestPeerCertificateMustNameThisNode(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	certs := t.TempDir()
	if _, err := tlsutil.Generate(tlsutil.Request{Dir: certs, Nodes: []string{"n2"}}); err != nil {
		t.Fatal(err)
	}
	cfg := single(t.TempDir(), loopbackAddr(t), &logBuffer{})
	cfg.PeerTLS = &raftex.TLSFiles{CertFile: filepath.Join(certs, "n2.crt"), KeyFile: filepath.Join(certs, "n2.key"), TrustedCAFile: filepath.Join(certs, "ca.crt")}
	n, err := raftex.StartNode(cfg)
	if err == nil {
		n.Stop()
		t.Fatal("node 1 started with n2's certificate")
	}
	if !strings.Contains(err.Error(), "does not name the node n1") {
		t.Fatalf("error %q does not say the certificate names another node", err)
	}
}
