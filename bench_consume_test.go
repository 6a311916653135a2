package memphis_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
)

// consumeAll runs Consume with default options on each consumer until n
// messages arrived in all, and returns how long that took.
func consumeAll(b *testing.B, consumers []*memphis.Consumer, n int) time.Duration {
	b.Helper()
	var got atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	start := time.Now()
	for _, cons := range consumers {
		err := cons.Consume(func(msgs []*memphis.Msg, _ error, _ context.Context) {
			for _, m := range msgs {
				_ = m.Ack()
			}
			if got.Add(int64(len(msgs))) >= int64(n) {
				once.Do(func() { close(done) })
			}
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("consumed %d of %d", got.Load(), n)
	}
	d := time.Since(start)
	for _, cons := range consumers {
		cons.StopConsume()
	}
	return d
}

// BenchmarkConsumeScaling shows how Consume (default options) grows with
// partitions and with members of one consumer group. Compare p4 and p16
// with p1, and members4 with members1.
func BenchmarkConsumeScaling(b *testing.B) {
	e := newBenchEnv(b)
	for _, parts := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("partitions/p%d", parts), func(b *testing.B) {
			name, subjects := e.produceStation(b, "bcp", parts)
			for _, s := range subjects {
				e.fill(b, s, b.N/parts+1)
			}
			cons, err := e.c.CreateConsumer(name, "c")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			reportRate(b, b.N, consumeAll(b, []*memphis.Consumer{cons}, b.N))
		})
	}
	for _, members := range []int{1, 4} {
		b.Run(fmt.Sprintf("group/members%d", members), func(b *testing.B) {
			name, subjects := e.produceStation(b, "bcg", 1)
			e.fill(b, subjects[0], b.N)
			var consumers []*memphis.Consumer
			for i := range members {
				cons, err := e.c.CreateConsumer(name, fmt.Sprintf("m%d", i), memphis.ConsumerGroup("g"))
				if err != nil {
					b.Fatal(err)
				}
				consumers = append(consumers, cons)
			}
			b.ReportAllocs()
			b.ResetTimer()
			reportRate(b, b.N, consumeAll(b, consumers, b.N))
		})
	}
}

// Latency run: latencyMsgs messages at latencyRate, each carrying its send
// time; the handler records how long each took to arrive.
const (
	latencyRate = 1000 // messages per second
	latencyMsgs = 3000
)

func stamp() []byte {
	p := make([]byte, 128)
	binary.LittleEndian.PutUint64(p, uint64(time.Now().UnixNano()))
	return p
}

func since(p []byte) time.Duration {
	return time.Duration(time.Now().UnixNano() - int64(binary.LittleEndian.Uint64(p)))
}

// latencies collects arrival delays and reports p50 and p99 in ms.
type latencies struct {
	mu   sync.Mutex
	d    []time.Duration
	done chan struct{}
}

func newLatencies() *latencies { return &latencies{done: make(chan struct{})} }

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.d = append(l.d, d)
	if len(l.d) == latencyMsgs {
		close(l.done)
	}
}

func (l *latencies) report(b *testing.B) {
	select {
	case <-l.done:
	case <-time.After(time.Minute):
		b.Fatalf("only %d of %d messages arrived", len(l.d), latencyMsgs)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.Sort(l.d)
	ms := func(q float64) float64 {
		return float64(l.d[int(q*float64(len(l.d)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}

// paced calls send latencyMsgs times at latencyRate.
func paced(b *testing.B, send func()) {
	t := time.NewTicker(time.Second / latencyRate)
	defer t.Stop()
	for range latencyMsgs {
		<-t.C
		send()
	}
}

// BenchmarkLatency measures produce-to-handler latency at a steady 1,000
// messages per second with default consumer options, for the SDK and for a
// raw nats.go JetStream consumer. Each run is one fixed-length pass
// (latencyMsgs messages), whatever b.N.
func BenchmarkLatency(b *testing.B) {
	e := newBenchEnv(b)
	b.Run("e2e/sdk", func(b *testing.B) {
		name := testenv.Name(b, "blat")
		p, err := e.c.CreateProducer(name, "p")
		if err != nil {
			b.Fatal(err)
		}
		cons, err := e.c.CreateConsumer(name, "c")
		if err != nil {
			b.Fatal(err)
		}
		l := newLatencies()
		err = cons.Consume(func(msgs []*memphis.Msg, _ error, _ context.Context) {
			for _, m := range msgs {
				l.add(since(m.Data()))
				_ = m.Ack()
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		defer cons.StopConsume()
		paced(b, func() {
			if err := p.Produce(stamp(), memphis.AsyncProduce()); err != nil {
				b.Fatal(err)
			}
		})
		l.report(b)
	})
	b.Run("e2e/raw", func(b *testing.B) {
		name, stream, subject := e.station(b, "blatr")
		if _, err := e.c.CreateConsumer(name, "c"); err != nil { // the same durable config
			b.Fatal(err)
		}
		cons, err := e.js.Consumer(context.Background(), stream, "c")
		if err != nil {
			b.Fatal(err)
		}
		l := newLatencies()
		cc, err := cons.Consume(func(m jetstream.Msg) {
			l.add(since(m.Data()))
			_ = m.Ack()
		})
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Stop()
		paced(b, func() {
			if _, err := e.js.PublishAsync(subject, stamp()); err != nil {
				b.Fatal(err)
			}
		})
		l.report(b)
	})
}
