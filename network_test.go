package memphis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
	"github.com/memphisdev/memphis.go/memphistest"
)

// These tests put the SDK, with its default options, under the network
// faults production sees, through memphistest's fault-injecting proxy:
// while a service produces 200 msg/s (sync, async with a callback, async
// reported only through the log) and consumes with Consume, the proxy
// resets every connection, black-holes traffic, adds latency or stages an
// outage. Each test checks that nothing acknowledged is lost, that no
// call outlives its own deadline, that producing and consuming resume
// within 5 s of the fault's end, and counts the lines logged.
//
// With MEMPHIS_HOST set they run against that broker through a proxy of
// their own (testenv.Faulty). Each takes from 20 s to two minutes, mostly
// waiting, so they run in parallel.

// logBook is a slog handler that keeps every record, for counting.
type logBook struct {
	mu      sync.Mutex
	records []logEntry
	attrs   []slog.Attr
	shared  *logBook // the book records go to; nil: this one
}

type logEntry struct {
	at    time.Time
	level slog.Level
	msg   string
	attrs map[string]string
}

func (h *logBook) book() *logBook {
	if h.shared != nil {
		return h.shared
	}
	return h
}

func (h *logBook) Enabled(context.Context, slog.Level) bool { return true }

func (h *logBook) Handle(_ context.Context, r slog.Record) error {
	e := logEntry{at: r.Time, level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		e.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		e.attrs[a.Key] = a.Value.String()
		return true
	})
	b := h.book()
	b.mu.Lock()
	b.records = append(b.records, e)
	b.mu.Unlock()
	return nil
}

func (h *logBook) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logBook{attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...), shared: h.book()}
}

func (h *logBook) WithGroup(string) slog.Handler { return h }

// between returns the records of at least level logged in [from, to).
func (h *logBook) between(level slog.Level, from, to time.Time) []logEntry {
	b := h.book()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []logEntry
	for _, e := range b.records {
		if e.level >= level && !e.at.Before(from) && e.at.Before(to) {
			out = append(out, e)
		}
	}
	return out
}

// loggedProduceFailures counts the async produce failures a producer's
// log lines report, each alone or summed up, and the lines.
func loggedProduceFailures(t *testing.T, book *logBook, producer string) (failures, lines int) {
	t.Helper()
	for _, e := range book.between(slog.LevelError, time.Time{}, time.Now().Add(time.Hour)) {
		if e.attrs["producer"] != producer {
			continue
		}
		switch {
		case e.msg == "memphis: async produce failed":
			failures++
		case strings.Contains(e.msg, "more async produces failed"):
			n, err := strconv.Atoi(e.attrs["count"])
			if err != nil || !strings.Contains(e.msg, " "+e.attrs["count"]+" more ") {
				t.Errorf("summary %q does not say its count: %v", e.msg, e.attrs)
			}
			failures += n
		default:
			continue
		}
		lines++
	}
	return failures, lines
}

