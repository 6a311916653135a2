package memphis_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
)

// errorAPI lists every exported function and method of the package that
// hands back an error (or an iterator of them), as "Type.Method" or
// "Function", read from the source so that a new call can not be missed.
func errorAPI(t *testing.T) []string {
	t.Helper()
	var api []string
	for _, f := range exportedAPI(t) {
		if f.returnsErr && f.name != "Unwrap" { // Unwrap: the error types' own
			api = append(api, f.key)
		}
	}
	return api
}

// apiEnv is what the failing calls work with: live objects, objects of a
// closed connection, destroyed ones and a message of each kind.
type apiEnv struct {
	tt                  *testing.T // the running case
	b                   *testenv.Broker
	name                string // the station's
	conn                *memphis.Conn
	station             *memphis.Station
	producer            *memphis.Producer
	consumer            *memphis.Consumer
	closedConn          *memphis.Conn
	closedStation       *memphis.Station
	closedProducer      *memphis.Producer
	closedConsumer      *memphis.Consumer
	closedMsg           *memphis.Msg // fetched, then its connection closed
	destroyedProducer   *memphis.Producer
	destroyedConsumer   *memphis.Consumer
	unhandledProducer   *memphis.Producer // an async produce failed, no handler
	cancelled, deadline context.Context
	resent              *memphis.Msg // made on first use
}

// apiCase is one way a call fails, and the sentinel (or context error) it
// must match.
type apiCase struct {
	call string
	how  string
	want error
	run  func(e *apiEnv) error
}

