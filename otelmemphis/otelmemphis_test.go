package otelmemphis_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/goleak"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/memphistest"
	"github.com/memphisdev/memphis.go/otelmemphis"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is one in-process broker, a connection hooked with Telemetry, and
// the OpenTelemetry SDK's in-memory span recorder and metric reader.
type env struct {
	srv    *memphistest.Server
	conn   *memphis.Conn
	tel    *otelmemphis.Telemetry
	spans  *tracetest.SpanRecorder
	tracer trace.Tracer // the test's own, from the same provider
	reader *sdkmetric.ManualReader
}

// producer creates station with partitions and a producer "p" on it.
func (e *env) producer(t *testing.T, station string, partitions int) *memphis.Producer {
	t.Helper()
	if _, err := e.conn.CreateStation(station, memphis.PartitionsNumber(partitions)); err != nil {
		t.Fatal(err)
	}
	p, err := e.conn.CreateProducer(station, "p")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{srv: memphistest.NewServer(t), spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	e.tracer = tp.Tracer("test")
	e.tel = otelmemphis.New(otelmemphis.TracerProvider(tp), otelmemphis.MeterProvider(mp))
	t.Cleanup(func() { _ = e.tel.Close() })
	e.conn = e.connect(t, memphis.Hooks(e.tel))
	return e
}

func (e *env) connect(t *testing.T, opts ...memphis.Option) *memphis.Conn {
	t.Helper()
	c, err := memphis.Connect(e.srv.Host(), e.srv.Username(),
		append([]memphis.Option{memphis.Port(e.srv.Port()), memphis.Password(e.srv.Password())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// ended returns the ended spans by name.
func (e *env) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range e.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

var traceparent = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`)

// produceTraced produces n messages, each under a parent span of the
// test's own, and returns the trace id of each payload.
func produceTraced(t *testing.T, e *env, p *memphis.Producer, n int, opts ...memphis.ProduceOpt) map[string]trace.TraceID {
	t.Helper()
	ids := make(map[string]trace.TraceID)
	for i := range n {
		ctx, span := e.tracer.Start(context.Background(), "request")
		payload := fmt.Sprintf("msg-%d", i)
		if err := p.ProduceContext(ctx, []byte(payload), opts...); err != nil {
			t.Fatal(err)
		}
		span.End()
		ids[payload] = span.SpanContext().TraceID()
	}
	return ids
}

// checkTraces checks, for every consumed message, that its consumer span
// continues the producer's trace as a child of the producer span, and that
// the handler's own span (named "handle <payload>") is a child of the
// consumer span.
func checkTraces(t *testing.T, e *env, station string, ids map[string]trace.TraceID, settle string) {
	t.Helper()
	sends := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range e.ended("send " + station) {
		sends[s.SpanContext().SpanID()] = s
		if s.SpanKind() != trace.SpanKindProducer {
			t.Errorf("send span kind %v", s.SpanKind())
		}
		if s.Parent().SpanID() == (trace.SpanID{}) {
			t.Error("a send span has no parent: the produce call's span is lost")
		}
		if v, _ := attr(s, "messaging.destination.name"); v.AsString() != station {
			t.Errorf("send span destination %q", v.AsString())
		}
		if v, ok := attr(s, "memphis.message.sequence"); !ok || v.AsInt64() < 1 {
			t.Error("send span without the message's sequence")
		}
	}
	handles := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range e.spans.Ended() {
		if len(s.Name()) > 7 && s.Name()[:7] == "handle " {
			handles[s.Parent().SpanID()] = s
		}
	}
	procs := e.ended("process " + station)
	if len(procs) != len(ids) {
		t.Fatalf("%d process spans, want %d", len(procs), len(ids))
	}
	partitions := map[int64]bool{}
	for _, s := range procs {
		if s.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("process span kind %v", s.SpanKind())
		}
		send, ok := sends[s.Parent().SpanID()]
		if !ok {
			t.Errorf("process span %v's parent is no send span", s.SpanContext().SpanID())
			continue
		}
		if s.SpanContext().TraceID() != send.SpanContext().TraceID() {
			t.Errorf("process span in trace %v, its send span in %v", s.SpanContext().TraceID(), send.SpanContext().TraceID())
		}
		h, ok := handles[s.SpanContext().SpanID()]
		if !ok {
			t.Errorf("no handler span under process span %v", s.SpanContext().SpanID())
			continue
		}
		payload := h.Name()[len("handle "):]
		if want := ids[payload]; s.SpanContext().TraceID() != want {
			t.Errorf("%s: consumer span in trace %v, produced under %v", payload, s.SpanContext().TraceID(), want)
		}
		if v, _ := attr(s, "messaging.consumer.group.name"); v.AsString() == "" {
			t.Error("process span without the consumer group")
		}
		p, _ := attr(s, "messaging.destination.partition.id")
		var n int64
		_, _ = fmt.Sscan(p.AsString(), &n)
		partitions[n] = true
		if settle != "" {
			evs := s.Events()
			if len(evs) != 1 || evs[0].Name != settle {
				t.Errorf("process span events %v, want one %q", evs, settle)
			}
		}
	}
	if len(partitions) < 2 {
		t.Errorf("messages came from partitions %v; the test wants several", partitions)
	}
}

// TestTraceContinuesThroughConsume: across three partitions, each
// consumer span continues its message's producer trace, and handler code
// joins it through Msg.Context.
func TestTraceContinuesThroughConsume(t *testing.T) {
	e := newEnv(t)
	station := "traced-consume"
	p := e.producer(t, station, 3)
	ids := produceTraced(t, e, p, 9)
	cons, err := e.conn.CreateConsumer(station, "c")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := 0
	done := make(chan struct{})
	err = cons.Consume(func(msgs []*memphis.Msg, err error, _ context.Context) {
		for _, m := range msgs {
			if !traceparent.MatchString(m.GetHeaders()["traceparent"]) {
				t.Errorf("traceparent header %q", m.GetHeaders()["traceparent"])
			}
			_, span := e.tracer.Start(m.Context(), "handle "+string(m.Data()))
			span.End()
			_ = m.Ack()
		}
		mu.Lock()
		defer mu.Unlock()
		if got += len(msgs); got == len(ids) {
			close(done)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("not every message was consumed")
	}
	cons.StopConsume()
	checkTraces(t, e, station, ids, "ack")
}

// TestTraceContinuesThroughFetch: the same through Fetch, where the span
// ends with the settlement; a nack is recorded as such, and a message never
// settled leaves its span open (not exported).
func TestTraceContinuesThroughFetch(t *testing.T) {
	e := newEnv(t)
	station := "traced-fetch"
	p := e.producer(t, station, 2)
	ids := produceTraced(t, e, p, 6, memphis.AsyncProduce())
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	cons, err := e.conn.CreateConsumer(station, "c", memphis.BatchMaxWaitTime(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*memphis.Msg
	for len(msgs) < len(ids) {
		batch, err := cons.Fetch(len(ids)-len(msgs), false)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, batch...)
	}
	for _, m := range msgs {
		_, span := e.tracer.Start(m.Context(), "handle "+string(m.Data()))
		span.End()
		if err := m.Nack(); err != nil {
			t.Fatal(err)
		}
	}
	checkTraces(t, e, station, ids, "nack")

	// Redelivered and fetched again, but not settled: no span ends.
	before := len(e.ended("process " + station))
	again, err := cons.Fetch(1, false)
	if err != nil || len(again) != 1 {
		t.Fatalf("fetch again: %d, %v", len(again), err)
	}
	if n := len(e.ended("process " + station)); n != before {
		t.Errorf("an unsettled fetched message's span ended (%d → %d)", before, n)
	}
	if d, _ := again[0].DeliveryCount(); d != 2 {
		t.Errorf("delivery count %d, want 2", d)
	}
}

// TestTraceThroughMessages: the iterator's spans end when the loop body
// returns, settled or not.
func TestTraceThroughMessages(t *testing.T) {
	e := newEnv(t)
	station := "traced-iter"
	p, err := e.conn.CreateProducer(station, "p")
	if err != nil {
		t.Fatal(err)
	}
	ids := produceTraced(t, e, p, 3)
	cons, err := e.conn.CreateConsumer(station, "c")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := 0
	for m, err := range cons.Messages(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		_, span := e.tracer.Start(m.Context(), "handle "+string(m.Data()))
		span.End()
		_ = m.Ack()
		if n++; n == len(ids) {
			break
		}
	}
	procs := e.ended("process " + station)
	if len(procs) != len(ids) {
		t.Fatalf("%d process spans, want %d", len(procs), len(ids))
	}
	for _, s := range procs {
		found := false
		for _, id := range ids {
			found = found || id == s.SpanContext().TraceID()
		}
		if !found {
			t.Errorf("process span in trace %v, which no produce started", s.SpanContext().TraceID())
		}
	}
}

// TestProduceFailureSpan: a produce refused locally still has its span,
// with the error recorded and its kind.
func TestProduceFailureSpan(t *testing.T) {
	e := newEnv(t)
	if _, err := e.conn.CreateStation("failing", memphis.PartitionsNumber(2)); err != nil {
		t.Fatal(err)
	}
	p, err := e.conn.CreateProducer("failing", "p")
	if err != nil {
		t.Fatal(err)
	}
	err = p.Produce([]byte("x"), memphis.ProducerPartitionNumber(7))
	if !errors.Is(err, memphis.ErrPartitionNotFound) {
		t.Fatalf("err = %v", err)
	}
	sends := e.ended("send failing")
	if len(sends) != 1 || sends[0].Status().Code != codes.Error {
		t.Fatalf("send spans %v, want one with an error status", sends)
	}
	if v, _ := attr(sends[0], "error.type"); v.AsString() != "partition_not_found" {
		t.Errorf("error.type %q", v.AsString())
	}
}

// TestNoopProvidersAddNoHeaders: with no-op providers and no span in the
// produce call's context there is no trace context to carry, and so no
// header; the hooks still work.
func TestNoopProvidersAddNoHeaders(t *testing.T) {
	srv := memphistest.NewServer(t)
	tel := otelmemphis.New(otelmemphis.TracerProvider(tracenoop.NewTracerProvider()))
	defer tel.Close()
	c, err := memphis.Connect(srv.Host(), srv.Username(), memphis.Port(srv.Port()), memphis.Password(srv.Password()),
		memphis.Hooks(tel))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := c.CreateProducer("plain", "p")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Produce([]byte("x")); err != nil {
		t.Fatal(err)
	}
	cons, err := c.CreateConsumer("plain", "c", memphis.BatchMaxWaitTime(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := cons.Fetch(1, false)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %d, %v", len(msgs), err)
	}
	if h := msgs[0].GetHeaders(); len(h) != 0 {
		t.Errorf("headers %v, want none", h)
	}
	if err := msgs[0].Ack(); err != nil {
		t.Fatal(err)
	}
}

// metrics collects the reader's data points of one instrument, as sums
// (or histogram counts) by a chosen attribute set.
func (e *env) collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := e.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

func find(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// total sums an instrument's points whose attributes include every one of
// match (a histogram counts its recordings).
func total(t *testing.T, rm metricdata.ResourceMetrics, name string, match ...attribute.KeyValue) int64 {
	t.Helper()
	m, ok := find(rm, name)
	if !ok {
		return 0
	}
	has := func(set attribute.Set) bool {
		for _, kv := range match {
			if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
				return false
			}
		}
		return true
	}
	var n int64
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			if has(p.Attributes) {
				n += p.Value
			}
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			if has(p.Attributes) {
				n += p.Value
			}
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			if has(p.Attributes) {
				n += int64(p.Count)
			}
		}
	default:
		t.Fatalf("%s: unexpected data %T", name, m.Data)
	}
	return n
}

func str(k, v string) attribute.KeyValue { return attribute.String(k, v) }

// TestMetricsCount: the counts and sizes of produced and consumed
// messages, produce failures by kind, handler calls, settlements and the
// connection's events.
func TestMetricsCount(t *testing.T) {
	e := newEnv(t)
	station := "metered"
	p := e.producer(t, station, 2)
	for i := range 10 {
		if err := p.Produce([]byte(fmt.Sprintf("%05d", i))); err != nil { // 5 bytes each
			t.Fatal(err)
		}
	}
	_ = p.Produce([]byte("x"), memphis.ProducerPartitionNumber(9)) // partition_not_found
	_ = p.Produce(42)                                              // invalid_message
	cons, err := e.conn.CreateConsumer(station, "c", memphis.ConsumerGroup("billing"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{} // the handler is never called concurrently with itself
	done := make(chan struct{})
	var once sync.Once
	err = cons.Consume(func(msgs []*memphis.Msg, _ error, _ context.Context) {
		for _, m := range msgs {
			switch string(m.Data()) {
			case "00000":
				_ = m.DeadLetter("bad")
			case "00001":
				if n, _ := m.DeliveryCount(); n == 1 {
					_ = m.Nack()
					continue
				}
				_ = m.Ack()
			default:
				_ = m.Ack()
			}
			seen[string(m.Data())] = true
		}
		if len(seen) == 10 {
			once.Do(func() { close(done) })
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("not every message was consumed")
	}
	cons.StopConsume()

	rm := e.collect(t)
	st := str("messaging.destination.name", station)
	if n := total(t, rm, "messaging.client.sent.messages", st); n != 12 {
		t.Errorf("sent messages %d, want 12 (10 and 2 refused)", n)
	}
	if n := total(t, rm, "messaging.client.sent.messages", st, str("error.type", "partition_not_found")); n != 1 {
		t.Errorf("partition_not_found failures %d, want 1", n)
	}
	if n := total(t, rm, "messaging.client.sent.messages", st, str("error.type", "invalid_message")); n != 1 {
		t.Errorf("invalid_message failures %d, want 1", n)
	}
	if n := total(t, rm, "messaging.client.operation.duration", st, str("messaging.operation.name", "send")); n != 12 {
		t.Errorf("produce durations recorded %d, want 12", n)
	}
	if n := total(t, rm, "memphis.client.sent.bytes", st); n != 50 {
		t.Errorf("sent bytes %d, want 50", n)
	}
	group := str("messaging.consumer.group.name", "billing")
	if n := total(t, rm, "messaging.client.consumed.messages", st, group); n != 11 {
		t.Errorf("consumed messages %d, want 11 (10 and the nacked one again)", n)
	}
	if n := total(t, rm, "memphis.client.consumed.bytes", st, group); n != 55 {
		t.Errorf("consumed bytes %d, want 55", n)
	}
	if n := total(t, rm, "messaging.process.duration", st, group); n < 1 {
		t.Errorf("handler calls recorded %d, want at least 1", n)
	}
	for op, want := range map[string]int64{"ack": 9, "nack": 1, "dead_letter": 1} {
		if n := total(t, rm, "memphis.client.settled.messages", st, group, str("messaging.operation.name", op)); n != want {
			t.Errorf("%s settlements %d, want %d", op, n, want)
		}
	}
	if n := total(t, rm, "memphis.client.connection.events", str("memphis.connection.event", "connect")); n != 1 {
		t.Errorf("connects %d, want 1", n)
	}

	// A failed connect is counted with its kind.
	_, err = memphis.Connect(e.srv.Host(), e.srv.Username(), memphis.Port(e.srv.Port()), memphis.Password("wrong"),
		memphis.Hooks(e.tel))
	if !errors.Is(err, memphis.ErrAuthorization) {
		t.Fatalf("connect with a wrong password: %v", err)
	}
	rm = e.collect(t)
	if n := total(t, rm, "memphis.client.connection.events", str("memphis.connection.event", "connect"),
		str("error.type", "authorization")); n != 1 {
		t.Errorf("failed connects %d, want 1", n)
	}
}

// TestLagGauge: the gauge goes up while the group does not consume and
// back to 0 when it catches up, per partition; a destroyed consumer is no
// longer observed.
func TestLagGauge(t *testing.T) {
	e := newEnv(t)
	station := "lagging"
	p := e.producer(t, station, 2)
	cons, err := e.conn.CreateConsumer(station, "c", memphis.ConsumerGroup("g"))
	if err != nil {
		t.Fatal(err)
	}
	// A second member of the group: the group's lag is observed once.
	if _, err := e.conn.CreateConsumer(station, "c2", memphis.ConsumerGroup("g")); err != nil {
		t.Fatal(err)
	}
	st, g := str("messaging.destination.name", station), str("messaging.consumer.group.name", "g")
	p1 := str("messaging.destination.partition.id", "1")
	for i := range 7 {
		if err := p.Produce([]byte("x"), memphis.ProducerPartitionNumber(1+i%2)); err != nil {
			t.Fatal(err)
		}
	}
	// JetStream counts a stored message in the lag a moment after the
	// producer's acknowledgement (from a goroutine of its own), so the
	// rise is awaited.
	rm := e.collect(t)
	for deadline := time.Now().Add(10 * time.Second); total(t, rm, "memphis.consumer.lag", st, g) != 7; rm = e.collect(t) {
		if time.Now().After(deadline) {
			t.Fatalf("lag %d with 7 produced and nothing consumed, want 7", total(t, rm, "memphis.consumer.lag", st, g))
		}
		time.Sleep(5 * time.Millisecond) // the broker's count can only be polled
	}
	if n := total(t, rm, "memphis.consumer.lag", st, g, p1); n != 4 {
		t.Errorf("partition 1 lag %d, want 4", n)
	}

	done := make(chan struct{})
	var once sync.Once
	got := 0
	err = cons.Consume(func(msgs []*memphis.Msg, _ error, _ context.Context) {
		for _, m := range msgs {
			_ = m.Ack()
		}
		if got += len(msgs); got == 7 {
			once.Do(func() { close(done) })
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the consumer did not catch up")
	}
	cons.StopConsume()
	rm = e.collect(t)
	if n := total(t, rm, "memphis.consumer.lag", st, g); n != 0 {
		t.Errorf("lag %d after catching up, want 0", n)
	}
	if m, ok := find(rm, "memphis.consumer.lag"); !ok || len(m.Data.(metricdata.Gauge[int64]).DataPoints) != 2 {
		t.Errorf("lag points %+v, want one per partition", m.Data)
	}

	if err := cons.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := e.tel.Close(); err != nil {
		t.Fatal(err)
	}
	rm = e.collect(t)
	if _, ok := find(rm, "memphis.consumer.lag"); ok {
		t.Error("lag still observed after Close")
	}
}

func TestErrorType(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{memphis.ErrTimeout, "timeout"},
		{fmt.Errorf("%w: %w", memphis.ErrTimeout, context.Canceled), "canceled"},
		{fmt.Errorf("%w: %w", memphis.ErrTimeout, context.DeadlineExceeded), "timeout"},
		{&memphis.OpError{Op: "produce", Err: memphis.ErrConnectionLost}, "connection_lost"},
		{&memphis.SchemaError{Err: errors.New("no")}, "schema_validation"},
		{&memphis.BrokerError{Text: "something odd"}, "broker"},
		{errors.New("what"), "_OTHER"},
	} {
		if got := otelmemphis.ErrorType(c.err); got != c.want {
			t.Errorf("ErrorType(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
