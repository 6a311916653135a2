package memphis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// ConsumeHandler receives batches of messages from Consume, with the
// consumer's context (see SetContext). A call carries either messages (err
// nil) or, when the consumer has no ConsumerErrorHandler, a background
// failure with no messages (err non-nil), e.g. ErrStationUnreachable.
type ConsumeHandler func(msgs []*Msg, err error, ctx context.Context)

// consumeRun is one Consume, ConsumeContext or Messages loop.
//
// Goroutines: one puller per partition, each running the pull protocol on
// its own inbox and passing messages to out and failures to errs; and for
// Consume one dispatcher that hands batches and failures to the handlers,
// so no handler runs concurrently with itself and a handler may call
// StopConsume, Destroy or Close. Stopping closes stop; the dispatcher (or
// the Messages iterator) joins the pullers, returns buffered messages to
// the group with a nak, and closes done.
type consumeRun struct {
	c          *Consumer
	handler    ConsumeHandler
	ctx        context.Context // the handler's context for ConsumeContext; nil: use SetContext's
	prev       *consumeRun     // the consumer's run before this one, whose handler must return first
	out        chan []*Msg     // batches of up to BatchSize, from one partition each
	errs       chan error
	stop       chan struct{}
	stopOnce   sync.Once
	done       chan struct{}
	pullers    sync.WaitGroup
	dispatcher atomic.Uint64 // goroutine id of the dispatcher

	// What the pullers adapt their depth to (adaptDepth): whether the
	// handler side is waiting for a batch now, and how long it takes per
	// message (a moving average; 0 until it handled some).
	waiting  atomic.Bool
	nsPerMsg atomic.Int64

	errMu sync.Mutex
	err   error // the failure that ended the run, if one did
}

// errsBuffer bounds the failures waiting to be reported; pullers report one
// per streak of the same failure, so it only fills if the handler is stuck.
const errsBuffer = 16

func (r *consumeRun) signalStop() { r.stopOnce.Do(func() { close(r.stop) }) }

// report hands a background failure to the goroutine that reports it,
// never blocking a puller.
func (r *consumeRun) report(err error) {
	if h := r.c.conn.hooks; h != nil {
		h.consumeFailed(r.c, err)
	}
	select {
	case r.errs <- err:
	default:
		r.c.conn.log.Error("memphis: consumer error not delivered, the handler is busy", "station", r.c.station, "err", err)
	}
}

// fail ends the run because of err, which is reported and kept as the
// run's outcome.
func (r *consumeRun) fail(err error) {
	r.errMu.Lock()
	if r.err == nil {
		r.err = opErr("consume", r.c.station, err)
	}
	r.errMu.Unlock()
	r.report(err)
	r.signalStop()
}

func (r *consumeRun) outcome() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