func apiCases() []apiCase {
	ok := []byte("ok")
	noop := func([]*memphis.Msg, error, context.Context) {}
	createStation := func(e *apiEnv) error { _, err := e.conn.CreateStation("no spaces!"); return err }
	return []apiCase{
		{"Connect", "no password", memphis.ErrInvalidOption, func(e *apiEnv) error {
			_, err := memphis.Connect(e.b.Host, e.b.Username, memphis.Port(e.b.Port))
			return err
		}},
		{"ConnectContext", "cancelled context", context.Canceled, func(e *apiEnv) error {
			_, err := memphis.ConnectContext(e.cancelled, e.b.Host, e.b.Username, credentials(e.b)...)
			return err
		}},
		{"Conn.AttachSchema", "no such schema", memphis.ErrSchemaNotFound, func(e *apiEnv) error {
			return e.conn.AttachSchema("no-such-schema", e.name)
		}},
		{"Conn.CloseContext", "expired context with a produce awaiting acknowledgement", context.DeadlineExceeded, func(e *apiEnv) error {
			return stalled(e.t()).conn.CloseContext(e.deadline)
		}},
		{"Conn.GetPartitionFromKey", "no producer or consumer of the connection on the station", memphis.ErrStationNotFound, func(e *apiEnv) error {
			_, err := e.conn.GetPartitionFromKey("k", "nobody-uses-this")
			return err
		}},
		{"Conn.ValidatePartitionNumber", "no such partition", memphis.ErrPartitionNotFound, func(e *apiEnv) error {
			return e.conn.ValidatePartitionNumber(2, e.name)
		}},
		{"Conn.CreateConsumer", "closed connection", memphis.ErrConnClosed, func(e *apiEnv) error {
			_, err := e.closedConn.CreateConsumer(e.name, "c2")
			return err
		}},
		{"Conn.CreateConsumerContext", "expired context", context.DeadlineExceeded, func(e *apiEnv) error {
			_, err := e.conn.CreateConsumerContext(e.deadline, e.name, "c2")
			return err
		}},
		{"Conn.CreateMultiStationProducer", "no station", memphis.ErrInvalidOption, func(e *apiEnv) error {
			_, err := e.conn.CreateMultiStationProducer(nil, "p")
			return err
		}},
		{"Conn.CreateMultiStationProducerContext", "a bad station name", memphis.ErrInvalidName, func(e *apiEnv) error {
			_, err := e.conn.CreateMultiStationProducerContext(context.Background(), []string{e.name, "no spaces!"}, "p")
			return err
		}},
		{"Conn.CreateProducer", "bad name", memphis.ErrInvalidName, func(e *apiEnv) error {
			_, err := e.conn.CreateProducer(e.name, "no spaces!")
			return err
		}},
		{"Conn.CreateProducerContext", "cancelled context", context.Canceled, func(e *apiEnv) error {
			_, err := e.conn.CreateProducerContext(e.cancelled, e.name, "p2")
			return err
		}},
		{"Conn.CreateSchema", "unknown type", memphis.ErrInvalidOption, func(e *apiEnv) error {
			return e.conn.CreateSchema("api-schema", "xml", "testdata/schemas/person.json")
		}},
		{"Conn.CreateSchemaContext", "missing file", memphis.ErrInvalidOption, func(e *apiEnv) error {
			return e.conn.CreateSchemaContext(context.Background(), "api-schema", memphis.SchemaTypeJSON, "testdata/nothing.json")
		}},
		{"Conn.CreateStation", "bad name", memphis.ErrInvalidName, createStation},
		{"Conn.CreateStationContext", "cancelled context", context.Canceled, func(e *apiEnv) error {
			_, err := e.conn.CreateStationContext(e.cancelled, "api-cancelled")
			return err
		}},
		{"Conn.DetachSchema", "closed connection", memphis.ErrConnClosed, func(e *apiEnv) error {
			return e.closedConn.DetachSchema(e.name)
		}},
		{"Conn.DetachSchemaContext", "bad station name", memphis.ErrInvalidName, func(e *apiEnv) error {
			return e.conn.DetachSchemaContext(context.Background(), "no spaces!")
		}},
		{"Conn.EnforceSchema", "no such schema", memphis.ErrSchemaNotFound, func(e *apiEnv) error {
			return e.conn.EnforceSchema("no-such-schema", e.name)
		}},
		{"Conn.EnforceSchemaContext", "expired context", context.DeadlineExceeded, func(e *apiEnv) error {
			return e.conn.EnforceSchemaContext(e.deadline, "no-such-schema", e.name)
		}},
		{"Conn.FetchMessages", "zero batch", memphis.ErrInvalidOption, func(e *apiEnv) error {
			_, err := e.conn.FetchMessages(e.name, "f", memphis.FetchBatchSize(0))
			return err
		}},
		{"Conn.FetchMessagesContext", "closed connection", memphis.ErrConnClosed, func(e *apiEnv) error {
			_, err := e.closedConn.FetchMessagesContext(context.Background(), e.name, "f")
			return err
		}},
		{"Conn.Produce", "bad station name", memphis.ErrInvalidName, func(e *apiEnv) error {
			return e.conn.Produce("no spaces!", "p", ok, nil, nil)
		}},
		{"Conn.ProduceContext", "cancelled context", context.Canceled, func(e *apiEnv) error {
			return e.conn.ProduceContext(e.cancelled, e.name, "p", ok, nil, nil)
		}},
		{"Conn.ProduceToStations", "one bad station of two", memphis.ErrInvalidName, func(e *apiEnv) error {
			return e.conn.ProduceToStations(context.Background(), []string{e.name, "no spaces!"}, "p", ok, nil, nil)
		}},
		{"Consumer.Consume", "destroyed consumer", memphis.ErrConsumerDestroyed, func(e *apiEnv) error {
			return e.destroyedConsumer.Consume(noop)
		}},
		{"Consumer.Consume", "already consuming", memphis.ErrAlreadyConsuming, func(e *apiEnv) error {
			if err := e.consumer.Consume(noop); err != nil {
				return err
			}
			defer e.consumer.StopConsume()
			return e.consumer.Consume(noop)
		}},
		{"Consumer.ConsumeUntil", "context ends", context.DeadlineExceeded, func(e *apiEnv) error {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			return e.consumer.ConsumeUntil(ctx, noop)
		}},
		{"Consumer.Destroy", "closed connection", memphis.ErrConnClosed, func(e *apiEnv) error {
			return e.closedConsumer.Destroy()
		}},
		{"Consumer.DestroyContext", "expired context", context.DeadlineExceeded, func(e *apiEnv) error {
			cons := mustConsumer(e.t(), e.conn, e.name, "to-destroy")
			return cons.DestroyContext(e.deadline)
		}},
		{"Consumer.Fetch", "zero batch", memphis.ErrInvalidOption, func(e *apiEnv) error {
			_, err := e.consumer.Fetch(0, false)
			return err
		}},
		{"Consumer.FetchContext", "cancelled context", context.Canceled, func(e *apiEnv) error {
			_, err := e.consumer.FetchContext(e.cancelled, 1, false)
			return err
		}},
		{"Consumer.Lag", "destroyed consumer", memphis.ErrConsumerDestroyed, func(e *apiEnv) error {
			_, err := e.destroyedConsumer.Lag(context.Background())
			return err
		}},
		{"ProduceRecord.SetHeader", "reserved key", memphis.ErrReservedHeader, func(e *apiEnv) error {
			setErr := make(chan error, 1)
			c := connect(e.t(), e.b, memphis.Hooks(produceStartFunc(func(r *memphis.ProduceRecord) {
				setErr <- r.SetHeader("$memphis_mine", "x")
			})))
			if err := c.Produce(e.name, "hooked", ok, nil, nil); err != nil {
				return err
			}
			return within(e.t(), setErr, 10*time.Second, "the hook")
		}},
		{"Consumer.Messages", "destroyed consumer", memphis.ErrConsumerDestroyed, func(e *apiEnv) error {
			for _, err := range e.destroyedConsumer.Messages(context.Background()) {
				return err
			}
			return nil
		}},
		{"Headers.Add", "reserved key", memphis.ErrReservedHeader, func(e *apiEnv) error {
			var h memphis.Headers
			return h.Add("$memphis_x", "v")
		}},
		{"Msg.Ack", "closed connection", memphis.ErrConnClosed, func(e *apiEnv) error { return e.closedMsg.Ack() }},
		{"Msg.DataDeserialized", "never fails: undecodable data comes back raw", nil, func(e *apiEnv) error {
			_, err := e.closedMsg.DataDeserialized()
			return err
		}},
		{"Msg.DeadLetter", "closed connection", memphis.ErrConnClosed, func(e *apiEnv) error {
			return e.closedMsg.DeadLetter("reason")
		}},
		{"Msg.Delay", "negative delay", memphis.ErrInvalidOption, func(e *apiEnv) error { return e.closedMsg.Delay(-time.Second) }},
		{"Msg.Delay", "re-sent dead letter", memphis.ErrNotSupported, func(e *apiEnv) error { return resentMsg(e).Delay(time.Second) }},
		{"Msg.DeliveryCount", "re-sent dead letter", memphis.ErrNotSupported, func(e *apiEnv) error {
			_, err := resentMsg(e).DeliveryCount()
			return err
		}},
		{"Msg.GetSequenceNumber", "re-sent dead letter", memphis.ErrNotSupported, func(e *apiEnv) error {
			_, err := resentMsg(e).GetSequenceNumber()
			return err
		}},
		{"Msg.GetTimeSent", "re-sent dead letter", memphis.ErrNotSupported, func(e *apiEnv) error {
			_, err := resentMsg(e).GetTimeSent()
			return err
		}},
		{"Msg.Nack", "closed connection", memphis.ErrConnClosed, func(e *apiEnv) error { return e.closedMsg.Nack() }},
		{"Producer.Destroy", "closed connection", memphis.ErrConnClosed, func(e *apiEnv) error {
			return e.closedProducer.Destroy()
		}},
		{"Producer.DestroyContext", "expired context", context.DeadlineExceeded, func(e *apiEnv) error {
			p := mustProducer(e.t(), e.conn, e.name, "to-destroy")
			return p.DestroyContext(e.deadline)
		}},
		{"Producer.Flush", "an async failure no handler took", memphis.ErrStationNotFound, func(e *apiEnv) error {
			return e.unhandledProducer.Flush(testCtx(e.t(), 10*time.Second))
		}},
		{"Producer.Produce", "destroyed producer", memphis.ErrProducerDestroyed, func(e *apiEnv) error {
			return e.destroyedProducer.Produce(ok)
		}},
		{"Producer.ProduceAsync", "nil callback", memphis.ErrInvalidOption, func(e *apiEnv) error {
			return e.producer.ProduceAsync(context.Background(), ok, nil)
		}},
		{"Producer.ProduceContext", "cancelled context", context.Canceled, func(e *apiEnv) error {
			return e.producer.ProduceContext(e.cancelled, ok)
		}},
		{"Producer.ProduceContext", "no room among MaxPending", memphis.ErrMaxPending, func(e *apiEnv) error {
			s := stalled(e.t(), memphis.MaxPending(1)) // its one slot is taken
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			return s.producer.ProduceContext(ctx, ok)
		}},
		{"Producer.ProduceAsync", "the connection drops before the acknowledgement", memphis.ErrConnectionLost, func(e *apiEnv) error {
			s := stalledOn(e.t(), testenv.Local(e.t()), memphis.MaxReconnect(0)) // a broker to stop
			done := make(chan error, 1)
			if err := s.producer.ProduceAsync(context.Background(), ok, func(_ memphis.PubAck, err error) { done <- err }); err != nil {
				return err
			}
			s.b.Server.Shutdown()
			return within(e.t(), done, 10*time.Second, "the callback")
		}},
		{"Station.CreateConsumer", "bad group", memphis.ErrInvalidName, func(e *apiEnv) error {
			_, err := e.station.CreateConsumer("c3", memphis.ConsumerGroup("no spaces!"))
			return err
		}},
		{"Station.CreateConsumerContext", "closed connection", memphis.ErrConnClosed, func(e *apiEnv) error {
			_, err := e.closedStation.CreateConsumerContext(context.Background(), "c3")
			return err
		}},
		{"Station.CreateProducer", "closed connection", memphis.ErrConnClosed, func(e *apiEnv) error {
			_, err := e.closedStation.CreateProducer("p3")
			return err
		}},
		{"Station.CreateProducerContext", "expired context", context.DeadlineExceeded, func(e *apiEnv) error {
			_, err := e.station.CreateProducerContext(e.deadline, "p3")
			return err
		}},
		{"Station.Destroy", "closed connection", memphis.ErrConnClosed, func(e *apiEnv) error {
			return e.closedStation.Destroy()
		}},
		{"Station.DestroyContext", "cancelled context", context.Canceled, func(e *apiEnv) error {
			return e.station.DestroyContext(e.cancelled)
		}},
	}
}

