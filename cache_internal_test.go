package memphis

import (
	"sync"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go/memphistest"
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