// deliverErr reports one failure from the dispatcher: to the error handler,
// or else to the message handler's err.
func (r *consumeRun) deliverErr(err error) {
	err = opErr("consume", r.c.station, err)
	if fn := r.c.opts.ErrHandler; fn != nil {
		fn(r.c, err)
		return
	}
	r.handler(nil, err, r.handlerCtx())
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

// ConsumeContext consumes like Consume but blocks until ctx ends, StopConsume
// is called or a failure ends consuming (the station became unreachable,
// the connection closed). The handler receives ctx. It returns nil after
// StopConsume, ctx.Err() after ctx ends, and the failure otherwise.
func (c *Consumer) ConsumeContext(ctx context.Context, handler ConsumeHandler, opts ...ConsumingOpt) error {
	r, err := c.startRun(handler, ctx, opts)
	if err != nil {
		return opErr("consume", c.station, err)
	}
	go r.dispatch()
	select {
	case <-ctx.Done():
		c.stopRun(r)
		return ctx.Err()
	case <-r.done:
		return r.outcome()
	}
}

// Messages returns an iterator over the consumer's messages, one at a
// time, until ctx ends or the loop breaks. Messages buffered when it ends
// are returned to the group. A failure that ends consuming (the station
// became unreachable, the connection closed) is yielded once and ends the
// loop; other failures go to the ConsumerErrorHandler, if any.
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
			if len(pending) == 0 {
				select {
				case pending = <-r.out: // a batch was waiting for the loop
				default:
					r.waiting.Store(true)
					select {
					case pending = <-r.out:
					case m := <-c.resent:
						pending = []*Msg{m}
					case err := <-r.errs:
						r.waiting.Store(false)
						c.reportErr(err)
						continue
					case <-r.stop:
						if err := r.outcome(); err != nil {
							yield(nil, err)
						}
						return
					case <-ctx.Done():
						return
					}
					r.waiting.Store(false)
				}
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
		return nil, fmt.Errorf("%w: the handler is nil", ErrInvalidOption)
	}
	co, err := c.consumingOptions(opts)
	if err != nil {
		return nil, err
	}
	r = &consumeRun{
		c: c, handler: handler, ctx: ctx,
		out:  make(chan []*Msg, 2),
		errs: make(chan error, errsBuffer),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	c.mu.Lock()
	if c.run != nil {
		select {
		case <-c.run.done:
		default:
			c.mu.Unlock()
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

// StopConsume stops Consume (or ConsumeContext). It returns after the
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
	if r.handler == nil || r.dispatcher.Load() == goid() {
		return // the iterator joins itself; a handler can not wait for its own return
	}
	<-r.done
}

// dispatch hands batches and failures to the handlers, one call at a time.
func (r *consumeRun) dispatch() {
	r.dispatcher.Store(goid())
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
			select {
			case batch = <-r.out: // a batch was waiting for the handler
			default:
				r.waiting.Store(true)
				select {
				case batch = <-r.out:
				case m := <-c.resent:
					batch = []*Msg{m}
				case err := <-r.errs:
					r.waiting.Store(false)
					r.deliverErr(err)
					continue
				case <-r.stop:
					return
				}
				r.waiting.Store(false)
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
		if h != nil {
			h.consumeMessages(c, batch, ctx)
		}
		start := time.Now()
		r.handler(batch, nil, ctx)
		d := time.Since(start)
		r.handled(len(batch), d)
		if h != nil {
			h.consumeHandled(c, batch, d)
		}
	}
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

// pull runs the pull protocol for one partition until the run stops. It
// keeps up to depth messages requested: when half of them or fewer are
// outstanding it asks for the rest, so the next messages are on their way
// while the handler works. depth adapts (see adaptDepth). After a pull that
// expired empty it waits PullInterval.
func (r *consumeRun) pull(partition int) {
	defer r.pullers.Done()
	c := r.c
	size := c.opts.BatchSize
	expires := c.opts.BatchMaxTimeToWait
	stream := wire.StreamName(c.st.intern, partition)
	subject := nextSubject(stream, c.durable)
	nc := c.conn.nc
	inbox := nc.NewInbox()
	// Sized for everything that can be outstanding, so nats.go never has to
	// drop a message for a full channel.
	depth := pullDepth(size)
	ch := make(chan *nats.Msg, maxPullDepth(size)+32)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		r.fail(mapNATSErr(err))
		return
	}
	defer closeInbox(sub, ch)

	var (
		outstanding int
		received    int  // messages since the last pull request
		idle        bool // the last request expired without a message
		lastErr     string
		reconnect   = c.conn.reconnectSignal()
		timer       = time.NewTimer(time.Hour)
	)
	defer timer.Stop()
	report := func(err error) {
		if err.Error() != lastErr { // one report per streak of the same failure
			lastErr = err.Error()
			r.report(err)
		}
	}
	pause := func(d time.Duration) bool {
		if d <= 0 {
			return true
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-reconnect:
			reconnect = c.conn.reconnectSignal()
			return true
		case <-r.stop:
			return false
		}
	}
	for {
		if outstanding <= depth/2 {
			if idle && !pause(c.opts.PullInterval) {
				return
			}
			idle = false
			n := depth - outstanding
			if err := c.sendPull(subject, inbox, n, expires); err != nil {
				if errors.Is(err, nats.ErrConnectionClosed) {
					if !r.stopped() { // not Close: reconnecting gave up
						r.fail(fmt.Errorf("%w: the connection closed and will not reconnect", ErrConnClosed))
					}
					return
				}
				report(mapNATSErr(err))
				if !pause(c.opts.PullInterval) {
					return
				}
				continue
			}
			outstanding += n
			received = 0
			timer.Reset(expires + lostPullMargin(expires))
		}
		select {
		case m := <-ch:
			// Take everything already here, up to a batch, and hand it over
			// at once: one hand-off per batch, not per message.
			var batch []*Msg
			failed, failure := false, ""
		gather:
			for {
				status, pending, desc := classify(m)
				switch status {
				case statusMsg:
					outstanding--
					received++
					if batch == nil {
						batch = make([]*Msg, 0, size)
					}
					batch = append(batch, newMsg(m, c, partition))
				case statusHeartbeat:
				case statusExpired:
					outstanding = max(0, outstanding-pending)
					if pending == 0 {
						outstanding = 0
					}
					idle = received == 0
				case statusNoStream, statusConflict:
					outstanding = 0
					failed, failure = true, desc
					break gather
				}
				if len(batch) == size {
					break gather
				}
				select {
				case m = <-ch:
				default:
					break gather
				}
			}
			if len(batch) > 0 {
				lastErr = ""
				timer.Reset(expires + lostPullMargin(expires))
				awaited := r.waiting.Load() // the handler side was idle, waiting for this
				blocked := false
				select {
				case r.out <- batch:
				default:
					blocked = true
					select {
					case r.out <- batch:
					case <-r.stop:
						nakAll(batch)
						return
					}
				}
				depth = adaptDepth(depth, size, awaited, blocked, batch[len(batch)-1].raw.Reply,
					time.Duration(r.nsPerMsg.Load()), c.opts.MaxAckTime)
			}
			if failed {
				err := c.diagnose(context.Background(), stream, failure)
				if errors.Is(err, ErrStationUnreachable) {
					r.fail(err)
					return
				}
				report(err)
				idle = true
			}
		case <-timer.C:
			// No reply to what we asked for: the request was lost (a broker
			// restart, a dropped route). Ask again.
			outstanding = 0
		case <-reconnect:
			// Pull requests die with the old connection.
			reconnect = c.conn.reconnectSignal()
			outstanding = 0
			idle = false
		case <-r.stop:
			return
		}
	}
}

// minPullDepth is how many messages a puller keeps requested at least,
// whatever the batch size: with the default batch of 10 a round trip per
// 10 messages would cap throughput well below what JetStream delivers.
const minPullDepth = 64

// pullDepth is where a puller's depth starts and the least it falls to:
// two batches, and at least minPullDepth. It bounds what waits in the SDK
// while a slow handler works: pullDepth + BatchSize messages of a
// partition, all within MaxAckTime as long as the handler handles a batch
// in MaxAckTime*BatchSize/pullDepth.
func pullDepth(batchSize int) int { return max(2*batchSize, minPullDepth) }

// maxPullDepth is the most a puller keeps requested: eight times its
// starting depth (512 messages with the default batch size), about what
// nats.go's own pull consumer keeps requested.
func maxPullDepth(batchSize int) int { return 8 * pullDepth(batchSize) }

// adaptDepth sets a puller's depth after it hands over a batch.
//
// It doubles, up to maxPullDepth, when the handler side was idle waiting
// for the batch (awaited) while the broker holds more messages for the
// group than are requested: the handler is faster than one pull's round
// trip, and a deeper request keeps deliveries from waiting for it. It
// halves, down to pullDepth, when the batch had to wait for the handler
// (blocked). And it never holds more than the handler, at its measured
// pace per message, gets through in a quarter of MaxAckTime (but at least
// pullDepth), so what waits in the SDK is acknowledged in time; until the
// pace is known it stays as it is.
//
// reply is the last message's ack subject, which carries the count of
// messages pending for the group.
func adaptDepth(depth, batchSize int, awaited, blocked bool, reply string, perMsg, maxAckTime time.Duration) int {
	if perMsg <= 0 {
		return depth // the handler's pace is not known yet
	}
	switch {
	case blocked:
		depth /= 2
	case awaited:
		if pending, ok := ackPending(reply); ok && pending > depth {
			depth *= 2
		}
	}
	limit := min(maxPullDepth(batchSize), int(maxAckTime/4/perMsg))
	return max(min(depth, limit), pullDepth(batchSize))
}

// ackPending reads the count of messages pending for the group from a
// JetStream ack subject: token 8 of the v1 form
// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>, or
// token 10 of the v2 form, which adds a domain and an account hash after
// ACK and may end with a random token.
func ackPending(reply string) (int, bool) {
	var tokens [12]string
	n := 0
	for t := range strings.SplitSeq(reply, ".") {
		if n == len(tokens) {
			break
		}
		tokens[n] = t
		n++
	}
	var tok string
	switch {
	case n == 9:
		tok = tokens[8]
	case n >= 11:
		tok = tokens[10]
	default:
		return 0, false
	}
	pending, err := strconv.Atoi(tok)
	return pending, err == nil
}

// goid returns the calling goroutine's id. StopConsume uses it only to
// tell a call from inside the handler, which must not wait for itself.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}
