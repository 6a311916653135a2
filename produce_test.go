package memphis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
)

func TestProduceAndConsumeRoundTrip(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "rt")
	p, err := c.CreateProducer(station, "Producer-A") // creates the station
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "producer-a" {
		t.Errorf("producer name = %q", p.Name)
	}
	var hdrs memphis.Headers
	if err := hdrs.Add("trace", "t-1"); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	produceN(t, p, 20, "m", memphis.MsgHeaders(hdrs))
	cons := mustConsumer(t, c, station, "c1", memphis.BatchSize(7))
	col := newCollector()
	if err := cons.Consume(col.handler); err != nil {
		t.Fatal(err)
	}
	msgs := col.wait(t, 20, 10*time.Second)
	cons.StopConsume()
	for i, m := range msgs[:20] {
		if got := string(m.Data()); got != fmt.Sprintf("m%d", i) {
			t.Errorf("message %d = %q (order within a partition must hold)", i, got)
		}
		h := m.GetHeaders()
		if h["trace"] != "t-1" || len(h) != 1 {
			t.Errorf("headers = %v, want only the user's", h)
		}
		seq, err := m.GetSequenceNumber()
		if err != nil || seq != uint64(i+1) {
			t.Errorf("sequence = %d, %v, want %d", seq, err, i+1)
		}
		sent, err := m.GetTimeSent()
		if err != nil || sent.Before(before) || sent.After(time.Now().Add(time.Second)) {
			t.Errorf("time sent = %v, %v", sent, err)
		}
		if n, err := m.DeliveryCount(); err != nil || n != 1 {
			t.Errorf("delivery count = %d, %v, want 1", n, err)
		}
	}
	if col.calls > 20 {
		t.Errorf("%d handler calls for 20 messages", col.calls)
	}
	if err := p.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := p.Produce([]byte("late")); !errors.Is(err, memphis.ErrProducerDestroyed) {
		t.Errorf("produce after Destroy: %v, want ErrProducerDestroyed", err)
	}
	if err := cons.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := cons.Consume(col.handler); !errors.Is(err, memphis.ErrConsumerDestroyed) {
		t.Errorf("consume after Destroy: %v, want ErrConsumerDestroyed", err)
	}
}

func TestFetchBatches(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "fetch")
	cons := mustConsumer(t, c, station, "f", memphis.BatchMaxWaitTime(300*time.Millisecond))
	start := time.Now()
	msgs, err := cons.Fetch(10, false)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("empty station: %d messages, %v", len(msgs), err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Errorf("an empty fetch took %v, want about BatchMaxWaitTime", d)
	}
	p := mustProducer(t, c, station, "p")
	produceN(t, p, 25, "f")
	got := fetchAll(t, cons, 25, 10*time.Second)
	for i, m := range got {
		if string(m.Data()) != fmt.Sprintf("f%d", i) {
			t.Fatalf("message %d = %q", i, m.Data())
		}
	}
	if _, err := cons.Fetch(0, false); !errors.Is(err, memphis.ErrInvalidOption) {
		t.Errorf("batch 0: %v", err)
	}
	if _, err := cons.Fetch(memphis.MaxBatchSize+1, false); !errors.Is(err, memphis.ErrInvalidOption) {
		t.Errorf("batch 5001: %v", err)
	}
}

func TestFetchWithPrefetch(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "pre")
	p := mustProducer(t, c, station, "p")
	produceN(t, p, 20, "x")
	cons := mustConsumer(t, c, station, "c", memphis.BatchMaxWaitTime(200*time.Millisecond))
	first, err := cons.Fetch(10, true)
	if err != nil || len(first) != 10 {
		t.Fatalf("first batch: %d, %v", len(first), err)
	}
	second, err := cons.Fetch(10, false)
	if err != nil || len(second) != 10 {
		t.Fatalf("prefetched batch: %d, %v", len(second), err)
	}
	if string(second[0].Data()) != "x10" || string(second[9].Data()) != "x19" {
		t.Errorf("prefetched batch = %q..%q", second[0].Data(), second[9].Data())
	}
	for _, m := range append(first, second...) {
		_ = m.Ack()
	}
}

