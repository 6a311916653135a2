package memphis_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
)

// The benchmarks run the SDK and raw nats.go JetStream side by side against
// the same broker in the same run; compare the msgs/s metrics of each pair
// (sdk/x against raw/x). Each side gets its own station with the same
// configuration, so neither reads the other's messages.

var benchPayload = make([]byte, 128)

type benchEnv struct {
	b  *testenv.Broker
	c  *memphis.Conn
	js jetstream.JetStream
}

func newBenchEnv(tb testing.TB) *benchEnv {
	b := testenv.Start(tb)
	c := connect(tb, b)
	js, err := jetstream.New(b.NATS(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return &benchEnv{b: b, c: c, js: js}
}

// station creates a station and returns its partition-1 stream and subject.
func (e *benchEnv) station(tb testing.TB, prefix string, opts ...memphis.StationOpt) (name, stream, subject string) {
	name = testenv.Name(tb, prefix)
	if _, err := e.c.CreateStation(name, opts...); err != nil {
		tb.Fatal(err)
	}
	stream = name + "$1"
	return name, stream, stream + ".final"
}

func reportRate(b *testing.B, n int, d time.Duration) {
	b.ReportMetric(float64(n)/d.Seconds(), "msgs/s")
}

func BenchmarkProduce(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	b.Run("sync/sdk", func(b *testing.B) {
		name, _, _ := e.station(b, "bps")
		p, err := e.c.CreateProducer(name, "p")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			if err := p.Produce(benchPayload); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, b.N, time.Since(start))
	})
	b.Run("sync/raw", func(b *testing.B) {
		_, _, subject := e.station(b, "bpr")
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			if _, err := e.js.Publish(ctx, subject, benchPayload); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, b.N, time.Since(start))
	})
	b.Run("async/sdk", func(b *testing.B) {
		name, _, _ := e.station(b, "bas")
		p, err := e.c.CreateProducer(name, "p")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			if err := p.Produce(benchPayload, memphis.AsyncProduce()); err != nil {
				b.Fatal(err)
			}
		}
		if err := p.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		reportRate(b, b.N, time.Since(start))
	})
	b.Run("async/raw", func(b *testing.B) {
		_, _, subject := e.station(b, "bar")
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			if _, err := e.js.PublishAsync(subject, benchPayload); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-e.js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("raw async publishes never completed")
		}
		reportRate(b, b.N, time.Since(start))
	})
}

// fill produces n messages to a station as fast as possible.
func (e *benchEnv) fill(b *testing.B, subject string, n int) {
	b.Helper()
	for i := range n {
		if _, err := e.js.PublishAsync(subject, benchPayload); err != nil {
			b.Fatal(err)
		}
		if i%4096 == 4095 {
			<-e.js.PublishAsyncComplete()
		}
	}
	<-e.js.PublishAsyncComplete()
}

func BenchmarkConsume(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	b.Run("consume/sdk", func(b *testing.B) {
		name, _, subject := e.station(b, "bcs")
		cons, err := e.c.CreateConsumer(name, "c") // default options
		if err != nil {
			b.Fatal(err)
		}
		e.fill(b, subject, b.N)
		var got atomic.Int64
		done := make(chan struct{})
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
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
		reportRate(b, b.N, time.Since(start))
		b.StopTimer()
		cons.StopConsume()
	})
	b.Run("consume/raw", func(b *testing.B) {
		name, stream, subject := e.station(b, "bcr")
		if _, err := e.c.CreateConsumer(name, "c"); err != nil { // the same durable config
			b.Fatal(err)
		}
		e.fill(b, subject, b.N)
		cons, err := e.js.Consumer(ctx, stream, "c")
		if err != nil {
			b.Fatal(err)
		}
		var got atomic.Int64
		done := make(chan struct{})
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		cc, err := cons.Consume(func(m jetstream.Msg) {
			_ = m.Ack()
			if got.Add(1) == int64(b.N) {
				close(done)
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		<-done
		reportRate(b, b.N, time.Since(start))
		b.StopTimer()
		cc.Stop()
		<-cc.Closed()
	})
	for _, batch := range []int{100, 1000} {
		b.Run("fetch"+strconv.Itoa(batch)+"/sdk", func(b *testing.B) {
			name, _, subject := e.station(b, "bfs")
			cons, err := e.c.CreateConsumer(name, "c", memphis.BatchMaxWaitTime(time.Second))
			if err != nil {
				b.Fatal(err)
			}
			e.fill(b, subject, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for got := 0; got < b.N; {
				msgs, err := cons.Fetch(min(batch, b.N-got), false)
				if err != nil {
					b.Fatal(err)
				}
				for _, m := range msgs {
					_ = m.Ack()
				}
				got += len(msgs)
			}
			reportRate(b, b.N, time.Since(start))
		})
		b.Run("fetch"+strconv.Itoa(batch)+"/raw", func(b *testing.B) {
			name, stream, subject := e.station(b, "bfr")
			if _, err := e.c.CreateConsumer(name, "c"); err != nil {
				b.Fatal(err)
			}
			e.fill(b, subject, b.N)
			cons, err := e.js.Consumer(ctx, stream, "c")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for got := 0; got < b.N; {
				batchRes, err := cons.Fetch(min(batch, b.N-got), jetstream.FetchMaxWait(time.Second))
				if err != nil {
					b.Fatal(err)
				}
				for m := range batchRes.Messages() {
					_ = m.Ack()
					got++
				}
				if err := batchRes.Error(); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b, b.N, time.Since(start))
		})
	}
}
