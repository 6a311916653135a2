// Package otelmemphis traces and measures memphis.go connections with
// OpenTelemetry. It is built on the SDK's hooks and public API alone, and
// lives in a module of its own, so that programs which do not use it do not
// depend on OpenTelemetry.
//
//	tel := otelmemphis.New() // the global tracer and meter providers
//	defer tel.Close()
//	conn, err := memphis.Connect(host, user, memphis.Password(pw), memphis.Hooks(tel))
//
// # Tracing
//
// Spans follow the OpenTelemetry semantic conventions for messaging, with
// messaging.system "memphis":
//
//   - a producer span "send <station>" for every message sent to a station,
//     child of the span in the produce call's context. Its context travels
//     to consumers in the message's headers in W3C trace-context form
//     ("traceparent", and "tracestate" when there is one), as plain
//     headers: every Memphis SDK passes them on, and Msg.GetHeaders shows
//     them like any other.
//   - a consumer span "process <station>" for every message handed to the
//     application (by Consume, ConsumeUntil, Messages or Fetch), child of
//     the producer's span when the message carries one, so that the trace
//     continues across the broker; the span of the context the message was
//     received under, if any, is linked. It ends when the message is first
//     settled (Ack, Nack, Delay, DeadLetter, each recorded as an event) or
//     when the handler call that received it returns, whichever comes
//     first. A fetched message that is never settled has no end, and its
//     span is not exported.
//
// Handler code gets each message's context, carrying its consumer span,
// from Msg.Context; spans started under it join the producer's trace:
//
//	for _, m := range msgs {
//		ctx, span := tracer.Start(m.Context(), "handle order")
//		...
//	}
//
// # Metrics
//
// Instruments of the messaging conventions, where they have one, and of
// the memphis namespace otherwise; attributes name the station
// (messaging.destination.name), the partition
// (messaging.destination.partition.id), the consumer group
// (messaging.consumer.group.name) and, for failures, their kind
// (error.type, see ErrorType):
//
//	messaging.client.sent.messages      counter, every produce by outcome
//	messaging.client.operation.duration histogram (s) of produces, from the call to the broker's answer
//	memphis.client.sent.bytes           counter, payload bytes the broker acknowledged
//	messaging.client.consumed.messages  counter, messages handed to the application
//	memphis.client.consumed.bytes       counter, their payload bytes
//	messaging.process.duration          histogram (s) of handler calls
//	memphis.client.settled.messages     counter, by messaging.operation.name: ack, nack, delay, dead_letter
//	memphis.client.consume.errors       counter, failures of consuming
//	memphis.client.connection.events    counter, by memphis.connection.event: connect, disconnect, reconnect, closed
//	memphis.consumer.lag                gauge, messages the group has not received yet (Consumer.Lag's Pending)
//	memphis.consumer.unacked            gauge, messages delivered to the group and not acknowledged
//
// The two gauges are observed when the meter provider's reader collects:
// for every consumer group of the hooked connections, one Consumer.Lag call
// (a request per partition), so each collection reports the broker's
// figures of that moment.
package otelmemphis

import (
	"context"
	"errors"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/memphisdev/memphis.go"
)

// ScopeName is the instrumentation scope of the tracer and the meter.
const ScopeName = "github.com/memphisdev/memphis.go/otelmemphis"

// system is the messaging.system of every span and measurement.
const system = "memphis"

// Telemetry is a memphis.Hook that traces and measures the connections it
// is given to (memphis.Hooks). One Telemetry may serve several connections.
// It is safe for concurrent use.
type Telemetry struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	inst   instruments

	names sync.Map // span names by operation and station: spanName → string
	attrs sync.Map // measurement options by their attributes: attrKey → metric.MeasurementOption

	mu        sync.Mutex
	consumers map[*memphis.Consumer]struct{} // live consumers, for the lag gauges
	lagReg    metric.Registration            // the lag gauges' callback; nil once closed
}

type config struct {
	tp   trace.TracerProvider
	mp   metric.MeterProvider
	prop propagation.TextMapPropagator
}

// Option configures New.
type Option func(*config)

