package main_test

import (
	"bufio"
	"context"
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
)

// The command starts, says how to connect, serves a real SDK client and
// stops cleanly on an interrupt.
func TestDevBrokerServesAndStops(t *testing.T) {
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
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-port", strconv.Itoa(port), "-data", t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	var said []string
	for lines.Scan() {
		said = append(said, lines.Text())
		if strings.Contains(lines.Text(), "Ctrl-C") {
			break
		}
	}
	out := strings.Join(said, "\n")
	if !strings.Contains(out, "127.0.0.1:"+strconv.Itoa(port)) || !strings.Contains(out, "memphis.Connect(") {
		t.Fatalf("the command did not say how to connect:\n%s", out)
	}

	c, err := memphis.Connect("127.0.0.1", "root", memphis.Password("memphis"), memphis.Port(port))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Produce("dev", "p", []byte("hi"), nil, []memphis.ProduceOpt{memphis.SyncProduce()}); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.FetchMessages("dev", "c", memphis.FetchBatchMaxWaitTime(200*time.Millisecond))
	if err != nil || len(msgs) != 1 || string(msgs[0].Data()) != "hi" {
		t.Fatalf("fetch: %d messages, %v", len(msgs), err)
	}
	c.Close()

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after interrupt: %v", err)
	}
}