// summary groups records by message, for a test log.
func summary(es []logEntry) string {
	n := map[string]int{}
	example := map[string]string{}
	for _, e := range es {
		n[e.msg]++
		example[e.msg] = e.attrs["err"]
	}
	var parts []string
	for m, c := range n {
		parts = append(parts, fmt.Sprintf("%d× %q (err %q)", c, m, example[m]))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// callClock records the longest call, against its own deadline.
type callClock struct {
	mu       sync.Mutex
	longest  time.Duration
	deadline time.Duration // the longest call's
	what     string
	calls    int
}

// time runs call with a context that ends after d and records how long it
// took.
func (cc *callClock) time(what string, d time.Duration, call func(ctx context.Context)) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	start := time.Now()
	call(ctx)
	took := time.Since(start)
	cancel()
	cc.mu.Lock()
	cc.calls++
	if took-d > cc.longest-cc.deadline || cc.what == "" {
		cc.longest, cc.deadline, cc.what = took, d, what
	}
	cc.mu.Unlock()
}

// faultLoad is a service under load: three producers at a steady rate
// and a Consume, keeping their books in a ledger.
type faultLoad struct {
	l      *ledger
	sentAt map[string]time.Time // sync and callback produces; under l.mu
	p      *memphis.Producer
	clock  callClock
	stop   chan struct{}
	wg     sync.WaitGroup
}

// loadRate is the total produce rate, split evenly between the three ways
// of producing.
const loadRate = 200

// callDeadline is the deadline every produce call gets: longer than its
// AckWaitSec, so the SDK's own timeout ends a stalled produce first.
const (
	callDeadline = 3 * time.Second
	ackWaitSec   = 2
)

func startFaultLoad(t *testing.T, c *memphis.Conn, station string) *faultLoad {
	t.Helper()
	f := &faultLoad{l: newLedger(), sentAt: map[string]time.Time{}, stop: make(chan struct{})}
	sent := func(id string) {
		f.l.mu.Lock()
		f.sentAt[id] = time.Now()
		f.l.mu.Unlock()
	}
	// No error handler: async failures go to the log, as by default.
	f.p = mustProducer(t, c, station, "p")
	cons := mustConsumer(t, c, station, "c", memphis.ConsumerErrorHandler(func(_ *memphis.Consumer, err error) { f.l.handlerErr(err) }))
	if err := cons.Consume(f.l.handler); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cons.StopConsume)
	every := time.Second * 3 / loadRate
	ways := []func(i int){
		func(i int) { // sync
			id := fmt.Sprintf("s-%d", i)
			sent(id)
			f.clock.time("sync produce", callDeadline, func(ctx context.Context) {
				err := f.p.ProduceContext(ctx, []byte(id), memphis.AckWaitSec(ackWaitSec))
				if err == nil {
					f.l.ack(id)
				} else {
					f.l.fail(err)
				}
			})
		},
		func(i int) { // async, with a callback
			id := fmt.Sprintf("a-%d", i)
			sent(id)
			f.clock.time("ProduceAsync", callDeadline, func(ctx context.Context) {
				err := f.p.ProduceAsync(ctx, []byte(id), func(_ memphis.PubAck, err error) {
					if err == nil {
						f.l.ack(id)
					} else {
						f.l.fail(err)
					}
				}, memphis.AckWaitSec(ackWaitSec))
				if err != nil {
					f.l.fail(err)
				}
			})
		},
		func(i int) { // async, failures only logged
			id := fmt.Sprintf("h-%d", i)
			f.clock.time("async produce", callDeadline, func(ctx context.Context) {
				err := f.p.ProduceContext(ctx, []byte(id), memphis.AsyncProduce(), memphis.AckWaitSec(ackWaitSec))
				if err != nil {
					f.l.fail(err)
					return
				}
				f.l.mu.Lock()
				f.l.unchecked[id] = true
				f.l.mu.Unlock()
			})
		},
	}
	for _, way := range ways {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			pace := time.NewTicker(every)
			defer pace.Stop()
			for i := 0; ; i++ {
				select {
				case <-f.stop:
					return
				case <-pace.C:
				}
				way(i)
			}
		}()
	}
	return f
}

// resumedAfter waits until a sync or callback produce sent after end was
// acknowledged and consumed, and returns how long after end the first
// such acknowledgement and consumption happened.
func (f *faultLoad) resumedAfter(t *testing.T, end time.Time) (produced, consumed time.Duration) {
	t.Helper()
	f.l.await(t, 60*time.Second, "a message produced after the fault to be acknowledged and consumed", func() bool {
		produced, consumed = 0, 0
		for id, at := range f.l.acked {
			if sent, ok := f.sentAt[id]; !ok || sent.Before(end) {
				continue
			}
			if produced == 0 || at.Sub(end) < produced {
				produced = at.Sub(end)
			}
			if got, ok := f.l.got[id]; ok && (consumed == 0 || got.Sub(end) < consumed) {
				consumed = got.Sub(end)
			}
		}
		return produced > 0 && consumed > 0
	})
	return produced, consumed
}

