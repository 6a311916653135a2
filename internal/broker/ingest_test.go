package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/memphisdev/memphis.go/internal/testenv"
	"github.com/memphisdev/memphis.go/internal/wire"
	"github.com/memphisdev/memphis.go/memphistest"
)

// A burst of async publishes, every msg-id sent twice, as the Node.js SDK
// sends them (msg-id only): each message is stored once, in the order sent,
// under the subject the client published to. On the real broker its
// JetStream fork does this; in-process, the ingest does.
func TestMsgIDBurstStoredOnceInOrder(t *testing.T) {
	t.Parallel()
	p := newPT(t)
	station := testenv.Name(t, "burst")
	p.mustStation(station, func(r *wire.CreateStationReq) { r.IdempotencyWindowMs = 600_000 })
	stream := wire.StreamName(station, 1)
	const n = 2000
	var acks []jetstream.PubAckFuture
	for i := range n {
		for range 2 {
			m := nats.NewMsg(wire.ProduceSubject(stream))
			m.Data = fmt.Appendf(nil, "m%d", i)
			m.Header = nats.Header{wire.HdrMsgID: {fmt.Sprintf("%s-%d", station, i)}}
			f, err := p.js.PublishMsgAsync(m)
			if err != nil {
				t.Fatal(err)
			}
			acks = append(acks, f)
		}
	}
	select {
	case <-p.js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatalf("%d publishes not acknowledged", p.js.PublishAsyncPending())
	}
	dups := 0
	for i, f := range acks {
		select {
		case a := <-f.Ok():
			if a.Duplicate {
				dups++
			}
		case err := <-f.Err():
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	expectEq(t, "duplicates", dups, n)
	cons, err := p.js.OrderedConsumer(t.Context(), stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for m := range batch.Messages() {
		expectEq(t, "data", string(m.Data()), fmt.Sprintf("m%d", i))
		expectEq(t, "subject", m.Subject(), wire.ProduceSubject(stream))
		i++
	}
	expectEq(t, "stored", i, n)
}

// With DirectPublish, publishes reach the stream as on stock JetStream:
// a core subscriber sees them on the produce subject, and msg-id alone
// does not de-duplicate (Nats-Msg-Id does).
func TestDirectPublish(t *testing.T) {
	t.Parallel()
	p := newPTOn(t, testenv.Local(t, memphistest.WithDirectPublish()))
	station := testenv.Name(t, "direct")
	p.mustStation(station, nil)
	stream := wire.StreamName(station, 1)
	seen, err := p.nc.SubscribeSync(wire.ProduceSubject(stream))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	a := p.publish(stream, "a", nats.Header{wire.HdrMsgID: {"same"}})
	b := p.publish(stream, "b", nats.Header{wire.HdrMsgID: {"same"}})
	if b.Duplicate || b.Sequence != a.Sequence+1 {
		t.Errorf("msg-id de-duplicated without the ingest: %+v %+v", a, b)
	}
	c := p.publish(stream, "c", nats.Header{wire.HdrNatsMsgID: {"other"}})
	d := p.publish(stream, "d", nats.Header{wire.HdrNatsMsgID: {"other"}})
	if !d.Duplicate || d.Sequence != c.Sequence {
		t.Errorf("Nats-Msg-Id not de-duplicated: %+v %+v", c, d)
	}
	for _, want := range []string{"a", "b", "c", "d"} {
		m, err := seen.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("core subscriber: %v", err)
		}
		expectEq(t, "seen", string(m.Data), want)
	}
}
