package memphis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
	"github.com/memphisdev/memphis.go/internal/wire"
)

// logCapture is a slog handler that keeps every record, at every level.
type logCapture struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (l *logCapture) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.records = append(l.records, r.Clone())
	l.mu.Unlock()
	return nil
}

func (l *logCapture) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCapture) WithGroup(string) slog.Handler      { return l }

// matching counts the records about a station (the consumer's, not the
// connection's own: a connection that gave up is logged once as such)
// whose "err" attribute matches target.
func (l *logCapture) matching(target error) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records {
		matched, station := false, false
		r.Attrs(func(a slog.Attr) bool {
			if err, ok := a.Value.Any().(error); ok && a.Key == "err" && errors.Is(err, target) {
				matched = true
			}
			station = station || a.Key == "station"
			return true
		})
		if matched && station {
			n++
		}
	}
	return n
}

// destinations counts where one background failure went.
type destinations struct {
	mu         sync.Mutex
	errHandler int // the ConsumerErrorHandler
	handler    int // the message handler's err
	returned   int // ConsumeUntil's return value
	yielded    int // the Messages loop
	notOp      []error
	arrived    chan struct{}
}

func (d *destinations) add(field *int, err error) {
	d.mu.Lock()
	*field++
	if _, ok := err.(*memphis.OpError); !ok {
		d.notOp = append(d.notOp, err)
	}
	d.mu.Unlock()
	select {
	case d.arrived <- struct{}{}:
	default:
	}
}

// TestEachConsumeFailureReachesOneDestination: "a failure in the background
// reaches exactly one place", for each way to consume, with and without a
// ConsumerErrorHandler, for the two failures that end consuming (the
// station destroyed under a three-partition consumer, whose three pullers
// all see it; the connection giving up). Every place is counted after the
// run has ended, when nothing more can arrive: the error handler, the
// message handler's err, ConsumeUntil's return, the loop's yield, and
// the connection's log.
func TestEachConsumeFailureReachesOneDestination(t *testing.T) {
	type failure struct {
		name string
		want error
	}
	failures := []failure{
		{"station destroyed", memphis.ErrStationUnreachable},
		{"connection gave up", memphis.ErrConnClosed},
	}
	for _, f := range failures {
		for _, mode := range []string{"Consume", "ConsumeUntil", "Messages"} {
			for _, withEH := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/error handler %v", f.name, mode, withEH)
				t.Run(name, func(t *testing.T) {
					oneDestination(t, f.want, mode, withEH)
				})
			}
		}
	}
}

func oneDestination(t *testing.T, want error, mode string, withEH bool) {
	var b *testenv.Broker
	var opts []memphis.Option
	if errors.Is(want, memphis.ErrConnClosed) {
		b = testenv.Local(t) // shut down below
		opts = append(opts, memphis.MaxReconnect(1), memphis.ReconnectInterval(20*time.Millisecond))
	} else {
		b = testenv.Start(t)
	}
	logs := &logCapture{}
	c := connect(t, b, append(opts, memphis.Logger(slog.New(logs)))...)
	station := testenv.Name(t, "onedest")
	if _, err := c.CreateStation(station, memphis.PartitionsNumber(3)); err != nil {
		t.Fatal(err)
	}
	d := &destinations{arrived: make(chan struct{}, 1)}
	copts := []memphis.ConsumerOpt{memphis.BatchMaxWaitTime(100 * time.Millisecond)}
	if withEH {
		copts = append(copts, memphis.ConsumerErrorHandler(func(_ *memphis.Consumer, err error) {
			if errors.Is(err, want) {
				d.add(&d.errHandler, err)
			}
		}))
	}
	cons := mustConsumer(t, c, station, "c", copts...)
	handler := func(msgs []*memphis.Msg, err error, _ context.Context) {
		if errors.Is(err, want) {
			d.add(&d.handler, err)
		}
	}
	cause := func() {
		if errors.Is(want, memphis.ErrConnClosed) {
			b.Server.Shutdown()
		} else {
			destroyUnder(t, b, station)
		}
	}
	ctx := testCtx(t, 60*time.Second)
	switch mode {
	case "Consume":
		if err := cons.Consume(handler); err != nil {
			t.Fatal(err)
		}
		cause()
		select {
		case <-d.arrived:
		case <-ctx.Done():
		}
		cons.StopConsume() // the run's goroutines are joined: nothing more can come
	case "ConsumeUntil":
		ended := make(chan error, 1)
		go func() { ended <- cons.ConsumeUntil(ctx, handler) }()
		cause()
		err := <-ended
		switch {
		case errors.Is(err, want):
			d.add(&d.returned, err)
		case err != nil:
			t.Errorf("ConsumeUntil returned %v", err)
		}
		if ctx.Err() != nil {
			t.Fatal("ConsumeUntil did not end when the failure ended consuming")
		}
	case "Messages":
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			for m, err := range cons.Messages(ctx) {
				if errors.Is(err, want) {
					d.add(&d.yielded, err)
				} else if err != nil {
					t.Errorf("yielded %v", err)
				} else {
					_ = m.Ack()
				}
			}
		}()
		cause()
		<-ended // the loop ended, and with it the run
		if ctx.Err() != nil {
			t.Fatal("the Messages loop did not end when the failure ended consuming")
		}
	}
	d.mu.Lock()
	for _, err := range d.notOp {
		t.Errorf("the failure came as a %T, not an *OpError: %v", err, err)
	}
	got := map[string]int{"error handler": d.errHandler, "handler err": d.handler,
		"ConsumeUntil return": d.returned, "Messages yield": d.yielded, "log": logs.matching(want)}
	d.mu.Unlock()
	expect := map[string]string{"Consume": "handler err", "ConsumeUntil": "ConsumeUntil return", "Messages": "Messages yield"}[mode]
	if withEH {
		expect = "error handler"
	}
	for place, n := range got {
		switch {
		case place == expect && n != 1:
			t.Errorf("%s got the failure %d times, want once", place, n)
		case place != expect && n != 0:
			t.Errorf("%s got the failure %d times as well as %s", place, n, expect)
		}
	}
}

