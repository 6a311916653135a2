package memphis

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ConsumeHandler receives batches of messages from Consume, with the
// consumer's context (see SetContext). A call carries either messages (err
// nil) or, when the consumer has no ConsumerErrorHandler, a background
// failure with no messages (err non-nil), e.g. ErrStationUnreachable; see
// ConsumerErrorHandler for which failures reach it.
type ConsumeHandler func(msgs []*Msg, err error, ctx context.Context)

// consumeRun is one Consume, ConsumeUntil or Messages loop.
//
// Goroutines: one puller per partition, each running the pull protocol on
// its own inbox and passing messages to out and failures to errs; and for
// Consume one dispatcher that hands batches and failures to the handlers,
// so no handler runs concurrently with itself and a handler may call
// StopConsume, Destroy or Close. Stopping closes stop; the dispatcher (or
// the Messages iterator) joins the pullers, returns buffered messages to
// the group with a nak, and closes done.
type consumeRun struct {
	c        *Consumer
	handler  ConsumeHandler
	ctx      context.Context // the handler's context for ConsumeUntil; nil: use SetContext's
	prev     *consumeRun     // the consumer's run before this one, whose handler must return first
	out      chan []*Msg     // batches of up to BatchSize, from one partition each
	errs     chan error
	stop     chan struct{}
	stopOnce sync.Once
	// stopCtx ends with stop, for the pullers' calls to the broker.
	stopCtx    context.Context
	cancelStop context.CancelFunc
	done       chan struct{}
	pullers    sync.WaitGroup
	user       inUser // the dispatcher's calls of the handlers

	// What the pullers adapt their depth to (adaptDepth): whether the
	// handler side is waiting for a batch now, and how long it takes per
	// message (a moving average; 0 until it handled some).
	waiting  atomic.Bool
	nsPerMsg atomic.Int64

	// returnsEnd: the failure that ends the run is handed to the caller
	// (ConsumeUntil returns it, Messages yields it) rather than reported;
	// false for Consume and whenever a ConsumerErrorHandler takes every
	// failure. Each failure thus reaches exactly one place.
	returnsEnd bool

	errMu sync.Mutex
	err   error // the failure that ended the run, if one did
}

// errsBuffer bounds the failures waiting to be reported; pullers report one
// per streak of the same failure, so it only fills if the handler is stuck.
const errsBuffer = 16

func (r *consumeRun) signalStop() {
	r.stopOnce.Do(func() {
		close(r.stop)
		r.cancelStop()
	})
}

// report hands a background failure to the goroutine that reports it,
// never blocking a puller.
func (r *consumeRun) report(err error) {
	if h := r.c.conn.hooks; h != nil {
		h.consumeFailed(r.c, err)
	}
	select {
	case r.errs <- err:
	default:
		r.c.conn.logs.failure(slog.LevelError, r.c, "memphis: consumer error not delivered, the handler is busy",
			"consumer errors not delivered", err, "station", r.c.station, "consumer", r.c.name)
	}
}

// fail ends the run because of err. The first such failure is kept as the
// run's outcome, and reported unless the caller is handed it (returnsEnd);
// later ones (the other partitions' pullers finding the same station gone)
// are the same event and are dropped, so it is reported once.
func (r *consumeRun) fail(err error) {
	r.errMu.Lock()
	first := r.err == nil
	if first {
		r.err = opErr("consume", r.c.station, err)
	}
	r.errMu.Unlock()
	switch {
	case first && !r.returnsEnd:
		r.report(err) // which tells the hooks too
	case first:
		if h := r.c.conn.hooks; h != nil {
			h.consumeFailed(r.c, err)
		}
	}
	r.signalStop()
}

// connGone ends the run because the connection closed for good, unless it
// is stopping anyway (Conn.Close stops its consumers before closing).
func (r *consumeRun) connGone() {
	if !r.stopped() { // not Close: reconnecting gave up
		r.fail(fmt.Errorf("%w: the connection closed and will not reconnect", ErrConnClosed))
	}
}

