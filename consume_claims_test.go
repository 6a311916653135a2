package memphis_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
	"github.com/memphisdev/memphis.go/internal/wire"
)

// durableState is what JetStream says of a group's durable: how many
// messages await delivery (Pending) and how many were delivered and await
// an ack (AckPending).
type durableState struct {
	Pending    int `json:"num_pending"`
	AckPending int `json:"num_ack_pending"`
}

// durableInfo asks JetStream about a group's durable on a one-partition
// station.
func durableInfo(t *testing.T, b *testenv.Broker, station, group string) durableState {
	t.Helper()
	subject := "$JS.API.CONSUMER.INFO." + wire.StreamName(wire.InternalName(station), 1) + "." + wire.InternalName(group)
	reply, err := b.NATS(t).Request(subject, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info durableState
	if err := json.Unmarshal(reply.Data, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// ackPending asks JetStream how many messages of a group's durable on a
// one-partition station were delivered and await an ack.
func ackPending(t *testing.T, b *testenv.Broker, station, group string) int {
	t.Helper()
	return durableInfo(t, b, station, group).AckPending
}

// awaitDelivered waits until the broker has delivered every message of the
// one-partition station to the group: the broker's state can only be
// polled.
func awaitDelivered(t *testing.T, b *testenv.Broker, station, group string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for n := durableInfo(t, b, station, group).Pending; n > 0; n = durableInfo(t, b, station, group).Pending {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still undelivered to %s after %v", n, group, d)
		}
		time.Sleep(20 * time.Millisecond) // the broker's state can only be polled
	}
}

// TestNextMessagesAreOnTheirWay: "while your handler runs, the next
// messages are already on their way": with the handler busy with its first
// batch of 5, the broker has already delivered more than those 5.
func TestNextMessagesAreOnTheirWay(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "ahead")
	produceN(t, mustProducer(t, c, station, "p"), 40, "a")
	cons := mustConsumer(t, c, station, "c", memphis.BatchSize(5))
	inHandler, release := make(chan struct{}), make(chan struct{})
	first := true
	if err := cons.Consume(func(msgs []*memphis.Msg, _ error, _ context.Context) {
		if first {
			first = false
			close(inHandler)
			<-release
		}
		for _, m := range msgs {
			_ = m.Ack()
		}
	}); err != nil {
		t.Fatal(err)
	}
	defer cons.StopConsume()
	defer close(release)
	within(t, inHandler, 10*time.Second, "the first batch")
	// Deliveries are asynchronous: wait for the broker to show them, with
	// the handler still holding its first batch.
	deadline := time.Now().Add(10 * time.Second)
	for n := ackPending(t, b, station, "c"); n <= 5; n = ackPending(t, b, station, "c") {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages delivered while the handler held its first batch of 5, want more", n)
		}
		time.Sleep(20 * time.Millisecond) // the broker's state can only be polled
	}
}

// TestBreakingOutOfMessagesReturnsBufferedMessages: "breaking out returns
// buffered messages to the group" at once, not after MaxAckTime (30 s
// here): the group's next reader gets them within seconds.
func TestBreakingOutOfMessagesReturnsBufferedMessages(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "brk")
	produceN(t, mustProducer(t, c, station, "p"), 30, "m")
	cons := mustConsumer(t, c, station, "c", memphis.MaxAckTime(30*time.Second))
	n := 0
	for m, err := range cons.Messages(testCtx(t, 10*time.Second)) {
		if err != nil {
			t.Fatal(err)
		}
		_ = m.Ack()
		if n++; n == 5 {
			break
		}
	}
	// Returned with a nak, they wait for the next pull, not for MaxAckTime.
	col := newCollector()
	if err := cons.Consume(col.handler); err != nil {
		t.Fatal(err)
	}
	defer cons.StopConsume()
	col.wait(t, 25, 10*time.Second)
}

// TestMessageAccessors: what a Msg says about itself, as the README lists.
func TestMessageAccessors(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "acc")
	if _, err := c.CreateStation(station, memphis.PartitionsNumber(2)); err != nil {
		t.Fatal(err)
	}
	p := mustProducer(t, c, station, "p")
	before := time.Now().Add(-time.Second) // the broker's clock, not ours
	var h memphis.Headers
	_ = h.Add("k", "v")
	for range 3 {
		if err := p.Produce([]byte("payload"), memphis.MsgHeaders(h), memphis.ProducerPartitionNumber(2)); err != nil {
			t.Fatal(err)
		}
	}
	cons := mustConsumer(t, c, station, "c", memphis.BatchMaxWaitTime(time.Second))
	msgs := fetchAll(t, cons, 3, 10*time.Second)
	for i, m := range msgs {
		seq, err := m.GetSequenceNumber()
		if err != nil || seq != uint64(i+1) {
			t.Errorf("message %d: sequence %d, %v", i, seq, err)
		}
		sent, err := m.GetTimeSent()
		if err != nil || sent.Before(before) || sent.After(time.Now().Add(time.Second)) {
			t.Errorf("message %d: sent at %v, %v; want about now", i, sent, err)
		}
		if n, err := m.DeliveryCount(); err != nil || n != 1 {
			t.Errorf("message %d: delivery count %d, %v", i, n, err)
		}
		if v, err := m.DataDeserialized(); err != nil || string(v.([]byte)) != "payload" {
			t.Errorf("message %d: DataDeserialized %v, %v", i, v, err)
		}
		if string(m.Data()) != "payload" || m.GetHeaders()["k"] != "v" || len(m.GetHeaders()) != 1 || m.Partition() != 2 {
			t.Errorf("message %d: %q, headers %v, partition %d", i, m.Data(), m.GetHeaders(), m.Partition())
		}
	}
}

