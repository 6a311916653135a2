package memphis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
	"github.com/memphisdev/memphis.go/internal/wire"
)

// These tests hold the SDK to DESIGN.md's promise that a callback may call
// any SDK method: done callbacks and error handlers run on a goroutine of
// their own, so Close, Flush and sync produces inside them neither deadlock
// nor stall the acknowledgements of other produces.

// within fails the test unless ch is closed or receives within d.
func within[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s: nothing after %v", what, d)
	}
	var zero T
	return zero
}

// callLog counts the done calls of each produce, to check exactly-once.
type callLog struct {
	mu    sync.Mutex
	calls map[string]int
	errs  []error
	news  chan struct{} // signalled after every call
}

func newCallLog() *callLog {
	return &callLog{calls: map[string]int{}, news: make(chan struct{}, 1)}
}

func (l *callLog) done(id string) func(memphis.PubAck, error) {
	return func(_ memphis.PubAck, err error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.calls[id]++
		if err != nil {
			l.errs = append(l.errs, err)
		}
		select {
		case l.news <- struct{}{}:
		default:
		}
	}
}

// await waits until each of ids was called back, then checks each was
// called exactly once.
func (l *callLog) await(t *testing.T, ids []string, d time.Duration) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		missing := 0
		for _, id := range ids {
			if l.calls[id] == 0 {
				missing++
			}
		}
		l.mu.Unlock()
		if missing == 0 {
			break
		}
		select {
		case <-l.news:
		case <-deadline.C:
			t.Fatalf("%d of %d done callbacks never called", missing, len(ids))
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, n := range l.calls {
		if n != 1 {
			t.Errorf("done of %s called %d times", id, n)
		}
	}
}

func TestCloseInsideDoneCallback(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	p := mustProducer(t, c, testenv.Name(t, "cbclose"), "p")
	log := newCallLog()
	var accepted []string // produces whose done must be called
	var mu sync.Mutex
	closed := make(chan struct{})
	var once sync.Once
	first := func(ack memphis.PubAck, err error) {
		log.done("first")(ack, err)
		once.Do(func() {
			// More produces from inside the callback: pending while Close runs.
			for i := range 20 {
				id := fmt.Sprint("inner-", i)
				if err := p.ProduceAsync(context.Background(), []byte(id), log.done(id)); err == nil {
					mu.Lock()
					accepted = append(accepted, id)
					mu.Unlock()
				} else if !errors.Is(err, memphis.ErrConnClosed) {
					t.Errorf("produce inside the callback: %v", err)
				}
			}
			c.Close()
			close(closed)
		})
	}
	if err := p.ProduceAsync(context.Background(), []byte("first"), first); err != nil {
		t.Fatal(err)
	}
	within(t, closed, 10*time.Second, "Close inside a done callback")
	if err := p.Produce([]byte("late")); !errors.Is(err, memphis.ErrConnClosed) {
		t.Errorf("produce after Close: %v, want ErrConnClosed", err)
	}
	mu.Lock()
	ids := append([]string{"first"}, accepted...)
	mu.Unlock()
	log.await(t, ids, 10*time.Second)
	for _, err := range log.errs {
		if !errors.Is(err, memphis.ErrConnClosed) {
			t.Errorf("a produce pending at Close failed with %v, want ErrConnClosed", err)
		}
	}
}

