package otelmemphis

import (
	"context"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/memphistest"
)

// BenchmarkHookCost measures the hooks alone, without a broker in the
// loop: what Telemetry adds to each produced and each consumed message,
// with no-op providers and with the OpenTelemetry SDK (every span sampled
// and batched to an exporter that drops them, instruments aggregated by a
// manual reader).
func BenchmarkHookCost(b *testing.B) {
	providers := []struct {
		name string
		new  func(b *testing.B) *Telemetry
	}{
		{"noop", func(*testing.B) *Telemetry {
			return New(TracerProvider(tracenoop.NewTracerProvider()), MeterProvider(metricnoop.NewMeterProvider()))
		}},
		{"sdk", func(b *testing.B) *Telemetry {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() {
				_ = tp.Shutdown(context.Background())
				_ = mp.Shutdown(context.Background())
			})
			return New(TracerProvider(tp), MeterProvider(mp))
		}},
	}

	// One real consumed message, carrying a traceparent, and its consumer.
	srv := memphistest.NewServer(b)
	conn, err := memphis.Connect(srv.Host(), srv.Username(), memphis.Port(srv.Port()), memphis.Password(srv.Password()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	p, err := conn.CreateProducer("bench", "p")
	if err != nil {
		b.Fatal(err)
	}
	var h memphis.Headers
	_ = h.Add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if err := p.Produce(make([]byte, 128), memphis.MsgHeaders(h)); err != nil {
		b.Fatal(err)
	}
	cons, err := conn.CreateConsumer("bench", "c", memphis.BatchMaxWaitTime(100*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	msgs, err := cons.Fetch(1, false)
	if err != nil || len(msgs) != 1 {
		b.Fatalf("fetch: %d, %v", len(msgs), err)
	}
	m := msgs[0]

	for _, pv := range providers {
		b.Run("produce/"+pv.name, func(b *testing.B) {
			t := pv.new(b)
			defer t.Close()
			ctx := context.Background()
			b.ReportAllocs()
			for range b.N {
				r := &memphis.ProduceRecord{Context: ctx, Station: "orders", Partition: 1, Producer: "p", Size: 128}
				t.OnProduceStart(r)
				t.OnProduceEnd(r, memphis.PubAck{Station: "orders", Partition: 1, Sequence: 1}, time.Millisecond, nil)
			}
		})
		b.Run("consume/"+pv.name, func(b *testing.B) {
			t := pv.new(b)
			defer t.Close()
			ctx := context.Background()
			one := []*memphis.Msg{m}
			b.ReportAllocs()
			for range b.N {
				mctx := t.OnConsumeMessage(ctx, cons, m)
				if span := t.spanOf(mctx); span != nil {
					span.End() // what OnConsumeHandled or OnConsumeSettle does, through m.Context()
				}
				t.settled("bench", "c", 1, memphis.SettleAck, nil)
				t.OnConsumeHandled(cons, one, time.Millisecond)
			}
		})
	}
}
