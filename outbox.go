package memphis

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// outbox holds what the SDK publishes (produces, acks) while the
// connection is down, between a disconnect and the reconnect, and
// publishes it in order once the connection is back.
//
// nats.go buffers publishes while it reconnects too, but it holds its
// connection lock through each reconnect attempt — up to the dial Timeout
// when the broker's address is black-holed — and every publish waits for
// that lock, so a produce would outlive its context by up to Timeout. Here
// a publish made while the connection is down returns at once, and a
// produce's wait for its acknowledgement (AckWaitSec, its context) runs as
// usual. A produce whose wait ended before the connection came back is
// dropped from the queue, never sent: a produce reported as failed
// (timeout) while queued was not stored.
//
// Goroutine: one drainer per connection, started by Connect and ended by
// Close (stop); it publishes only while the connection is up.
type outbox struct {
	c *Conn

	down atomic.Bool // mirrors isDown, for lock-free checks
	// bypass: publish straight to nats.go (up, or closed for good, and
	// nothing queued or being drained), the lock-free fast path.
	bypass atomic.Bool

	mu       sync.Mutex
	isDown   bool
	gone     bool // the connection closed for good: publish straight through
	items    []outItem
	bytes    int
	draining bool // the drainer holds items taken from the queue
	wake     chan struct{}
	quit     chan struct{}
	done     chan struct{}
}

// outItem is one message waiting for the connection.
type outItem struct {
	msg   nats.Msg // Data is the outbox's own copy
	token uint64   // the produce's reply token; 0 for an ack
}

// outboxLimit bounds the bytes waiting in an outbox, as nats.go bounds its
// own reconnect buffer (8 MiB by default). Produces that already failed
// make room.
const outboxLimit = 8 << 20

func newOutbox(c *Conn) *outbox {
	o := &outbox{c: c, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	o.bypass.Store(true)
	return o
}

// stateLocked publishes the state to the lock-free flags.
func (o *outbox) stateLocked() {
	o.down.Store(o.isDown)
	o.bypass.Store(o.gone || (!o.isDown && len(o.items) == 0 && !o.draining))
}

func (o *outbox) start() { go o.run() }

// stop ends the drainer; what is still queued is dropped (Close fails the
// produces among it).
func (o *outbox) stop() {
	select {
	case <-o.quit:
		return
	default:
	}
	close(o.quit)
	<-o.done
	o.mu.Lock()
	o.items, o.bytes = nil, 0
	o.stateLocked()
	o.mu.Unlock()
}

// setDown records the connection's state; coming back up wakes the
// drainer.
func (o *outbox) setDown(down bool) {
	o.mu.Lock()
	o.isDown = down
	o.stateLocked()
	o.mu.Unlock()
	if !down {
		o.kick()
	}
}

// setGone records that the connection closed for good: nothing queued
// will ever be sent, and later publishes fail in nats.go at once.
func (o *outbox) setGone() {
	o.mu.Lock()
	o.gone = true
	o.isDown = false // calls go on to nats.go, which fails them at once
	o.items, o.bytes = nil, 0
	o.stateLocked()
	o.mu.Unlock()
}

func (o *outbox) kick() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// publish sends m now if the connection is up and nothing waits before
// it, or else queues a copy. token is the produce's reply token (0 for an
// ack).
func (o *outbox) publish(m *nats.Msg, token uint64) error {
	if o.bypass.Load() {
		return o.c.nc.PublishMsg(m)
	}
	o.mu.Lock()
	if o.gone || (!o.isDown && len(o.items) == 0 && !o.draining) {
		o.mu.Unlock()
		return o.c.nc.PublishMsg(m)
	}
	size := len(m.Subject) + len(m.Reply) + len(m.Data)
	for k, vs := range m.Header {
		size += len(k)
		for _, v := range vs {
			size += len(v)
		}
	}
	if o.bytes+size > outboxLimit {
		o.purgeLocked()
		if o.bytes+size > outboxLimit {
			n := o.bytes
			o.mu.Unlock()
			return fmt.Errorf("%w: the connection is down and %d bytes already wait for it", ErrConnectionLost, n)
		}
	}
	o.items = append(o.items, outItem{
		msg:   nats.Msg{Subject: m.Subject, Reply: m.Reply, Header: m.Header, Data: bytes.Clone(m.Data)},
		token: token,
	})
	o.bytes += size
	o.stateLocked()
	up := !o.isDown
	o.mu.Unlock()
	if up {
		o.kick()
	}
	return nil
}

// purgeLocked drops queued produces that already failed.
func (o *outbox) purgeLocked() {
	kept := o.items[:0]
	o.bytes = 0
	for _, it := range o.items {
		if it.token != 0 && !o.c.acks.isPending(it.token) {
			continue
		}
		kept = append(kept, it)
		o.bytes += len(it.msg.Subject) + len(it.msg.Reply) + len(it.msg.Data)
	}
	clear(o.items[len(kept):])
	o.items = kept
}

// run is the drainer: whenever the connection is up and messages wait, it
// publishes them in order.
func (o *outbox) run() {
	defer close(o.done)
	for {
		select {
		case <-o.wake:
		case <-o.quit:
			return
		}
		for {
			o.mu.Lock()
			if o.isDown || o.gone || len(o.items) == 0 {
				o.draining = false
				o.stateLocked()
				o.mu.Unlock()
				break
			}
			batch := o.items
			o.items, o.bytes, o.draining = nil, 0, true
			o.stateLocked()
			o.mu.Unlock()
			for i := range batch {
				o.send(&batch[i])
				batch[i] = outItem{}
			}
		}
	}
}

// send publishes one queued message, unless it is a produce that already
// failed; a produce that can not be published fails now.
func (o *outbox) send(it *outItem) {
	a := o.c.acks
	if it.token != 0 && !a.isPending(it.token) {
		return
	}
	err := o.c.nc.PublishMsg(&it.msg)
	if err == nil || it.token == 0 {
		return
	}
	if req := a.take(it.token); req != nil {
		a.complete(req, req.target(),
			fmt.Errorf("%w: %w", ErrConnectionLost, err), false)
	}
}

// awaitUp waits until the connection is up, bounded by ctx: calls that
// would otherwise wait in nats.go for its connection lock, which a
// reconnect attempt holds, wait here instead.
func (c *Conn) awaitUp(ctx context.Context) error {
	for {
		signal := c.reconnectSignal() // taken first: ReconnectedCB clears down, then signals
		if !c.out.down.Load() {
			return nil
		}
		select {
		case <-signal:
		case <-ctx.Done():
			return fmt.Errorf("%w: the connection is down: %w", ErrTimeout, ctx.Err())
		}
	}
}
