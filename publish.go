package memphis

import (
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
// times them out, and fails them when the connection drops, so that no
// produce waits forever and no failure is lost.
//
// Goroutines: the subscription's callback (replies) and the janitor
// (timeouts). Both complete requests through complete, which runs user
// callbacks one at a time under cbMu.
type acker struct {
	c      *Conn
	prefix string
	sub    *nats.Subscription
	next   atomic.Uint64
	slots  chan struct{}

	mu      sync.Mutex
	pending map[string]*pubReq
	all     pendingCount

	cbMu sync.Mutex
	kick chan struct{}
	quit chan struct{}
	wg   sync.WaitGroup
}

// pubReq is one produce awaiting its acknowledgement.
type pubReq struct {
	reply     string
	deadline  time.Time
	producer  *Producer
	station   string
	partition int
	// Exactly one of done (async) and ch (sync) is set.
	done func(PubAck, error)
	ch   chan pubResult
}

type pubResult struct {
	ack PubAck
	err error
}

func newAcker(c *Conn) *acker {
	return &acker{
		c:       c,
		prefix:  "_INBOX." + nuid.Next() + ".",
		slots:   make(chan struct{}, c.opts.MaxPending),
		pending: make(map[string]*pubReq),
		kick:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
	}
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
	return nil
}

// stop fails whatever is still pending and ends the janitor.
func (a *acker) stop() {
	select {
	case <-a.quit:
		return
	default:
	}
	close(a.quit)
	a.wg.Wait()
	_ = a.sub.Unsubscribe()
	a.failAll(ErrConnClosed)
}

// publish sends msg with a reply subject of its own and registers req. For
// a sync request the caller then waits with wait.
func (a *acker) publish(ctx context.Context, msg *nats.Msg, req *pubReq) error {
	select {
	case a.slots <- struct{}{}:
	default:
		select {
		case a.slots <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrMaxPending, ctx.Err())
		case <-a.quit:
			return ErrConnClosed
		}
	}
	req.reply = a.prefix + strconv.FormatUint(a.next.Add(1), 36)
	msg.Reply = req.reply
	a.all.add()
	if req.producer != nil {
		req.producer.inflight.add()
	}
	a.mu.Lock()
	first := len(a.pending) == 0
	a.pending[req.reply] = req
	a.mu.Unlock()
	if first {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
	if err := a.c.nc.PublishMsg(msg); err != nil {
		if a.take(req.reply) != nil {
			a.finish(req)
		}
		switch {
		case errors.Is(err, nats.ErrMaxPayload):
			return fmt.Errorf("%w: %d bytes with headers exceed the broker's max payload of %d: %w",
				ErrMessageTooLarge, len(msg.Data), a.c.nc.MaxPayload(), err)
		case errors.Is(err, nats.ErrConnectionClosed):
			return fmt.Errorf("%w: %w", ErrConnClosed, err)
		}
		return err
	}
	return nil
}

// wait blocks until a sync request completes or ctx ends.
func (a *acker) wait(ctx context.Context, req *pubReq) (PubAck, error) {
	select {
	case r := <-req.ch:
		return r.ack, r.err
	case <-ctx.Done():
		if a.take(req.reply) != nil {
			a.finish(req)
			return PubAck{}, fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
		}
		r := <-req.ch // completed concurrently; its result is on the way
		return r.ack, r.err
	}
}

// take removes a pending request, returning nil if it already completed.
func (a *acker) take(reply string) *pubReq {
	a.mu.Lock()
	defer a.mu.Unlock()
	req := a.pending[reply]
	if req != nil {
		delete(a.pending, reply)
	}
	return req
}

// finish releases what a request held.
func (a *acker) finish(req *pubReq) {
	<-a.slots
	if req.producer != nil {
		req.producer.inflight.done()
	}
	a.all.done()
}

func (a *acker) onReply(m *nats.Msg) {
	req := a.take(m.Subject)
	if req == nil {
		return // timed out or failed already
	}
	ack, err := parsePubAck(m)
	ack.Station, ack.Partition = req.station, req.partition
	a.complete(req, ack, err)
}

// complete delivers a request's outcome exactly once, then releases it, so
// that Flush returns only after the callbacks it waited for have run.
func (a *acker) complete(req *pubReq, ack PubAck, err error) {
	if req.ch != nil {
		req.ch <- pubResult{ack, err}
		a.finish(req)
		return
	}
	a.cbMu.Lock()
	if req.done != nil {
		req.done(ack, err)
	} else if err != nil {
		req.producer.reportAsync(err)
	}
	a.cbMu.Unlock()
	a.finish(req)
}

// janitor times out requests whose acknowledgement is overdue.
func (a *acker) janitor() {
	defer a.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		a.mu.Lock()
		idle := len(a.pending) == 0
		a.mu.Unlock()
		if idle {
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
		now := time.Now()
		var expired []*pubReq
		a.mu.Lock()
		for k, req := range a.pending {
			if now.After(req.deadline) {
				delete(a.pending, k)
				expired = append(expired, req)
			}
		}
		a.mu.Unlock()
		for _, req := range expired {
			a.complete(req, PubAck{Station: req.station, Partition: req.partition},
				fmt.Errorf("%w: no acknowledgement from the broker", ErrTimeout))
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
		a.complete(req, PubAck{Station: req.station, Partition: req.partition}, err)
	}
}

// flush waits until the producer's (or, for nil, every) outstanding produce
// has completed.
func (a *acker) flush(ctx context.Context, p *Producer) error {
	pc := &a.all
	if p != nil {
		pc = &p.inflight
	}
	return pc.wait(ctx)
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

// pendingCount counts outstanding work and lets callers wait for zero.
type pendingCount struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n drops to 0; nil while n is 0
}

func (pc *pendingCount) add() {
	pc.mu.Lock()
	if pc.n == 0 {
		pc.zero = make(chan struct{})
	}
	pc.n++
	pc.mu.Unlock()
}

func (pc *pendingCount) done() {
	pc.mu.Lock()
	pc.n--
	if pc.n == 0 {
		close(pc.zero)
		pc.zero = nil
	}
	pc.mu.Unlock()
}

func (pc *pendingCount) wait(ctx context.Context) error {
	pc.mu.Lock()
	ch, n := pc.zero, pc.n
	pc.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %d produces still unacknowledged: %w", ErrTimeout, n, ctx.Err())
	}
}
