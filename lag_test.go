package memphis_test

import (
	"errors"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
)

func mustLag(t *testing.T, cons *memphis.Consumer) memphis.Lag {
	t.Helper()
	lag, err := cons.Lag(testCtx(t, 10*time.Second))
	if err != nil {
		t.Fatalf("lag: %v", err)
	}
	var pending, unacked uint64
	for _, p := range lag.Partitions {
		pending += p.Pending
		unacked += p.Unacked
	}
	if pending != lag.Pending || unacked != lag.Unacked {
		t.Fatalf("totals %d/%d are not the sums of the partitions' %+v", lag.Pending, lag.Unacked, lag.Partitions)
	}
	return lag
}

// awaitLag asks for the lag until ok accepts it. JetStream updates a
// consumer's counts off its publish and ack paths (a stored message and an
// ack each count a moment after the client was told or sent it), so the
// figures are awaited; figures that never reach ok fail the test.
func awaitLag(t *testing.T, cons *memphis.Consumer, what string, ok func(memphis.Lag) bool) memphis.Lag {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lag := mustLag(t, cons)
		if ok(lag) {
			return lag
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %+v", what, lag)
		}
		time.Sleep(5 * time.Millisecond) // the broker's count can only be polled
	}
}

// TestConsumerLag: the lag grows with what is produced while the group
// does not consume, and falls to 0 when it catches up.
func TestConsumerLag(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "lag")
	if _, err := c.CreateStation(station, memphis.PartitionsNumber(2)); err != nil {
		t.Fatal(err)
	}
	p := mustProducer(t, c, station, "p")
	cons := mustConsumer(t, c, station, "g", memphis.BatchMaxWaitTime(100*time.Millisecond))

	lag := mustLag(t, cons)
	if lag.Station != station || lag.Group != "g" {
		t.Errorf("lag names station %q group %q, want %q, g", lag.Station, lag.Group, station)
	}
	if lag.Pending != 0 || len(lag.Partitions) != 2 || lag.Partitions[0].Partition != 1 || lag.Partitions[1].Partition != 2 {
		t.Fatalf("an empty station's lag: %+v", lag)
	}
	produceN(t, p, 3, "a", memphis.ProducerPartitionNumber(1))
	produceN(t, p, 5, "b", memphis.ProducerPartitionNumber(2))
	awaitLag(t, cons, "after 3 + 5 produced", func(l memphis.Lag) bool {
		return l.Pending == 8 && l.Partitions[0].Pending == 3 && l.Partitions[1].Pending == 5 && l.Unacked == 0
	})

	// Consuming catches up: everything delivered is no longer pending.
	col := newCollector()
	if err := cons.Consume(col.handler); err != nil {
		t.Fatal(err)
	}
	col.wait(t, 8, 10*time.Second)
	awaitLag(t, cons, "after consuming everything", func(l memphis.Lag) bool { return l.Pending == 0 && l.Unacked == 0 })

	// Stopped, the group falls behind by what is produced meanwhile.
	cons.StopConsume()
	produceN(t, p, 7, "c")
	awaitLag(t, cons, "7 produced while stopped", func(l memphis.Lag) bool { return l.Pending == 7 })
	if err := cons.Consume(col.handler); err != nil {
		t.Fatal(err)
	}
	col.wait(t, 15, 10*time.Second)
	awaitLag(t, cons, "caught up again", func(l memphis.Lag) bool { return l.Pending == 0 && l.Unacked == 0 })
	cons.StopConsume()

	// Fetched and not acknowledged: no longer pending but unacked, also
	// after a Nack (it waits to be delivered again).
	produceN(t, p, 2, "d", memphis.ProducerPartitionNumber(1))
	msgs, err := cons.Fetch(2, false, memphis.ConsumerPartitionNumber(1))
	if err != nil || len(msgs) != 2 {
		t.Fatalf("fetch: %d, %v", len(msgs), err)
	}
	if err := msgs[0].Nack(); err != nil {
		t.Fatal(err)
	}
	awaitLag(t, cons, "2 fetched, one nacked", func(l memphis.Lag) bool {
		return l.Partitions[0].Pending == 0 && l.Partitions[0].Unacked == 2
	})

	// Gone: the station destroyed elsewhere, then the consumer destroyed.
	other := connect(t, b)
	st, err := other.CreateStation(station)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := cons.Lag(testCtx(t, 10*time.Second)); !errors.Is(err, memphis.ErrStationUnreachable) {
		t.Errorf("lag of a destroyed station: %v, want ErrStationUnreachable", err)
	}
	_ = cons.Destroy()
	if _, err := cons.Lag(testCtx(t, 10*time.Second)); !errors.Is(err, memphis.ErrConsumerDestroyed) {
		t.Errorf("lag after Destroy: %v, want ErrConsumerDestroyed", err)
	}
}
