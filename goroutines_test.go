package memphis_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
	"github.com/memphisdev/memphis.go/memphistest"
)

// goroutineDump returns the stack of every goroutine, one per entry.
func goroutineDump() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(string(buf[:n]), "\n\n")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// goroutineID reads the id from a stack's "goroutine N [state]:" line.
func goroutineID(stack string) int {
	s := strings.TrimPrefix(stack, "goroutine ")
	id, _ := strconv.Atoi(s[:max(0, strings.IndexByte(s, ' '))])
	return id
}

// Frames of the in-process broker: the embedded nats-server and the
// control plane on top of it.
// (Stack traces escape the dots of a path's last element: memphis%2ego.)
var brokerPrefixes = []string{"github.com/nats-io/nats-server/", "github.com/memphisdev/memphis%2ego/internal/broker."}

// sdkPrefix starts the frames of the SDK's own code (the package, not its
// tests, whose path ends in _test, nor internal/ packages).
const sdkPrefix = "github.com/memphisdev/memphis%2ego."

// ignoreBroker makes goleak ignore every goroutine with a frame of the
// in-process broker, which starts and ends goroutines of its own as
// clients come and go. SDK goroutines never run broker code.
func ignoreBroker() []goleak.Option {
	seen := map[string]bool{}
	for _, stack := range goroutineDump() {
		for _, line := range strings.Split(stack, "\n") {
			for _, p := range brokerPrefixes {
				if strings.HasPrefix(line, p) {
					if i := strings.LastIndexByte(line, '('); i > 0 {
						seen[line[:i]] = true
					}
				}
			}
		}
	}
	opts := make([]goleak.Option, 0, len(seen))
	for fn := range seen {
		opts = append(opts, goleak.IgnoreAnyFunction(fn))
	}
	return opts
}

// leaving reports whether a goroutine's stack is one frame, stopped at a
// line that is a lone closing brace: the function has run its deferred
// calls and is returning.
func leaving(stack string) bool {
	lines := strings.Split(stack, "\n")
	// goroutine N [state]:, the function, its file:line, then "created by".
	if len(lines) < 4 || !strings.HasPrefix(lines[3], "created by ") {
		return false
	}
	loc := strings.TrimSpace(lines[2])
	if i := strings.LastIndex(loc, " +0x"); i > 0 {
		loc = loc[:i]
	}
	i := strings.LastIndexByte(loc, ':')
	if i < 0 {
		return false
	}
	n, err := strconv.Atoi(loc[i+1:])
	if err != nil {
		return false
	}
	src, err := os.ReadFile(loc[:i])
	if err != nil {
		return false
	}
	text := strings.Split(string(src), "\n")
	return n >= 1 && n <= len(text) && strings.TrimSpace(text[n-1]) == "}"
}

// leakCheck remembers the goroutines running when an SDK object was about
// to be made, to check that the call that ends it ends its goroutines.
type leakCheck struct {
	before goleak.Option
	ids    map[int]bool
}

func startLeakCheck() *leakCheck {
	l := &leakCheck{before: goleak.IgnoreCurrent(), ids: map[int]bool{}}
	for _, s := range goroutineDump() {
		l.ids[goroutineID(s)] = true
	}
	return l
}

// verify checks, after what returned, that no goroutine started since the
// check began is left. A call that waits for the goroutines it ends leaves
// none of those the SDK started running when it returns, but for
// goroutines at the closing brace of their function: those were waited for
// (a WaitGroup is told, by a deferred Done, just before the function
// returns) and are leaving. goleak then checks every goroutine, nats.go's
// included, giving them a moment to wind down (a nats.go subscription's
// goroutine ends after Unsubscribe returns; nats.go's callback goroutine
// after the last callback, whose end Close waits for, returns).
func (l *leakCheck) verify(t *testing.T, what string, waits bool) {
	t.Helper()
	if waits {
		for _, s := range goroutineDump() {
			if !l.ids[goroutineID(s)] && strings.Contains(s, "\ncreated by "+sdkPrefix) && !leaving(s) {
				t.Errorf("%s returned while an SDK goroutine still ran:\n%s", what, s)
			}
		}
	}
	var err error
	for range 3 { // the broker may start goroutines while goleak waits
		if err = goleak.Find(append(ignoreBroker(), l.before)...); err == nil {
			return
		}
	}
	t.Errorf("goroutines left after %s: %v", what, err)
}