// finish stops the load and checks the books: nothing acknowledged lost,
// every failure typed, and every fire-and-forget produce either consumed or
// reported in the log (each failure logged or counted in a summary).
func (f *faultLoad) finish(t *testing.T, c *memphis.Conn, book *logBook) {
	t.Helper()
	close(f.stop)
	f.wg.Wait()
	err := f.p.Flush(testCtx(t, 30*time.Second))
	if err != nil && !outageErr(err) {
		t.Errorf("flush: %v", err)
	}
	// A fence: once it is consumed, so is everything stored before it in
	// the station's one partition.
	if err := f.p.ProduceContext(testCtx(t, 30*time.Second), []byte("fence")); err != nil {
		t.Fatalf("produce the fence: %v", err)
	}
	// Messages delivered just before a fault whose acks were lost come
	// again after MaxAckTime (30 s by default), so wait past that.
	l := f.l
	l.await(t, 60*time.Second, "every acknowledged message and the fence to be consumed", func() bool {
		_, fenced := l.got["fence"]
		return fenced && len(l.missing()) == 0
	})
	c.Close() // logs the summaries of failures still being counted
	logged, _ := loggedProduceFailures(t, book, "p")
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, err := range append(append([]error(nil), l.failed...), l.handled...) {
		if !outageErr(err) {
			t.Errorf("failure is not a typed outage error: %v", err)
		}
	}
	unseen := l.unseen()
	if unseen > logged {
		t.Errorf("%d fire-and-forget produces were neither consumed nor logged as failed (%d logged)", unseen-logged, logged)
	}
	t.Logf("acknowledged %d, consumed %d, lost 0; %d failures reported to callers, %d to the consumer's handler; %d fire-and-forget produces not consumed, %d failures of them logged",
		l.ackedN, l.gotN, len(l.failed), len(l.handled), unseen, logged)
	f.clock.mu.Lock()
	defer f.clock.mu.Unlock()
	cc := &f.clock
	t.Logf("%d produce calls; the longest, %s, took %v (its deadline: %v)", cc.calls, cc.what, cc.longest.Round(time.Millisecond), cc.deadline)
	// A little slack for scheduling on a loaded machine.
	if cc.longest > cc.deadline+time.Second {
		t.Errorf("%s outlived its deadline of %v: it took %v", cc.what, cc.deadline, cc.longest)
	}
}

// faultCase is one fault scenario: inject starts the fault and returns
// when it has ended.
type faultCase struct {
	name   string
	inject func(t *testing.T, p *memphistest.Proxy)
	// reconnects: whether the fault must cost a reconnect (true), must be
	// ridden out without one (false), or either (nil).
	reconnects *bool
	// maxLines bounds the warnings and errors logged from the fault's
	// start to 5 s after its end; 0: not checked.
	maxLines int
	// detectedWithin: the connection must be declared dead this long
	// after the fault began (0: not checked). The README promises 30 s
	// (a ping every 5 s, the sixth tick without a PONG); 2 s more is for
	// timers on a loaded machine, not for a slower rule.
	detectedWithin time.Duration
}

func yes() *bool { b := true; return &b }
func no() *bool  { b := false; return &b }

func faultCases() []faultCase {
	return []faultCase{
		{name: "reset", reconnects: yes(), inject: func(t *testing.T, p *memphistest.Proxy) {
			for i := range 3 {
				if i > 0 {
					time.Sleep(2 * time.Second) // the faults' own rhythm: traffic between them
				}
				if n := p.Reset(); n == 0 {
					t.Errorf("reset %d found no connection to reset", i+1)
				}
			}
		}},
		{name: "blackhole-10s", reconnects: no(), inject: func(t *testing.T, p *memphistest.Proxy) {
			<-p.BlackHole(10 * time.Second)
		}},
		// Pings every 5 s, 5 allowed out: declared dead 25 to 30 s after the
		// connection went silent; 5 s of slack for a loaded machine.
		{name: "blackhole-60s", reconnects: yes(), maxLines: 20, detectedWithin: 32 * time.Second, inject: func(t *testing.T, p *memphistest.Proxy) {
			<-p.BlackHole(60 * time.Second)
		}},
		{name: "latency-300ms", reconnects: no(), inject: func(t *testing.T, p *memphistest.Proxy) {
			p.Latency(300 * time.Millisecond)
			time.Sleep(10 * time.Second) // the fault's duration
			p.Latency(0)
		}},
		{name: "outage-8s", reconnects: yes(), inject: func(t *testing.T, p *memphistest.Proxy) {
			<-p.Outage(8 * time.Second)
		}},
		{name: "outage-30s", reconnects: yes(), maxLines: 20, inject: func(t *testing.T, p *memphistest.Proxy) {
			<-p.Outage(30 * time.Second)
		}},
		{name: "outage-60s", reconnects: yes(), maxLines: 20, inject: func(t *testing.T, p *memphistest.Proxy) {
			<-p.Outage(60 * time.Second)
		}},
	}
}

