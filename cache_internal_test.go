package memphis

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go/memphistest"
	"github.com/nats-io/nats.go"
)

func internalConn(t *testing.T) *Conn {
	t.Helper()
	srv := memphistest.NewServer(t)
	c, err := Connect(srv.Host(), srv.Username(), Password(srv.Password()), Port(srv.Port()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Concurrent first calls of FetchMessages for one station and consumer
// name share one consumer. Each used to create its own, and all but the
// one the cache kept stayed registered and live, their dead-letter
// re-send subscriptions feeding channels nobody read.
func TestFetchMessagesCreatesOneConsumerUnderConcurrentFirstCalls(t *testing.T) {
	c := internalConn(t)
	const callers = 8
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := c.FetchMessages("cachedfetch", "reader", FetchBatchSize(1), FetchBatchMaxWaitTime(time.Millisecond))
			if err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	c.mu.Lock()
	live := len(c.live)
	c.mu.Unlock()
	if live != 1 {
		t.Fatalf("%d concurrent first FetchMessages left %d live consumers, want 1", callers, live)
	}
}

// Only FetchMessages fills its cache: a consumer made with CreateConsumer
// is the caller's, and FetchMessages must not take it over (a caller's
// Consume on it would then compete with FetchMessages' fetches).
func TestCreateConsumerDoesNotFillTheFetchMessagesCache(t *testing.T) {
	c := internalConn(t)
	mine, err := c.CreateConsumer("owncons", "reader")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.FetchMessages("owncons", "reader", FetchBatchMaxWaitTime(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	live := len(c.live)
	c.mu.Unlock()
	if live != 2 {
		t.Errorf("live consumers = %d, want 2: FetchMessages reused the caller's own consumer", live)
	}
	_ = mine
}

// A re-sent dead letter with no room to wait in is a consumer failure; it
// must reach the ConsumerErrorHandler on the consume loop, never while the
// message handler runs. It used to be reported on the nats.go goroutine
// that received it, at the same time as the handler.
func TestResentOverflowWaitsForTheHandler(t *testing.T) {
	c := internalConn(t)
	p, err := c.CreateProducer("resentoverflow", "p")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Produce([]byte("one")); err != nil {
		t.Fatal(err)
	}
	var inHandler atomic.Bool
	reported := make(chan bool, 1)
	cons, err := c.CreateConsumer("resentoverflow", "c", ConsumerErrorHandler(func(_ *Consumer, err error) {
		select {
		case reported <- inHandler.Load():
		default:
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	err = cons.Consume(func(msgs []*Msg, _ error, _ context.Context) {
		inHandler.Store(true)
		defer inHandler.Store(false)
		once.Do(func() {
			close(entered)
			<-release
		})
		for _, m := range msgs {
			_ = m.Ack()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.StopConsume()
	<-entered
	for len(cons.resent) < cap(cons.resent) {
		cons.resent <- &Msg{raw: &nats.Msg{Subject: "filler"}, cons: cons, resent: true}
	}
	cons.onResent(&nats.Msg{Subject: "overflow", Header: nats.Header{}})
	for len(cons.resent) > 0 {
		<-cons.resent // the fillers are no messages of the broker's: do not hand them out
	}
	close(release)
	select {
	case during := <-reported:
		if during {
			t.Error("the error handler ran while the message handler was running")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the overflow was never reported")
	}
}