func TestCloseInsideErrorHandler(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b) // CloseTimeout is the default 5 s
	station := testenv.Name(t, "hclose")
	s, err := c.CreateStation(station)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan time.Duration, 1)
	var once sync.Once
	p, err := s.CreateProducer("p", memphis.ProducerErrorHandler(func(p *memphis.Producer, err error) {
		once.Do(func() {
			start := time.Now()
			c.Close()
			closed <- time.Since(start)
		})
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}
	// With the station gone, each produce fails and reaches the handler.
	for range 20 {
		if err := p.Produce([]byte("x"), memphis.AsyncProduce()); err != nil && !errors.Is(err, memphis.ErrConnClosed) {
			t.Fatal(err)
		}
	}
	if d := within(t, closed, 15*time.Second, "Close inside an error handler"); d > 2*time.Second {
		t.Errorf("Close inside an error handler took %v: it waited for its own caller", d)
	}
}

func TestFlushAndSyncProduceInsideDoneCallback(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	p := mustProducer(t, c, testenv.Name(t, "cbflush"), "p")
	type result struct {
		flush, produce error
		took           time.Duration
	}
	out := make(chan result, 1)
	err := p.ProduceAsync(context.Background(), []byte("a"), func(_ memphis.PubAck, err error) {
		if err != nil {
			t.Errorf("ack: %v", err)
		}
		start := time.Now()
		// Another async produce, then Flush: must not wait for this very callback.
		var inner atomic.Int32
		_ = p.ProduceAsync(context.Background(), []byte("b"), func(memphis.PubAck, error) { inner.Add(1) })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ferr := p.Flush(ctx)
		// A sync produce: its acknowledgement must get through while this
		// callback runs.
		perr := p.Produce([]byte("c"), memphis.AckWaitSec(3))
		out <- result{ferr, perr, time.Since(start)}
	})
	if err != nil {
		t.Fatal(err)
	}
	r := within(t, out, 20*time.Second, "the callback")
	if r.flush != nil {
		t.Errorf("Flush inside a done callback: %v", r.flush)
	}
	if r.produce != nil {
		t.Errorf("sync Produce inside a done callback: %v", r.produce)
	}
	if r.took > 2*time.Second {
		t.Errorf("Flush and Produce inside a callback took %v", r.took)
	}
	if err := p.Flush(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestDoneCallbacksRunInOrderOneAtATime(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	p := mustProducer(t, c, testenv.Name(t, "cborder"), "p")
	const n = 2000
	var running atomic.Int32
	var mu sync.Mutex
	var seqs []uint64
	for i := range n {
		err := p.ProduceAsync(context.Background(), []byte(fmt.Sprint(i)), func(ack memphis.PubAck, err error) {
			if running.Add(1) != 1 {
				t.Error("done callbacks ran concurrently")
			}
			defer running.Add(-1)
			if err != nil {
				t.Errorf("ack: %v", err)
			}
			mu.Lock()
			seqs = append(seqs, ack.Sequence)
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(testCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seqs) != n {
		t.Fatalf("Flush returned after %d of %d callbacks", len(seqs), n)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("callback %d got sequence %d: callbacks out of the acknowledgements' order", i, s)
		}
	}
}

// blackhole returns a producer whose station's stream is gone and whose
// messages arrive on the returned channel instead, for the test to
// acknowledge when it chooses (or never).
func blackhole(t *testing.T, b *testenv.Broker, c *memphis.Conn) (*memphis.Producer, <-chan *nats.Msg) {
	t.Helper()
	station := testenv.Name(t, "hole")
	s, err := c.CreateStation(station)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.CreateProducer("p")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}
	nc := b.NATS(t)
	ch := make(chan *nats.Msg, 64)
	for _, subj := range testenv.PublishSubjects(wire.StreamName(wire.InternalName(station), 1)) {
		if _, err := nc.ChanSubscribe(subj, ch); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return p, ch
}

func ackMsg(t *testing.T, m *nats.Msg, seq int) {
	t.Helper()
	if err := m.Respond([]byte(fmt.Sprintf(`{"stream":"x$1","seq":%d}`, seq))); err != nil {
		t.Fatal(err)
	}
}

// M2: AckWaitSec counts from the moment the message is sent, not from the
// start of a produce that first waited for room among MaxPending.
func TestAckWaitStartsWhenSent(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b, memphis.MaxPending(1))
	p, msgs := blackhole(t, b, c)
	first := make(chan error, 1)
	if err := p.ProduceAsync(context.Background(), []byte("1"), func(_ memphis.PubAck, err error) { first <- err }, memphis.AckWaitSec(30)); err != nil {
		t.Fatal(err)
	}
	m1 := within(t, msgs, 5*time.Second, "first message")
	second := make(chan error, 1)
	go func() { second <- p.Produce([]byte("2"), memphis.AckWaitSec(2)) }()
	time.Sleep(1500 * time.Millisecond) // the second produce waits for the only slot
	ackMsg(t, m1, 1)
	if err := within(t, first, 5*time.Second, "first ack"); err != nil {
		t.Fatal(err)
	}
	m2 := within(t, msgs, 5*time.Second, "second message")
	time.Sleep(time.Second) // 2.5 s after the produce began, 1 s after it was sent
	ackMsg(t, m2, 2)
	if err := within(t, second, 5*time.Second, "second produce"); err != nil {
		t.Fatalf("a message acknowledged 1 s after it was sent, with AckWaitSec(2): %v", err)
	}
}

// M1: once Close has begun, produces fail at once with ErrConnClosed, and
// a produce pending at Close completes exactly once.
func TestProduceDuringCloseFailsFast(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b, memphis.CloseTimeout(3*time.Second))
	p, msgs := blackhole(t, b, c)
	held := make(chan error, 2)
	if err := p.ProduceAsync(context.Background(), []byte("held"), func(_ memphis.PubAck, err error) { held <- err }); err != nil {
		t.Fatal(err)
	}
	within(t, msgs, 5*time.Second, "held message") // never acknowledged
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	// Wait until Close is underway: control calls fail from the moment it
	// marks the connection closed, which is when produces start failing too.
	// Close gives no other sign, so poll.
	for {
		if _, err := c.CreateStation(testenv.Name(t, "probe")); errors.Is(err, memphis.ErrConnClosed) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	if err := p.Produce([]byte("sync")); !errors.Is(err, memphis.ErrConnClosed) {
		t.Errorf("sync produce during Close: %v, want ErrConnClosed", err)
	}
	var lateCalls atomic.Int32
	if err := p.ProduceAsync(context.Background(), []byte("async"), func(memphis.PubAck, error) { lateCalls.Add(1) }); !errors.Is(err, memphis.ErrConnClosed) {
		t.Errorf("async produce during Close: %v, want ErrConnClosed", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("produces during Close took %v to fail", d)
	}
	within(t, closed, 10*time.Second, "Close")
	if err := within(t, held, 5*time.Second, "the held produce's callback"); !errors.Is(err, memphis.ErrConnClosed) {
		t.Errorf("held produce: %v, want ErrConnClosed", err)
	}
	time.Sleep(100 * time.Millisecond)
	if len(held) != 0 || lateCalls.Load() != 0 {
		t.Errorf("extra callbacks: %d held, %d late", len(held), lateCalls.Load())
	}
}

// M1: produces racing Close from several goroutines, three ways each, never
// hang and complete exactly once.
func TestProduceRacingClose(t *testing.T) {
	b := testenv.Start(t)
	for round := range 8 {
		c := connect(t, b)
		p, err := c.CreateProducer(testenv.Name(t, "race"), "p")
		if err != nil {
			t.Fatal(err)
		}
		log := newCallLog()
		var mu sync.Mutex
		var accepted []string
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					id := fmt.Sprintf("%d-%d-%d", round, g, i)
					var err error
					switch i % 3 {
					case 0:
						err = p.Produce([]byte(id))
					case 1:
						err = p.ProduceAsync(context.Background(), []byte(id), log.done(id))
						if err == nil {
							mu.Lock()
							accepted = append(accepted, id)
							mu.Unlock()
						}
					case 2:
						err = p.Produce([]byte(id), memphis.AsyncProduce())
					}
					if err != nil {
						if !errors.Is(err, memphis.ErrConnClosed) {
							t.Errorf("produce racing Close: %v", err)
						}
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(20+round*10) * time.Millisecond)
		closed := make(chan struct{})
		go func() { c.Close(); close(closed) }()
		within(t, closed, 15*time.Second, "Close under load")
		stopped := make(chan struct{})
		go func() { wg.Wait(); close(stopped) }()
		within(t, stopped, 10*time.Second, "producers racing Close")
		mu.Lock()
		ids := accepted
		mu.Unlock()
		log.await(t, ids, 10*time.Second)
		for _, err := range log.errs {
			if !errors.Is(err, memphis.ErrConnClosed) {
				t.Errorf("callback of a produce racing Close: %v", err)
			}
		}
	}
}

// H1: the failures of async produces nobody handles come back from Flush
// (and Destroy), besides being logged.
func TestFlushReturnsUnhandledAsyncFailures(t *testing.T) {
	b := testenv.Start(t)
	book := &logBook{}
	c := connect(t, b, memphis.Logger(slog.New(book)))
	station := testenv.Name(t, "unhandled")
	s, err := c.CreateStation(station)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.CreateProducer("p")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Produce([]byte("ok"), memphis.AsyncProduce()); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(testCtx(t, 5*time.Second)); err != nil {
		t.Fatalf("flush after a successful produce: %v", err)
	}
	if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}
	const n = 13
	for range n {
		if err := p.Produce([]byte("lost?"), memphis.AsyncProduce(), memphis.AckWaitSec(2)); err != nil {
			t.Fatal(err)
		}
	}
	err = p.Flush(testCtx(t, 10*time.Second))
	if err == nil {
		t.Fatal("Flush hid the failures of async produces")
	}
	if !errors.Is(err, memphis.ErrStationNotFound) && !errors.Is(err, memphis.ErrTimeout) {
		t.Errorf("Flush: %v, want the failures' kind", err)
	}
	if !strings.Contains(err.Error(), "and 3 more") {
		t.Errorf("Flush error does not count the failures beyond ten: %v", err)
	}
	// Ten in full, then one *OpError counting the rest.
	if got := strings.Count(err.Error(), "memphis: produce "+station+": station not found"); got != 10 &&
		strings.Count(err.Error(), "memphis: produce "+station+": timeout") != 10 {
		t.Errorf("Flush error has %d failures in full, want 10: %v", got, err)
	}
	if err := p.Flush(testCtx(t, 5*time.Second)); err != nil {
		t.Errorf("a second Flush returned the failures again: %v", err)
	}
	if err := p.Produce([]byte("lost?"), memphis.AsyncProduce(), memphis.AckWaitSec(2)); err != nil {
		t.Fatal(err)
	}
	if err := p.Destroy(); !errors.Is(err, memphis.ErrStationNotFound) && !errors.Is(err, memphis.ErrTimeout) {
		t.Errorf("Destroy: %v, want the unhandled failure", err)
	}
	// Logged too: the first at once, the repeats in one summary, which
	// Close writes if its interval has not ended.
	c.Close()
	failures, lines := loggedProduceFailures(t, book, "p")
	if failures != n+1 || lines != 2 {
		t.Errorf("%d failures logged in %d lines, want %d in 2", failures, lines, n+1)
	}
}

// A callback's own slot stays taken while it runs, so with every slot taken
// a produce inside a callback would wait for itself: it gets a spare slot.
func TestProduceInsideCallbackWithEverySlotTaken(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b, memphis.MaxPending(1))
	p := mustProducer(t, c, testenv.Name(t, "full"), "p")
	out := make(chan error, 2)
	err := p.ProduceAsync(context.Background(), []byte("outer"), func(_ memphis.PubAck, err error) {
		if err != nil {
			out <- err
			return
		}
		out <- p.Produce([]byte("inner sync"), memphis.AckWaitSec(2))
		inner := make(chan error, 1)
		if err := p.ProduceAsync(context.Background(), []byte("inner async"), func(_ memphis.PubAck, err error) { inner <- err }, memphis.AckWaitSec(2)); err != nil {
			out <- err
			return
		}
		out <- nil // inner's callback runs after this one returns
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := within(t, out, 10*time.Second, "sync produce inside a callback"); err != nil {
		t.Errorf("sync produce inside a callback with every slot taken: %v", err)
	}
	if err := within(t, out, 10*time.Second, "async produce inside a callback"); err != nil {
		t.Errorf("async produce inside a callback with every slot taken: %v", err)
	}
	if err := p.Flush(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Outside callbacks, the bound holds.
	if err := p.Produce([]byte("after")); err != nil {
		t.Fatal(err)
	}
}

// AckWait gives the acknowledgement wait as a time.Duration; of it and
// AckWaitSec, the one given last counts.
func TestAckWaitTakesADuration(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	p, _ := blackhole(t, b, c) // nothing is ever acknowledged
	start := time.Now()
	err := p.Produce([]byte("x"), memphis.AckWait(300*time.Millisecond))
	if took := time.Since(start); !errors.Is(err, memphis.ErrTimeout) || took > 2*time.Second {
		t.Errorf("AckWait(300ms): %v after %v, want ErrTimeout within 2 s", err, took)
	}
	start = time.Now()
	err = p.Produce([]byte("x"), memphis.AckWaitSec(30), memphis.AckWait(300*time.Millisecond))
	if took := time.Since(start); !errors.Is(err, memphis.ErrTimeout) || took > 2*time.Second {
		t.Errorf("AckWaitSec(30) then AckWait(300ms): %v after %v, want ErrTimeout within 2 s", err, took)
	}
	for _, bad := range []time.Duration{0, -time.Second} {
		if err := p.Produce([]byte("x"), memphis.AckWait(bad)); !errors.Is(err, memphis.ErrInvalidOption) {
			t.Errorf("AckWait(%v): %v, want ErrInvalidOption", bad, err)
		}
	}
	// The last one counts: AckWait(0) overridden by a valid AckWaitSec.
	ctx := testCtx(t, 500*time.Millisecond)
	if err := p.ProduceContext(ctx, []byte("x"), memphis.AckWait(0), memphis.AckWaitSec(1)); errors.Is(err, memphis.ErrInvalidOption) {
		t.Errorf("AckWait(0) then AckWaitSec(1): %v", err)
	}
}

// TestEachAsyncFailureReachesOneDestination: "each failed async produce
// reaches exactly one handler or the log": its done callback if it has
// one, else the producer's ProducerErrorHandler, else the connection's
// AsyncErrorHandler, else the log (and the next Flush); never two of them.
func TestEachAsyncFailureReachesOneDestination(t *testing.T) {
	b := testenv.Start(t)
	const n = 3
	for _, dest := range []string{"done", "ProducerErrorHandler", "AsyncErrorHandler", "log"} {
		t.Run(dest, func(t *testing.T) {
			var mu sync.Mutex
			got := map[string]int{}
			count := func(place string) {
				mu.Lock()
				got[place]++
				mu.Unlock()
			}
			book := &logBook{}
			opts := []memphis.Option{memphis.Logger(slog.New(book))}
			if dest != "log" {
				opts = append(opts, memphis.AsyncErrorHandler(func(*memphis.Producer, error) { count("AsyncErrorHandler") }))
			}
			c := connect(t, b, opts...)
			station := testenv.Name(t, "one-dest")
			s, err := c.CreateStation(station)
			if err != nil {
				t.Fatal(err)
			}
			var popts []memphis.ProducerOpt
			if dest == "done" || dest == "ProducerErrorHandler" {
				popts = append(popts, memphis.ProducerErrorHandler(func(*memphis.Producer, error) { count("ProducerErrorHandler") }))
			}
			p := mustProducer(t, c, station, "p", popts...)
			if err := s.Destroy(); err != nil {
				t.Fatal(err)
			}
			for range n {
				if dest == "done" {
					err = p.ProduceAsync(context.Background(), []byte("lost"), func(_ memphis.PubAck, err error) {
						if err != nil {
							count("done")
						}
					}, memphis.AckWaitSec(2))
				} else {
					err = p.Produce([]byte("lost"), memphis.AsyncProduce(), memphis.AckWaitSec(2))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			// Flush returns once every outcome has reached its callback or
			// handler; only failures no handler took come back from it.
			if err := p.Flush(testCtx(t, 10*time.Second)); err != nil {
				count("Flush")
			}
			c.Close() // logs the summary of the failures it was still counting
			if logged, _ := loggedProduceFailures(t, book, "p"); logged > 0 {
				got["log"] = logged
			}
			mu.Lock()
			defer mu.Unlock()
			want := map[string]int{dest: n}
			if dest == "log" {
				want["Flush"] = 1 // one joined error
			}
			for _, place := range []string{"done", "ProducerErrorHandler", "AsyncErrorHandler", "log", "Flush"} {
				if got[place] != want[place] {
					t.Errorf("%s got %d failures, want %d (all: %v)", place, got[place], want[place], got)
				}
			}
		})
	}
}