// TestEveryAPIErrorIsAnOpError: "Every error the SDK returns starts with
// memphis:; those of calls on a connection, station, producer or consumer
// are *memphis.OpError values that name the call and wrap the cause", for
// every exported call that returns an error (read from the source: a new
// call without a case here fails the test), each made to fail in one way;
// context errors stay matchable with errors.Is.
func TestEveryAPIErrorIsAnOpError(t *testing.T) {
	cases := apiCases()
	api := errorAPI(t)
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.call] = true
		if !slices.Contains(api, c.call) {
			t.Errorf("case for %s, which is not an exported call returning an error", c.call)
		}
	}
	for _, call := range api {
		if !covered[call] {
			t.Errorf("%s returns an error but has no case here", call)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	e := newAPIEnv(t)
	for _, c := range cases {
		t.Run(c.call+"/"+c.how, func(t *testing.T) {
			e.tt = t
			err := func() error {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("panicked: %v", p)
					}
				}()
				return c.run(e)
			}()
			if c.want == nil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			op, isOp := err.(*memphis.OpError)
			if !isOp {
				t.Fatalf("err is a %T, not an *OpError: %v", err, err)
			}
			if op.Op == "" || !strings.HasPrefix(err.Error(), "memphis: "+op.Op) {
				t.Errorf("OpError %q does not start with memphis: and its call (%q)", err, op.Op)
			}
			if strings.Contains(err.Error(), ": memphis: ") {
				t.Errorf("%q repeats the memphis: prefix", err)
			}
		})
	}
}

