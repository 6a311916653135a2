package memphis_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/memphistest"
)

// tlsRoundTrip connects to srv with opts, produces a message and fetches
// it back, over TLS.
func tlsRoundTrip(t *testing.T, srv *memphistest.Server, opts ...memphis.Option) {
	t.Helper()
	c, err := memphis.Connect(srv.Host(), srv.Username(),
		append([]memphis.Option{memphis.Password(srv.Password()), memphis.Port(srv.Port())}, opts...)...)
	if err != nil {
		t.Fatalf("connect over TLS: %v", err)
	}
	defer c.Close()
	p := mustProducer(t, c, "secure", "p")
	if err := p.Produce([]byte("over tls")); err != nil {
		t.Fatalf("produce over TLS: %v", err)
	}
	cons := mustConsumer(t, c, "secure", "c")
	msgs := fetchAll(t, cons, 1, 10*time.Second)
	if string(msgs[0].Data()) != "over tls" {
		t.Fatalf("fetched %q", msgs[0].Data())
	}
}

// tlsRefused connects with opts and checks the refusal is an ErrTLS that
// also carries the cause's own type (target, for errors.As).
func tlsRefused[T any](t *testing.T, srv *memphistest.Server, opts ...memphis.Option) {
	t.Helper()
	start := time.Now()
	c, err := memphis.Connect(srv.Host(), srv.Username(),
		append([]memphis.Option{memphis.Password(srv.Password()), memphis.Port(srv.Port()), memphis.Timeout(5 * time.Second)}, opts...)...)
	if err == nil {
		c.Close()
		t.Fatal("connected")
	}
	if !errors.Is(err, memphis.ErrTLS) {
		t.Errorf("err = %v, want ErrTLS", err)
	}
	var cause T
	if !errors.As(err, &cause) {
		t.Errorf("err = %v (%T chain), want a %T inside", err, errors.Unwrap(err), cause)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the refusal took %v", d)
	}
	t.Logf("refused after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

func TestTLSWithFiles(t *testing.T) {
	srv := memphistest.NewServer(t, memphistest.WithTLS())
	cert, key, ca, err := srv.TLS().WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tlsRoundTrip(t, srv, memphis.Tls(cert, key, ca))
}

func TestTLSConfig(t *testing.T) {
	srv := memphistest.NewServer(t, memphistest.WithTLS())
	tlsRoundTrip(t, srv, memphis.TLSConfig(&tls.Config{RootCAs: srv.TLS().CAPool(), MinVersion: tls.VersionTLS12}))
}

func TestMutualTLS(t *testing.T) {
	srv := memphistest.NewServer(t, memphistest.WithTLS(memphistest.RequireClientCert()))
	t.Run("config", func(t *testing.T) {
		tlsRoundTrip(t, srv, memphis.TLSConfig(srv.TLS().ClientConfig()))
	})
	t.Run("files", func(t *testing.T) {
		cert, key, ca, err := srv.TLS().WriteFiles(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		tlsRoundTrip(t, srv, memphis.Tls(cert, key, ca))
	})
	t.Run("no client certificate", func(t *testing.T) {
		tlsRefused[*net.OpError](t, srv, memphis.TLSConfig(&tls.Config{RootCAs: srv.TLS().CAPool(), MinVersion: tls.VersionTLS12}))
	})
	t.Run("client certificate of another CA", func(t *testing.T) {
		other := memphistest.NewServer(t, memphistest.WithTLS())
		cfg := srv.TLS().ClientConfig()
		cfg.Certificates = []tls.Certificate{other.TLS().ClientCertificate()}
		tlsRefused[*net.OpError](t, srv, memphis.TLSConfig(cfg))
	})
}

func TestTLSRefusesUnknownCA(t *testing.T) {
	srv := memphistest.NewServer(t, memphistest.WithTLS())
	other := memphistest.NewServer(t, memphistest.WithTLS())
	tlsRefused[x509.UnknownAuthorityError](t, srv, memphis.TLSConfig(other.TLS().ClientConfig()))
	// Without any TLS option the SDK still does not connect in the clear
	// or without verifying: the broker asks for TLS, and the system's
	// roots do not know its CA.
	tlsRefused[x509.UnknownAuthorityError](t, srv)
}

func TestTLSRefusesHostnameMismatch(t *testing.T) {
	srv := memphistest.NewServer(t, memphistest.WithTLS(memphistest.TLSHosts("broker.example.com")))
	tlsRefused[x509.HostnameError](t, srv, memphis.TLSConfig(srv.TLS().ClientConfig()))
}

func TestTLSToPlainBroker(t *testing.T) {
	srv := memphistest.NewServer(t)
	tls := memphistest.NewServer(t, memphistest.WithTLS())
	_, err := memphis.Connect(srv.Host(), srv.Username(), memphis.Password(srv.Password()), memphis.Port(srv.Port()),
		memphis.TLSConfig(tls.TLS().ClientConfig()))
	if !errors.Is(err, memphis.ErrTLS) {
		t.Fatalf("err = %v, want ErrTLS", err)
	}
}
