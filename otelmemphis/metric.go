package otelmemphis

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/memphisdev/memphis.go"
)

// instruments are the meters' instruments; one that the provider refused
// is nil and not recorded to.
type instruments struct {
	sent          metric.Int64Counter
	sentBytes     metric.Int64Counter
	sendDuration  metric.Float64Histogram
	consumed      metric.Int64Counter
	consumedBytes metric.Int64Counter
	process       metric.Float64Histogram
	settled       metric.Int64Counter
	consumeErrors metric.Int64Counter
	connEvents    metric.Int64Counter
	lag           metric.Int64ObservableGauge
	unacked       metric.Int64ObservableGauge
}

// durationBuckets (seconds) reach down to 100 µs: a produce to a nearby
// broker takes well under the conventions' smallest bucket of 5 ms.
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10}

func newInstruments(m metric.Meter) (instruments, error) {
	var in instruments
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		return c
	}
	histogram := func(name, desc string) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		return h
	}
	gauge := func(name, desc string) metric.Int64ObservableGauge {
		g, err := m.Int64ObservableGauge(name, metric.WithUnit("{message}"), metric.WithDescription(desc))
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		return g
	}
	in.sent = counter("messaging.client.sent.messages", "{message}", "Number of messages producers attempted to send to the broker.")
	in.sentBytes = counter("memphis.client.sent.bytes", "By", "Payload bytes of the messages the broker acknowledged.")
	in.sendDuration = histogram("messaging.client.operation.duration", "Duration of produces, from the call to the broker's answer.")
	in.consumed = counter("messaging.client.consumed.messages", "{message}", "Number of messages that were delivered to the application.")
	in.consumedBytes = counter("memphis.client.consumed.bytes", "By", "Payload bytes of the messages delivered to the application.")
	in.process = histogram("messaging.process.duration", "Duration of handler calls.")
	in.settled = counter("memphis.client.settled.messages", "{message}", "Number of acks, nacks, delays and dead letters of consumed messages.")
	in.consumeErrors = counter("memphis.client.consume.errors", "{error}", "Number of failures of consuming.")
	in.connEvents = counter("memphis.client.connection.events", "{event}", "Number of connects, disconnects, reconnects and closes.")
	in.lag = gauge("memphis.consumer.lag", "Messages stored on the station that the consumer group has not received yet.")
	in.unacked = gauge("memphis.consumer.unacked", "Messages delivered to the consumer group and not yet acknowledged.")
	return in, errors.Join(errs...)
}

// attrKey names one set of attributes; their measurement option is made
// once and cached, since building and sorting a set per message would cost
// more than the measurement.
type attrKey struct {
	op, station, group, errType string
	partition                   int
}

func (t *Telemetry) opt(k attrKey) metric.MeasurementOption {
	if o, ok := t.attrs.Load(k); ok {
		return o.(metric.MeasurementOption)
	}
	attrs := []attribute.KeyValue{systemAttr, semconv.MessagingOperationName(k.op)}
	if k.station != "" {
		attrs = append(attrs, semconv.MessagingDestinationName(k.station))
	}
	if k.partition > 0 {
		attrs = append(attrs, semconv.MessagingDestinationPartitionID(partitionID(k.partition)))
	}
	if k.group != "" {
		attrs = append(attrs, semconv.MessagingConsumerGroupName(k.group))
	}
	if k.errType != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(k.errType))
	}
	switch k.op {
	case "send":
		attrs = append(attrs, semconv.MessagingOperationTypeSend)
	case "process":
		attrs = append(attrs, semconv.MessagingOperationTypeProcess)
	case memphis.SettleAck.String(), memphis.SettleNack.String(), memphis.SettleDelay.String(), memphis.SettleDeadLetter.String():
		attrs = append(attrs, semconv.MessagingOperationTypeSettle)
	}
	o := metric.WithAttributeSet(attribute.NewSet(attrs...))
	t.attrs.Store(k, o)
	return o
}

// enabled reports whether an instrument records anything: a refused or
// disabled one (a no-op provider's) costs nothing more.
func enabled(in interface{ Enabled(context.Context) bool }) bool {
	return in != nil && in.Enabled(context.Background())
}

