package docker

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/raftex/raftex/internal/tlsutil"
)

// Every container cluster runs with TLS (issue 11): mutual TLS between
// the peers and https for clients, with certificates of one CA made for
// the whole run. The test's clients trust the CA and present no
// certificate: they authenticate by token, as the auth tests need
// anonymous requests to stay anonymous.
var (
	certDir string      // ca.crt, n1.crt, n1.key, ...: copied into each container's /certs
	certTLS *tls.Config // the test's clients: trusts the CA
)

// makeCerts writes the run's certificates and points the probes at them.
func makeCerts() (cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "raftex-e2e-docker-certs-")
	if err != nil {
		return nil, err
	}
	remove := func() { os.RemoveAll(dir) }
	cleanup = remove
	certDir = filepath.Join(dir, "certs")
	if _, err := tlsutil.Generate(tlsutil.Request{Dir: certDir, Nodes: []string{"n1", "n2", "n3", "n4"}, Hosts: []string{"127.0.0.1", "localhost"}}); err != nil {
		return cleanup, err
	}
	// The containers run as user 65532 and `docker cp` makes the copies
	// root's: the test's throwaway keys must be readable by all there.
	entries, err := os.ReadDir(certDir)
	if err != nil {
		return cleanup, err
	}
	for _, e := range append(entries, nil) {
		path, mode := certDir, os.FileMode(0o755)
		if e != nil {
			path, mode = filepath.Join(certDir, e.Name()), 0o644
		}
		if err := os.Chmod(path, mode); err != nil {
			return cleanup, err
		}
	}
	pem, err := os.ReadFile(filepath.Join(certDir, tlsutil.CACert))
	if err != nil {
		return cleanup, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return cleanup, fmt.Errorf("%s holds no certificate", tlsutil.CACert)
	}
	certTLS = &tls.Config{RootCAs: pool}
	tr := &http.Transport{TLSClientConfig: certTLS}
	probeAuth.base = tr
	return func() { tr.CloseIdleConnections(); remove() }, nil
}

// tlsEnv is the environment that gives node name TLS: as variables, so
// that the image's HEALTHCHECK (`raftex health`) speaks https too.
func tlsEnv(name string) []string {
	var out []string
	for k, v := range map[string]string{
		"RAFTEX_PEER_CERT_FILE": "/certs/" + name + ".crt", "RAFTEX_PEER_KEY_FILE": "/certs/" + name + ".key",
		"RAFTEX_PEER_TRUSTED_CA_FILE": "/certs/ca.crt",
		"RAFTEX_CERT_FILE":            "/certs/" + name + ".crt", "RAFTEX_KEY_FILE": "/certs/" + name + ".key",
		"RAFTEX_TRUSTED_CA_FILE": "/certs/ca.crt",
	} {
		out = append(out, "--env", k+"="+v)
	}
	return out
}
