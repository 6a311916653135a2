package memphistest_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/memphistest"
)

// echoServer answers every connection with what it receives, until the
// test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

func dial(t *testing.T, p *memphistest.Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", net.JoinHostPort(p.Host(), strconv.Itoa(p.Port())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echo writes msg and reads it back within d, returning how long it took.
func echo(t *testing.T, c net.Conn, msg string, d time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	if _, err := c.Write([]byte(msg)); err != nil {
		return 0, err
	}
	_ = c.SetReadDeadline(time.Now().Add(d))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return 0, err
	}
	if string(buf) != msg {
		return 0, fmt.Errorf("echoed %q, want %q", buf, msg)
	}
	return time.Since(start), nil
}

// readFails reads until the connection fails or d passes.
func readFails(c net.Conn, d time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 16))
	return err
}

func TestProxyForwardsAndResets(t *testing.T) {
	p := memphistest.NewProxy(t, echoServer(t))
	c := dial(t, p)
	if _, err := echo(t, c, "hello", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := p.Reset(); n != 1 {
		t.Fatalf("Reset reset %d connections, want 1", n)
	}
	err := readFails(c, 5*time.Second)
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after Reset: %v, want the connection gone", err)
	}
	if _, err := echo(t, dial(t, p), "again", 5*time.Second); err != nil {
		t.Fatalf("a new connection after Reset: %v", err)
	}
}

func TestProxyBlackHoleHoldsBytes(t *testing.T) {
	p := memphistest.NewProxy(t, echoServer(t))
	c := dial(t, p)
	if _, err := echo(t, c, "warm", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	healed := p.BlackHole(time.Second)
	if _, err := echo(t, c, "held", 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("echo inside the black hole: %v, want no bytes", err)
	}
	late := dial(t, p) // accepted, but silent too
	if _, err := echo(t, late, "late", 200*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a new connection inside the black hole: %v, want no bytes", err)
	}
	if n := p.Conns(); n != 2 {
		t.Errorf("%d connections open in the black hole, want both", n)
	}
	select {
	case <-healed:
	case <-time.After(5 * time.Second):
		t.Fatal("the black hole did not end")
	}
	// What was sent meanwhile arrives after it.
	buf := make([]byte, 4)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "held" {
		t.Fatalf("after the black hole: %q, %v; want the held bytes", buf, err)
	}
	_ = late.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(late, buf); err != nil || string(buf) != "late" {
		t.Fatalf("the late connection after the black hole: %q, %v", buf, err)
	}
}

func TestProxyHealEndsFaults(t *testing.T) {
	p := memphistest.NewProxy(t, echoServer(t))
	c := dial(t, p)
	hole := p.BlackHole(0) // until Heal
	p.Latency(time.Hour)
	p.Heal()
	select {
	case <-hole:
	default:
		t.Fatal("Heal left the black hole's channel open")
	}
	if _, err := echo(t, c, "free", 5*time.Second); err != nil {
		t.Fatalf("after Heal: %v", err)
	}
	// A new black hole replaces the old one, whose channel closes.
	first := p.BlackHole(0)
	second := p.BlackHole(0)
	select {
	case <-first:
	default:
		t.Fatal("a replaced black hole's channel is open")
	}
	p.Heal()
	<-second
}

func TestProxyLatency(t *testing.T) {
	p := memphistest.NewProxy(t, echoServer(t))
	c := dial(t, p)
	const d = 150 * time.Millisecond
	p.Latency(d)
	took, err := echo(t, c, "slow", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if took < 2*d {
		t.Errorf("a round trip took %v with %v each way", took, d)
	}
	p.Latency(0)
	if took, err = echo(t, c, "fast", 5*time.Second); err != nil || took >= d {
		t.Errorf("a round trip took %v (%v) with the latency removed", took, err)
	}
}

func TestProxyOutage(t *testing.T) {
	p := memphistest.NewProxy(t, echoServer(t))
	c := dial(t, p)
	if _, err := echo(t, c, "up", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	over := p.Outage(500 * time.Millisecond)
	if err := readFails(c, 5*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("an open connection in the outage: %v, want it closed", err)
	}
	// Refused: the reset may come before the dial returns, or after.
	if late, err := net.Dial("tcp", net.JoinHostPort(p.Host(), strconv.Itoa(p.Port()))); err == nil {
		err = readFails(late, 5*time.Second)
		late.Close()
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a new connection in the outage: %v, want it refused", err)
		}
	}
	<-over
	if _, err := echo(t, dial(t, p), "back", 5*time.Second); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

// Close ends every fault, connection and goroutine (TestMain checks for
// leaks), even in the middle of a black hole.
func TestProxyCloseInsideFaults(t *testing.T) {
	p, err := memphistest.StartProxy(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	if _, err := echo(t, c, "x", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	hole := p.BlackHole(time.Hour)
	p.Latency(time.Minute)
	if _, err := c.Write([]byte("stuck")); err != nil {
		t.Fatal(err)
	}
	p.Close()
	p.Close()
	<-hole
	if err := readFails(c, 5*time.Second); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("a connection outlived Close")
	}
}

// With WithFaults the SDK reaches the server through the proxy, and the
// faults reach the SDK.
func TestWithFaults(t *testing.T) {
	s := memphistest.NewServer(t, memphistest.WithFaults())
	dropped := make(chan error, 8)
	c := connect(t, s, memphis.DisconnectHandler(func(_ *memphis.Conn, err error) { dropped <- err }))
	p, err := c.CreateProducer("faults", "p")
	if err != nil {
		t.Fatal(err)
	}
	if s.Faults().Conns() != 1 {
		t.Fatalf("%d connections through the proxy, want the SDK's", s.Faults().Conns())
	}
	s.Faults().Reset()
	select {
	case <-dropped:
	case <-time.After(10 * time.Second):
		t.Fatal("the SDK did not see the reset")
	}
	if err := p.ProduceContext(ctxFor(t, 10*time.Second), []byte("after the reset")); err != nil {
		t.Fatalf("produce after the reset: %v", err)
	}
}

// In a cluster, each node tells clients the address of its proxy, so a
// client that learns the other nodes still goes through the proxies.
func TestWithFaultsCluster(t *testing.T) {
	s := memphistest.NewServer(t, memphistest.WithCluster(3), memphistest.WithFaults())
	proxies := map[string]bool{}
	for i, port := range s.Ports() {
		if s.NodeFaults(i) == nil || s.NodeFaults(i).Port() != port {
			t.Fatalf("port %d of node %d is not its proxy's", port, i)
		}
		proxies[net.JoinHostPort(s.Host(), strconv.Itoa(port))] = true
	}
	if s.NodeFaults(3) != nil {
		t.Error("a fourth node has a proxy")
	}
	nc, err := nats.Connect(s.URL(), nats.UserInfo(s.Username()+"$1", s.Password()), nats.Name("t::"+s.Username()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The cluster is formed before NewServer returns, so the first INFO
	// lists every node.
	found := nc.DiscoveredServers()
	if len(found) != 2 {
		t.Fatalf("discovered %v, want the two other nodes", found)
	}
	for _, u := range found {
		if !proxies[u[len("nats://"):]] {
			t.Errorf("discovered %s, not a proxy (%v)", u, proxies)
		}
	}
}
