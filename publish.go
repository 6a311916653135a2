package memphis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// PubAck is the broker's acknowledgement of a produced message.
type PubAck struct {
	// Station is the internal name of the stream's station.
	Station string
	// Partition is the partition the message was stored in (0 for a legacy
	// station without partitions).
	Partition int
	// Sequence is the message's sequence number in its partition.
	Sequence uint64
	// Duplicate is true when the broker dropped the message because its
	// MsgId was seen inside the idempotency window.
	Duplicate bool
}

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
	station   string
	partition int
	done      func(PubAck, error) // async with a callback
	rec       *ProduceRecord      // the hooks' record; nil without produce hooks
	sync      bool
	spare     bool // holds a spare slot
	retire    bool // its reply subject may still be answered: do not pool it
}

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
	if a.cb.onGoroutine() {
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
	err := a.c.nc.PublishMsg(msg)
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
		err = fmt.Errorf("%w: %d bytes with headers exceed the broker's max payload of %d: %w",
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
	ack.Station, ack.Partition = req.station, req.partition
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
	case req.done == nil:
		err = p.asyncFailure(err)
	}
	a.cb.push(a, cbItem{req: req, ack: ack, err: err})
	a.decided(p) // after the push, so that a Flush that sees zero finds it queued
}

// deliver runs on the callback goroutine: one request's user code, then its
// release.
func (a *acker) deliver(it cbItem) {
	if it.barrier != nil {
		close(it.barrier)
		return
	}
	req := it.req
	if req.done != nil {
		req.done(it.ack, it.err)
	} else {
		req.producer.reportAsync(it.err)
	}
	a.release(req)
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
			a.complete(req, PubAck{Station: req.station, Partition: req.partition},
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
		a.complete(req, PubAck{Station: req.station, Partition: req.partition}, err, false)
	}
}

// flush waits until the producer's (or, for nil, every) outstanding produce
// has completed and its callback has run. flush(nil) is Close's drain: from
// then on, produces fail with ErrConnClosed.
//
// On the callback goroutine it waits until every outcome is known, but not
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
	if a.cb.onGoroutine() {
		return nil
	}
	return a.cb.barrier(a, ctx)
}

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
	gid      atomic.Uint64 // the goroutine's id, for onGoroutine
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
	ready := make(chan struct{})
	go q.run(a, ready)
	<-ready
}

func (q *callbacks) run(a *acker, ready chan<- struct{}) {
	q.gid.Store(goid())
	close(ready)
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
// called on it.
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
	if !q.onGoroutine() {
		<-q.done
	}
}

// onGoroutine reports whether the caller runs on the callback goroutine.
func (q *callbacks) onGoroutine() bool {
	id := q.gid.Load()
	return id != 0 && id == goid()
}

// jsPubAck is JetStream's publish acknowledgement.
type jsPubAck struct {
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
	Error     *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

func parsePubAck(m *nats.Msg) (PubAck, error) {
	if seq, dup, ok := scanPubAck(m.Data); ok {
		return PubAck{Sequence: seq, Duplicate: dup}, nil
	}
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		return PubAck{}, fmt.Errorf("%w: no stream accepts the message (was the station destroyed?)", ErrStationNotFound)
	}
	var pa jsPubAck
	if err := json.Unmarshal(m.Data, &pa); err != nil {
		return PubAck{}, fmt.Errorf("bad acknowledgement %q: %w", m.Data, err)
	}
	if pa.Error != nil {
		return PubAck{}, newBrokerError(fmt.Sprintf("%s (%d)", pa.Error.Description, pa.Error.ErrCode))
	}
	return PubAck{Sequence: pa.Seq, Duplicate: pa.Duplicate}, nil
}

// scanPubAck reads a successful acknowledgement as the server writes it —
// one flat JSON object such as {"stream":"s$1","domain":"d","seq":5,
// "duplicate":true} — without reflection or allocation. ok is false for
// anything else (an error, nesting, escapes, spaces), which is then left to
// encoding/json.
func scanPubAck(b []byte) (seq uint64, dup, ok bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return 0, false, false
	}
	b = b[1 : len(b)-1]
	haveSeq := false
	for len(b) > 0 {
		if b[0] != '"' {
			return 0, false, false
		}
		end := bytes.IndexByte(b[1:], '"')
		if end < 0 {
			return 0, false, false
		}
		key := b[1 : 1+end]
		b = b[2+end:]
		if len(b) == 0 || b[0] != ':' {
			return 0, false, false
		}
		b = b[1:]
		var val []byte
		str := len(b) > 0 && b[0] == '"'
		if str {
			end := bytes.IndexByte(b[1:], '"')
			if end < 0 {
				return 0, false, false
			}
			val, b = b[1:1+end], b[2+end:]
			if bytes.IndexByte(val, '\\') >= 0 {
				return 0, false, false
			}
		} else {
			end := bytes.IndexByte(b, ',')
			if end < 0 {
				end = len(b)
			}
			val, b = b[:end], b[end:]
		}
		switch string(key) {
		case "seq":
			// JSON numbers have no leading zeros; leave anything unusual
			// to encoding/json.
			if str || haveSeq || len(val) == 0 || len(val) > 19 || (len(val) > 1 && val[0] == '0') {
				return 0, false, false
			}
			for _, c := range val {
				if c < '0' || c > '9' {
					return 0, false, false
				}
				seq = seq*10 + uint64(c-'0')
			}
			haveSeq = true
		case "duplicate":
			switch {
			case !str && string(val) == "true":
				dup = true
			case !str && string(val) == "false":
				dup = false
			default:
				return 0, false, false
			}
		case "stream", "domain":
			if !str {
				return 0, false, false
			}
		default:
			// An error, or a field this parser does not know.
			return 0, false, false
		}
		if len(b) > 0 {
			if b[0] != ',' || len(b) == 1 {
				return 0, false, false
			}
			b = b[1:]
		}
	}
	return seq, dup, haveSeq
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
