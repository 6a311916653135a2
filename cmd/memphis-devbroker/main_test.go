package main_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testcert"
)

// devBroker builds the command and runs it with args on a free port until
// the test ends; it returns the port and what the command printed before
// "press Ctrl-C", and a func that interrupts it and waits for it to exit.
func devBroker(t *testing.T, args ...string) (port int, said string, stop func()) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "memphis-devbroker")
	goBin, err := exec.LookPath("go") // go test puts its own go first on PATH
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port = l.Addr().(*net.TCPAddr).Port
	l.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, bin, append([]string{"-port", strconv.Itoa(port), "-data", t.TempDir()}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	var out []string
	for lines.Scan() {
		out = append(out, lines.Text())
		if strings.Contains(lines.Text(), "Ctrl-C") {
			break
		}
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		for lines.Scan() {
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("exit after interrupt: %v", err)
		}
	}
	t.Cleanup(stop)
	return port, strings.Join(out, "\n"), stop
}

// roundTrip produces a message through a connection and fetches it back.
func roundTrip(t *testing.T, c *memphis.Conn) {
	t.Helper()
	if err := c.Produce("dev", "p", []byte("hi"), nil, []memphis.ProduceOpt{memphis.SyncProduce()}); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.FetchMessages("dev", "c", memphis.FetchBatchMaxWaitTime(200*time.Millisecond))
	if err != nil || len(msgs) != 1 || string(msgs[0].Data()) != "hi" {
		t.Fatalf("fetch: %d messages, %v", len(msgs), err)
	}
}

// The command starts, says how to connect, serves a real SDK client and
// stops cleanly on an interrupt.
func TestDevBrokerServesAndStops(t *testing.T) {
	port, out, stop := devBroker(t)
	if !strings.Contains(out, "127.0.0.1:"+strconv.Itoa(port)) || !strings.Contains(out, "memphis.Connect(") {
		t.Fatalf("the command did not say how to connect:\n%s", out)
	}
	c, err := memphis.Connect("127.0.0.1", "root", memphis.Password("memphis"), memphis.Port(port))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c)
	c.Close()
	stop()
}

// With -tls-cert, -tls-key and -tls-ca the command serves mutual TLS only:
// the SDK's Tls option connects, a client without a certificate or
// without TLS is refused.
func TestDevBrokerServesMutualTLS(t *testing.T) {
	certs, err := testcert.New([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ca := file("ca.pem", certs.CAPEM)
	port, out, _ := devBroker(t, "-tls-cert", file("server.pem", certs.ServerCertPEM),
		"-tls-key", file("server-key.pem", certs.ServerKeyPEM), "-tls-ca", ca)
	if !strings.Contains(out, "TLS") {
		t.Errorf("the command did not say it serves TLS:\n%s", out)
	}
	base := []memphis.Option{memphis.Password("memphis"), memphis.Port(port), memphis.Timeout(5 * time.Second)}

	c, err := memphis.Connect("127.0.0.1", "root",
		append(base, memphis.Tls(file("client.pem", certs.ClientCertPEM), file("client-key.pem", certs.ClientKeyPEM), ca))...)
	if err != nil {
		t.Fatalf("connect with the client certificate: %v", err)
	}
	roundTrip(t, c)
	c.Close()

	_, err = memphis.Connect("127.0.0.1", "root",
		append(base, memphis.TLSConfig(&tls.Config{RootCAs: certs.Pool(), MinVersion: tls.VersionTLS12}))...)
	if !errors.Is(err, memphis.ErrTLS) {
		t.Errorf("connect without a client certificate: %v, want ErrTLS", err)
	}
	_, err = memphis.Connect("127.0.0.1", "root", base...)
	if !errors.Is(err, memphis.ErrTLS) {
		t.Errorf("connect without TLS: %v, want ErrTLS", err)
	}
}

// Half a TLS configuration is refused before the broker starts.
func TestDevBrokerRefusesHalfTLS(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goBin, "run", ".", "-tls-ca", "ca.pem").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(string(out), "-tls-cert and -tls-key go together") {
		t.Fatalf("run with only -tls-ca: %v\n%s", err, out)
	}
}