func TestConnFetchMessagesAndProduceUseCaches(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "cache")
	for i := range 5 {
		if err := c.Produce(station, "cached", []byte(fmt.Sprint(i)), []memphis.ProducerOpt{}, []memphis.ProduceOpt{}); err != nil {
			t.Fatal(err)
		}
	}
	var got []*memphis.Msg
	ctx := testCtx(t, 10*time.Second)
	for len(got) < 5 {
		msgs, err := c.FetchMessagesContext(ctx, station, "reader",
			memphis.FetchBatchSize(5), memphis.FetchBatchMaxWaitTime(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			_ = m.Ack()
		}
		got = append(got, msgs...)
	}
	if string(got[4].Data()) != "4" {
		t.Errorf("last = %q", got[4].Data())
	}
}

// The caches behind Conn.Produce and Conn.FetchMessages tell apart names
// that would read the same joined with "_": station "a" with producer
// "b_c", and station "a_b" with producer "c".
func TestConnCachesKeepStationsApart(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	short := testenv.Name(t, "k")
	long := short + "_x"
	if err := c.Produce(short, "x_p", []byte("to "+short), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Produce(long, "p", []byte("to "+long), nil, nil); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 10*time.Second)
	for _, st := range []struct{ station, reader string }{{short, "x_r"}, {long, "r"}} {
		msgs, err := c.FetchMessagesContext(ctx, st.station, st.reader,
			memphis.FetchBatchSize(10), memphis.FetchBatchMaxWaitTime(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 1 || string(msgs[0].Data()) != "to "+st.station {
			var got []string
			for _, m := range msgs {
				got = append(got, string(m.Data()))
			}
			t.Errorf("station %s holds %q, want only %q", st.station, got, "to "+st.station)
		}
		for _, m := range msgs {
			_ = m.Ack()
		}
	}
}

func TestDestroyedProducerIsReplacedInCache(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "recreate")
	p := mustProducer(t, c, station, "same")
	if err := p.Destroy(); err != nil {
		t.Fatal(err)
	}
	p2 := mustProducer(t, c, station, "same")
	if err := p2.Produce([]byte("works")); err != nil {
		t.Fatalf("a new producer of a destroyed one's name: %v", err)
	}
	if err := c.Produce(station, "same", []byte("via cache"), nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestAsyncProduceFlushAndErrors(t *testing.T) {
	b := testenv.Start(t)
	var mu sync.Mutex
	var asyncErrs []error
	c := connect(t, b)
	station := testenv.Name(t, "async")
	s, err := c.CreateStation(station)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.CreateProducer("p", memphis.ProducerErrorHandler(func(_ *memphis.Producer, err error) {
		mu.Lock()
		asyncErrs = append(asyncErrs, err)
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	for i := range n {
		if err := p.Produce([]byte(fmt.Sprint(i)), memphis.AsyncProduce()); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(testCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	cons, err := s.CreateConsumer("c", memphis.BatchSize(100), memphis.BatchMaxWaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if got := fetchAll(t, cons, n, 10*time.Second); len(got) != n {
		t.Fatalf("consumed %d, want %d", len(got), n)
	}
	mu.Lock()
	if len(asyncErrs) != 0 {
		t.Fatalf("unexpected async errors: %v", asyncErrs)
	}
	mu.Unlock()
	// With the station gone, async produces fail, and each failure is reported.
	if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := p.Produce([]byte("lost?"), memphis.AsyncProduce(), memphis.AckWaitSec(2)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(testCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asyncErrs) != 3 {
		t.Fatalf("%d async errors reported, want 3: %v", len(asyncErrs), asyncErrs)
	}
	for _, err := range asyncErrs {
		if !errors.Is(err, memphis.ErrStationNotFound) && !errors.Is(err, memphis.ErrTimeout) {
			t.Errorf("async error %v should say the station is gone", err)
		}
	}
}

func TestProduceAsyncCallsDoneExactlyOnce(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	p := mustProducer(t, c, testenv.Name(t, "promise"), "p")
	const n = 300
	var calls atomic.Int64
	var running atomic.Int32
	seqs := make(map[uint64]bool)
	var mu sync.Mutex
	for i := range n {
		err := p.ProduceAsync(context.Background(), []byte(fmt.Sprint(i)), func(ack memphis.PubAck, err error) {
			if running.Add(1) != 1 {
				t.Error("done callbacks ran concurrently")
			}
			defer running.Add(-1)
			calls.Add(1)
			if err != nil {
				t.Errorf("ack: %v", err)
				return
			}
			mu.Lock()
			seqs[ack.Sequence] = true
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(testCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != n || len(seqs) != n {
		t.Fatalf("done called %d times with %d distinct sequences, want %d", calls.Load(), len(seqs), n)
	}
}

// TestMsgIdDeduplicates: "a second message with the same id inside the
// station's idempotency window is dropped", on one partition and on three,
// where the id also picks the partition, so the retry meets the first try.
func TestMsgIdDeduplicates(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	for _, parts := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d partitions", parts), func(t *testing.T) {
			station := testenv.Name(t, "dedup")
			s, err := c.CreateStation(station, memphis.PartitionsNumber(parts))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Destroy() })
			p, err := s.CreateProducer("p")
			if err != nil {
				t.Fatal(err)
			}
			partitions := make([]int, parts)
			for i := range partitions {
				partitions[i] = i + 1
			}
			// Ids enough to reach every partition; each produced twice,
			// async with a callback then sync, as a retry would be.
			const ids = 6
			for i := range ids {
				id := fmt.Sprintf("order-%d", i)
				acks := make(chan memphis.PubAck, 2)
				done := func(a memphis.PubAck, err error) {
					if err != nil {
						t.Errorf("%s: %v", id, err)
					}
					acks <- a
				}
				for range 2 {
					if err := p.ProduceAsync(context.Background(), []byte(id), done, memphis.MsgId(id)); err != nil {
						t.Fatal(err)
					}
					if err := p.Flush(testCtx(t, 10*time.Second)); err != nil {
						t.Fatal(err)
					}
				}
				first, second := <-acks, <-acks
				if first.Duplicate || !second.Duplicate || first.Sequence != second.Sequence || first.Partition != second.Partition {
					t.Fatalf("%s: acks %+v then %+v, want the second a duplicate of the first", id, first, second)
				}
				if want := memphis.PartitionForKey(id, partitions); parts > 1 && first.Partition != want {
					t.Errorf("%s went to partition %d, want %d (PartitionForKey of the id)", id, first.Partition, want)
				}
				// A plain retry, the way the README shows it.
				if err := p.Produce([]byte(id), memphis.MsgId(id)); err != nil {
					t.Fatal(err)
				}
			}
			// An explicit partition still wins over the id.
			if err := p.Produce([]byte("pinned"), memphis.MsgId("order-pinned"), memphis.ProducerPartitionNumber(parts)); err != nil {
				t.Fatal(err)
			}
			cons := mustConsumer(t, c, station, "c", memphis.BatchMaxWaitTime(300*time.Millisecond))
			got := fetchAll(t, cons, ids+1, 20*time.Second)
			stored := map[string]int{}
			for _, m := range got {
				stored[string(m.Data())]++
				// The consumer sees the id as msg-id, as in 1.x, and nothing
				// else of the SDK's.
				id := string(m.Data())
				if id == "pinned" {
					id = "order-pinned"
				}
				if h := m.GetHeaders(); len(h) != 1 || h["msg-id"] != id {
					t.Errorf("%s: headers %v, want only msg-id %s", m.Data(), h, id)
				}
				if string(m.Data()) == "pinned" && m.Partition() != parts {
					t.Errorf("pinned message on partition %d, want %d", m.Partition(), parts)
				}
			}
			for i := range ids {
				if id := fmt.Sprintf("order-%d", i); stored[id] != 1 {
					t.Errorf("%s stored %d times, want once", id, stored[id])
				}
			}
			// Nothing more on any partition: every retry was dropped.
			for _, part := range partitions {
				more, err := cons.Fetch(10, false, memphis.ConsumerPartitionNumber(part))
				if err != nil {
					t.Fatal(err)
				}
				if len(more) != 0 {
					t.Errorf("partition %d holds %d more messages: a retry was stored", part, len(more))
				}
			}
		})
	}
}

func TestSharedHeadersAcrossConcurrentProduces(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	p := mustProducer(t, c, testenv.Name(t, "shared"), "p")
	var h memphis.Headers
	_ = h.Add("k", "v")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if err := p.Produce([]byte("x"), memphis.MsgHeaders(h), memphis.MsgId(fmt.Sprintf("%d-%d", g, i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if h.Len() != 1 || h.Get("k") != "v" {
		t.Fatalf("the SDK wrote into the caller's headers: len %d", h.Len())
	}
}

func TestProduceRejectsBadInputBeforeSending(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	p := mustProducer(t, c, testenv.Name(t, "bad"), "p")
	for name, tc := range map[string]struct {
		msg  any
		opts []memphis.ProduceOpt
		want error
	}{
		"unsupported type":  {42, nil, memphis.ErrInvalidMessage},
		"zero ack wait":     {[]byte("x"), []memphis.ProduceOpt{memphis.AckWaitSec(0)}, memphis.ErrInvalidOption},
		"key and number":    {[]byte("x"), []memphis.ProduceOpt{memphis.ProducerPartitionKey("k"), memphis.ProducerPartitionNumber(1)}, memphis.ErrInvalidOption},
		"missing partition": {[]byte("x"), []memphis.ProduceOpt{memphis.ProducerPartitionNumber(2)}, memphis.ErrPartitionNotFound},
		"over max payload":  {make([]byte, 9<<20), nil, memphis.ErrMessageTooLarge},
		// The payload alone fits the broker's 8 MiB; its headers do not.
		"headers over max payload": {make([]byte, 8<<20-1024), []memphis.ProduceOpt{memphis.MsgHeaders(bigHeaders(t, 4096))}, memphis.ErrMessageTooLarge},
	} {
		t.Run(name, func(t *testing.T) {
			if err := p.Produce(tc.msg, tc.opts...); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := c.CreateProducer("ok", "bad name!"); !errors.Is(err, memphis.ErrInvalidName) {
		t.Errorf("bad producer name: %v", err)
	}
}

// bigHeaders is one header whose value is n bytes.
func bigHeaders(t *testing.T, n int) memphis.Headers {
	t.Helper()
	var h memphis.Headers
	h.New()
	if err := h.Add("big", strings.Repeat("h", n)); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestMultiStationProduce(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	a, z := testenv.Name(t, "ma"), testenv.Name(t, "mz")
	p, err := c.CreateMultiStationProducer([]string{a, z}, "fan")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Stations(); len(got) != 2 {
		t.Fatalf("stations = %v", got)
	}
	if err := p.Produce([]byte("both")); err != nil {
		t.Fatal(err)
	}
	if err := c.ProduceToStations(context.Background(), []string{a, z}, "fan2", []byte("again"), nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{a, z} {
		cons, err := c.CreateConsumer(s, "c", memphis.BatchMaxWaitTime(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		got := fetchAll(t, cons, 2, 10*time.Second)
		if string(got[0].Data()) != "both" || string(got[1].Data()) != "again" {
			t.Errorf("%s got %q, %q", s, got[0].Data(), got[1].Data())
		}
	}
	if err := p.Destroy(); err != nil {
		t.Fatal(err)
	}
}

func TestProduceContextCancelled(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	p := mustProducer(t, c, testenv.Name(t, "ctx"), "p")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.ProduceContext(ctx, []byte("x"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled inside", err)
	}
	if !strings.HasPrefix(err.Error(), "memphis: produce ") {
		t.Errorf("message %q", err)
	}
}

// A PubAck names the station as the producer does, whether the broker
// answered or not: not by the internal name the broker keeps its streams
// under, where a dot becomes '#'.
func TestPubAckNamesTheStation(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "ack.named")
	p := mustProducer(t, c, station, "p")
	acks := make(chan memphis.PubAck, 1)
	done := func(ack memphis.PubAck, _ error) { acks <- ack }
	if err := p.ProduceAsync(context.Background(), []byte("stored"), done); err != nil {
		t.Fatal(err)
	}
	if ack := within(t, acks, 10*time.Second, "the acknowledgement"); ack.Station != station || ack.Partition != 1 {
		t.Errorf("stored: PubAck names station %q partition %d, want %q partition 1", ack.Station, ack.Partition, station)
	}
	// Never answered: the janitor gives up on it after AckWaitSec.
	hole, _ := blackhole(t, b, c)
	if err := hole.ProduceAsync(context.Background(), []byte("lost"), done, memphis.AckWaitSec(1)); err != nil {
		t.Fatal(err)
	}
	if ack := within(t, acks, 10*time.Second, "the timeout"); ack.Station != hole.Stations()[0] || ack.Partition != 1 {
		t.Errorf("unanswered: PubAck names station %q partition %d, want %q partition 1", ack.Station, ack.Partition, hole.Stations()[0])
	}
}
