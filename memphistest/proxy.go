package memphistest

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy that injects network faults between clients and a
// broker: it resets connections, black-holes traffic, adds latency and
// stages outages, on demand. A Server started with WithFaults puts one in
// front of each node (see Server.Faults); NewProxy puts one in front of any
// address, a real Memphis broker included.
//
// Faults apply to connections open when they start and to those made
// while they last. Its methods are safe for concurrent use.
type Proxy struct {
	l      net.Listener
	target string // set before the accept loop starts, then read-only

	mu      sync.Mutex
	conns   map[*proxyConn]struct{}
	latency time.Duration
	hole    *fault // the black hole in force, nil for none
	outage  *fault // the outage in force, nil for none
	changed chan struct{}
	closed  bool

	wg sync.WaitGroup // the accept loop, every connection's pumps, and fault timers that fired
}

// fault is one timed fault: done closes when it ends.
type fault struct {
	done  chan struct{}
	timer *time.Timer // nil for a fault that lasts until Heal
}

// NewProxy starts a proxy in front of target (host:port) for one test and
// closes it when the test ends. Clients connect to its Host and Port.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := StartProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// StartProxy starts a proxy in front of target (host:port) on a free
// loopback port, outside a test. Call Close when done.
func StartProxy(target string) (*Proxy, error) {
	p, err := listenProxy("127.0.0.1")
	if err != nil {
		return nil, err
	}
	p.start(target)
	return p, nil
}

// listenProxy binds a proxy's port; start begins serving once the target
// is known (a Server needs the port before its nodes start, to advertise
// it to cluster clients).
func listenProxy(host string) (*Proxy, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("memphistest: proxy: %w", err)
	}
	return &Proxy{l: l, conns: map[*proxyConn]struct{}{}, changed: make(chan struct{})}, nil
}

func (p *Proxy) start(target string) {
	p.target = target
	p.wg.Add(1)
	go p.accept()
}

// Addr is the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Host is the proxy's host, to pass to memphis.Connect.
func (p *Proxy) Host() string { return p.l.Addr().(*net.TCPAddr).IP.String() }

// Port is the proxy's port (memphis.Port).
func (p *Proxy) Port() int { return p.l.Addr().(*net.TCPAddr).Port }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Conns is how many client connections pass through the proxy now.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Reset closes every connection through the proxy at once with a TCP
// reset, on both sides, as a restarted load balancer or a dropped route
// does. New connections are served as usual. It returns how many were
// reset.
func (p *Proxy) Reset() int {
	p.mu.Lock()
	conns := p.takeConns()
	p.mu.Unlock()
	for _, c := range conns {
		c.abort()
	}
	return len(conns)
}

// BlackHole stops every byte in both directions for d, keeping
// connections open, as a silent network partition (a crashed host, a
// dropped NAT entry) does: nothing is refused or reset, nothing arrives.
// What was sent meanwhile is held, as TCP holds it, and delivered when the
// black hole ends, unless the connection was closed by then. New
// connections are accepted but get no bytes either.
//
// BlackHole returns at once; the channel closes when the black hole ends:
// after d, at Heal, or when another BlackHole replaces it. d <= 0 lasts
// until Heal.
func (p *Proxy) BlackHole(d time.Duration) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLocked(&p.hole)
	p.hole = p.newFaultLocked(d, &p.hole)
	p.broadcastLocked()
	return p.hole.done
}

// Outage makes the broker unreachable for d, as a broker process or pod
// that is down: every connection through the proxy is closed, and new
// ones are accepted and reset at once. It returns at once; the channel
// closes when the outage ends: after d, at Heal, or when another Outage
// replaces it. d <= 0 lasts until Heal.
func (p *Proxy) Outage(d time.Duration) <-chan struct{} {
	p.mu.Lock()
	p.endLocked(&p.outage)
	p.outage = p.newFaultLocked(d, &p.outage)
	done := p.outage.done
	conns := p.takeConns()
	p.broadcastLocked()
	p.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	return done
}

// Latency delays every byte by d in each direction (a round trip takes 2d
// longer), from now until it is changed; 0 removes it. Throughput is kept:
// bytes are delayed, not rationed.
func (p *Proxy) Latency(d time.Duration) {
	p.mu.Lock()
	p.latency = max(d, 0)
	p.broadcastLocked()
	p.mu.Unlock()
}

// Heal ends every fault at once: the black hole and the outage end and the
// added latency is removed.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.endLocked(&p.hole)
	p.endLocked(&p.outage)
	p.latency = 0
	p.broadcastLocked()
	p.mu.Unlock()
}

// Close stops the proxy: it ends every fault, closes every connection
// through it and waits for its goroutines. It is safe to call more than
// once.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.endLocked(&p.hole)
	p.endLocked(&p.outage)
	conns := p.takeConns()
	p.broadcastLocked()
	p.mu.Unlock()
	_ = p.l.Close()
	for _, c := range conns {
		c.close()
	}
	p.wg.Wait()
}

