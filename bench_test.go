package memphis_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
	"github.com/memphisdev/memphis.go/memphistest"
)

// The benchmarks run the SDK and raw nats.go JetStream side by side against
// the same broker in the same run, as pairs of sub-benchmarks named .../sdk
// and .../raw. Each side gets its own station with the same configuration,
// so neither reads the other's messages. internal/benchtable turns the
// output into one table of SDK/raw ratios:
//
//	go test -run '^$' -bench 'BenchmarkProduce$|BenchmarkConsume$' -benchmem -count=5 . | go run ./internal/benchtable
//
// allocs/op and B/op count the in-process broker's allocations too, which
// are about the same for both sides of a pair (the headers the SDK must send
// cost the broker a few more), so the difference is mostly the client's.

var benchPayload = make([]byte, 128)

type benchEnv struct {
	b  *testenv.Broker
	c  *memphis.Conn
	js jetstream.JetStream
}

func newBenchEnv(tb testing.TB) *benchEnv {
	b := benchBroker(tb)
	c := connect(tb, b)
	js, err := jetstream.New(b.NATS(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return &benchEnv{b: b, c: c, js: js}
}

// benchBroker is the broker at MEMPHIS_HOST, or else an in-process one
// whose publishes go straight to JetStream: the raw side of every pair is
// bare JetStream, the physical limit, not JetStream behind the in-process
// broker's msg-id ingest, which both sides would pay for.
func benchBroker(tb testing.TB) *testenv.Broker {
	if os.Getenv("MEMPHIS_HOST") != "" {
		return testenv.Start(tb)
	}
	return testenv.Start(tb, memphistest.WithDirectPublish())
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

// meter measures one produce benchmark run: its rate, and the CPU time the
// whole process (client and in-process broker) spent per message. The CPU
// figure moves much less than the rate when other work shares the machine,
// and the broker's share is the same for the SDK and raw sides.
type meter struct {
	start time.Time
	cpu   time.Duration
	ok    bool
}

// startMeter collects the garbage earlier runs left (so that no run pays
// for another's), resets the benchmark timer and starts measuring.
func startMeter(b *testing.B) *meter {
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	m := &meter{start: time.Now()}
	m.cpu, m.ok = processCPU()
	return m
}

func (m *meter) stop(b *testing.B) {
	reportRate(b, b.N, time.Since(m.start))
	if cpu, ok := processCPU(); ok && m.ok {
		b.ReportMetric(float64(cpu-m.cpu)/float64(b.N), "cpu-ns/op")
	}
}

// Produce benchmarks: every combination of mode, payload size and partition
// count runs as a pair of sub-benchmarks, <mode>/<size>/p<partitions>/sdk
// and .../raw, so that `go run ./internal/benchtable` can put each SDK
// result next to raw nats.go JetStream's. Async runs are measured through
// completion: the clock stops when every acknowledgement has arrived.
var (
	benchSizes      = []int{128, 4 << 10, 64 << 10}
	benchPartitions = []int{1, 4, 16}
)

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KB"
	}
	return strconv.Itoa(n) + "B"
}

// produceStation creates a fresh station with parts partitions for one
// benchmark run and destroys it when the run ends, so that the broker's
// storage does not grow from run to run. It returns the station's name and
// its partitions' produce subjects (for the raw side).
//
// The station stores in memory (capped at 128 MB a partition): with disk
// storage the broker's file writes on a small machine vary run to run by
// more than the difference being measured, and they cost the SDK and raw
// sides the same.
func (e *benchEnv) produceStation(b *testing.B, prefix string, parts int) (string, []string) {
	b.Helper()
	name := testenv.Name(b, prefix)
	s, err := e.c.CreateStation(name, memphis.PartitionsNumber(parts), memphis.StorageTypeOpt(memphis.Memory),
		memphis.RetentionTypeOpt(memphis.Bytes), memphis.RetentionVal(128<<20))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Destroy() })
	subjects := make([]string, parts)
	for i := range subjects {
		subjects[i] = name + "$" + strconv.Itoa(i+1) + ".final"
	}
	return name, subjects
}

