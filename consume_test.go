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

func TestPartitionRouting(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "parts")
	s, err := c.CreateStation(station, memphis.PartitionsNumber(3))
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.CreateProducer("p")
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"a", "abc", "key-1", "user-42", "hello world", ""}
	for _, k := range keys {
		if err := p.Produce([]byte(k), memphis.ProducerPartitionKey(k)); err != nil {
			t.Fatal(err)
		}
	}
	for range 6 { // round-robin: two per partition
		if err := p.Produce([]byte("rr")); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := s.CreateConsumer("c", memphis.BatchMaxWaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if got := cons.Partitions(); len(got) != 3 {
		t.Fatalf("partitions = %v", got)
	}
	perPartition := map[int]int{}
	for _, part := range []int{1, 2, 3} {
		ctx := testCtx(t, 10*time.Second)
		var msgs []*memphis.Msg
		for {
			batch, err := cons.FetchContext(ctx, 20, false, memphis.ConsumerPartitionNumber(part))
			if err != nil {
				t.Fatal(err)
			}
			if len(batch) == 0 {
				break
			}
			msgs = append(msgs, batch...)
		}
		for _, m := range msgs {
			_ = m.Ack()
			if m.Partition() != part {
				t.Errorf("message from partition %d says %d", part, m.Partition())
			}
			if k := string(m.Data()); k != "rr" {
				if want := memphis.PartitionForKey(k, []int{1, 2, 3}); want != part {
					t.Errorf("key %q landed on %d, want %d", k, part, want)
				}
			} else {
				perPartition[part]++
			}
		}
	}
	for _, part := range []int{1, 2, 3} {
		if perPartition[part] != 2 {
			t.Errorf("round-robin put %d on partition %d, want 2", perPartition[part], part)
		}
	}
	if _, err := cons.Fetch(1, false, memphis.ConsumerPartitionNumber(4)); !errors.Is(err, memphis.ErrPartitionNotFound) {
		t.Errorf("fetch partition 4: %v", err)
	}
}

func TestConsumeServesAllPartitionsConcurrently(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "busy")
	s, err := c.CreateStation(station, memphis.PartitionsNumber(4))
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.CreateProducer("p")
	if err != nil {
		t.Fatal(err)
	}
	// Only partition 4 has traffic; idle partitions must not delay it.
	cons, err := s.CreateConsumer("c", memphis.PullInterval(5*time.Second), memphis.BatchMaxWaitTime(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	if err := cons.Consume(col.handler); err != nil {
		t.Fatal(err)
	}
	defer cons.StopConsume()
	start := time.Now()
	for i := range 50 {
		if err := p.Produce([]byte(fmt.Sprint(i)), memphis.ProducerPartitionNumber(4)); err != nil {
			t.Fatal(err)
		}
	}
	col.wait(t, 50, 10*time.Second)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("50 messages took %v with idle partitions beside", d)
	}
}

func TestConsumerGroupSharesMessages(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "cg")
	p := mustProducer(t, c, station, "p")
	c1 := mustConsumer(t, c, station, "m1", memphis.ConsumerGroup("Workers"), memphis.BatchSize(5))
	c2 := mustConsumer(t, c, station, "m2", memphis.ConsumerGroup("workers"), memphis.BatchSize(5))
	if c1.ConsumerGroup != "workers" {
		t.Errorf("group = %q", c1.ConsumerGroup)
	}
	col1, col2 := newCollector(), newCollector()
	if err := c1.Consume(col1.handler); err != nil {
		t.Fatal(err)
	}
	if err := c2.Consume(col2.handler); err != nil {
		t.Fatal(err)
	}
	produceN(t, p, 200, "w")
	deadline := time.Now().Add(10 * time.Second)
	for col1.count()+col2.count() < 200 && time.Now().Before(deadline) {
		select {
		case <-col1.more:
		case <-col2.more:
		case <-time.After(100 * time.Millisecond):
		}
	}
	c1.StopConsume()
	c2.StopConsume()
	seen := map[string]int{}
	for _, col := range []*collector{col1, col2} {
		for _, m := range col.msgs {
			seen[string(m.Data())]++
		}
	}
	if len(seen) != 200 {
		t.Fatalf("the group saw %d distinct messages, want 200", len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times in one group", k, n)
		}
	}
	// Another group gets every message again.
	other := mustConsumer(t, c, station, "audit", memphis.BatchSize(100), memphis.BatchMaxWaitTime(200*time.Millisecond))
	if got := fetchAll(t, other, 200, 10*time.Second); len(got) != 200 {
		t.Fatalf("second group got %d", len(got))
	}
}