// TestEndingCallsLeaveNoGoroutines: "StopConsume, Destroy and Close wait
// for the goroutines they end", each checked on its own with goleak, after
// the goroutines it ends were busy.
func TestEndingCallsLeaveNoGoroutines(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := func(t *testing.T, parts int) string {
		name := testenv.Name(t, "leak")
		s, err := c.CreateStation(name, memphis.PartitionsNumber(parts))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Destroy() })
		produceN(t, mustProducer(t, c, name, "p"), 30, "m")
		return name
	}
	short := memphis.BatchMaxWaitTime(100 * time.Millisecond)

	t.Run("StopConsume after Consume", func(t *testing.T) {
		cons := mustConsumer(t, c, station(t, 3), "c", short)
		l := startLeakCheck()
		col := newCollector()
		if err := cons.Consume(col.handler); err != nil {
			t.Fatal(err)
		}
		col.wait(t, 30, 10*time.Second)
		cons.StopConsume()
		l.verify(t, "StopConsume", true)
	})
	t.Run("ConsumeUntil returning", func(t *testing.T) {
		cons := mustConsumer(t, c, station(t, 3), "c", short)
		l := startLeakCheck()
		ctx, cancel := context.WithCancel(context.Background())
		var n int
		err := cons.ConsumeUntil(ctx, func(msgs []*memphis.Msg, _ error, _ context.Context) {
			for _, m := range msgs {
				_ = m.Ack()
			}
			if n += len(msgs); n >= 30 {
				cancel()
			}
		})
		if ctx.Err() == nil || err == nil {
			t.Fatalf("ConsumeUntil returned %v before its context ended", err)
		}
		l.verify(t, "ConsumeUntil", true)
	})
	t.Run("Messages loop ending", func(t *testing.T) {
		cons := mustConsumer(t, c, station(t, 3), "c", short)
		l := startLeakCheck()
		n := 0
		for m, err := range cons.Messages(testCtx(t, 10*time.Second)) {
			if err != nil {
				t.Fatal(err)
			}
			_ = m.Ack()
			if n++; n == 10 {
				break // 20 more are buffered or on their way: returned to the group
			}
		}
		l.verify(t, "breaking out of Messages", true)
	})
	t.Run("Consumer.Destroy after Consume and a prefetch", func(t *testing.T) {
		name := station(t, 2)
		l := startLeakCheck() // before the consumer: its subscriptions end with it
		cons := mustConsumer(t, c, name, "c", short)
		if _, err := cons.Fetch(5, true); err != nil {
			t.Fatal(err)
		}
		col := newCollector()
		if err := cons.Consume(col.handler); err != nil {
			t.Fatal(err)
		}
		col.wait(t, 1, 10*time.Second)
		if err := cons.Destroy(); err != nil {
			t.Fatal(err)
		}
		l.verify(t, "Consumer.Destroy", true)
	})
	t.Run("Producer.Destroy after async produces", func(t *testing.T) {
		name := station(t, 1)
		other, err := memphis.Connect(b.Host, b.Username, credentials(b)...)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		// nats.go starts the connection's request multiplexer, a goroutine
		// that lives as long as the connection, at its first request.
		if _, err := other.CreateStation(name); err != nil {
			t.Fatal(err)
		}
		l := startLeakCheck() // the connection stays; the producer goes
		p := mustProducer(t, other, name, "async")
		calls := make(chan error, 50)
		for range 50 {
			if err := p.ProduceAsync(context.Background(), []byte("a"), func(_ memphis.PubAck, err error) { calls <- err }); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Destroy(); err != nil {
			t.Fatal(err)
		}
		if len(calls) != 50 {
			t.Errorf("Destroy returned with %d of 50 callbacks run", len(calls))
		}
		l.verify(t, "Producer.Destroy", true)
	})
	t.Run("Conn.Close with everything running", func(t *testing.T) {
		name := station(t, 3)
		l := startLeakCheck()
		other, err := memphis.Connect(b.Host, b.Username, credentials(b)...)
		if err != nil {
			t.Fatal(err)
		}
		p := mustProducer(t, other, name, "p2")
		for range 20 {
			if err := p.Produce([]byte("x"), memphis.AsyncProduce()); err != nil {
				t.Fatal(err)
			}
		}
		cons := mustConsumer(t, other, name, "c", short)
		col := newCollector()
		if err := cons.Consume(col.handler); err != nil {
			t.Fatal(err)
		}
		fetcher := mustConsumer(t, other, name, "f", short)
		if _, err := fetcher.Fetch(1, true); err != nil {
			t.Fatal(err)
		}
		col.wait(t, 1, 10*time.Second)
		other.Close()
		l.verify(t, "Conn.Close", true)
	})
	t.Run("Station.Destroy ends its consumers' loops", func(t *testing.T) {
		name := testenv.Name(t, "leak")
		s, err := c.CreateStation(name, memphis.PartitionsNumber(2))
		if err != nil {
			t.Fatal(err)
		}
		cons := mustConsumer(t, c, name, "c", short)
		l := startLeakCheck()
		ended := make(chan error, 1)
		go func() {
			ended <- cons.ConsumeUntil(testCtx(t, 30*time.Second), func([]*memphis.Msg, error, context.Context) {})
		}()
		if err := s.Destroy(); err != nil {
			t.Fatal(err)
		}
		if err := <-ended; err == nil || !bytes.Contains([]byte(err.Error()), []byte("unreachable")) {
			t.Fatalf("ConsumeUntil ended with %v, want the station unreachable", err)
		}
		// The consumer stays until destroyed; only its loop had to end.
		l.verify(t, "Station.Destroy", false)
	})
}