func TestNetworkFaults(t *testing.T) {
	t.Parallel()
	only := os.Getenv("MEMPHIS_FAULTS") // a comma-separated subset, for runs by hand
	// The scenarios wait on their faults, not on the CPU, so they all run
	// at once: subtests started from goroutines, as t.Run allows, are not
	// held to go test's -parallel (GOMAXPROCS), which would run them two
	// at a time on two cores.
	var wg sync.WaitGroup
	for _, fc := range faultCases() {
		if only != "" && !strings.Contains(","+only+",", ","+fc.name+",") {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(fc.name, func(t *testing.T) { runFault(t, fc) })
		}()
	}
	wg.Wait()
}

func runFault(t *testing.T, fc faultCase) {
	b, proxy := testenv.Faulty(t)
	book := &logBook{}
	var disconnects atomic.Int32
	var firstDisconnect atomic.Int64
	c := connect(t, b, memphis.Logger(slog.New(book)),
		memphis.DisconnectHandler(func(*memphis.Conn, error) {
			disconnects.Add(1)
			firstDisconnect.CompareAndSwap(0, time.Now().UnixNano())
		}))
	station := testenv.Name(t, "fault-"+fc.name)
	if _, err := c.CreateStation(station); err != nil {
		t.Fatal(err)
	}
	f := startFaultLoad(t, c, station)
	f.l.await(t, 20*time.Second, "traffic before the fault", func() bool { return f.l.gotN >= 200 })

	start := time.Now()
	fc.inject(t, proxy)
	end := time.Now()
	produced, consumed := f.resumedAfter(t, end)
	t.Logf("%s: fault lasted %v; produce resumed %v and consume %v after it ended",
		fc.name, end.Sub(start).Round(time.Millisecond), produced.Round(time.Millisecond), consumed.Round(time.Millisecond))
	if produced > 5*time.Second || consumed > 5*time.Second {
		t.Errorf("resumed %v (produce) and %v (consume) after the fault, want within 5s", produced, consumed)
	}
	n := disconnects.Load()
	switch {
	case fc.reconnects != nil && *fc.reconnects && n == 0:
		t.Errorf("the fault went unnoticed: no disconnect")
	case fc.reconnects != nil && !*fc.reconnects && n > 0:
		t.Errorf("the fault should have been ridden out, but the connection dropped %d times", n)
	}
	if n > 0 {
		detected := time.Duration(firstDisconnect.Load() - start.UnixNano())
		t.Logf("%d disconnects, the first %v after the fault began", n, detected.Round(time.Millisecond))
		if fc.detectedWithin > 0 && detected > fc.detectedWithin {
			t.Errorf("the dead connection was noticed after %v, want within %v", detected, fc.detectedWithin)
		}
	}
	lines := book.between(slog.LevelWarn, start, end.Add(5*time.Second))
	t.Logf("%d warnings and errors logged from the fault's start to 5 s after its end: %s", len(lines), summary(lines))
	if fc.maxLines > 0 && len(lines) > fc.maxLines {
		t.Errorf("%d lines logged, want at most %d", len(lines), fc.maxLines)
	}
	f.finish(t, c, book)
}

