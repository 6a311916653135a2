package memphis_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
)

// The suite runs against the in-process broker, or unchanged against a real
// one when MEMPHIS_HOST is set; every goroutine the SDK (and the in-process
// broker) starts must be gone when it ends.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// connect opens a connection to b, closed when the test ends.
func connect(t testing.TB, b *testenv.Broker, opts ...memphis.Option) *memphis.Conn {
	t.Helper()
	c, err := memphis.Connect(b.Host, b.Username, append(credentials(b), opts...)...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func credentials(b *testenv.Broker) []memphis.Option {
	opts := []memphis.Option{memphis.Port(b.Port)}
	if b.Token != "" {
		return append(opts, memphis.ConnectionToken(b.Token))
	}
	return append(opts, memphis.Password(b.Password))
}

// testCtx is a context that ends with the test or after d.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// collector gathers what a Consume handler receives.
type collector struct {
	mu    sync.Mutex
	msgs  []*memphis.Msg
	calls int
	more  chan struct{}
}

func newCollector() *collector { return &collector{more: make(chan struct{}, 1)} }

func (c *collector) handler(msgs []*memphis.Msg, err error, _ context.Context) {
	c.mu.Lock()
	c.calls++
	c.msgs = append(c.msgs, msgs...)
	c.mu.Unlock()
	for _, m := range msgs {
		_ = m.Ack()
	}
	select {
	case c.more <- struct{}{}:
	default:
	}
}

// wait blocks until n messages arrived or d passed, and returns them.
func (c *collector) wait(t testing.TB, n int, d time.Duration) []*memphis.Msg {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		got := append([]*memphis.Msg(nil), c.msgs...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-c.more:
		case <-deadline.C:
			t.Fatalf("got %d messages in %v, want %d", len(got), d, n)
		}
	}
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// fetchAll fetches until n messages arrived or the context ends.
func fetchAll(t testing.TB, cons *memphis.Consumer, n int, d time.Duration) []*memphis.Msg {
	t.Helper()
	ctx := testCtx(t, d)
	var all []*memphis.Msg
	for len(all) < n {
		msgs, err := cons.FetchContext(ctx, n-len(all), false)
		if err != nil {
			t.Fatalf("fetch after %d of %d: %v", len(all), n, err)
		}
		for _, m := range msgs {
			if err := m.Ack(); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
		all = append(all, msgs...)
	}
	return all
}

func produceN(t testing.TB, p *memphis.Producer, n int, prefix string, opts ...memphis.ProduceOpt) {
	t.Helper()
	for i := range n {
		if err := p.Produce([]byte(prefix+strconv.Itoa(i)), opts...); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
}

// mustProducer creates a producer on a station (created on first use),
// failing the test on error.
func mustProducer(t testing.TB, c *memphis.Conn, station, name string, opts ...memphis.ProducerOpt) *memphis.Producer {
	t.Helper()
	p, err := c.CreateProducer(station, name, opts...)
	if err != nil {
		t.Fatalf("create producer %s on %s: %v", name, station, err)
	}
	return p
}

// mustConsumer creates a consumer on a station (created on first use),
// failing the test on error.
func mustConsumer(t testing.TB, c *memphis.Conn, station, name string, opts ...memphis.ConsumerOpt) *memphis.Consumer {
	t.Helper()
	cons, err := c.CreateConsumer(station, name, opts...)
	if err != nil {
		t.Fatalf("create consumer %s on %s: %v", name, station, err)
	}
	return cons
}

// awaitNews blocks until cond, checked under mu, holds, checking again
// each time news is signalled, or fails the test after d.
func awaitNews(t testing.TB, mu *sync.Mutex, news <-chan struct{}, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		mu.Lock()
		ok := cond()
		mu.Unlock()
		if ok {
			return
		}
		select {
		case <-news:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}
