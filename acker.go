package memphis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// acker routes the broker's publish acknowledgements of one connection.
// Every produce, sync or async, is a JetStream publish whose reply subject
// is prefix+token on one wildcard subscription; the acker matches the reply
// to the waiting produce. It bounds how many may be outstanding (slots),
// times them out, and fails them when the connection drops or closes, so
// that no produce waits forever and no outcome is lost.
//
// A request's life: acquire takes a slot and a pubReq; send registers it in
// pending and publishes; exactly one completer takes it out of pending (the
// reply, the janitor, failAll, a sync waiter whose context ended, or send
// itself when the publish failed) and decides its outcome. The counts Flush
// waits on drop when the outcome is decided; the slot is given back once the
// outcome has been delivered (the sync waiter received it, or its callback
// has run), so the callback queue never holds more than the slots.
//
// Goroutines: the reply subscription's callback and the janitor (timeouts)
// only decide outcomes. User code — done callbacks, error handlers and the
// logger — runs on the callback goroutine alone (see callbacks), never on
// those two, so a callback may call any SDK method, Close included, and a
// sync produce issued inside a callback gets its acknowledgement.
type acker struct {
	c      *Conn
	prefix string
	sub    *nats.Subscription
	next   atomic.Uint64
	slots  chan struct{} // one per outstanding produce, MaxPending
	spare  chan struct{} // as many again, only for produces issued by callbacks
	reqs   sync.Pool     // of *pubReq
	epoch  time.Time     // deadlines are monotonic nanoseconds since epoch

	// closing: Close began, so produces fail fast with ErrConnClosed.
	closing atomic.Bool

	mu      sync.Mutex
	pending map[uint64]*pubReq // by reply token
	closed  bool               // stop ran: nothing more is registered

	all  pendingCount // undecided produces of the connection
	cb   callbacks
	kick chan struct{}
	quit chan struct{}
	wg   sync.WaitGroup
}

// pubReq is one produce awaiting its acknowledgement. The pubReqs are
// pooled: one whose request ended with the broker's reply keeps its reply
// subject for its next request (that subject gets no other answer); one
// whose request ended otherwise (timeout, disconnect, close, cancelled wait)
// is retired, because a late answer to its subject may still come.
//
// Its owner is, in turn: the producing goroutine until send registers it;
// the acker (pending, under acker.mu); the completer that took it out; then
// the sync waiter or the callback goroutine, which releases it.
type pubReq struct {
	reply     string // prefix + token in base 36
	token     uint64
	ch        chan pubResult // a sync produce's outcome; buffered, empty when released
	deadline  int64          // acker.now() after which the janitor fails it
	producer  *Producer
	name      string // the station's name, for PubAck and errors
	partition int
	done      func(PubAck, error) // async with a callback
	rec       *ProduceRecord      // the hooks' record; nil without produce hooks
	sync      bool
	spare     bool // holds a spare slot
	retire    bool // its reply subject may still be answered: do not pool it
}

// target is what a PubAck says of a request the broker did not answer:
// where the message was going.
func (req *pubReq) target() PubAck { return PubAck{Station: req.name, Partition: req.partition} }

type pubResult struct {
	ack PubAck
	err error
}

func newAcker(c *Conn) *acker {
	a := &acker{
		c:       c,
		prefix:  "_INBOX." + nuid.Next() + ".",
		slots:   make(chan struct{}, c.opts.MaxPending),
		spare:   make(chan struct{}, c.opts.MaxPending),
		epoch:   time.Now(),
		pending: make(map[uint64]*pubReq),
		kick:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
	}
	a.reqs.New = func() any { return &pubReq{ch: make(chan pubResult, 1)} }
	return a
}

func (a *acker) start() error {
	sub, err := a.c.nc.Subscribe(a.prefix+"*", a.onReply)
	if err != nil {
		return err
	}
	// Acks must never be dropped by a slow consumer limit: the number
	// outstanding is already bounded by slots.
	_ = sub.SetPendingLimits(-1, -1)
	a.sub = sub
	a.wg.Add(1)
	go a.janitor()
	a.cb.start(a)
	return nil
}

// stop fails whatever is still pending with ErrConnClosed, delivers those
// outcomes and ends the acker's goroutines. Called on the callback
// goroutine (Close inside a callback), it does not wait for that goroutine,
// which ends once the running callback returns and the queue is drained.
func (a *acker) stop() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	a.closing.Store(true)
	a.mu.Unlock()
	close(a.quit)
	a.wg.Wait()
	if a.sub != nil {
		_ = a.sub.Unsubscribe()
	}
	a.failAll(ErrConnClosed)
	// A completer that took a request before failAll (a reply being
	// handled) may still be handing its outcome over; the count drops right
	// after it has, and nothing can be registered any more.
	_ = a.all.wait(context.Background())
	a.cb.stop()
}