func (t *Telemetry) produced(r *memphis.ProduceRecord, d time.Duration, err error) {
	in := &t.inst
	if !enabled(in.sent) && !enabled(in.sendDuration) && !enabled(in.sentBytes) {
		return
	}
	o := t.opt(attrKey{op: "send", station: r.Station, partition: r.Partition, errType: ErrorType(err)})
	ctx := context.Background()
	if in.sent != nil {
		in.sent.Add(ctx, 1, o)
	}
	if in.sendDuration != nil {
		in.sendDuration.Record(ctx, d.Seconds(), o)
	}
	if err == nil && in.sentBytes != nil {
		in.sentBytes.Add(ctx, int64(r.Size), o)
	}
}

func (t *Telemetry) consumed(station, group string, m *memphis.Msg) {
	in := &t.inst
	if !enabled(in.consumed) && !enabled(in.consumedBytes) {
		return
	}
	o := t.opt(attrKey{op: "process", station: station, group: group, partition: m.Partition()})
	ctx := context.Background()
	if in.consumed != nil {
		in.consumed.Add(ctx, 1, o)
	}
	if in.consumedBytes != nil {
		in.consumedBytes.Add(ctx, int64(len(m.Data())), o)
	}
}

func (t *Telemetry) handled(station, group string, d time.Duration) {
	if in := t.inst.process; enabled(in) {
		in.Record(context.Background(), d.Seconds(), t.opt(attrKey{op: "process", station: station, group: group}))
	}
}

func (t *Telemetry) settled(station, group string, partition int, s memphis.Settle, err error) {
	if in := t.inst.settled; enabled(in) {
		in.Add(context.Background(), 1, t.opt(attrKey{op: s.String(), station: station, group: group,
			partition: partition, errType: ErrorType(err)}))
	}
}

func (t *Telemetry) consumeFailed(station, group string, err error) {
	if in := t.inst.consumeErrors; enabled(in) {
		in.Add(context.Background(), 1, t.opt(attrKey{op: "process", station: station, group: group, errType: ErrorType(err)}))
	}
}

func (t *Telemetry) connEvent(event string, err error) {
	in := t.inst.connEvents
	if !enabled(in) {
		return
	}
	attrs := []attribute.KeyValue{systemAttr, attrConnectEvent.String(event)}
	if err != nil {
		attrs = append(attrs, semconv.ErrorTypeKey.String(ErrorType(err)))
	}
	in.Add(context.Background(), 1, metric.WithAttributes(attrs...))
}

// observeLag observes each consumer group's lag, once per group and
// partition: members of one group share it.
func (t *Telemetry) observeLag(ctx context.Context, o metric.Observer) error {
	t.mu.Lock()
	consumers := make([]*memphis.Consumer, 0, len(t.consumers))
	for c := range t.consumers {
		consumers = append(consumers, c)
	}
	t.mu.Unlock()
	type group struct{ station, group string }
	done := make(map[group]bool)
	var errs []error
	for _, c := range consumers {
		g := group{c.Station(), groupOf(c)}
		if done[g] {
			continue
		}
		lag, err := c.Lag(ctx)
		switch {
		case errors.Is(err, memphis.ErrConsumerDestroyed), errors.Is(err, memphis.ErrStationUnreachable):
			// Gone for good: nothing more to observe.
			t.OnConsumerClosed(c)
			continue
		case err != nil:
			errs = append(errs, err)
			continue
		}
		done[g] = true
		for _, p := range lag.Partitions {
			attrs := metric.WithAttributeSet(attribute.NewSet(systemAttr,
				semconv.MessagingDestinationName(lag.Station),
				semconv.MessagingDestinationPartitionID(partitionID(p.Partition)),
				semconv.MessagingConsumerGroupName(lag.Group)))
			o.ObserveInt64(t.inst.lag, int64(p.Pending), attrs)
			o.ObserveInt64(t.inst.unacked, int64(p.Unacked), attrs)
		}
	}
	return errors.Join(errs...)
}