func (e *apiEnv) t() *testing.T { return e.tt }

func newAPIEnv(t *testing.T) *apiEnv {
	b := testenv.Start(t)
	e := &apiEnv{b: b, conn: connect(t, b, memphis.Logger(discardLogger()))}
	var err error
	name := testenv.Name(t, "api")
	e.name = name
	if e.station, err = e.conn.CreateStation(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.station.Destroy() })
	e.producer = mustProducer(t, e.conn, name, "p")
	e.consumer = mustConsumer(t, e.conn, name, "c", memphis.BatchMaxWaitTime(200*time.Millisecond))
	e.destroyedProducer = mustProducer(t, e.conn, name, "gone-p")
	if err := e.destroyedProducer.Destroy(); err != nil {
		t.Fatal(err)
	}
	e.destroyedConsumer = mustConsumer(t, e.conn, name, "gone-c")
	if err := e.destroyedConsumer.Destroy(); err != nil {
		t.Fatal(err)
	}

	// An async produce to a station destroyed under its producer fails with
	// nobody listening: its Destroy returns the failure.
	doomed := testenv.Name(t, "api-doomed")
	e.unhandledProducer = mustProducer(t, e.conn, doomed, "p")
	destroyUnder(t, b, doomed)
	if err := e.unhandledProducer.Produce([]byte("lost"), memphis.AsyncProduce(), memphis.AckWaitSec(2)); err != nil {
		t.Fatal(err)
	}

	// A connection with a station, producer, consumer and a fetched
	// message, then closed.
	e.closedConn, err = memphis.Connect(b.Host, b.Username, append(credentials(b), memphis.Logger(discardLogger()))...)
	if err != nil {
		t.Fatal(err)
	}
	if e.closedStation, err = e.closedConn.CreateStation(name); err != nil {
		t.Fatal(err)
	}
	e.closedProducer = mustProducer(t, e.closedConn, name, "closed-p")
	e.closedConsumer = mustConsumer(t, e.closedConn, name, "closed-c", memphis.BatchMaxWaitTime(time.Second))
	if err := e.closedProducer.Produce([]byte("{not json")); err != nil {
		t.Fatal(err)
	}
	msgs, err := e.closedConsumer.FetchContext(testCtx(t, 10*time.Second), 1, false)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %d, %v", len(msgs), err)
	}
	e.closedMsg = msgs[0]
	e.closedConn.Close()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e.cancelled = ctx
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	t.Cleanup(cancel)
	e.deadline = ctx
	return e
}