func TestNackDelayAndDeliveryCount(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "nack")
	p := mustProducer(t, c, station, "p")
	produceN(t, p, 1, "n")
	cons := mustConsumer(t, c, station, "c", memphis.BatchMaxWaitTime(2*time.Second))
	msgs, err := cons.Fetch(1, false)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %d, %v", len(msgs), err)
	}
	if err := msgs[0].Nack(); err != nil {
		t.Fatal(err)
	}
	again, err := cons.Fetch(1, false)
	if err != nil || len(again) != 1 {
		t.Fatalf("after nack: %d, %v", len(again), err)
	}
	if n, _ := again[0].DeliveryCount(); n != 2 {
		t.Errorf("delivery count after a nack = %d, want 2", n)
	}
	start := time.Now()
	if err := again[0].Delay(700 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	third, err := cons.Fetch(1, false)
	if err != nil || len(third) != 1 {
		t.Fatalf("after delay: %d, %v", len(third), err)
	}
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Errorf("redelivered after %v, want the 700ms delay", d)
	}
	if n, _ := third[0].DeliveryCount(); n != 3 {
		t.Errorf("delivery count = %d, want 3", n)
	}
	if err := third[0].Delay(-time.Second); !errors.Is(err, memphis.ErrInvalidOption) {
		t.Errorf("negative delay: %v", err)
	}
	_ = third[0].Ack()
}