// now is the acker's monotonic clock for deadlines.
func (a *acker) now() int64 { return int64(time.Since(a.epoch)) }

// acquire takes a slot and a pubReq for one produce. With every slot taken
// it waits for one, bounded by ctx and by wait; a produce issued from a
// callback may also take a spare slot, since the slots it would wait for
// may be held by the callbacks queued behind its own.
func (a *acker) acquire(ctx context.Context, wait time.Duration) (*pubReq, error) {
	spare := false
	select {
	case a.slots <- struct{}{}:
	default:
		var err error
		if spare, err = a.waitSlot(ctx, wait); err != nil {
			return nil, err
		}
	}
	if a.closing.Load() {
		a.giveSlot(spare)
		return nil, ErrConnClosed
	}
	req := a.reqs.Get().(*pubReq)
	req.spare = spare
	return req, nil
}

func (a *acker) waitSlot(ctx context.Context, wait time.Duration) (spare bool, err error) {
	var spareSlots chan struct{} // nil: never ready
	if a.cb.user.nestedIn() {
		spareSlots = a.spare
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		return false, nil
	case spareSlots <- struct{}{}:
		return true, nil
	case <-ctx.Done():
		return false, fmt.Errorf("%w: %w", ErrMaxPending, ctx.Err())
	case <-t.C:
		return false, fmt.Errorf("%w: no room within %v: %w", ErrMaxPending, wait, context.DeadlineExceeded)
	case <-a.quit:
		return false, ErrConnClosed
	}
}

func (a *acker) giveSlot(spare bool) {
	if spare {
		<-a.spare
	} else {
		<-a.slots
	}
}

// release ends a request whose outcome has been delivered.
func (a *acker) release(req *pubReq) {
	spare := req.spare
	if !req.retire {
		*req = pubReq{reply: req.reply, token: req.token, ch: req.ch}
		a.reqs.Put(req)
	}
	a.giveSlot(spare)
}

// send registers req and publishes msg with req's reply subject; ackWait
// starts now. For a sync request the caller then waits with wait. A nil
// error means req will complete exactly once; otherwise it never will, and
// it has been released.
func (a *acker) send(msg *nats.Msg, req *pubReq, ackWait time.Duration) error {
	if req.reply == "" {
		req.token = a.next.Add(1)
		req.reply = a.prefix + strconv.FormatUint(req.token, 36)
	}
	key, p := req.token, req.producer
	msg.Reply = req.reply
	if a.all.add() == 1 {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
	p.inflight.add()
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		a.ended(req, PubAck{}, ErrConnClosed)
		a.decided(p)
		a.release(req)
		return ErrConnClosed
	}
	req.deadline = a.now() + int64(ackWait)
	a.pending[key] = req
	a.mu.Unlock()
	// req may be completed and recycled from here on: only key and p are ours.
	err := a.c.out.publish(msg, key)
	if err == nil {
		return nil
	}
	if a.take(key) == nil {
		// Completed concurrently (failAll on a disconnect): its outcome is
		// on its way to the callback or the waiter.
		return nil
	}
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		err = fmt.Errorf("%w: a %d-byte payload with its headers exceeds the broker's max payload of %d: %w",
			ErrMessageTooLarge, len(msg.Data), a.c.nc.MaxPayload(), err)
	case errors.Is(err, nats.ErrConnectionClosed):
		err = fmt.Errorf("%w: %w", ErrConnClosed, err)
	}
	a.ended(req, PubAck{}, err)
	req.retire = true
	a.decided(p)
	a.release(req)
	return err
}

// wait blocks until a sync request completes or ctx ends, and releases it.
func (a *acker) wait(ctx context.Context, req *pubReq) (PubAck, error) {
	var r pubResult
	select {
	case r = <-req.ch:
	case <-ctx.Done():
		if a.take(req.token) != nil {
			err := fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
			a.ended(req, PubAck{}, err)
			req.retire = true
			a.decided(req.producer)
			a.release(req)
			return PubAck{}, err
		}
		r = <-req.ch // completed concurrently; its result is on the way
	}
	a.release(req)
	return r.ack, r.err
}

// isPending reports whether a request awaits its outcome.
func (a *acker) isPending(token uint64) bool {
	a.mu.Lock()
	_, ok := a.pending[token]
	a.mu.Unlock()
	return ok
}

// take removes a pending request, returning nil if it already completed.
func (a *acker) take(token uint64) *pubReq {
	a.mu.Lock()
	req := a.pending[token]
	if req != nil {
		delete(a.pending, token)
	}
	a.mu.Unlock()
	return req
}

// ended runs the end hooks of req's produce, if hooks saw it start. It is
// called before the outcome is handed over, while req is still the
// completer's.
func (a *acker) ended(req *pubReq, ack PubAck, err error) {
	if req.rec != nil {
		a.c.hooks.produceEnd(req.rec, ack, err)
	}
}