// outcome is the failure that ended the run, for a caller that is handed
// it (returnsEnd); nil otherwise.
func (r *consumeRun) outcome() error {
	if !r.returnsEnd {
		return nil
	}
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

// deliverErr reports one failure from the dispatcher: to the error handler,
// or else to the message handler's err.
func (r *consumeRun) deliverErr(err error) {
	err = opErr("consume", r.c.station, err)
	if fn := r.c.opts.ErrHandler; fn != nil {
		runUserCode(&r.user, func() { fn(r.c, err) })
		return
	}
	runUserCode(&r.user, func() { r.handler(nil, err, r.handlerCtx()) })
}

func (r *consumeRun) handlerCtx() context.Context {
	if r.ctx != nil {
		return r.ctx
	}
	return r.c.contextForHandler()
}

func (r *consumeRun) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// Consume starts consuming in the background: messages are handed to
// handler in batches of up to BatchSize as soon as they arrive, while the
// next pull is already in flight. With no ConsumingOpt every partition is
// read concurrently. Consume returns at once; StopConsume ends it.
func (c *Consumer) Consume(handler ConsumeHandler, opts ...ConsumingOpt) error {
	r, err := c.startRun(handler, nil, opts)
	if err != nil {
		return opErr("consume", c.station, err)
	}
	go r.dispatch()
	return nil
}

// ConsumeUntil consumes like Consume but blocks until ctx ends, StopConsume
// is called or a failure ends consuming (the station became unreachable,
// the connection closed). The handler receives ctx.
//
// It returns the failure that ended consuming, as an *OpError, unless the
// consumer has a ConsumerErrorHandler, which then receives it instead (and
// ConsumeUntil returns nil); after ctx ends, an *OpError wrapping ctx's
// error, so errors.Is(err, context.Canceled) (or DeadlineExceeded) holds;
// nil after StopConsume. Failures consuming recovers from go to the
// ConsumerErrorHandler, or else to handler as err.
func (c *Consumer) ConsumeUntil(ctx context.Context, handler ConsumeHandler, opts ...ConsumingOpt) error {
	r, err := c.startRun(handler, ctx, opts)
	if err != nil {
		return opErr("consume", c.station, err)
	}
	go r.dispatch()
	select {
	case <-ctx.Done():
		c.stopRun(r)
	case <-r.done:
	}
	// Both may be ready at once; the answer must not depend on which the
	// select picked: a failure that ended the run first, then the context.
	if err := r.outcome(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return opErr("consume", c.station, err)
	}
	return nil
}

// Messages returns an iterator over the consumer's messages, one at a
// time, until ctx ends or the loop breaks; once ctx has ended it yields
// nothing more. Messages buffered when it ends are returned to the group.
// A failure that ends consuming (the station became unreachable, the
// connection closed) is yielded once, as an *OpError, and ends the loop;
// failures consuming recovers from are logged at Error. With a
// ConsumerErrorHandler, that handler receives both kinds instead, and the
// loop ends without yielding an error.
func (c *Consumer) Messages(ctx context.Context, opts ...ConsumingOpt) iter.Seq2[*Msg, error] {
	return func(yield func(*Msg, error) bool) {
		r, err := c.startRun(nil, ctx, opts)
		if err != nil {
			yield(nil, opErr("consume", c.station, err))
			return
		}
		var pending []*Msg // received, not yet yielded
		defer func() {
			c.stopRun(r)
			nakAll(pending)
			r.finish()
		}()
		for {
			if ctx.Err() != nil {
				return // even with messages at hand: the loop ends with ctx
			}
			if len(pending) == 0 {
				batch, err := r.next(ctx.Done())
				switch {
				case err != nil:
					c.reportErr(err)
					continue
				case batch == nil:
					if ctx.Err() == nil {
						if err := r.outcome(); err != nil {
							yield(nil, err)
						}
					}
					return
				}
				pending = batch
			}
			m, one := pending[0], pending[:1]
			pending = pending[1:]
			h := c.conn.hooks
			if h != nil {
				h.consumeMessages(c, one, ctx)
			}
			start := time.Now()
			more := yield(m, nil)
			d := time.Since(start)
			if h != nil {
				h.consumeHandled(c, one, d)
			}
			if !more {
				return
			}
			r.handled(1, d)
		}
	}
}

func (c *Consumer) startRun(handler ConsumeHandler, ctx context.Context, opts []ConsumingOpt) (r *consumeRun, err error) {
	if h := c.conn.hooks; h != nil {
		defer func() {
			if err != nil {
				h.consumeFailed(c, err)
			}
		}()
	}
	if err := c.checkUsable(); err != nil {
		return nil, err
	}
	if handler == nil && ctx == nil {
		return nil, invalidf("the handler is nil")
	}
	co, err := c.consumingOptions(opts)
	if err != nil {
		return nil, err
	}
	r = &consumeRun{
		c: c, handler: handler, ctx: ctx,
		returnsEnd: ctx != nil && c.opts.ErrHandler == nil,
		out:        make(chan []*Msg, 2),
		errs:       make(chan error, errsBuffer),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	r.stopCtx, r.cancelStop = context.WithCancel(c.life)
	c.mu.Lock()
	if c.run != nil {
		select {
		case <-c.run.done:
		default:
			c.mu.Unlock()
			r.cancelStop()
			return nil, ErrAlreadyConsuming
		}
	}
	// A handler may stop and restart consuming from inside itself; the new
	// run's dispatcher then waits for that handler call to return.
	if handler != nil {
		r.prev = c.lastRun
	}
	c.lastRun = r
	c.run = r
	c.mu.Unlock()
	partitions := c.streamPartitions()
	if co.ConsumerPartitionNumber != 0 {
		partitions = []int{co.ConsumerPartitionNumber}
	}
	for _, p := range partitions {
		r.pullers.Add(1)
		go r.pull(p)
	}
	return r, nil
}

// StopConsume stops Consume (or ConsumeUntil). It returns after the
// running handler call returns and the loop's goroutines have ended; called
// from inside the handler it returns at once and the loop ends when the
// handler does. No message is handed over after it, and messages that were
// buffered are returned to the group at once. Idempotent.
func (c *Consumer) StopConsume() {
	c.mu.Lock()
	r := c.run
	c.mu.Unlock()
	if r != nil {
		c.stopRun(r)
	}
}

func (c *Consumer) stopRun(r *consumeRun) {
	r.signalStop()
	c.mu.Lock()
	if c.run == r {
		c.run = nil
	}
	c.mu.Unlock()
	if r.handler == nil || r.user.nestedIn() {
		return // the iterator joins itself; a handler can not wait for its own return
	}
	<-r.done
}

// dispatch hands batches and failures to the handlers, one call at a time.
func (r *consumeRun) dispatch() {
	defer r.finish()
	if r.prev != nil {
		<-r.prev.done
		r.prev = nil
	}
	c := r.c
	size := c.opts.BatchSize
	var carry []*Msg // a received batch that did not fit the last call
	for {
		batch := carry
		carry = nil
		if batch == nil {
			var err error
			switch batch, err = r.next(nil); {
			case err != nil:
				r.deliverErr(err)
				continue
			case batch == nil:
				return
			}
		}
		// Fill the call with whatever else is ready, other partitions and
		// re-sent dead letters included, up to BatchSize.
	fill:
		for len(batch) < size {
			select {
			case more := <-r.out:
				if len(batch)+len(more) > size {
					carry = more
					break fill
				}
				batch = append(batch, more...)
			case m := <-c.resent:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		if r.stopped() {
			nakAll(batch)
			nakAll(carry)
			return
		}
		ctx, h := r.handlerCtx(), c.conn.hooks
		var d time.Duration
		runUserCode(&r.user, func() {
			if h != nil {
				h.consumeMessages(c, batch, ctx)
			}
			start := time.Now()
			r.handler(batch, nil, ctx)
			d = time.Since(start)
			if h != nil {
				h.consumeHandled(c, batch, d)
			}
		})
		r.handled(len(batch), d)
	}
}

// next waits for what the handler side takes next: a batch the pullers
// received, a message re-sent from the dead-letter station, or a failure
// (err). While it waits, the pullers see that the handler is idle
// (adaptDepth). It returns nil, nil once the run stopped or done closed (a
// nil done never does).
func (r *consumeRun) next(done <-chan struct{}) ([]*Msg, error) {
	select {
	case batch := <-r.out: // one was waiting for the handler
		return batch, nil
	default:
	}
	r.waiting.Store(true)
	defer r.waiting.Store(false)
	select {
	case batch := <-r.out:
		return batch, nil
	case m := <-r.c.resent:
		return []*Msg{m}, nil
	case err := <-r.errs:
		return nil, err
	case <-r.stop:
	case <-done:
	}
	return nil, nil
}

// handled records how long the handler took for n messages.
func (r *consumeRun) handled(n int, d time.Duration) {
	per := int64(d) / int64(n)
	if old := r.nsPerMsg.Load(); old > 0 {
		per = (7*old + per) / 8
	}
	r.nsPerMsg.Store(max(per, 1))
}

// finish joins the pullers, returns buffered messages to the group and
// reports failures still queued: on the dispatcher they reach the
// handlers, after an iterator the error handler or the log.
func (r *consumeRun) finish() {
	r.signalStop()
	r.pullers.Wait()
	for {
		select {
		case batch := <-r.out:
			nakAll(batch)
		case err := <-r.errs:
			if r.handler != nil {
				r.deliverErr(err)
			} else {
				r.c.reportErr(err)
			}
		default:
			close(r.done)
			return
		}
	}
}