// resentMsg is a message the in-process broker re-sent from the
// dead-letter station, as the Memphis UI's "resend" does: the only kind
// without stream metadata.
func resentMsg(e *apiEnv) *memphis.Msg {
	if e.resent != nil {
		return e.resent
	}
	t := e.tt
	b := testenv.Local(t)
	c := connect(t, b)
	station := testenv.Name(t, "api-resent")
	p := mustProducer(t, c, station, "p")
	if err := p.Produce([]byte("poison")); err != nil {
		t.Fatal(err)
	}
	cons := mustConsumer(t, c, station, "c", memphis.BatchMaxWaitTime(100*time.Millisecond))
	ctx := testCtx(t, 30*time.Second)
	msgs, err := cons.FetchContext(ctx, 1, false)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %d, %v", len(msgs), err)
	}
	if err := msgs[0].DeadLetter("for the API test"); err != nil {
		t.Fatal(err)
	}
	// The report is fire-and-forget; only the broker's store shows it landed.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for len(b.Server.DeadLetters(station)) == 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("the dead letter was never recorded")
		}
	}
	if _, err := b.Server.ResendDeadLetters(station); err != nil {
		t.Fatal(err)
	}
	for e.resent == nil {
		msgs, err := cons.FetchContext(ctx, 1, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 1 && msgs[0].IsResent() {
			e.resent = msgs[0]
		}
	}
	return e.resent
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestCallbackErrorsAreOpErrors: the errors the SDK hands to callbacks are
// *OpError values too, naming the station: a ProduceAsync done callback,
// ProducerErrorHandler, AsyncErrorHandler and DisconnectHandler. (The
// consume callbacks are checked by TestEachConsumeFailureReachesOneDestination.)
func TestCallbackErrorsAreOpErrors(t *testing.T) {
	b := testenv.Local(t) // shut down at the end, for DisconnectHandler
	got := make(chan error, 8)
	send := func(err error) { got <- err }
	c := connect(t, b,
		memphis.AsyncErrorHandler(func(_ *memphis.Producer, err error) { send(err) }),
		memphis.DisconnectHandler(func(_ *memphis.Conn, err error) { send(err) }),
		memphis.MaxReconnect(0), memphis.Logger(discardLogger()))
	station := testenv.Name(t, "cb-errors")
	withHandler := mustProducer(t, c, station, "with", memphis.ProducerErrorHandler(func(_ *memphis.Producer, err error) { send(err) }))
	without := mustProducer(t, c, station, "without")
	destroyUnder(t, b, station)
	if err := withHandler.Produce([]byte("x"), memphis.AsyncProduce(), memphis.AckWaitSec(2)); err != nil {
		t.Fatal(err)
	}
	if err := without.Produce([]byte("x"), memphis.AsyncProduce(), memphis.AckWaitSec(2)); err != nil {
		t.Fatal(err)
	}
	if err := without.ProduceAsync(context.Background(), []byte("x"), func(_ memphis.PubAck, err error) { send(err) }, memphis.AckWaitSec(2)); err != nil {
		t.Fatal(err)
	}
	for _, what := range []string{"ProducerErrorHandler", "AsyncErrorHandler", "done"} {
		err := within(t, got, 20*time.Second, what)
		op, isOp := err.(*memphis.OpError)
		if !isOp || op.Op != "produce" || op.Station != station {
			t.Errorf("%s got %T %v, want an *OpError of produce on %s", what, err, err, station)
		}
		if !errors.Is(err, memphis.ErrStationNotFound) && !errors.Is(err, memphis.ErrTimeout) {
			t.Errorf("%s got %v, want its kind", what, err)
		}
	}
	b.Server.Shutdown()
	err := within(t, got, 20*time.Second, "DisconnectHandler")
	if _, isOp := err.(*memphis.OpError); !isOp || !strings.HasPrefix(err.Error(), "memphis: connection") {
		t.Errorf("DisconnectHandler got %T %v, want an *OpError", err, err)
	}
}

// TestMultiStationFailuresAreJoined: "a call that fails on several stations
// at once joins them, and errors.Is and errors.As see each one", while a
// call failing on one station of several returns that one *OpError.
func TestMultiStationFailuresAreJoined(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	good := testenv.Name(t, "joined")
	err := c.ProduceToStations(context.Background(), []string{"bad one!", good, "bad two!"}, "p", []byte("x"), nil, nil)
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("two failures came as a %T: %v", err, err)
	}
	var stations []string
	for _, e := range joined.Unwrap() {
		op, isOp := e.(*memphis.OpError)
		if !isOp || !errors.Is(e, memphis.ErrInvalidName) {
			t.Errorf("joined failure %T %v, want an *OpError matching ErrInvalidName", e, e)
			continue
		}
		stations = append(stations, op.Station)
	}
	if !slices.Equal(stations, []string{"bad one!", "bad two!"}) {
		t.Errorf("the joined failures name %q, want both bad stations", stations)
	}
	var op *memphis.OpError
	if !errors.Is(err, memphis.ErrInvalidName) || !errors.As(err, &op) {
		t.Errorf("errors.Is and errors.As do not see into %v", err)
	}
	if !strings.HasPrefix(err.Error(), "memphis: ") {
		t.Errorf("%q does not start with memphis:", err)
	}
	// The good station got its message.
	msgs := fetchAll(t, mustConsumer(t, c, good, "c", memphis.BatchMaxWaitTime(time.Second)), 1, 10*time.Second)
	if string(msgs[0].Data()) != "x" {
		t.Errorf("the good station got %q", msgs[0].Data())
	}
}

