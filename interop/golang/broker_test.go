// Package interop drives the official Memphis Go SDK (v1.3.2, the release
// this repository's module path was last published as) through its
// documented API, against the dev broker this repository builds or against
// the broker at MEMPHIS_HOST. It is a module of its own: it needs the
// official SDK under the same import path as this repository's SDK, so the
// dev broker runs as a separate process built from the root module.
//
// Where Memphis 1.4.4 and the dev broker differ in a way a client can see,
// the test asserts each broker's behaviour by name (see brokerKind).
package interop

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// brokerKind tells the brokers apart where they differ on purpose.
type brokerKind string

const (
	devBroker brokerKind = "dev broker"
	memphis14 brokerKind = "Memphis 1.4.4"
)

// target is a broker the suite runs against.
type target struct {
	host     string
	port     int
	user     string
	password string // empty in token mode
	token    string // empty in password mode
	kind     brokerKind
}

var (
	// primary is the broker every test uses.
	primary target
	// tokenBroker is a broker in token mode, nil when none is at hand (a
	// real broker at MEMPHIS_HOST in password mode).
	tokenBroker *target
)

const devToken = "interop-token"

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	if host := os.Getenv("MEMPHIS_HOST"); host != "" {
		t, err := fromEnv(host)
		if err != nil {
			return 0, err
		}
		primary = t
		if t.token != "" {
			tokenBroker = &primary
		}
		return m.Run(), nil
	}
	root, err := repoRoot()
	if err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp("", "memphis-interop-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "memphis-devbroker")
	build := exec.Command("go", "build", "-o", bin, "./cmd/memphis-devbroker")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("building the dev broker: %v\n%s", err, out)
	}
	pw, err := startDevBroker(bin)
	if err != nil {
		return 0, err
	}
	defer pw.stop()
	tok, err := startDevBroker(bin, "-token", devToken)
	if err != nil {
		return 0, err
	}
	defer tok.stop()
	primary = target{host: "127.0.0.1", port: pw.port, user: "root", password: "memphis", kind: devBroker}
	tokenBroker = &target{host: "127.0.0.1", port: tok.port, user: "root", token: devToken, kind: devBroker}
	return m.Run(), nil
}

// fromEnv reads the broker the suites of the root module read too.
func fromEnv(host string) (target, error) {
	t := target{host: host, port: 6666, user: "root"}
	if p := os.Getenv("MEMPHIS_PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return t, fmt.Errorf("MEMPHIS_PORT: %w", err)
		}
		t.port = n
	}
	if u := os.Getenv("MEMPHIS_USER"); u != "" {
		t.user = u
	}
	if tok := os.Getenv("MEMPHIS_TOKEN"); tok != "" {
		t.token = tok
	} else if t.password = os.Getenv("MEMPHIS_PASSWORD"); t.password == "" {
		t.password = "memphis"
	}
	kind, err := identify(t)
	if err != nil {
		return t, err
	}
	t.kind = kind
	return t, nil
}

// identify tells the dev broker from Memphis by the NATS version a server
// reports: the dev broker embeds the nats-server the root module requires,
// Memphis 1.4.4 its own fork of 2.10.7.
func identify(t target) (brokerKind, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`github\.com/nats-io/nats-server/v2 v(\S+)`).FindSubmatch(mod)
	if m == nil {
		return "", fmt.Errorf("no nats-server in %s/go.mod", root)
	}
	opts := []nats.Option{nats.Name("interop-probe::" + t.user)}
	if t.token != "" {
		opts = append(opts, nats.Token(t.token))
	} else {
		opts = append(opts, nats.UserInfo(t.user+"$1", t.password))
	}
	nc, err := nats.Connect(fmt.Sprintf("nats://%s:%d", t.host, t.port), opts...)
	if err != nil {
		return "", fmt.Errorf("probing %s:%d: %w", t.host, t.port, err)
	}
	defer nc.Close()
	if nc.ConnectedServerVersion() == string(m[1]) {
		return devBroker, nil
	}
	return memphis14, nil
}

// repoRoot is the root module's directory, two levels up.
func repoRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.HasPrefix(string(mod), "module github.com/memphisdev/memphis.go\n") {
		return "", fmt.Errorf("%s is not the memphis.go repository", root)
	}
	return root, nil
}

// devProcess is a running cmd/memphis-devbroker.
type devProcess struct {
	cmd  *exec.Cmd
	port int
	done chan struct{}
}

var listening = regexp.MustCompile(`listening on [^ ]+:(\d+)`)

// startDevBroker starts the binary on a free port and waits until it says
// where it listens.
func startDevBroker(bin string, args ...string) (*devProcess, error) {
	cmd := exec.Command(bin, append([]string{"-port", "0"}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &devProcess{cmd: cmd, done: make(chan struct{})}
	found := make(chan int, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				n, _ := strconv.Atoi(m[1])
				found <- n
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case p.port = <-found:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("dev broker %v exited before listening", args)
	case <-time.After(time.Minute):
		p.stop()
		return nil, fmt.Errorf("dev broker %v did not start within a minute", args)
	}
}

// stop interrupts the broker and waits for it, killing it if it hangs.
func (p *devProcess) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// name is a station or client name unique to this run.
func name(_ *testing.T, prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1e12)
}

// ctx bounds a test's waits.
func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
