package otelmemphis_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/memphistest"
	"github.com/memphisdev/memphis.go/otelmemphis"
)

// The benchmarks measure what the hooks cost per message, three ways side
// by side: none (no hooks: the SDK alone), noop (Telemetry with no-op
// tracer and meter providers) and sdk (the OpenTelemetry SDK: every span
// sampled and batched to an exporter that drops them, every instrument
// aggregated by a manual reader). Compare noop and sdk with none:
//
//	cd otelmemphis && go test -run '^$' -bench . -benchmem -count 5

// mode is one way to hook a connection.
type mode struct {
	name  string
	hooks func(b *testing.B) []memphis.Option
}

var modes = []mode{
	{"none", func(*testing.B) []memphis.Option { return nil }},
	{"noop", func(b *testing.B) []memphis.Option {
		tel := otelmemphis.New(otelmemphis.TracerProvider(tracenoop.NewTracerProvider()),
			otelmemphis.MeterProvider(metricnoop.NewMeterProvider()))
		b.Cleanup(func() { _ = tel.Close() })
		return []memphis.Option{memphis.Hooks(tel)}
	}},
	{"sdk", func(b *testing.B) []memphis.Option {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		tel := otelmemphis.New(otelmemphis.TracerProvider(tp), otelmemphis.MeterProvider(mp))
		b.Cleanup(func() {
			_ = tel.Close()
			_ = tp.Shutdown(context.Background())
			_ = mp.Shutdown(context.Background())
		})
		return []memphis.Option{memphis.Hooks(tel)}
	}},
}

func benchConn(b *testing.B, srv *memphistest.Server, opts ...memphis.Option) *memphis.Conn {
	b.Helper()
	c, err := memphis.Connect(srv.Host(), srv.Username(),
		append([]memphis.Option{memphis.Port(srv.Port()), memphis.Password(srv.Password())}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c
}

// meter reports the rate and the CPU time per message of the whole
// process; the CPU figure moves less than the rate on a busy machine.
type meter struct {
	start time.Time
	cpu   time.Duration
	ok    bool
}

func startMeter(b *testing.B) *meter {
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	m := &meter{start: time.Now()}
	m.cpu, m.ok = processCPU()
	return m
}

func (m *meter) stop(b *testing.B) {
	b.ReportMetric(float64(b.N)/time.Since(m.start).Seconds(), "msgs/s")
	if cpu, ok := processCPU(); ok && m.ok {
		b.ReportMetric(float64(cpu-m.cpu)/float64(b.N), "cpu-ns/op")
	}
}

var payload = make([]byte, 128)

func BenchmarkProduce(b *testing.B) {
	srv := memphistest.NewServer(b, memphistest.WithDirectPublish())
	setup := benchConn(b, srv)
	ctx := context.Background()
	n := 0
	station := func(b *testing.B) string {
		n++
		name := "bench-produce-" + string(rune('a'+n%26)) + time.Now().Format("150405.000000")
		s, err := setup.CreateStation(name, memphis.StorageTypeOpt(memphis.Memory))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Destroy() })
		return name
	}
	for _, m := range modes {
		b.Run("sync/"+m.name, func(b *testing.B) {
			p, err := benchConn(b, srv, m.hooks(b)...).CreateProducer(station(b), "p")
			if err != nil {
				b.Fatal(err)
			}
			mt := startMeter(b)
			for range b.N {
				if err := p.Produce(payload); err != nil {
					b.Fatal(err)
				}
			}
			mt.stop(b)
		})
	}
	for _, m := range modes {
		b.Run("async/"+m.name, func(b *testing.B) {
			p, err := benchConn(b, srv, m.hooks(b)...).CreateProducer(station(b), "p")
			if err != nil {
				b.Fatal(err)
			}
			mt := startMeter(b)
			for range b.N {
				if err := p.Produce(payload, memphis.AsyncProduce()); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			mt.stop(b)
		})
	}
}

func BenchmarkConsume(b *testing.B) {
	srv := memphistest.NewServer(b, memphistest.WithDirectPublish())
	setup := benchConn(b, srv)
	ctx := context.Background()
	for i, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			name := "bench-consume-" + m.name + time.Now().Format("150405.000000")
			s, err := setup.CreateStation(name, memphis.StorageTypeOpt(memphis.Memory))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Destroy() })
			p, err := setup.CreateProducer(name, "p")
			if err != nil {
				b.Fatal(err)
			}
			for range b.N {
				if err := p.Produce(payload, memphis.AsyncProduce()); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			cons, err := benchConn(b, srv, m.hooks(b)...).CreateConsumer(name, "c")
			if err != nil {
				b.Fatal(err)
			}
			var got atomic.Int64
			done := make(chan struct{})
			mt := startMeter(b)
			err = cons.Consume(func(msgs []*memphis.Msg, _ error, _ context.Context) {
				for _, m := range msgs {
					_ = m.Ack()
				}
				if got.Add(int64(len(msgs))) == int64(b.N) {
					close(done)
				}
			})
			if err != nil {
				b.Fatal(err)
			}
			<-done
			mt.stop(b)
			b.StopTimer()
			cons.StopConsume()
			_ = i
		})
	}
}