// produceStartFunc is a HookProduceStart made of a function.
type produceStartFunc func(*memphis.ProduceRecord)

func (f produceStartFunc) OnProduceStart(r *memphis.ProduceRecord) { f(r) }

// checkJoined checks that err joins one *OpError for each of stations, in
// order, each matching one of kinds, and that errors.Is and errors.As see
// into the join.
func checkJoined(t *testing.T, what string, err error, stations []string, kinds ...error) {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("%s: %d failures came as a %T, not joined: %v", what, len(stations), err, err)
	}
	matches := func(e error) bool {
		for _, k := range kinds {
			if errors.Is(e, k) {
				return true
			}
		}
		return false
	}
	var named []string
	for _, e := range joined.Unwrap() {
		op, isOp := e.(*memphis.OpError)
		if !isOp || !matches(e) {
			t.Errorf("%s: joined failure %T %v, want an *OpError matching one of %v", what, e, e, kinds)
			continue
		}
		named = append(named, op.Station)
	}
	if !slices.Equal(named, stations) {
		t.Errorf("%s: the joined failures name %q, want %q", what, named, stations)
	}
	var op *memphis.OpError
	if !matches(err) || !errors.As(err, &op) {
		t.Errorf("%s: errors.Is and errors.As do not see into %v", what, err)
	}
}