// newFaultLocked starts a fault that ends after d (never, for d <= 0) by
// clearing *slot, if it still holds it.
func (p *Proxy) newFaultLocked(d time.Duration, slot **fault) *fault {
	f := &fault{done: make(chan struct{})}
	if d > 0 {
		// The timer's goroutine is counted from now, so that Close waits
		// for one that fired; endLocked uncounts a timer it stopped.
		p.wg.Add(1)
		f.timer = time.AfterFunc(d, func() {
			defer p.wg.Done()
			p.mu.Lock()
			defer p.mu.Unlock()
			if *slot == f {
				*slot = nil
				close(f.done)
				p.broadcastLocked()
			}
		})
	}
	return f
}

// endLocked ends the fault in *slot, if any.
func (p *Proxy) endLocked(slot **fault) {
	f := *slot
	if f == nil {
		return
	}
	*slot = nil
	if f.timer != nil && f.timer.Stop() {
		p.wg.Done()
	}
	close(f.done)
}

// broadcastLocked wakes every pump waiting for the faults to change.
func (p *Proxy) broadcastLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *Proxy) takeConns() []*proxyConn {
	conns := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
		delete(p.conns, c)
	}
	return conns
}

// state is what a pump needs to know: whether bytes may flow, the added
// latency, and a channel closed at the next change.
func (p *Proxy) state() (blocked bool, latency time.Duration, changed <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hole != nil || p.closed, p.latency, p.changed
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a transient accept failure (too many files): keep serving
		}
		p.mu.Lock()
		switch {
		case p.closed:
			p.mu.Unlock()
			_ = client.Close()
			return
		case p.outage != nil:
			p.mu.Unlock()
			resetConn(client)
			continue
		}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(client)
	}
}

// dialTimeout bounds the proxy's own connection to the target.
const dialTimeout = 5 * time.Second

// serve connects one client to the target and pumps bytes both ways.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, dialTimeout)
	if err != nil {
		// The target is down: the client sees its connection reset, as it
		// would from the target itself.
		resetConn(client)
		return
	}
	c := &proxyConn{p: p, client: client, server: server, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed || p.outage != nil {
		p.mu.Unlock()
		c.close()
		return
	}
	p.conns[c] = struct{}{}
	p.wg.Add(4)
	p.mu.Unlock()
	up, down := make(chan chunk, chunkQueue), make(chan chunk, chunkQueue)
	go c.read(client, up)
	go c.write(server, up)
	go c.read(server, down)
	go c.write(client, down)
}

// proxyConn is one client connection and the proxy's connection to the
// target on its behalf. Each direction has a reader, which takes bytes off
// one socket, and a writer, which delivers them to the other when the
// faults allow; between them a queue holds what is in flight.
type proxyConn struct {
	p              *Proxy
	client, server net.Conn
	once           sync.Once
	done           chan struct{} // closed when the connection is closed
}

// chunk is bytes read at one time; eof marks the end of the stream.
type chunk struct {
	data []byte
	at   time.Time
	eof  bool
}

// chunkQueue bounds the chunks in flight in one direction. Reads are small
// when traffic is light, so it is large enough for added latency not to
// ration throughput.
const chunkQueue = 4096

func (c *proxyConn) read(src net.Conn, q chan<- chunk) {
	defer c.p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		if !c.await(time.Time{}) {
			return
		}
		n, err := src.Read(buf)
		if n > 0 {
			ch := chunk{data: append([]byte(nil), buf[:n]...), at: time.Now()}
			select {
			case q <- ch:
			case <-c.done:
				return
			}
		}
		if err != nil {
			select {
			case q <- chunk{at: time.Now(), eof: true}:
			case <-c.done:
			}
			return
		}
	}
}

func (c *proxyConn) write(dst net.Conn, q <-chan chunk) {
	defer c.p.wg.Done()
	for {
		var ch chunk
		select {
		case ch = <-q:
		case <-c.done:
			return
		}
		// The end of the stream waits its turn too: a black hole hides a
		// close as it hides bytes.
		if !c.await(ch.at) || ch.eof {
			c.p.forget(c)
			c.close()
			return
		}
		if _, err := dst.Write(ch.data); err != nil {
			c.p.forget(c)
			c.close()
			return
		}
	}
}

// await blocks until bytes read at (zero: now) may be passed on: no black
// hole, and the added latency has passed since. It is false once the
// connection is closed.
func (c *proxyConn) await(at time.Time) bool {
	for {
		blocked, latency, changed := c.p.state()
		var t *time.Timer
		var wait <-chan time.Time
		if !blocked {
			d := time.Until(at.Add(latency))
			if at.IsZero() || d <= 0 {
				return true
			}
			t = time.NewTimer(d)
			wait = t.C
		}
		select {
		case <-wait:
			return true
		case <-changed:
		case <-c.done:
		}
		if t != nil {
			t.Stop()
		}
		select {
		case <-c.done:
			return false
		default:
		}
	}
}

func (p *Proxy) forget(c *proxyConn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// close closes both sides.
func (c *proxyConn) close() {
	c.once.Do(func() {
		close(c.done)
		_ = c.client.Close()
		_ = c.server.Close()
	})
}

// abort closes both sides with a TCP reset.
func (c *proxyConn) abort() {
	for _, conn := range []net.Conn{c.client, c.server} {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
	c.close()
}

// resetConn closes a connection with a TCP reset.
func resetConn(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// String describes the proxy: where it listens and where it forwards.
func (p *Proxy) String() string {
	return "memphistest.Proxy " + p.Addr() + " -> " + p.target
}