// decided drops the counts Flush waits on, once an outcome is known.
func (a *acker) decided(p *Producer) {
	p.inflight.done()
	a.all.done()
}

func (a *acker) onReply(m *nats.Msg) {
	if len(m.Subject) <= len(a.prefix) {
		return
	}
	token, err := strconv.ParseUint(m.Subject[len(a.prefix):], 36, 64)
	if err != nil {
		return // not a reply of ours
	}
	req := a.take(token)
	if req == nil {
		return // timed out or failed already
	}
	ack, err := parsePubAck(m)
	ack.Station, ack.Partition = req.name, req.partition
	a.complete(req, ack, err, true)
}

// complete hands a request's outcome over, by the completer that took it
// out of pending: to the sync waiter, or to the callback goroutine when
// user code must run (a done callback, or a failure to report). answered is
// false unless the broker's reply decided it.
func (a *acker) complete(req *pubReq, ack PubAck, err error, answered bool) {
	a.ended(req, ack, err)
	p := req.producer
	req.retire = !answered
	switch {
	case req.sync:
		req.ch <- pubResult{ack, err}
		a.decided(p) // req now belongs to the waiter
		return
	case req.done == nil && err == nil:
		a.decided(p)
		a.release(req)
		return
	case err != nil:
		err = opErr("produce", req.name, err)
		if req.done == nil {
			err = p.asyncFailure(err)
		}
	}
	a.cb.push(a, cbItem{req: req, ack: ack, err: err})
	a.decided(p) // after the push, so that a Flush that sees zero finds it queued
}

// janitor times out requests whose acknowledgement is overdue.
func (a *acker) janitor() {
	defer a.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if a.all.n.Load() == 0 {
			select {
			case <-a.kick:
			case <-a.quit:
				return
			}
			continue
		}
		select {
		case <-t.C:
		case <-a.quit:
			return
		}
		now := a.now()
		var expired []*pubReq
		a.mu.Lock()
		for k, req := range a.pending {
			if now > req.deadline {
				delete(a.pending, k)
				expired = append(expired, req)
			}
		}
		a.mu.Unlock()
		for _, req := range expired {
			a.complete(req, req.target(),
				fmt.Errorf("%w: no acknowledgement from the broker", ErrTimeout), false)
		}
	}
}

// failAll completes every pending request with err; the outcome of each is
// unknown, so callers hear about it instead of waiting for the timeout.
func (a *acker) failAll(err error) {
	a.mu.Lock()
	reqs := make([]*pubReq, 0, len(a.pending))
	for k, req := range a.pending {
		delete(a.pending, k)
		reqs = append(reqs, req)
	}
	a.mu.Unlock()
	for _, req := range reqs {
		a.complete(req, req.target(), err, false)
	}
}

// flush waits until the producer's (or, for nil, every) outstanding produce
// has completed and its callback has run. flush(nil) is Close's drain: from
// then on, produces fail with ErrConnClosed.
//
// Called from a callback, it waits until every outcome is known, but not
// for the callbacks queued behind the running one: they run after it.
func (a *acker) flush(ctx context.Context, p *Producer) error {
	pc := &a.all
	if p == nil {
		a.closing.Store(true)
	} else {
		pc = &p.inflight
	}
	if err := pc.wait(ctx); err != nil {
		return err
	}
	if a.cb.user.nestedIn() {
		return nil
	}
	return a.cb.barrier(a, ctx)
}

// pendingCount counts outstanding work and lets callers wait for zero. The
// count itself is one atomic, so producing takes no lock; waiters meet
// decrements under mu only around zero.
type pendingCount struct {
	n       atomic.Int64
	waiters atomic.Int32
	mu      sync.Mutex
	zero    chan struct{} // closed when n drops to 0 while someone waits
}

// add counts one more and returns the new count.
func (pc *pendingCount) add() int64 { return pc.n.Add(1) }

func (pc *pendingCount) done() {
	if pc.n.Add(-1) != 0 || pc.waiters.Load() == 0 {
		return
	}
	pc.mu.Lock()
	if pc.zero != nil && pc.n.Load() == 0 {
		close(pc.zero)
		pc.zero = nil
	}
	pc.mu.Unlock()
}

func (pc *pendingCount) wait(ctx context.Context) error {
	if pc.n.Load() == 0 {
		return nil
	}
	pc.waiters.Add(1)
	defer pc.waiters.Add(-1)
	for {
		pc.mu.Lock()
		if pc.n.Load() == 0 {
			pc.mu.Unlock()
			return nil
		}
		if pc.zero == nil {
			pc.zero = make(chan struct{})
		}
		ch := pc.zero
		pc.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: %d produces still unacknowledged: %w", ErrTimeout, pc.n.Load(), ctx.Err())
		}
	}
}
