package memphis

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// callbacks is the connection's callback goroutine and its queue: the
// outcomes of async produces whose user code must run, in the order they
// were decided. The queue holds at most one item per slot (plus Flush
// barriers): a request keeps its slot until its callback has run.
type callbacks struct {
	mu       sync.Mutex
	queue    []cbItem
	spare    []cbItem // the drained queue's backing array, for reuse
	idle     bool     // the goroutine waits for wake
	stopping bool
	exited   bool
	wake     chan struct{} // one token per idle period
	done     chan struct{} // closed when the goroutine ends
	backlog  atomic.Int64  // items queued or running
	user     inUser        // the goroutine's calls of user code
}

type cbItem struct {
	req     *pubReq
	ack     PubAck
	err     error
	barrier chan struct{} // a Flush waiting for the items before it
}

func (q *callbacks) start(a *acker) {
	q.wake = make(chan struct{}, 1)
	q.done = make(chan struct{})
	go q.run(a)
}

func (q *callbacks) run(a *acker) {
	defer close(q.done)
	var items []cbItem
	for {
		q.mu.Lock()
		if items != nil {
			q.spare = items[:0]
		}
		for len(q.queue) == 0 {
			if q.stopping {
				q.exited = true
				q.mu.Unlock()
				return
			}
			q.idle = true
			q.mu.Unlock()
			<-q.wake
			q.mu.Lock()
		}
		items, q.queue, q.spare = q.queue, q.spare, nil
		q.mu.Unlock()
		for i := range items {
			a.deliver(items[i])
			items[i] = cbItem{}
			q.backlog.Add(-1)
		}
	}
}

// push queues an item for the callback goroutine. Should the goroutine be
// gone (a completion racing the end of stop), the item runs here instead,
// so that no outcome is lost.
func (q *callbacks) push(a *acker, it cbItem) {
	q.mu.Lock()
	if q.exited || q.done == nil {
		q.mu.Unlock()
		a.deliver(it)
		return
	}
	q.backlog.Add(1)
	q.queue = append(q.queue, it)
	wake := q.idle
	q.idle = false
	q.mu.Unlock()
	if wake {
		q.wake <- struct{}{}
	}
}

// barrier waits until every item queued before it has been delivered.
func (q *callbacks) barrier(a *acker, ctx context.Context) error {
	if q.backlog.Load() == 0 {
		return nil
	}
	ch := make(chan struct{})
	q.push(a, cbItem{barrier: ch})
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: callbacks of completed produces still running: %w", ErrTimeout, ctx.Err())
	}
}

// stop ends the goroutine once the queue is empty, and waits for it unless
// called from a callback, which can not wait for its own return.
func (q *callbacks) stop() {
	q.mu.Lock()
	if q.done == nil {
		q.mu.Unlock()
		return
	}
	q.stopping = true
	wake := q.idle
	q.idle = false
	q.mu.Unlock()
	if wake {
		q.wake <- struct{}{}
	}
	if !q.user.nestedIn() {
		<-q.done
	}
}

// deliver runs on the callback goroutine: one request's user code, then its
// release.
func (a *acker) deliver(it cbItem) {
	if it.barrier != nil {
		close(it.barrier)
		return
	}
	req := it.req
	runUserCode(&a.cb.user, func() {
		if req.done != nil {
			req.done(it.ack, it.err)
		} else {
			req.producer.reportAsync(it.err)
		}
	})
	a.release(req)
}
