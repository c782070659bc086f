package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestTLS: with Options.TLS a host:port endpoint is https, verified with
// the given CA; without it, the node's plain answer to plain http says why
// rather than a bare "400 Bad Request".
func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("v"))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := New([]string{addr}, Options{TLS: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, _, err := c.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get over https = %q, %v", v, err)
	}

	plain, err := New([]string{addr}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, _, err := plain.Get(ctx, "k"); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "HTTPS server") {
		t.Fatalf("Get over http of an https node = %v, want a bad request saying it serves HTTPS", err)
	}
}
