// Package tlsutil loads the TLS material of a node from files, swaps it
// atomically when asked to reload (on SIGHUP), and checks that a peer's
// certificate names the node it claims to be.
//
// Every tls.Config it makes reads the material at handshake time
// (GetConfigForClient, GetClientCertificate, VerifyConnection), so a
// reload applies to every later handshake, while connections already
// open keep the certificates they were made with.
package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"time"
)

// MinVersion is the oldest TLS version accepted; Go negotiates TLS 1.3
// whenever both ends speak it.
const MinVersion = tls.VersionTLS12

// Files names a certificate, its key and the CA bundle that verifies the
// other end's certificates. CA may be empty for a server that asks for no
// client certificate.
type Files struct {
	Cert, Key, CA string
}

// material is one loaded generation of the files.
type material struct {
	cert *tls.Certificate
	pool *x509.CertPool // nil without a CA file
}

// Reloader holds the material loaded from Files; Reload swaps it.
type Reloader struct {
	files Files
	cur   atomic.Pointer[material]
}

// NewReloader loads f, failing if a file is missing or does not parse.
func NewReloader(f Files) (*Reloader, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("tlsutil: a certificate and its key are both needed")
	}
	r := &Reloader{files: f}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files again and, if they all load, makes them the
// material of every later handshake. On error the old material stays.
func (r *Reloader) Reload() error {
	cert, err := tls.LoadX509KeyPair(r.files.Cert, r.files.Key)
	if err != nil {
		return fmt.Errorf("tlsutil: loading %s and %s: %w", r.files.Cert, r.files.Key, err)
	}
	m := &material{cert: &cert}
	if r.files.CA != "" {
		pem, err := os.ReadFile(r.files.CA)
		if err != nil {
			return fmt.Errorf("tlsutil: %w", err)
		}
		m.pool = x509.NewCertPool()
		if !m.pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tlsutil: %s holds no PEM certificate", r.files.CA)
		}
	}
	r.cur.Store(m)
	return nil
}

// Leaf returns the current certificate, parsed.
func (r *Reloader) Leaf() *x509.Certificate { return r.cur.Load().cert.Leaf }

// ServerConfig is the configuration of a listener: the current
// certificate, and client certificates asked for with auth (verified
// against the CA file).
func (r *Reloader) ServerConfig(auth tls.ClientAuthType) *tls.Config {
	return &tls.Config{
		MinVersion: MinVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := r.cur.Load()
			return &tls.Config{
				MinVersion:   MinVersion,
				Certificates: []tls.Certificate{*m.cert},
				ClientAuth:   auth,
				ClientCAs:    m.pool,
			}, nil
		},
	}
}

// PeerClientConfig is the configuration of a peer dialer: it presents the
// current certificate and verifies the server's chain against the CA file.
// It does not check the server's name against the address dialed: the
// caller checks instead that the certificate names the node it meant to
// reach (CheckNode).
func (r *Reloader) PeerClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: MinVersion,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return r.cur.Load().cert, nil
		},
		// The chain is verified below, against the pool of the moment,
		// which a static RootCAs could not follow across reloads.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyChain(cs.PeerCertificates, r.cur.Load().pool, x509.ExtKeyUsageServerAuth)
		},
	}
}

// ProbeConfig is the configuration of a process probing its own node
// through a loopback address that its certificate may not name (raftex
// health): it verifies the server's chain against the CA file but not its
// host name, and presents the certificate of Files when the node asks
// for one.
func ProbeConfig(f Files) (*tls.Config, error) {
	r, err := NewReloader(f)
	if err != nil {
		return nil, err
	}
	return r.PeerClientConfig(), nil
}

func verifyChain(certs []*x509.Certificate, pool *x509.CertPool, usage x509.ExtKeyUsage) error {
	if len(certs) == 0 {
		return errors.New("tlsutil: the peer presented no certificate")
	}
	if pool == nil {
		return errors.New("tlsutil: no trusted CA to verify the peer's certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots: pool, Intermediates: inter, CurrentTime: time.Now(),
		KeyUsages: []x509.ExtKeyUsage{usage},
	})
	return err
}

// ErrWrongNode is wrapped by CheckNode's errors.
var ErrWrongNode = errors.New("tlsutil: the certificate does not name the node")

// CheckNode checks that cert names the node name ("n2"): as a DNS or URI
// subject alternative name, or as its common name; and, when allowedCN is
// set, that its common name is allowedCN (like etcd's
// --peer-cert-allowed-cn).
func CheckNode(cert *x509.Certificate, name, allowedCN string) error {
	if allowedCN != "" && cert.Subject.CommonName != allowedCN {
		return fmt.Errorf("%w: common name %q, only %q is allowed", ErrWrongNode, cert.Subject.CommonName, allowedCN)
	}
	if cert.Subject.CommonName == name || slices.Contains(cert.DNSNames, name) {
		return nil
	}
	for _, u := range cert.URIs {
		if u.String() == name || u.Opaque == name || u.Host == name {
			return nil
		}
	}
	return fmt.Errorf("%w %s: it names CN %q, DNS %q", ErrWrongNode, name, cert.Subject.CommonName, cert.DNSNames)
}