// TestMessagesLoopEndsWithItsContext: "the loop ends when its context
// does", yielding no error, both while it waits for messages and with
// messages at hand.
func TestMessagesLoopEndsWithItsContext(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	t.Run("waiting", func(t *testing.T) {
		// An empty station and a pull that would wait 10 s: the context's
		// end, not the pull's, must end the loop.
		cons := mustConsumer(t, c, testenv.Name(t, "iter-wait"), "c", memphis.BatchMaxWaitTime(10*time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			for m, err := range cons.Messages(ctx) {
				t.Errorf("an empty station yielded %v, %v", m, err)
			}
		}()
		within(t, ended, 5*time.Second, "the loop's end, with a 300ms context")
	})
	t.Run("messages at hand", func(t *testing.T) {
		station := testenv.Name(t, "iter-hand")
		produceN(t, mustProducer(t, c, station, "p"), 10, "h")
		cons := mustConsumer(t, c, station, "c")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		n := 0
		for m, err := range cons.Messages(ctx) {
			if err != nil {
				t.Fatalf("yielded %v", err)
			}
			_ = m.Ack()
			n++
			cancel() // no break: the loop must end by itself
		}
		if n != 1 {
			t.Errorf("the loop yielded %d messages, %d of them after its context ended", n, n-1)
		}
	})
}

// TestStopConsumeReturnsBufferedMessagesAtOnce: "StopConsume() // ...
// unhandled messages go back at once", not after MaxAckTime (30 s here):
// with every message delivered to the consumer and the first batch of 5
// handled, a new run gets the other 25 within seconds. (Memphis 1.4.4 may
// drop one the broker was sending as the inbox closed, which then comes
// after MaxAckTime; see TestStopConsumeFromInsideTheHandler.)
func TestStopConsumeReturnsBufferedMessagesAtOnce(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "stop-buf")
	produceN(t, mustProducer(t, c, station, "p"), 30, "m")
	cons := mustConsumer(t, c, station, "c", memphis.BatchSize(5), memphis.MaxAckTime(30*time.Second))
	var calls atomic.Int32
	inHandler, proceed, stopped := make(chan struct{}), make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(proceed) })
	defer release()
	err := cons.Consume(func(msgs []*memphis.Msg, _ error, _ context.Context) {
		if calls.Add(1) > 1 {
			t.Error("handler called after StopConsume")
			return
		}
		for _, m := range msgs {
			_ = m.Ack()
		}
		close(inHandler)
		<-proceed
		cons.StopConsume() // from the handler: no further call, the rest go back
		close(stopped)
	})
	if err != nil {
		t.Fatal(err)
	}
	within(t, inHandler, 10*time.Second, "the first batch")
	// The other 25 are buffered in the SDK once the broker has delivered
	// them all.
	awaitDelivered(t, b, station, "c", 10*time.Second)
	release()
	within(t, stopped, 10*time.Second, "StopConsume from the handler")
	cons.StopConsume() // waits for the run to end
	want := 25
	if b.Server == nil {
		want-- // Memphis 1.4.4 may keep one until MaxAckTime
	}
	col := newCollector()
	if err := cons.Consume(col.handler); err != nil {
		t.Fatal(err)
	}
	defer cons.StopConsume()
	col.wait(t, want, 10*time.Second)
}

// TestFetchPrefetchesTheNextBatch: "With prefetch true, the next batch is
// fetched in the background": after Fetch(10, true) returns, the broker
// delivers the next 10 with no further call, and the next Fetch hands
// them over.
func TestFetchPrefetchesTheNextBatch(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "prefetch")
	produceN(t, mustProducer(t, c, station, "p"), 20, "x")
	cons := mustConsumer(t, c, station, "c", memphis.BatchMaxWaitTime(time.Second), memphis.MaxAckTime(30*time.Second))
	first, err := cons.Fetch(10, true)
	if err != nil || len(first) != 10 {
		t.Fatalf("first batch: %d, %v", len(first), err)
	}
	// Without a prefetch, 10 would stay undelivered until the next Fetch.
	awaitDelivered(t, b, station, "c", 10*time.Second)
	second, err := cons.Fetch(10, false)
	if err != nil || len(second) != 10 || string(second[0].Data()) != "x10" || string(second[9].Data()) != "x19" {
		t.Fatalf("prefetched batch: %d messages, %v", len(second), err)
	}
	for _, m := range append(first, second...) {
		_ = m.Ack()
	}
}

// TestHandlerNeverRunsConcurrentlyWithItself: "It is never called
// concurrently with itself", with four partitions, each read by a puller
// of its own, all busy.
func TestHandlerNeverRunsConcurrentlyWithItself(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "serial")
	if _, err := c.CreateStation(station, memphis.PartitionsNumber(4)); err != nil {
		t.Fatal(err)
	}
	produceN(t, mustProducer(t, c, station, "p"), 200, "s") // round-robin: 50 a partition
	cons := mustConsumer(t, c, station, "c", memphis.BatchSize(5))
	var inFlight, overlaps atomic.Int32
	col := newCollector()
	if err := cons.Consume(func(msgs []*memphis.Msg, err error, ctx context.Context) {
		if inFlight.Add(1) > 1 {
			overlaps.Add(1)
		}
		defer inFlight.Add(-1)
		time.Sleep(time.Millisecond) // the handler's work, long enough for another call to collide
		col.handler(msgs, err, ctx)
	}); err != nil {
		t.Fatal(err)
	}
	col.wait(t, 200, 20*time.Second)
	cons.StopConsume()
	if n := overlaps.Load(); n != 0 {
		t.Errorf("the handler ran concurrently with itself %d times", n)
	}
}
