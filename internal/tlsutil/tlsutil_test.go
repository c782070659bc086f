package tlsutil_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/raftex/raftex/internal/tlsutil"
)

func generate(t *testing.T, req tlsutil.Request) []string {
	t.Helper()
	got, err := tlsutil.Generate(req)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func load(t *testing.T, dir, name string) *x509.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return pair.Leaf
}

func pool(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, tlsutil.CACert))
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(b)
	return p
}

// TestGenerateAddsNodesWithTheSameCA: a second run with another node
// writes only that node's files, signed by the CA of the first run, and
// leaves every existing file as it was; keys are private to their owner.
func TestGenerateAddsNodesWithTheSameCA(t *testing.T) {
	dir := t.TempDir()
	first := generate(t, tlsutil.Request{Dir: dir, Nodes: []string{"n1", "n2", "n3"}, Hosts: []string{"127.0.0.1", "localhost"}, ClientCN: "root"})
	want := []string{"ca.crt", "ca.key", "n1.crt", "n1.key", "n2.crt", "n2.key", "n3.crt", "n3.key", "client.crt", "client.key"}
	if !slices.Equal(first, want) {
		t.Fatalf("first run wrote %v, want %v", first, want)
	}
	before := map[string][]byte{}
	for _, f := range want {
		before[f], _ = os.ReadFile(filepath.Join(dir, f))
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Ext(f) == ".key" && st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	second := generate(t, tlsutil.Request{Dir: dir, Nodes: []string{"n3", "n4"}, Hosts: []string{"127.0.0.1"}, ClientCN: "root"})
	if !slices.Equal(second, []string{"n4.crt", "n4.key"}) {
		t.Fatalf("second run wrote %v, want only n4's files", second)
	}
	for f, b := range before {
		if now, _ := os.ReadFile(filepath.Join(dir, f)); !slices.Equal(now, b) {
			t.Errorf("%s changed", f)
		}
	}
	n4 := load(t, dir, "n4")
	if _, err := n4.Verify(x509.VerifyOptions{Roots: pool(t, dir), DNSName: "n4", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("n4 as a client: %v", err)
	}
	if _, err := n4.Verify(x509.VerifyOptions{Roots: pool(t, dir), DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("n4 as a server at 127.0.0.1: %v", err)
	}
	if err := load(t, dir, "n1").VerifyHostname("localhost"); err != nil {
		t.Errorf("n1 for localhost: %v", err)
	}
	if cn := load(t, dir, "client").Subject.CommonName; cn != "root" {
		t.Errorf("client CN %q, want root", cn)
	}
}

// pair returns the two ends of a loopback TCP connection, with a
// deadline that only guards against a hang.
func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []net.Conn{a, b} {
		if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

func TestCheckNode(t *testing.T) {
	dir := t.TempDir()
	generate(t, tlsutil.Request{Dir: dir, Nodes: []string{"n2"}})
	n2 := load(t, dir, "n2")
	if err := tlsutil.CheckNode(n2, "n2", ""); err != nil {
		t.Errorf("n2's certificate for n2: %v", err)
	}
	if err := tlsutil.CheckNode(n2, "n3", ""); !errors.Is(err, tlsutil.ErrWrongNode) {
		t.Errorf("n2's certificate for n3: %v, want ErrWrongNode", err)
	}
	if err := tlsutil.CheckNode(n2, "n2", "raftex-peer"); !errors.Is(err, tlsutil.ErrWrongNode) {
		t.Errorf("CN n2 with only raftex-peer allowed: %v, want ErrWrongNode", err)
	}
	if err := tlsutil.CheckNode(n2, "n2", "n2"); err != nil {
		t.Errorf("CN n2 with n2 allowed: %v", err)
	}
}

// TestReload: a handshake after Reload sees the new certificate and CA; a
// reload that fails keeps the material in use.
func TestReload(t *testing.T) {
	oldDir, newDir, live := t.TempDir(), t.TempDir(), t.TempDir()
	generate(t, tlsutil.Request{Dir: oldDir, Nodes: []string{"n1"}})
	generate(t, tlsutil.Request{Dir: newDir, Nodes: []string{"n1"}})
	use := func(dir string) {
		for _, f := range []string{"n1.crt", "n1.key", "ca.crt"} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(live, f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	use(oldDir)
	files := tlsutil.Files{Cert: filepath.Join(live, "n1.crt"), Key: filepath.Join(live, "n1.key"), CA: filepath.Join(live, "ca.crt")}
	r, err := tlsutil.NewReloader(files)
	if err != nil {
		t.Fatal(err)
	}
	served := func() *x509.Certificate {
		t.Helper()
		a, b := pair(t)
		defer a.Close()
		defer b.Close()
		srv := tls.Server(a, r.ServerConfig(tls.RequireAndVerifyClientCert))
		done := make(chan error, 1)
		go func() { done <- srv.Handshake() }()
		cli := tls.Client(b, r.PeerClientConfig())
		if err := cli.Handshake(); err != nil {
			t.Fatalf("client handshake: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("server handshake: %v", err)
		}
		return cli.ConnectionState().PeerCertificates[0]
	}
	if got := served(); !got.Equal(load(t, oldDir, "n1")) {
		t.Fatal("the server does not present the loaded certificate")
	}
	use(newDir)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := served(); !got.Equal(load(t, newDir, "n1")) {
		t.Fatal("after Reload, the server still presents the old certificate")
	}
	if err := os.WriteFile(files.Key, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil {
		t.Fatal("Reload of a broken key succeeded")
	}
	if got := served(); !got.Equal(load(t, newDir, "n1")) {
		t.Fatal("a failed Reload changed the certificate")
	}
}

// TestPeerClientRefusesAnotherCA: a dialer refuses a server whose
// certificate another CA signed, and a server refuses such a client.
func TestPeerClientRefusesAnotherCA(t *testing.T) {
	good, other := t.TempDir(), t.TempDir()
	generate(t, tlsutil.Request{Dir: good, Nodes: []string{"n1", "n2"}})
	generate(t, tlsutil.Request{Dir: other, Nodes: []string{"n2"}})
	reloader := func(dir string) *tlsutil.Reloader {
		r, err := tlsutil.NewReloader(tlsutil.Files{Cert: filepath.Join(dir, "n2.crt"), Key: filepath.Join(dir, "n2.key"), CA: filepath.Join(dir, "ca.crt")})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	trusted, foreign := reloader(good), reloader(other)
	for _, tc := range []struct {
		name        string
		server, cli *tlsutil.Reloader
	}{{"foreign server", foreign, trusted}, {"foreign client", trusted, foreign}} {
		a, b := pair(t)
		srv := tls.Server(a, tc.server.ServerConfig(tls.RequireAndVerifyClientCert))
		done := make(chan error, 1)
		go func() { done <- srv.Handshake(); a.Close() }()
		cerr := tls.Client(b, tc.cli.PeerClientConfig()).Handshake()
		b.Close()
		serr := <-done
		if cerr == nil && serr == nil {
			t.Errorf("%s: handshake succeeded", tc.name)
		}
	}
}
