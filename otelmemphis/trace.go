package otelmemphis

import (
	"context"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/memphisdev/memphis.go"
)

const schemaURL = semconv.SchemaURL

// Attributes of the memphis namespace, where the conventions have none.
const (
	attrProducer     = attribute.Key("memphis.producer.name")
	attrSequence     = attribute.Key("memphis.message.sequence")
	attrDuplicate    = attribute.Key("memphis.message.duplicate")
	attrDeliveries   = attribute.Key("memphis.message.delivery_count")
	attrResent       = attribute.Key("memphis.message.resent")
	attrConnectEvent = attribute.Key("memphis.connection.event")
)

var systemAttr = semconv.MessagingSystemKey.String(system)

// spanName is the cache key of a span name: "<operation> <station>".
type spanName struct{ op, station string }

// name returns the span name of an operation on a station, made once per
// station rather than once per message.
func (t *Telemetry) name(op, station string) string {
	k := spanName{op, station}
	if n, ok := t.names.Load(k); ok {
		return n.(string)
	}
	n := op + " " + station
	t.names.Store(k, n)
	return n
}

func partitionID(p int) string { return strconv.Itoa(p) }

// OnProduceStart starts the message's producer span, a child of the span
// in the produce call's context, and writes its context into the message's
// headers.
func (t *Telemetry) OnProduceStart(r *memphis.ProduceRecord) {
	ctx, span := t.tracer.Start(r.Context, t.name("send", r.Station), trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		attrs := []attribute.KeyValue{
			systemAttr,
			semconv.MessagingOperationName("send"),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(r.Station),
			semconv.MessagingMessageBodySize(r.Size),
			attrProducer.String(r.Producer),
		}
		if r.Partition > 0 {
			attrs = append(attrs, semconv.MessagingDestinationPartitionID(partitionID(r.Partition)))
		}
		if r.MsgID != "" {
			attrs = append(attrs, semconv.MessagingMessageID(r.MsgID))
		}
		span.SetAttributes(attrs...)
		ctx = context.WithValue(ctx, spanKey{t}, span)
	}
	t.prop.Inject(ctx, recordCarrier{r})
	r.Context = ctx
}

// OnProduceEnd ends the producer span with the outcome, and measures it.
func (t *Telemetry) OnProduceEnd(r *memphis.ProduceRecord, ack memphis.PubAck, d time.Duration, err error) {
	if span := t.spanOf(r.Context); span != nil {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			span.SetAttributes(semconv.ErrorTypeKey.String(ErrorType(err)))
		} else {
			span.SetAttributes(attrSequence.Int64(int64(ack.Sequence)))
			if ack.Duplicate {
				span.SetAttributes(attrDuplicate.Bool(true))
			}
		}
		span.End()
	}
	t.produced(r, d, err)
}

// OnConsumeMessage starts the message's consumer span, a child of the
// producer's span carried in its headers (or of ctx's span when it carries
// none, with ctx's span linked otherwise), and returns its context.
func (t *Telemetry) OnConsumeMessage(ctx context.Context, c *memphis.Consumer, m *memphis.Msg) context.Context {
	station, group := c.Station(), groupOf(c)
	t.consumed(station, group, m)
	parent := t.prop.Extract(ctx, msgCarrier{m})
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	if local := trace.SpanContextFromContext(ctx); local.IsValid() && !trace.SpanContextFromContext(parent).Equal(local) {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: local}))
	}
	sctx, span := t.tracer.Start(parent, t.name("process", station), opts...)
	if !span.IsRecording() {
		return sctx
	}
	attrs := []attribute.KeyValue{
		systemAttr,
		semconv.MessagingOperationName("process"),
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingDestinationName(station),
		semconv.MessagingConsumerGroupName(group),
		semconv.MessagingMessageBodySize(len(m.Data())),
	}
	if p := m.Partition(); p > 0 {
		attrs = append(attrs, semconv.MessagingDestinationPartitionID(partitionID(p)))
	}
	if m.IsResent() {
		attrs = append(attrs, attrResent.Bool(true))
	} else {
		if seq, err := m.GetSequenceNumber(); err == nil {
			attrs = append(attrs, attrSequence.Int64(int64(seq)))
		}
		if n, err := m.DeliveryCount(); err == nil {
			attrs = append(attrs, attrDeliveries.Int(n))
		}
	}
	span.SetAttributes(attrs...)
	return context.WithValue(sctx, spanKey{t}, span)
}

// OnConsumeHandled ends the spans of the messages the handler call got (those
// not settled already), and measures the call.
func (t *Telemetry) OnConsumeHandled(c *memphis.Consumer, msgs []*memphis.Msg, d time.Duration) {
	t.handled(c.Station(), groupOf(c), d)
	for _, m := range msgs {
		if span := t.spanOf(m.Context()); span != nil {
			span.End()
		}
	}
}

// OnConsumeSettle records the settlement as an event of the message's span
// and ends it, and counts it.
func (t *Telemetry) OnConsumeSettle(c *memphis.Consumer, m *memphis.Msg, s memphis.Settle, err error) {
	t.settled(c.Station(), groupOf(c), m.Partition(), s, err)
	span := t.spanOf(m.Context())
	if span == nil || !span.IsRecording() {
		return
	}
	if err != nil {
		span.AddEvent(s.String(), trace.WithAttributes(semconv.ErrorTypeKey.String(ErrorType(err))))
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.AddEvent(s.String())
	}
	span.End()
}

// OnConsumeError counts a failure of consuming.
func (t *Telemetry) OnConsumeError(c *memphis.Consumer, err error) {
	t.consumeFailed(c.Station(), groupOf(c), err)
}

// groupOf is the consumer's group.
func groupOf(c *memphis.Consumer) string { return c.ConsumerGroup }

// recordCarrier writes a span context into a produced message's headers.
type recordCarrier struct{ r *memphis.ProduceRecord }

func (c recordCarrier) Get(key string) string { return c.r.Header(key) }

// Set ignores a refusal: the propagator's keys are never reserved.
func (c recordCarrier) Set(key, value string) { _ = c.r.SetHeader(key, value) }

// Keys is nil: injecting needs none, and nothing extracts from a record.
func (c recordCarrier) Keys() []string { return nil }

// msgCarrier reads a span context from a consumed message's headers.
type msgCarrier struct{ m *memphis.Msg }

func (c msgCarrier) Get(key string) string { return c.m.GetHeader(key) }

// Set does nothing: a consumed message's headers are not written to.
func (c msgCarrier) Set(string, string) {}

func (c msgCarrier) Keys() []string {
	h := c.m.GetHeaders()
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}
