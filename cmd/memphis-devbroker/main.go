// Command memphis-devbroker runs the in-process Memphis-compatible broker
// standalone, for local development: any Memphis SDK (Go, Node.js, Python)
// connects to it as to a real Memphis broker.
//
//	go run ./cmd/memphis-devbroker -port 6666
//
// It runs until interrupted. State is kept in -data when given, else in a
// temporary directory removed on exit.
//
// With -tls-cert and -tls-key it accepts only TLS connections; -tls-ca
// makes it require a client certificate signed by that CA (mutual TLS,
// which is what the Memphis SDKs' Tls options speak).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/memphisdev/memphis.go/memphistest"
)

func main() {
	port := flag.Int("port", 6666, "client port")
	host := flag.String("host", "127.0.0.1", "interface to listen on")
	user := flag.String("user", memphistest.DefaultUsername, "user name")
	pass := flag.String("password", memphistest.DefaultPassword, "password (user/password mode)")
	token := flag.String("token", "", "connection token: switches to token mode")
	data := flag.String("data", "", "directory to keep state in (default: temporary)")
	verbose := flag.Bool("v", false, "log the broker's warnings")
	tlsCert := flag.String("tls-cert", "", "serve TLS only, with this certificate (PEM file); needs -tls-key")
	tlsKey := flag.String("tls-key", "", "the TLS certificate's private key (PEM file)")
	tlsCA := flag.String("tls-ca", "", "require client certificates signed by this CA (PEM file); needs -tls-cert")
	flag.Parse()

	opts := []memphistest.Option{
		memphistest.WithHost(*host), memphistest.WithPort(*port), memphistest.WithUser(*user, *pass),
	}
	if *token != "" {
		opts = append(opts, memphistest.WithToken(*token))
	}
	if *data != "" {
		opts = append(opts, memphistest.WithStorageDir(*data))
	}
	if *verbose {
		opts = append(opts, memphistest.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	}
	tlsCfg, err := serverTLS(*tlsCert, *tlsKey, *tlsCA)
	if err != nil {
		fmt.Fprintln(os.Stderr, "memphis-devbroker:", err)
		os.Exit(2)
	}
	if tlsCfg != nil {
		opts = append(opts, memphistest.WithTLSConfig(tlsCfg))
	}
	srv, err := memphistest.Start(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "memphis-devbroker:", err)
		os.Exit(1)
	}
	defer srv.Shutdown()

	switch {
	case *tlsCA != "":
		fmt.Printf("Memphis dev broker listening on %s:%d (TLS, client certificates signed by %s required)\n", srv.Host(), srv.Port(), *tlsCA)
	case tlsCfg != nil:
		fmt.Printf("Memphis dev broker listening on %s:%d (TLS)\n", srv.Host(), srv.Port())
	default:
		fmt.Printf("Memphis dev broker listening on %s:%d\n", srv.Host(), srv.Port())
	}
	if srv.Token() != "" {
		fmt.Printf("connect: memphis.Connect(%q, %q, memphis.ConnectionToken(%q), memphis.Port(%d))\n",
			srv.Host(), srv.Username(), srv.Token(), srv.Port())
	} else {
		fmt.Printf("connect: memphis.Connect(%q, %q, memphis.Password(%q), memphis.Port(%d))\n",
			srv.Host(), srv.Username(), srv.Password(), srv.Port())
	}
	if tlsCfg != nil {
		fmt.Println("over TLS: add memphis.Tls(clientCertFile, clientKeyFile, caFile), caFile being the CA that signed -tls-cert")
	}
	fmt.Println("press Ctrl-C to stop")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	fmt.Println("stopping")
}

// serverTLS is the TLS configuration the flags ask for: none without a
// certificate; with a CA, client certificates signed by it are required.
func serverTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "" && caFile == "":
		return nil, nil
	case certFile == "" || keyFile == "":
		return nil, errors.New("-tls-cert and -tls-key go together (and -tls-ca needs them)")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA: no certificate in %s", caFile)
		}
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, pool
	}
	return cfg, nil
}