// A positive MaxReconnect still gives up, loudly: the connection closes
// for good, produces waiting for it and later ones fail with ErrConnClosed,
// and the log says so.
func TestMaxReconnectGivesUpLoudly(t *testing.T) {
	b, proxy := testenv.Faulty(t)
	book := &logBook{}
	closed := make(chan struct{})
	c := connect(t, b, memphis.MaxReconnect(2), memphis.ReconnectInterval(50*time.Millisecond),
		memphis.Logger(slog.New(book)), memphis.ClosedHandler(func(*memphis.Conn) { close(closed) }))
	p := mustProducer(t, c, testenv.Name(t, "gives-up"), "p")
	outage := proxy.Outage(0)
	defer func() { proxy.Heal(); <-outage }()
	waiting := make(chan error, 1)
	// Sent while the connection is down (or about to notice it is).
	if err := p.ProduceAsync(context.Background(), []byte("waiting"), func(_ memphis.PubAck, err error) { waiting <- err }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("the connection never gave up")
	}
	select {
	case err := <-waiting:
		if !errors.Is(err, memphis.ErrConnClosed) && !errors.Is(err, memphis.ErrConnectionLost) {
			t.Errorf("a produce waiting for the connection: %v, want ErrConnClosed or ErrConnectionLost", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a produce waiting for the connection was never failed")
	}
	for _, opt := range []memphis.ProduceOpt{memphis.SyncProduce(), memphis.AsyncProduce()} {
		if err := p.Produce([]byte("later"), opt); !errors.Is(err, memphis.ErrConnClosed) {
			t.Errorf("produce after giving up: %v, want ErrConnClosed", err)
		}
	}
	if _, err := c.CreateStation(testenv.Name(t, "later")); !errors.Is(err, memphis.ErrConnClosed) {
		t.Errorf("create station after giving up: %v, want ErrConnClosed", err)
	}
	gaveUp := 0
	for _, e := range book.between(slog.LevelError, time.Time{}, time.Now().Add(time.Hour)) {
		if e.msg == "memphis: connection closed for good" {
			gaveUp++
		}
	}
	if gaveUp != 1 {
		t.Errorf("%d error lines say the connection closed for good, want 1", gaveUp)
	}
}

// While the connection is down, a produce returns at once, fails when its
// wait ends, and is then never sent: after the reconnect the station holds
// only what was produced since.
func TestProduceFailedWhileDownIsNeverSent(t *testing.T) {
	b, proxy := testenv.Faulty(t)
	down, up := make(chan struct{}, 1), make(chan struct{}, 1)
	c := connect(t, b,
		memphis.DisconnectHandler(func(*memphis.Conn, error) { down <- struct{}{} }),
		memphis.ReconnectHandler(func(*memphis.Conn) { up <- struct{}{} }))
	station := testenv.Name(t, "never-sent")
	p := mustProducer(t, c, station, "p")
	cons := mustConsumer(t, c, station, "c")
	outage := proxy.Outage(0)
	within(t, down, 10*time.Second, "the disconnect")

	failed := make(chan error, 1)
	start := time.Now()
	if err := p.ProduceAsync(context.Background(), []byte("failed async"), func(_ memphis.PubAck, err error) { failed <- err },
		memphis.AckWaitSec(1)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("ProduceAsync took %v while the connection was down", d)
	}
	err := p.ProduceContext(testCtx(t, 500*time.Millisecond), []byte("failed sync"))
	if !errors.Is(err, memphis.ErrTimeout) {
		t.Errorf("sync produce while down: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("a sync produce with a 500ms deadline returned after %v", d)
	}
	if err := within(t, failed, 10*time.Second, "the async produce's outcome"); !errors.Is(err, memphis.ErrTimeout) {
		t.Errorf("async produce while down: %v, want ErrTimeout", err)
	}

	proxy.Heal()
	<-outage
	within(t, up, 30*time.Second, "the reconnect")
	if err := p.Produce([]byte("after")); err != nil {
		t.Fatal(err)
	}
	if msgs := fetchAll(t, cons, 1, 10*time.Second); string(msgs[0].Data()) != "after" {
		t.Errorf("the station's first message is %q: a failed produce was sent after the reconnect", msgs[0].Data())
	}
}