// TracerProvider sets the tracer provider spans are made with. Default:
// otel.GetTracerProvider(), the global one.
func TracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// MeterProvider sets the meter provider instruments are made with.
// Default: otel.GetMeterProvider(), the global one.
func MeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// Propagator sets how span contexts are written into produced messages'
// headers and read from consumed ones. Default:
// propagation.TraceContext{}, the W3C traceparent and tracestate headers
// (not the global propagator, which does nothing unless a program sets
// one); pass otel.GetTextMapPropagator() to use the program's.
func Propagator(p propagation.TextMapPropagator) Option { return func(c *config) { c.prop = p } }

// New returns hooks that trace and measure, to give to memphis.Connect
// with memphis.Hooks. Instruments the meter provider refuses are reported
// to otel.Handle and left out.
func New(opts ...Option) *Telemetry {
	c := config{}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.prop == nil {
		c.prop = propagation.TraceContext{}
	}
	t := &Telemetry{
		tracer:    c.tp.Tracer(ScopeName, trace.WithInstrumentationVersion(memphis.Version), trace.WithSchemaURL(schemaURL)),
		prop:      c.prop,
		consumers: make(map[*memphis.Consumer]struct{}),
	}
	meter := c.mp.Meter(ScopeName, metric.WithInstrumentationVersion(memphis.Version), metric.WithSchemaURL(schemaURL))
	var err error
	t.inst, err = newInstruments(meter)
	if t.inst.lag != nil && t.inst.unacked != nil {
		var rerr error
		t.lagReg, rerr = meter.RegisterCallback(t.observeLag, t.inst.lag, t.inst.unacked)
		err = errors.Join(err, rerr)
	}
	if err != nil {
		otel.Handle(err)
	}
	return t
}

// Close stops observing the consumer lag gauges (their callback stays
// registered with the meter provider until then). The hooks keep working.
// Idempotent.
func (t *Telemetry) Close() error {
	t.mu.Lock()
	reg := t.lagReg
	t.lagReg = nil
	t.mu.Unlock()
	if reg == nil {
		return nil
	}
	return reg.Unregister()
}

// The connection events.

// OnConnect counts a connection made, or failed (with its error.type).
func (t *Telemetry) OnConnect(_ *memphis.Conn, err error) { t.connEvent("connect", err) }

// OnDisconnect counts a dropped connection.
func (t *Telemetry) OnDisconnect(_ *memphis.Conn, err error) { t.connEvent("disconnect", err) }

// OnReconnect counts a connection re-established.
func (t *Telemetry) OnReconnect(*memphis.Conn) { t.connEvent("reconnect", nil) }

// OnConnClosed counts a connection closed for good.
func (t *Telemetry) OnConnClosed(*memphis.Conn) { t.connEvent("closed", nil) }

// OnNewConsumer starts observing the consumer's group lag.
func (t *Telemetry) OnNewConsumer(c *memphis.Consumer) {
	t.mu.Lock()
	t.consumers[c] = struct{}{}
	t.mu.Unlock()
}

// OnConsumerClosed stops observing the consumer.
func (t *Telemetry) OnConsumerClosed(c *memphis.Consumer) {
	t.mu.Lock()
	delete(t.consumers, c)
	t.mu.Unlock()
}

// spanKey is the context key under which a Telemetry keeps the span it
// started for a produce or a consumed message, so that it ends its own
// span even when other hooks started spans of their own meanwhile.
type spanKey struct{ t *Telemetry }

func (t *Telemetry) spanOf(ctx context.Context) trace.Span {
	if ctx == nil {
		return nil
	}
	s, _ := ctx.Value(spanKey{t}).(trace.Span)
	return s
}

// Every hook this package implements.
var _ interface {
	memphis.HookConnect
	memphis.HookDisconnect
	memphis.HookReconnect
	memphis.HookConnClosed
	memphis.HookProduceStart
	memphis.HookProduceEnd
	memphis.HookNewConsumer
	memphis.HookConsumerClosed
	memphis.HookConsumeMessage
	memphis.HookConsumeHandled
	memphis.HookConsumeSettle
	memphis.HookConsumeError
} = (*Telemetry)(nil)