// TestMultiStationProducerAndFlushJoinFailures: "A call that fails on
// several stations at once (a multi-station producer ...), or a Flush that
// returns several async failures, joins them, and errors.Is and errors.As
// see each one"; a multi-station produce that fails on one station only
// returns that station's *OpError alone.
func TestMultiStationProducerAndFlushJoinFailures(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b, memphis.Logger(discardLogger()))
	one, two := testenv.Name(t, "join-one"), testenv.Name(t, "join-two")
	if _, err := c.CreateStation(one); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStation(two, memphis.PartitionsNumber(2)); err != nil {
		t.Fatal(err)
	}
	p, err := c.CreateMultiStationProducer([]string{one, two}, "fan")
	if err != nil {
		t.Fatal(err)
	}
	// Neither station has a third partition.
	checkJoined(t, "multi-station produce", p.Produce([]byte("x"), memphis.ProducerPartitionNumber(3)),
		[]string{one, two}, memphis.ErrPartitionNotFound)
	// Only the first lacks a second.
	err = p.Produce([]byte("x"), memphis.ProducerPartitionNumber(2))
	if op, ok := err.(*memphis.OpError); !ok || op.Station != one || !errors.Is(err, memphis.ErrPartitionNotFound) {
		t.Errorf("a failure on one station of two: %T %v, want that station's *OpError", err, err)
	}

	// Three async produces to a station destroyed under their producer,
	// with no handler: Flush returns their failures, joined.
	gone := testenv.Name(t, "join-flush")
	s, err := c.CreateStation(gone)
	if err != nil {
		t.Fatal(err)
	}
	fp := mustProducer(t, c, gone, "p")
	if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := fp.Produce([]byte("lost"), memphis.AsyncProduce(), memphis.AckWaitSec(2)); err != nil {
			t.Fatal(err)
		}
	}
	checkJoined(t, "Flush", fp.Flush(testCtx(t, 10*time.Second)), []string{gone, gone, gone},
		memphis.ErrStationNotFound, memphis.ErrTimeout)
}

// TestOpErrorNamesTheCallAndStation: an error "names the call and the
// station": for calls about a station, OpError.Op and OpError.Station are
// set and the text starts with both; the README's CreateStation example
// among them.
func TestOpErrorNamesTheCallAndStation(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "named")
	if _, err := c.CreateStation(station); err != nil {
		t.Fatal(err)
	}
	p := mustProducer(t, c, station, "p")
	cons := mustConsumer(t, c, station, "c")
	gone := mustConsumer(t, c, station, "gone")
	if err := gone.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		op, station string
		want        error
		call        func() error
	}{
		{"create station", "no spaces allowed", memphis.ErrInvalidName, func() error {
			_, err := c.CreateStation("no spaces allowed")
			return err
		}},
		{"create consumer", station, memphis.ErrInvalidName, func() error {
			_, err := c.CreateConsumer(station, "c2", memphis.ConsumerGroup("no spaces!"))
			return err
		}},
		{"produce", station, memphis.ErrPartitionNotFound, func() error {
			return p.Produce([]byte("x"), memphis.ProducerPartitionNumber(9))
		}},
		{"fetch", station, memphis.ErrPartitionNotFound, func() error {
			_, err := cons.Fetch(1, false, memphis.ConsumerPartitionNumber(9))
			return err
		}},
		{"consume", station, memphis.ErrConsumerDestroyed, func() error {
			return gone.Consume(func([]*memphis.Msg, error, context.Context) {})
		}},
		{"enforce schema", station, memphis.ErrSchemaNotFound, func() error {
			return c.EnforceSchema("no-such-schema", station)
		}},
	} {
		t.Run(tc.op, func(t *testing.T) {
			err := tc.call()
			var op *memphis.OpError
			if !errors.Is(err, tc.want) || !errors.As(err, &op) {
				t.Fatalf("err = %v, want an *OpError matching %v", err, tc.want)
			}
			if op.Op != tc.op || op.Station != tc.station || !strings.HasPrefix(err.Error(), "memphis: "+tc.op+" "+tc.station+": ") {
				t.Errorf("%q: Op %q, Station %q; want %q on %q", err, op.Op, op.Station, tc.op, tc.station)
			}
		})
	}
}

// TestNATSErrorsStayMatchable: "nats.go errors are wrapped too, so
// errors.Is finds them", beside the SDK's own sentinel.
func TestNATSErrorsStayMatchable(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	p := mustProducer(t, c, testenv.Name(t, "natserr"), "p")
	err := p.Produce(make([]byte, 9<<20))
	if !errors.Is(err, memphis.ErrMessageTooLarge) || !errors.Is(err, nats.ErrMaxPayload) {
		t.Errorf("a message over the max payload: %v, want ErrMessageTooLarge and nats.ErrMaxPayload", err)
	}
	_, err = memphis.Connect("127.0.0.1", "root", memphis.Password("x"), memphis.Port(1), memphis.Timeout(200*time.Millisecond))
	if !errors.Is(err, memphis.ErrNoServers) || !errors.Is(err, nats.ErrNoServers) {
		t.Errorf("an unreachable broker: %v, want ErrNoServers and nats.ErrNoServers", err)
	}
}