// TestCloseReturnsAfterTheConnectionsHandlers: nats.go runs a connection's
// handlers on a goroutine of its own, after its Close has returned; the
// SDK's Close returns only once they ran, so no user code of the
// connection runs after it, and a handler may itself call Close.
func TestCloseReturnsAfterTheConnectionsHandlers(t *testing.T) {
	b := testenv.Start(t)
	var disconnected, closed atomic.Bool
	c := connect(t, b,
		memphis.DisconnectHandler(func(c *memphis.Conn, _ error) {
			c.Close() // from nats.go's callback goroutine: must not wait for itself
			disconnected.Store(true)
		}),
		memphis.ClosedHandler(func(*memphis.Conn) { closed.Store(true) }))
	c.Close()
	if !disconnected.Load() || !closed.Load() {
		t.Errorf("Close returned before the handlers ran: DisconnectHandler %v, ClosedHandler %v", disconnected.Load(), closed.Load())
	}
}

// Close from a connection handler that nats.go is running, while the
// connection is still open: Close must not wait for that handler, nor for
// the ClosedHandler queued behind it on the same goroutine, which runs once
// the DisconnectHandler returns.
func TestCloseInsideDisconnectHandler(t *testing.T) {
	b := testenv.Local(t, memphistest.WithFaults())
	returned := make(chan time.Duration, 1)
	closed := make(chan struct{})
	var once sync.Once
	c := connect(t, b,
		memphis.DisconnectHandler(func(c *memphis.Conn, _ error) {
			once.Do(func() {
				start := time.Now()
				c.Close() // CloseTimeout is the default 5 s
				returned <- time.Since(start)
			})
		}),
		memphis.ClosedHandler(func(*memphis.Conn) { close(closed) }))
	b.Server.Faults().Reset()
	if d := within(t, returned, 10*time.Second, "Close inside the DisconnectHandler"); d > 2*time.Second {
		t.Errorf("Close inside the DisconnectHandler took %v: it waited for its own caller", d)
	}
	within(t, closed, 10*time.Second, "the ClosedHandler after it")
	if _, err := c.CreateStation(testenv.Name(t, "after")); !errors.Is(err, memphis.ErrConnClosed) {
		t.Errorf("CreateStation after Close: %v, want ErrConnClosed", err)
	}
}
