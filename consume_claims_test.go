package memphis_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
	"github.com/memphisdev/memphis.go/internal/wire"
)

// ackPending asks JetStream how many messages of a group's durable on a
// one-partition station were delivered and await an ack.
func ackPending(t *testing.T, b *testenv.Broker, station, group string) int {
	t.Helper()
	subject := "$JS.API.CONSUMER.INFO." + wire.StreamName(wire.InternalName(station), 1) + "." + wire.InternalName(group)
	reply, err := b.NATS(t).Request(subject, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		AckPending int `json:"num_ack_pending"`
	}
	if err := json.Unmarshal(reply.Data, &info); err != nil {
		t.Fatal(err)
	}
	return info.AckPending
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
