package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftex/raftex/internal/e2etest"
)

// tlsClient is an HTTPS client that trusts the CA of certs and presents
// its client.crt.
func tlsClient(t *testing.T, certs string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(certs, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cert, err := tls.LoadX509KeyPair(filepath.Join(certs, "client.crt"), filepath.Join(certs, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// servedSerial is the serial number of the certificate addr serves.
func servedSerial(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestTLSCluster: the secure cluster of docs/security.md, by the command
// line: raftex certs, three `raftex serve` with mutual TLS between peers
// and HTTPS with client certificates required, and the CLI with --cacert,
// --cert and --key. Without a client certificate, or without TLS, the
// CLI is refused. raftex certs run again adds n4 signed by the same CA,
// and SIGHUP makes a node serve a new certificate without a restart.
func TestTLSCluster(t *testing.T) {
	t.Parallel()
	certs := filepath.Join(t.TempDir(), "certs")
	out, code := runRaftex(t, nil, "certs", "--dir", certs, "--nodes", "n1,n2,n3", "--hosts", "127.0.0.1")
	if code != 0 || strings.Count(out, "\n") != 10 {
		t.Fatalf("raftex certs: exit %d, output:\n%s", code, out)
	}
	c := e2etest.PlanCluster(t, clusterConfig(3))
	https := tlsClient(t, certs)
	ca := filepath.Join(certs, "ca.crt")
	for _, nd := range c.Nodes {
		nd.Scheme, nd.HTTP = "https", https
		crt, key := filepath.Join(certs, nd.Name+".crt"), filepath.Join(certs, nd.Name+".key")
		c.StartArgs(nd, append(c.ServeArgs(nd, true),
			"--peer-cert-file", crt, "--peer-key-file", key, "--peer-trusted-ca-file", ca,
			"--cert-file", crt, "--key-file", key, "--trusted-ca-file", ca, "--client-cert-auth"))
	}
	c.Leader()
	c.Published()
	endpoints := strings.Join(c.Endpoints(), ",")
	tlsFlags := []string{"--cacert", ca, "--cert", filepath.Join(certs, "client.crt"), "--key", filepath.Join(certs, "client.key")}
	if out, code := runRaftex(t, nil, append([]string{"put", "k", "v", "--endpoints", endpoints}, tlsFlags...)...); code != 0 {
		t.Fatalf("put over TLS: exit %d: %s", code, out)
	}
	if out, code := runRaftex(t, nil, append([]string{"get", "k", "--endpoints", endpoints}, tlsFlags...)...); code != 0 || !strings.HasPrefix(out, "v\n") {
		t.Fatalf("get over TLS: exit %d: %s", code, out)
	}
	if out, code := runRaftex(t, nil, append([]string{"status", "--endpoints", c.Nodes[0].ClientAddr}, tlsFlags...)...); code != 0 || strings.Count(out, "127.0.0.1:") != 3 {
		t.Fatalf("status over TLS: exit %d: %s", code, out)
	}
	// raftex bench speaks https with the same flags: a mixed workload
	// (with its fill) over every node, every operation answered.
	stdout, stderr, code := runCLI(t, nil, append([]string{"bench", "--endpoints", endpoints, "--workload", "mixed:50/50",
		"--ops", "60", "--clients", "3", "--keys", "20", "--progress", "never", "--json"}, tlsFlags...)...)
	var bench struct {
		Ops, Failed int64
	}
	if err := json.Unmarshal([]byte(stdout), &bench); code != 0 || err != nil || bench.Ops != 60 || bench.Failed != 0 {
		t.Fatalf("bench over TLS: exit %d (%v): %s%s", code, err, stdout, stderr)
	}
	for name, flags := range map[string][]string{"no client certificate": {"--cacert", ca}, "plaintext": nil} {
		if out, code := runRaftex(t, nil, append([]string{"get", "k", "--endpoints", endpoints, "--timeout", "2s"}, flags...)...); code == 0 {
			t.Errorf("get with %s: exit 0: %s", name, out)
		}
	}

	out, code = runRaftex(t, nil, "certs", "--dir", certs, "--nodes", "n3,n4", "--hosts", "127.0.0.1")
	if code != 0 || strings.TrimSpace(out) != filepath.Join(certs, "n4.crt")+"\n"+filepath.Join(certs, "n4.key") {
		t.Fatalf("raftex certs --nodes n3,n4 on the same dir: exit %d, output:\n%s", code, out)
	}
	verifyCert(t, certs, "n4")

	// n4 joins over https through a follower, which relays the request
	// to the leader over https with its own certificate.
	lead := c.Leader()
	via := c.Nodes[0]
	if via == lead {
		via = c.Nodes[1]
	}
	n4 := c.Plan("n4")
	n4.Scheme, n4.HTTP = "https", https
	crt4, key4 := filepath.Join(certs, "n4.crt"), filepath.Join(certs, "n4.key")
	c.StartArgs(n4, append(c.ServeArgs(n4, false), "--join", "https://"+via.ClientAddr,
		"--peer-cert-file", crt4, "--peer-key-file", key4, "--peer-trusted-ca-file", ca,
		"--cert-file", crt4, "--key-file", key4, "--trusted-ca-file", ca, "--client-cert-auth"))
	waitMembers(t, c.Nodes, []string{"n1", "n2", "n3", "n4"}, nil)

	// A new certificate for n1 from the same CA, in place, then SIGHUP.
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(ca)
	pool.AppendCertsFromPEM(pem)
	probe := &tls.Config{RootCAs: pool, Certificates: https.Transport.(*http.Transport).TLSClientConfig.Certificates}
	n1 := c.Nodes[0]
	before := servedSerial(t, n1.ClientAddr, probe)
	renewed := filepath.Join(t.TempDir(), "renewed")
	for _, f := range []string{"ca.crt", "ca.key"} {
		copyFile(t, filepath.Join(certs, f), filepath.Join(renewed, f))
	}
	if out, code := runRaftex(t, nil, "certs", "--dir", renewed, "--nodes", "n1", "--hosts", "127.0.0.1", "--client-cn", ""); code != 0 {
		t.Fatalf("renewing n1: %s", out)
	}
	for _, f := range []string{"n1.crt", "n1.key"} {
		copyFile(t, filepath.Join(renewed, f), filepath.Join(certs, f))
	}
	n1.Proc.Signal(t, syscall.SIGHUP)
	soon.Until(t, "n1 reloads its certificates", func() error {
		if !strings.Contains(n1.Proc.Log(), "SIGHUP: reloaded the certificates") {
			return fmt.Errorf("not yet:\n%s", n1.Proc.Tail(3))
		}
		return nil
	})
	if after := servedSerial(t, n1.ClientAddr, probe); after == before {
		t.Fatalf("after SIGHUP n1 still serves the certificate with serial %s", before)
	}
	if out, code := runRaftex(t, nil, append([]string{"put", "k", "w", "--endpoints", n1.ClientAddr}, tlsFlags...)...); code != 0 {
		t.Fatalf("put through n1 after the reload: exit %d: %s", code, out)
	}
}

func verifyCert(t *testing.T, dir, name string) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
		t.Errorf("%s.crt does not verify with the CA of %s: %v", name, dir, err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