// TestRecoveredConsumeFailuresReachOnePlace: a failure consuming recovers
// from ("a pull the broker did not serve", answered here with a 409 status
// by a stand-in responder before the broker's own answer) reaches exactly
// one place as well: the ConsumerErrorHandler if the consumer has one, else
// the handler's err for Consume and ConsumeUntil, else the log, at Error,
// for Messages. Consuming goes on: a message produced after it is
// consumed, ConsumeUntil returns its context's error and Messages yields
// no error.
func TestRecoveredConsumeFailuresReachOnePlace(t *testing.T) {
	b := testenv.Start(t)
	for _, mode := range []string{"Consume", "ConsumeUntil", "Messages"} {
		for _, withEH := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/error handler %v", mode, withEH), func(t *testing.T) {
				recoveredDestination(t, b, mode, withEH)
			})
		}
	}
}

func recoveredDestination(t *testing.T, b *testenv.Broker, mode string, withEH bool) {
	const desc = "stand-in: pull not served"
	notServed := func(err error) bool {
		return errors.Is(err, memphis.ErrTimeout) && strings.Contains(err.Error(), desc)
	}
	logs := &logCapture{}
	c := connect(t, b, memphis.Logger(slog.New(logs)))
	station := testenv.Name(t, "recover")
	p := mustProducer(t, c, station, "p")
	d := &destinations{arrived: make(chan struct{}, 1)}
	copts := []memphis.ConsumerOpt{memphis.BatchMaxWaitTime(time.Second), memphis.PullInterval(50 * time.Millisecond)}
	if withEH {
		copts = append(copts, memphis.ConsumerErrorHandler(func(_ *memphis.Consumer, err error) {
			if notServed(err) {
				d.add(&d.errHandler, err)
			}
		}))
	}
	cons := mustConsumer(t, c, station, "c", copts...)

	// The stand-in answers the group's first pull, once.
	answered := make(chan struct{})
	nc := b.NATS(t)
	sub, err := nc.Subscribe("$JS.API.CONSUMER.MSG.NEXT."+wire.StreamName(wire.InternalName(station), 1)+"."+wire.InternalName("c"),
		func(m *nats.Msg) {
			_ = m.RespondMsg(&nats.Msg{Header: nats.Header{"Status": {"409"}, "Description": {desc}}})
			_ = nc.Flush()
			close(answered)
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.AutoUnsubscribe(1); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// The message produced after the answer reaches the consumer after it,
	// on the same inbox: once it is consumed, the failure was reported.
	consumed := make(chan struct{})
	var once sync.Once
	handler := func(msgs []*memphis.Msg, err error, _ context.Context) {
		if notServed(err) {
			d.add(&d.handler, err)
		}
		for _, m := range msgs {
			_ = m.Ack()
			once.Do(func() { close(consumed) })
		}
	}
	produceAfter := func() { // not on the test's goroutine for Messages: no Fatal
		select {
		case <-answered:
		case <-time.After(10 * time.Second):
			t.Error("the group's first pull never came")
			return
		}
		if err := p.Produce([]byte("after")); err != nil {
			t.Error(err)
		}
	}
	ctx := testCtx(t, 30*time.Second)
	switch mode {
	case "Consume":
		if err := cons.Consume(handler); err != nil {
			t.Fatal(err)
		}
		produceAfter()
		within(t, consumed, 10*time.Second, "the message after the failure")
		cons.StopConsume() // failures still queued are delivered before it returns
	case "ConsumeUntil":
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		ended := make(chan error, 1)
		go func() { ended <- cons.ConsumeUntil(runCtx, handler) }()
		produceAfter()
		within(t, consumed, 10*time.Second, "the message after the failure")
		cancel()
		if err := within(t, ended, 10*time.Second, "ConsumeUntil's return"); !errors.Is(err, context.Canceled) {
			t.Errorf("ConsumeUntil returned %v, want its context's error", err)
		}
	case "Messages":
		go produceAfter()
		for m, err := range cons.Messages(ctx) {
			if err != nil {
				t.Errorf("yielded %v", err)
				continue
			}
			_ = m.Ack()
			break // the run's end hands on failures still queued
		}
	}
	d.mu.Lock()
	for _, err := range d.notOp {
		t.Errorf("the failure came as a %T, not an *OpError: %v", err, err)
	}
	got := map[string]int{"error handler": d.errHandler, "handler err": d.handler}
	d.mu.Unlock()
	logs.mu.Lock()
	for _, r := range logs.records {
		r.Attrs(func(a slog.Attr) bool {
			if err, ok := a.Value.Any().(error); ok && a.Key == "err" && notServed(err) {
				place := "log at " + r.Level.String()
				if r.Level != slog.LevelError {
					place = "log at " + r.Level.String() + " (not Error)"
				}
				got[place]++
			}
			return true
		})
	}
	logs.mu.Unlock()
	expect := map[string]string{"Consume": "handler err", "ConsumeUntil": "handler err", "Messages": "log at ERROR"}[mode]
	if withEH {
		expect = "error handler"
	}
	if got[expect] != 1 {
		t.Errorf("%s got the failure %d times, want once", expect, got[expect])
	}
	for place, n := range got {
		if place != expect && n != 0 {
			t.Errorf("%s got the failure %d times as well as %s", place, n, expect)
		}
	}
}