func BenchmarkProduce(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	for _, size := range benchSizes {
		payload := make([]byte, size)
		for _, parts := range benchPartitions {
			suffix := "/" + sizeName(size) + "/p" + strconv.Itoa(parts)
			b.Run("sync"+suffix+"/sdk", func(b *testing.B) {
				name, _ := e.produceStation(b, "bps", parts)
				p, err := e.c.CreateProducer(name, "p")
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(size))
				m := startMeter(b)
				for range b.N {
					if err := p.Produce(payload); err != nil {
						b.Fatal(err)
					}
				}
				m.stop(b)
			})
			b.Run("sync"+suffix+"/raw", func(b *testing.B) {
				_, subjects := e.produceStation(b, "bpr", parts)
				b.SetBytes(int64(size))
				m := startMeter(b)
				for i := range b.N {
					if _, err := e.js.Publish(ctx, subjects[i%parts], payload); err != nil {
						b.Fatal(err)
					}
				}
				m.stop(b)
			})
			b.Run("async"+suffix+"/sdk", func(b *testing.B) {
				name, _ := e.produceStation(b, "bas", parts)
				p, err := e.c.CreateProducer(name, "p")
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(size))
				m := startMeter(b)
				for range b.N {
					if err := p.Produce(payload, memphis.AsyncProduce()); err != nil {
						b.Fatal(err)
					}
				}
				if err := p.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				m.stop(b)
			})
			b.Run("async"+suffix+"/raw", func(b *testing.B) {
				_, subjects := e.produceStation(b, "bar", parts)
				b.SetBytes(int64(size))
				m := startMeter(b)
				for i := range b.N {
					if _, err := e.js.PublishAsync(subjects[i%parts], payload); err != nil {
						b.Fatal(err)
					}
				}
				e.waitAsync(b)
				m.stop(b)
			})
		}
	}
	// ProduceAsync with a done callback per message against PublishAsync
	// with a look at every future's outcome.
	b.Run("asyncdone/128B/p1/sdk", func(b *testing.B) {
		name, _ := e.produceStation(b, "bds", 1)
		p, err := e.c.CreateProducer(name, "p")
		if err != nil {
			b.Fatal(err)
		}
		var failed atomic.Int64
		done := func(_ memphis.PubAck, err error) {
			if err != nil {
				failed.Add(1)
			}
		}
		b.SetBytes(128)
		m := startMeter(b)
		for range b.N {
			if err := p.ProduceAsync(ctx, benchPayload, done); err != nil {
				b.Fatal(err)
			}
		}
		if err := p.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		m.stop(b)
		if n := failed.Load(); n > 0 {
			b.Fatalf("%d produces failed", n)
		}
	})
	b.Run("asyncdone/128B/p1/raw", func(b *testing.B) {
		_, subjects := e.produceStation(b, "bdr", 1)
		futures := make([]jetstream.PubAckFuture, 0, 4096)
		failed := 0
		check := func() {
			for _, f := range futures {
				select {
				case <-f.Ok():
				case <-f.Err():
					failed++
				}
			}
			futures = futures[:0]
		}
		b.SetBytes(128)
		m := startMeter(b)
		for range b.N {
			f, err := e.js.PublishAsync(subjects[0], benchPayload)
			if err != nil {
				b.Fatal(err)
			}
			if futures = append(futures, f); len(futures) == cap(futures) {
				check()
			}
		}
		check()
		m.stop(b)
		if failed > 0 {
			b.Fatalf("%d publishes failed", failed)
		}
	})
}

// waitAsync waits until every raw async publish has been acknowledged.
func (e *benchEnv) waitAsync(b *testing.B) {
	b.Helper()
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("raw async publishes never completed")
	}
}

// fill produces n messages to a station as fast as possible. It waits for
// the acknowledgements every fillWindow publishes: jetstream allows 4000
// outstanding by default and fails a publish beyond that once it has
// stalled for 200ms, which a loaded machine reaches.
func (e *benchEnv) fill(b *testing.B, subject string, n int) {
	b.Helper()
	const fillWindow = 1024
	for i := range n {
		if _, err := e.js.PublishAsync(subject, benchPayload); err != nil {
			b.Fatal(err)
		}
		if i%fillWindow == fillWindow-1 {
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
		m := startMeter(b)
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
		m.stop(b)
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
		m := startMeter(b)
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
		m.stop(b)
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
			meter := startMeter(b)
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
			meter.stop(b)
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
			meter := startMeter(b)
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
			meter.stop(b)
		})
	}
}