// TestDeadLetterReachesTheDLSStation: "the broker keeps it in the station's
// dead-letter store and puts a copy in the DlsStation each time a consumer
// group gives a message up", for a message given up with DeadLetter (by
// two groups) and for a poison message, but not from a station with
// SendPoisonMsgToDls(false); and each copy's headers say where it came
// from and why, as far as Memphis 1.4.4 lets them: "type" is "unacked" for
// both kinds, and the reason given to DeadLetter is kept only in the
// broker's own record.
func TestDeadLetterReachesTheDLSStation(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station, off, dls := testenv.Name(t, "src"), testenv.Name(t, "off"), testenv.Name(t, "dls")
	if _, err := c.CreateStation(station, memphis.DlsStation(dls)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStation(off, memphis.DlsStation(dls), memphis.SendPoisonMsgToDls(false)); err != nil {
		t.Fatal(err)
	}
	// First, a message given up on the station that keeps no poison: the
	// broker handles reports in order, so by the time the copies below
	// arrive, its copy would have.
	if err := mustProducer(t, c, off, "p").Produce([]byte("off-one")); err != nil {
		t.Fatal(err)
	}
	offMsgs, err := mustConsumer(t, c, off, "c", memphis.BatchMaxWaitTime(2*time.Second)).Fetch(1, false)
	if err != nil || len(offMsgs) != 1 {
		t.Fatalf("fetch from %s: %d, %v", off, len(offMsgs), err)
	}
	if err := offMsgs[0].DeadLetter("not kept"); err != nil {
		t.Fatal(err)
	}

	p := mustProducer(t, c, station, "p")
	var h memphis.Headers
	_ = h.Add("userh", "v")
	if err := p.Produce([]byte("bad-one"), memphis.MsgHeaders(h)); err != nil {
		t.Fatal(err)
	}
	if err := p.Produce([]byte("poison-one"), memphis.MsgHeaders(h)); err != nil {
		t.Fatal(err)
	}
	// One delivery allowed: a message left unacked past MaxAckTime is
	// poison when a pull is waiting (Memphis 1.4.4's JetStream decides it
	// only then), so the second fetch below outlasts the ack time.
	cons := mustConsumer(t, c, station, "c", memphis.BatchMaxWaitTime(2*time.Second),
		memphis.MaxMsgDeliveries(1), memphis.MaxAckTime(time.Second))
	msgs, err := cons.Fetch(2, false)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("fetch: %d, %v", len(msgs), err)
	}
	if string(msgs[0].Data()) != "bad-one" {
		t.Fatalf("first message %q", msgs[0].Data())
	}
	if err := msgs[0].DeadLetter("cannot parse"); err != nil {
		t.Fatal(err)
	}
	// Neither comes to the group again: one was given up, the other ran
	// out of deliveries.
	if again, _ := cons.FetchContext(testCtx(t, 10*time.Second), 2, false); len(again) != 0 {
		t.Fatalf("%d dead letters delivered again", len(again))
	}
	// A second group gives up the same message: a copy of its own.
	other, err := mustConsumer(t, c, station, "c2", memphis.BatchMaxWaitTime(2*time.Second)).Fetch(2, false)
	if err != nil || len(other) != 2 {
		t.Fatalf("second group's fetch: %d, %v", len(other), err)
	}
	for _, m := range other {
		if string(m.Data()) == "bad-one" {
			err = m.DeadLetter("no use to us either")
		} else {
			err = m.Ack()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// The broker copies them to the DLS station (within ~5 s on the real one).
	watcher := mustConsumer(t, c, dls, "watch", memphis.BatchMaxWaitTime(time.Second))
	got := map[string][]map[string]string{}
	for _, m := range fetchAll(t, watcher, 3, 30*time.Second) {
		got[string(m.Data())] = append(got[string(m.Data())], m.GetHeaders())
	}
	if len(got["bad-one"]) != 2 || len(got["poison-one"]) != 1 || len(got["off-one"]) != 0 {
		t.Errorf("DLS station copies: %d of bad-one (two groups gave it up), %d of poison-one, %d of off-one (poison not kept)",
			len(got["bad-one"]), len(got["poison-one"]), len(got["off-one"]))
	}
	for payload, copies := range got {
		for _, hdrs := range copies {
			if hdrs["userh"] != "v" || hdrs["station"] != station || hdrs["type"] != "unacked" {
				t.Errorf("DLS copy of %s has headers %v, want userh=v station=%s type=unacked", payload, hdrs, station)
			}
			if _, ok := hdrs["validation_error"]; ok {
				t.Errorf("DLS copy of %s carries a validation error", payload)
			}
			// The reason stays in the broker's own record, not on the copy.
			for k, v := range hdrs {
				for _, reason := range []string{"cannot parse", "no use to us either", "not kept"} {
					if strings.Contains(k, reason) || strings.Contains(v, reason) {
						t.Errorf("DLS copy of %s carries the reason %q in header %s=%s", payload, reason, k, v)
					}
				}
			}
		}
	}
	if b.Server == nil {
		return // Memphis 1.4.4 keeps its records in its database
	}
	reasons := map[string]string{}
	for _, d := range b.Server.DeadLetters(station) {
		reasons[string(d.Data)] = d.Reason
	}
	if len(reasons) != 2 || reasons["bad-one"] != "no use to us either" || reasons["poison-one"] != "" {
		t.Errorf("dead-letter records' reasons = %q", reasons)
	}
	if n := len(b.Server.DeadLetters(off)); n != 0 {
		t.Errorf("the station without poison kept %d dead letters", n)
	}
}

func TestStopConsumeFromInsideTheHandler(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "stop")
	p := mustProducer(t, c, station, "p")
	produceN(t, p, 30, "s")
	// Messages buffered at the stop are returned at once. One the broker
	// was already sending when the inbox closed can be dropped on its side
	// (seen on Memphis 1.4.4, never on the in-process broker); it comes
	// again after MaxAckTime, kept short here so the test sees it.
	cons := mustConsumer(t, c, station, "c", memphis.BatchSize(5), memphis.MaxAckTime(2*time.Second))
	var calls atomic.Int32
	stopped := make(chan struct{})
	err := cons.Consume(func(msgs []*memphis.Msg, _ error, _ context.Context) {
		if calls.Add(1) > 1 {
			t.Error("handler called after StopConsume")
			return
		}
		for _, m := range msgs {
			_ = m.Ack()
		}
		cons.StopConsume() // must not deadlock
		close(stopped)
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("StopConsume from the handler deadlocked")
	}
	cons.StopConsume()
	// Consuming again works and delivers the rest: nothing was lost.
	col := newCollector()
	if err := cons.Consume(col.handler); err != nil {
		t.Fatal(err)
	}
	col.wait(t, 25, 15*time.Second)
	cons.StopConsume()
}

func TestStopConsumeWaitsForTheRunningHandler(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "wait")
	p := mustProducer(t, c, station, "p")
	produceN(t, p, 3, "w")
	cons := mustConsumer(t, c, station, "c", memphis.BatchSize(1))
	inHandler := make(chan struct{})
	release := make(chan struct{})
	var returned, after, first atomic.Bool
	err := cons.Consume(func(msgs []*memphis.Msg, _ error, _ context.Context) {
		if returned.Load() {
			after.Store(true)
		}
		// The first call holds on, whenever the test gets to look: with a
		// send that gave up when nobody was receiving yet, a loaded machine
		// let all three calls pass before the test waited, and it waited
		// forever.
		if first.CompareAndSwap(false, true) {
			close(inHandler)
			<-release
		}
		_ = msgs[0].Ack()
	})
	if err != nil {
		t.Fatal(err)
	}
	within(t, inHandler, 10*time.Second, "the first handler call")
	done := make(chan struct{})
	go func() { cons.StopConsume(); returned.Store(true); close(done) }()
	select {
	case <-done:
		t.Fatal("StopConsume returned while the handler was running")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	<-done
	if after.Load() {
		t.Fatal("a batch was handed over after StopConsume returned")
	}
}

func TestSetContextReachesEveryCall(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "ctxval")
	p := mustProducer(t, c, station, "p")
	cons := mustConsumer(t, c, station, "c", memphis.BatchSize(1))
	type key struct{}
	cons.SetContext(context.WithValue(context.Background(), key{}, "v"))
	var mu sync.Mutex
	var seen []any
	got := make(chan struct{}, 10)
	err := cons.Consume(func(msgs []*memphis.Msg, _ error, ctx context.Context) {
		mu.Lock()
		seen = append(seen, ctx.Value(key{}))
		mu.Unlock()
		for _, m := range msgs {
			_ = m.Ack()
		}
		got <- struct{}{}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.StopConsume()
	for i := range 3 {
		if err := p.Produce([]byte("x")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("call %d never came", i)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, v := range seen {
		if v != "v" {
			t.Errorf("call %d got context value %v", i, v)
		}
	}
}

func TestConsumeUntilAndMessagesIterator(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "iter")
	p := mustProducer(t, c, station, "p")
	produceN(t, p, 10, "i")
	cons := mustConsumer(t, c, station, "c")
	n := 0
	for m, err := range cons.Messages(testCtx(t, 10*time.Second)) {
		if err != nil {
			t.Fatal(err)
		}
		_ = m.Ack()
		if n++; n == 10 {
			break
		}
	}
	if n != 10 {
		t.Fatalf("iterated %d", n)
	}
	produceN(t, p, 5, "j")
	ctx, cancel := context.WithCancel(context.Background())
	var got atomic.Int32
	err := cons.ConsumeUntil(ctx, func(msgs []*memphis.Msg, _ error, hctx context.Context) {
		for _, m := range msgs {
			_ = m.Ack()
		}
		if got.Add(int32(len(msgs))) >= 5 {
			cancel()
		}
		if hctx != ctx {
			t.Error("the handler did not get ConsumeUntil's context")
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ConsumeUntil returned %v", err)
	}
	if got.Load() != 5 {
		t.Fatalf("consumed %d", got.Load())
	}
}

func TestStartPositions(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	for _, parts := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d partitions", parts), func(t *testing.T) {
			station := testenv.Name(t, "pos")
			s, err := c.CreateStation(station, memphis.PartitionsNumber(parts))
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.CreateProducer("p")
			if err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				if err := p.Produce([]byte(fmt.Sprint(i)), memphis.ProducerPartitionNumber(1)); err != nil {
					t.Fatal(err)
				}
			}
			// LastMessages on one partition makes the real broker create no durable: the SDK works
			// around it (docs/protocol.md#quirk-last-messages-no-durable).
			last, err := s.CreateConsumer("last", memphis.LastMessages(2), memphis.BatchMaxWaitTime(300*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			got, err := last.Fetch(10, false, memphis.ConsumerPartitionNumber(1))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || string(got[0].Data()) != "3" || string(got[1].Data()) != "4" {
				t.Fatalf("LastMessages(2) gave %d messages", len(got))
			}
			from, err := s.CreateConsumer("from", memphis.StartConsumeFromSeq(4), memphis.BatchMaxWaitTime(300*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			got, err = from.Fetch(10, false, memphis.ConsumerPartitionNumber(1))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || string(got[0].Data()) != "3" {
				t.Fatalf("StartConsumeFromSeq(4) gave %d messages", len(got))
			}
			if _, err := s.CreateConsumer("both", memphis.LastMessages(1), memphis.StartConsumeFromSeq(2)); !errors.Is(err, memphis.ErrInvalidOption) {
				t.Fatalf("both start options: %v", err)
			}
		})
	}
}

func TestCloseStopsConsumersAndDrainsAsyncProduces(t *testing.T) {
	b := testenv.Start(t)
	c, err := memphis.Connect(b.Host, b.Username, credentials(b)...)
	if err != nil {
		t.Fatal(err)
	}
	station := testenv.Name(t, "close")
	p := mustProducer(t, c, station, "p")
	var failed atomic.Int32
	for range 200 {
		err := p.ProduceAsync(context.Background(), []byte("x"), func(_ memphis.PubAck, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	cons := mustConsumer(t, c, station, "c")
	if err := cons.Consume(func([]*memphis.Msg, error, context.Context) {}); err != nil {
		t.Fatal(err)
	}
	c.Close() // goleak in TestMain checks that nothing is left running
	if failed.Load() != 0 {
		t.Fatalf("%d async produces failed at Close", failed.Load())
	}
	// Everything Close drained is on the broker.
	c2 := connect(t, b)
	reader, err := c2.CreateConsumer(station, "reader", memphis.BatchSize(200), memphis.BatchMaxWaitTime(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if got := fetchAll(t, reader, 200, 10*time.Second); len(got) != 200 {
		t.Fatalf("got %d", len(got))
	}
}

// destroyUnder destroys a station through a second connection, as another
// service would.
func destroyUnder(t *testing.T, b *testenv.Broker, station string) {
	t.Helper()
	other := connect(t, b)
	st, err := other.CreateStation(station)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Destroy(); err != nil {
		t.Fatal(err)
	}
}

func TestErrorHandlerMayStopAndDestroyTheConsumer(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "errstop")
	handled := make(chan error, 1)
	var cons *memphis.Consumer
	cons, err := c.CreateConsumer(station, "c", memphis.BatchMaxWaitTime(100*time.Millisecond),
		memphis.ConsumerErrorHandler(func(got *memphis.Consumer, err error) {
			// Both would wait for the consume loop this handler runs on.
			got.StopConsume()
			handled <- errors.Join(err, got.Destroy())
		}))
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.Consume(func([]*memphis.Msg, error, context.Context) {}); err != nil {
		t.Fatal(err)
	}
	destroyUnder(t, b, station)
	select {
	case err := <-handled:
		if !errors.Is(err, memphis.ErrStationUnreachable) {
			t.Errorf("handler got %v, want ErrStationUnreachable", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("StopConsume or Destroy from the error handler deadlocked")
	}
}

func TestConsumeFailuresReachTheHandlerByDefault(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	for _, mode := range []string{"Consume", "ConsumeUntil", "Messages"} {
		t.Run(mode, func(t *testing.T) {
			station := testenv.Name(t, "errdef")
			cons, err := c.CreateConsumer(station, "c", memphis.BatchMaxWaitTime(100*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			got := make(chan error, 4)
			handler := func(msgs []*memphis.Msg, err error, _ context.Context) {
				if err != nil {
					if len(msgs) != 0 {
						t.Errorf("a failure came with %d messages", len(msgs))
					}
					got <- err
				}
			}
			ctx := testCtx(t, 30*time.Second)
			switch mode {
			case "Consume":
				if err := cons.Consume(handler); err != nil {
					t.Fatal(err)
				}
				defer cons.StopConsume()
				destroyUnder(t, b, station)
			case "ConsumeUntil":
				destroyed := make(chan struct{})
				defer func() { <-destroyed }()
				go func() { defer close(destroyed); destroyUnder(t, b, station) }()
				got <- cons.ConsumeUntil(ctx, handler)
			case "Messages":
				destroyed := make(chan struct{})
				defer func() { <-destroyed }()
				go func() { defer close(destroyed); destroyUnder(t, b, station) }()
				for m, err := range cons.Messages(ctx) {
					if err != nil {
						got <- err
						break
					}
					_ = m.Ack()
				}
			}
			select {
			case err := <-got:
				if !errors.Is(err, memphis.ErrStationUnreachable) {
					t.Errorf("got %v, want ErrStationUnreachable", err)
				}
			case <-ctx.Done():
				t.Fatal("the failure never reached the caller")
			}
		})
	}
}

func TestHandlerMayRestartConsumingFromInside(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "restart-in")
	p := mustProducer(t, c, station, "p")
	produceN(t, p, 40, "r")
	cons := mustConsumer(t, c, station, "c", memphis.BatchSize(5))
	var inFlight, overlaps atomic.Int32
	col := newCollector()
	var restarted atomic.Bool
	var handler memphis.ConsumeHandler
	handler = func(msgs []*memphis.Msg, err error, ctx context.Context) {
		if inFlight.Add(1) > 1 {
			overlaps.Add(1)
		}
		defer inFlight.Add(-1)
		if restarted.CompareAndSwap(false, true) {
			cons.StopConsume()
			if err := cons.Consume(handler); err != nil {
				t.Errorf("consume again from the handler: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // hold the old call while the new run starts
		}
		col.handler(msgs, err, ctx)
	}
	if err := cons.Consume(handler); err != nil {
		t.Fatal(err)
	}
	col.wait(t, 40, 20*time.Second)
	cons.StopConsume()
	if n := overlaps.Load(); n != 0 {
		t.Errorf("the handler ran concurrently with itself %d times", n)
	}
}

func TestConsumerReportsAConnectionThatGaveUp(t *testing.T) {
	b := testenv.Local(t)
	c := connect(t, b, memphis.MaxReconnect(1), memphis.ReconnectInterval(50*time.Millisecond))
	errs := make(chan error, 4)
	cons, err := c.CreateConsumer(testenv.Name(t, "gaveup"), "c", memphis.BatchMaxWaitTime(100*time.Millisecond),
		memphis.ConsumerErrorHandler(func(_ *memphis.Consumer, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.Consume(func([]*memphis.Msg, error, context.Context) {}); err != nil {
		t.Fatal(err)
	}
	defer cons.StopConsume()
	b.Server.Shutdown()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case err := <-errs:
			if errors.Is(err, memphis.ErrConnClosed) {
				return
			}
		case <-deadline:
			t.Fatal("the consumer never reported that the connection closed for good")
		}
	}
}

// A slow handler facing a backlog gets no more messages requested than it
// works through within MaxAckTime: none is delivered twice. (Were the pull
// depth to grow to 512 here, the last of them would wait 5 s, past the 3 s
// MaxAckTime, and come again. At the least depth, 64 and a batch, they
// wait under a second: the handler may run three times slower than it
// means to, as it does on a loaded two-core machine under -race, before a
// message waits too long. With a 1 s MaxAckTime and a 5 ms handler, 9 of
// 400 came twice in 20 runs under load.)
func TestSlowHandlerGetsEachMessageOnce(t *testing.T) {
	t.Parallel()
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "slow")
	const n = 400
	produceN(t, mustProducer(t, c, station, "p"), n, "s")
	cons := mustConsumer(t, c, station, "c", memphis.MaxAckTime(3*time.Second))
	var (
		mu    sync.Mutex
		seen  = map[string]int{}
		dups  int
		total int
	)
	done := make(chan struct{})
	err := cons.Consume(func(msgs []*memphis.Msg, err error, _ context.Context) {
		for _, m := range msgs {
			time.Sleep(10 * time.Millisecond) // the handler's work
			_ = m.Ack()
			mu.Lock()
			seen[string(m.Data())]++
			if seen[string(m.Data())] > 1 {
				dups++
			}
			total++
			if len(seen) == n {
				select {
				case <-done:
				default:
					close(done)
				}
			}
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	within(t, done, 60*time.Second, "every message")
	cons.StopConsume()
	mu.Lock()
	defer mu.Unlock()
	if dups > 0 {
		t.Errorf("%d of %d deliveries were repeats", dups, total)
	}
}
