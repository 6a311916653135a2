package memphistest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/memphisdev/memphis.go/internal/testcert"
)

// tlsOptions configure WithTLS.
type tlsOptions struct {
	requireClientCert bool
	hosts             []string
}

// TLSOption configures WithTLS.
type TLSOption func(*tlsOptions)

// RequireClientCert makes the server require a client certificate signed
// by its CA (mutual TLS); a client without one is refused during the
// handshake. Default: client certificates are not asked for.
func RequireClientCert() TLSOption { return func(o *tlsOptions) { o.requireClientCert = true } }

// TLSHosts sets the host names and IP addresses the server's certificate
// is valid for, replacing the default: the server's host, 127.0.0.1, ::1
// and localhost. A client connecting by any other name fails to verify it,
// as with a real certificate issued for another host.
func TLSHosts(hosts ...string) TLSOption {
	return func(o *tlsOptions) { o.hosts = append([]string(nil), hosts...) }
}

// WithTLS makes the server accept only TLS connections, with a server
// certificate signed by a CA made in memory for this server alone.
// Server.TLS gives a client what it needs: the CA, a client certificate
// signed by it, and files for memphis.Tls. Default: no TLS.
func WithTLS(opts ...TLSOption) Option {
	return func(c *config) {
		o := &tlsOptions{}
		for _, fn := range opts {
			fn(o)
		}
		c.tls = o
		c.b.TLS = nil
	}
}

// WithTLSConfig makes the server accept only TLS connections, configured
// by cfg: its certificates, and, for mutual TLS, ClientAuth
// tls.RequireAndVerifyClientCert with the accepted CAs in ClientCAs. It
// replaces WithTLS; Server.TLS is then nil. Default: no TLS.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *config) { c.b.TLS, c.tls = cfg, nil }
}

// TLS is the certificate material of a server started WithTLS, in PEM:
// its CA, and a client certificate signed by that CA, valid for mutual
// TLS. It is safe for concurrent use and never changes.
type TLS struct {
	// CAPEM is the CA certificate that signed the server's certificate and
	// the client certificate.
	CAPEM []byte
	// ClientCertPEM is a client certificate signed by the CA.
	ClientCertPEM []byte
	// ClientKeyPEM is the client certificate's private key.
	ClientKeyPEM []byte

	pool   *x509.CertPool
	client tls.Certificate
}

// TLS is the server's certificate material; nil unless it was started
// WithTLS.
func (s *Server) TLS() *TLS { return s.tls }

// CAPool is a pool holding the server's CA, for tls.Config.RootCAs.
func (t *TLS) CAPool() *x509.CertPool { return t.pool }

// ClientCertificate is the client certificate with its key, for
// tls.Config.Certificates.
func (t *TLS) ClientCertificate() tls.Certificate { return t.client }

// ClientConfig is a client TLS configuration that trusts the server's CA
// and presents the client certificate, for memphis.TLSConfig. Each call
// returns a new one.
func (t *TLS) ClientConfig() *tls.Config {
	return &tls.Config{RootCAs: t.pool, Certificates: []tls.Certificate{t.client}, MinVersion: tls.VersionTLS12}
}

// WriteFiles writes the client certificate, its key and the CA
// certificate into dir as PEM files, and returns their paths in the order
// memphis.Tls takes them. The key file is readable by its owner only.
func (t *TLS) WriteFiles(dir string) (certFile, keyFile, caFile string, err error) {
	certFile = filepath.Join(dir, "client.pem")
	keyFile = filepath.Join(dir, "client-key.pem")
	caFile = filepath.Join(dir, "ca.pem")
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{certFile, t.ClientCertPEM, 0o644}, {keyFile, t.ClientKeyPEM, 0o600}, {caFile, t.CAPEM, 0o644}} {
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return "", "", "", fmt.Errorf("memphistest: %w", err)
		}
	}
	return certFile, keyFile, caFile, nil
}

// String names what it holds; the private key stays out of logs.
func (t *TLS) String() string {
	return "memphistest.TLS{CA, client certificate, client key: [redacted]}"
}

// Format prints String, whatever the verb.
func (t *TLS) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, t.String()) }

// certValidity is how long generated certificates are valid: long enough
// for any test run or development session.
const certValidity = 365 * 24 * time.Hour

// newTLS makes a CA, a server certificate for the hosts and a client
// certificate, and the server's configuration.
func newTLS(host string, o tlsOptions) (*TLS, *tls.Config, error) {
	hosts := o.hosts
	if hosts == nil {
		hosts = []string{host, "127.0.0.1", "::1", "localhost"}
	}
	b, err := testcert.New(hosts, certValidity)
	if err != nil {
		return nil, nil, err
	}
	pool := b.Pool()
	m := &TLS{CAPEM: b.CAPEM, ClientCertPEM: b.ClientCertPEM, ClientKeyPEM: b.ClientKeyPEM, pool: pool, client: b.Client}
	cfg := &tls.Config{Certificates: []tls.Certificate{b.Server}, MinVersion: tls.VersionTLS12}
	if o.requireClientCert {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = pool
	}
	return m, cfg, nil
}
