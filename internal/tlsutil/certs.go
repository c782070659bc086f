package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Lifetimes of the certificates Generate writes.
const (
	CALifetime   = 10 * 365 * 24 * time.Hour
	LeafLifetime = 825 * 24 * time.Hour // the longest most clients accept
)

// File names in a certificate directory.
const (
	CACert     = "ca.crt"
	CAKey      = "ca.key"
	ClientCert = "client.crt"
	ClientKey  = "client.key"
)

// Request says what Generate writes into Dir.
type Request struct {
	Dir string
	// Nodes get nodeName.crt and .key, usable both to serve and to dial:
	// the node name as common name and DNS name, and every one of Hosts
	// (IP addresses or DNS names) as a subject alternative name.
	Nodes []string
	Hosts []string
	// ClientCN is the common name of client.crt (a user name); empty: no
	// client certificate.
	ClientCN string
}

// Generate writes a CA (unless Dir holds one, which then signs), a
// certificate for each node and one for a client, every key ECDSA P-256
// and readable by its owner only. It never overwrites a file: a
// certificate already there is kept, so running it again with another
// node adds that node's certificate, signed by the same CA. It returns
// the files written.
func Generate(req Request) ([]string, error) {
	if err := os.MkdirAll(req.Dir, 0o700); err != nil {
		return nil, err
	}
	var written []string
	ca, caKey, created, err := loadOrCreateCA(req.Dir)
	if err != nil {
		return nil, err
	}
	if created {
		written = append(written, CACert, CAKey)
	}
	now := time.Now()
	issue := func(name string, tmpl *x509.Certificate) error {
		crt, key := filepath.Join(req.Dir, name+".crt"), filepath.Join(req.Dir, name+".key")
		switch crtOK, keyOK := exists(crt), exists(key); {
		case crtOK && keyOK:
			return nil
		case crtOK || keyOK:
			return fmt.Errorf("tlsutil: %s holds only one of %s.crt and %s.key", req.Dir, name, name)
		}
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl.SerialNumber, err = serial()
		if err != nil {
			return err
		}
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(LeafLifetime)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			return err
		}
		if err := writeKey(key, k); err != nil {
			return err
		}
		if err := writePEM(crt, "CERTIFICATE", der, 0o644); err != nil {
			return err
		}
		written = append(written, name+".crt", name+".key")
		return nil
	}
	for _, n := range req.Nodes {
		tmpl := &x509.Certificate{
			Subject:     pkix.Name{CommonName: n},
			DNSNames:    []string{n},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}
		for _, h := range req.Hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else if h != n {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
		if err := issue(n, tmpl); err != nil {
			return written, err
		}
	}
	if req.ClientCN != "" {
		tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: req.ClientCN}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if err := issue("client", tmpl); err != nil {
			return written, err
		}
	}
	return written, nil
}

// loadOrCreateCA loads ca.crt and ca.key from dir, or creates both.
func loadOrCreateCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, bool, error) {
	crt, key := filepath.Join(dir, CACert), filepath.Join(dir, CAKey)
	switch crtOK, keyOK := exists(crt), exists(key); {
	case crtOK && keyOK:
		pair, err := tls.LoadX509KeyPair(crt, key)
		if err != nil {
			return nil, nil, false, fmt.Errorf("tlsutil: loading the CA: %w", err)
		}
		k, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
		if !ok {
			return nil, nil, false, fmt.Errorf("tlsutil: %s is not an ECDSA key", key)
		}
		return pair.Leaf, k, false, nil
	case crtOK || keyOK:
		return nil, nil, false, fmt.Errorf("tlsutil: %s holds only one of %s and %s", dir, CACert, CAKey)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, false, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, false, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{CommonName: "raftex CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(CALifetime),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, false, err
	}
	if err := writeKey(key, k); err != nil {
		return nil, nil, false, err
	}
	if err := writePEM(crt, "CERTIFICATE", der, 0o644); err != nil {
		return nil, nil, false, err
	}
	ca, err := x509.ParseCertificate(der)
	return ca, k, true, err
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

func writeKey(path string, k *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

// writePEM creates path (never replacing a file) with one PEM block.
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("tlsutil: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: typ, Bytes: der}); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
