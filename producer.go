package memphis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// Producer produces messages to one station, or to several at once. It is
// safe for concurrent use.
type Producer struct {
	// Name is the producer's name as registered (lower-cased, with the
	// suffix ProducerGenUniqueSuffix added), as in 1.x. The SDK keeps its
	// own copy, so writing to it changes nothing.
	Name string
	// PartitionGenerator takes the station's partitions in turn; nil for a
	// multi-station producer or a station without partitions. The SDK does
	// not use it.
	//
	// Deprecated: produce without ProducerPartitionKey and
	// ProducerPartitionNumber and the SDK takes the partitions in turn.
	PartitionGenerator *RoundRobinProducerConsumerGenerator

	conn       *Conn
	name       string
	targets    []*target
	errHandler func(*Producer, error)
	// header is the header block of a message without user headers or
	// message id. It is shared by every such produce and never written to
	// (nats.go only reads it).
	header   nats.Header
	inflight pendingCount // undecided produces
	// destroyed is set once, by Destroy; read lock-free on every produce.
	destroyed atomic.Bool

	// failMu guards the async failures that reached no handler, kept for
	// the next Flush.
	failMu   sync.Mutex
	failures []error
	failMore int // failures beyond maxFlushErrors
}

// maxFlushErrors is how many async failures Flush returns in full; the rest
// are counted.
const maxFlushErrors = 10

// target is one station a producer writes to.
type target struct {
	name string // external, lower-cased
	st   *stationState
	rr   atomic.Uint64
}

// Stations are the names of the stations the producer writes to.
func (p *Producer) Stations() []string {
	names := make([]string, len(p.targets))
	for i, t := range p.targets {
		names[i] = t.name
	}
	return names
}

// CreateProducer registers a producer, creating its station with default
// options if it does not exist. stationName is a station's name (a string)
// or, as in 1.x, a []string of several: then it is
// CreateMultiStationProducer. Any other type is refused with
// ErrInvalidOption before anything is sent. It is CreateProducerContext
// with context.Background.
func (c *Conn) CreateProducer(stationName any, name string, opts ...ProducerOpt) (*Producer, error) {
	stations, multi, err := stationArg(stationName)
	if err != nil {
		return nil, opErr("create producer", "", err)
	}
	if multi {
		return c.CreateMultiStationProducerContext(context.Background(), stations, name, opts...)
	}
	return c.CreateProducerContext(context.Background(), stations[0], name, opts...)
}

// stationArg reads the station argument of the 1.x calls that took a name
// or a list of names as interface{}. multi tells a list from a name.
func stationArg(v any) (names []string, multi bool, err error) {
	switch s := v.(type) {
	case string:
		return []string{s}, false, nil
	case StationName:
		return []string{string(s)}, false, nil
	case []string:
		return s, true, nil
	}
	return nil, false, invalidf("the station is a %T; give a station name (string) or a []string of them", v)
}

// CreateProducerContext registers a producer on a station, creating the
// station with default options if it does not exist.
func (c *Conn) CreateProducerContext(ctx context.Context, stationName, name string, opts ...ProducerOpt) (*Producer, error) {
	return c.createProducer(ctx, []string{stationName}, name, opts)
}

// CreateMultiStationProducer registers one producer on several stations;
// each Produce then writes the message to every one of them.
func (c *Conn) CreateMultiStationProducer(stationNames []string, name string, opts ...ProducerOpt) (*Producer, error) {
	return c.CreateMultiStationProducerContext(context.Background(), stationNames, name, opts...)
}

// CreateMultiStationProducerContext is CreateMultiStationProducer with a context.
func (c *Conn) CreateMultiStationProducerContext(ctx context.Context, stationNames []string, name string, opts ...ProducerOpt) (*Producer, error) {
	if len(stationNames) == 0 {
		return nil, opErr("create producer", "", invalidf("no station given"))
	}
	return c.createProducer(ctx, stationNames, name, opts)
}

// CreateProducer registers a producer on the station.
func (s *Station) CreateProducer(name string, opts ...ProducerOpt) (*Producer, error) {
	return s.conn.CreateProducerContext(context.Background(), s.name, name, opts...)
}

// CreateProducerContext registers a producer on the station.
func (s *Station) CreateProducerContext(ctx context.Context, name string, opts ...ProducerOpt) (*Producer, error) {
	return s.conn.CreateProducerContext(ctx, s.name, name, opts...)
}

func (c *Conn) createProducer(ctx context.Context, stationNames []string, name string, opts []ProducerOpt) (*Producer, error) {
	op := "create producer"
	var o ProducerOpts
	if err := apply(&o, opts); err != nil {
		return nil, opErr(op, "", err)
	}
	if o.TimeoutRetry < 0 {
		return nil, opErr(op, "", invalidf("timeout retries %d is negative", o.TimeoutRetry))
	}
	ctx = withTimeoutRetries(ctx, o.TimeoutRetry)
	if o.GenUniqueSuffix {
		suffix, err := randomSuffix()
		if err != nil {
			return nil, opErr(op, "", err)
		}
		name += "_" + suffix
	}
	lname, err := checkName(wire.ObjProducer, name)
	if err != nil {
		return nil, opErr(op, "", err)
	}
	stations := make([]string, len(stationNames))
	for i, s := range stationNames {
		if stations[i], err = checkName(wire.ObjStation, s); err != nil {
			return nil, opErr(op, s, err)
		}
	}
	p := &Producer{Name: lname, conn: c, name: lname, errHandler: o.ErrHandler,
		header: buildHeader(nil, c.connID, lname, "")}
	for _, s := range stations {
		t, err := c.registerProducer(ctx, s, lname)
		if err != nil {
			p.release()
			return nil, opErr(op, s, err)
		}
		p.targets = append(p.targets, t)
	}
	if len(p.targets) == 1 {
		p.PartitionGenerator = newRoundRobinGenerator(p.targets[0].st.partitionList())
	}
	return p, nil
}

func (c *Conn) registerProducer(ctx context.Context, station, name string) (*target, error) {
	req := wire.CreateProducerReq{
		Name:         name,
		StationName:  station,
		ConnectionID: c.connID,
		ProducerType: "application",
		Username:     c.username,
		ReqVersion:   wire.CreateReqVersion,
		AppID:        c.connID,
		SDKLang:      "go",
	}
	reply, err := c.request(ctx, wire.SubjProducerCreations, req)
	if err != nil {
		return nil, err
	}
	var resp wire.CreateProducerResp
	if err := json.Unmarshal(reply, &resp); err != nil {
		return nil, newBrokerError(string(reply)) // old brokers answer in plain text
	}
	if resp.Err != "" {
		return nil, newBrokerError(resp.Err)
	}
	st, err := c.acquireStation(wire.InternalName(station))
	if err != nil {
		return nil, err
	}
	st.schemaverseToDLS.Store(resp.SchemaverseToDLS)
	c.sendNotification.Store(resp.SendNotification)
	if err := st.applyRegistration(c, resp.PartitionsUpdate.PartitionsList, resp.SchemaUpdate); err != nil {
		c.releaseStation(st)
		return nil, err
	}
	return &target{name: station, st: st}, nil
}

// Produce sends a message, waiting for the broker's acknowledgement unless
// AsyncProduce is given. It is ProduceContext with context.Background.
//
// On a station without a schema the message may be []byte or string, sent
// as they are, or, as in 1.x, a proto.Message (sent in its wire format), a
// map[string]any or a struct (sent as JSON). On a station with a schema it
// may be any form the schema type accepts (see the Schemaverse section of
// the package documentation), and it is validated before it is sent.
func (p *Producer) Produce(message any, opts ...ProduceOpt) error {
	return p.ProduceContext(context.Background(), message, opts...)
}

// ProduceContext sends a message. ctx bounds the wait for room among the
// MaxPending produces awaiting acknowledgement and, for a sync produce, the
// wait for its own acknowledgement (which AckWaitSec bounds too). A
// multi-station producer sends to every station and joins the errors.
func (p *Producer) ProduceContext(ctx context.Context, message any, opts ...ProduceOpt) error {
	o, err := produceOptions(&p.conn.optsPool, message, opts)
	if err != nil {
		if h := p.conn.hooks; h != nil {
			h.refusedAll(ctx, p, &o, err)
		}
		return opErr("produce", p.stationLabel(), err)
	}
	return p.produceAll(ctx, &o)
}

// produceAll sends a message with checked options to every station of the
// producer.
func (p *Producer) produceAll(ctx context.Context, o *ProduceOpts) error {
	var errs []error
	for _, t := range p.targets {
		if err := p.produceTo(ctx, t, o, nil); err != nil {
			errs = append(errs, opErr("produce", t.name, err))
		}
	}
	return joinErrs(errs)
}

// ProduceAsync sends a message without waiting and calls done with its
// outcome: exactly once per station, unless ProduceAsync itself returns an
// error (then done is not called for that station).
//
// The done callbacks (and error handlers) of a connection run on one
// goroutine of its own, one call at a time, in the order the outcomes
// arrive. A callback may call any SDK method — Produce, Flush, Destroy,
// even Conn.Close — but while it runs, later callbacks wait.
func (p *Producer) ProduceAsync(ctx context.Context, message any, done func(PubAck, error), opts ...ProduceOpt) error {
	o, err := produceOptions(&p.conn.optsPool, message, opts)
	o.AsyncProduce = true
	if err == nil && done == nil {
		err = invalidf("done callback is nil")
	}
	if err != nil {
		if h := p.conn.hooks; h != nil {
			h.refusedAll(ctx, p, &o, err)
		}
		return opErr("produce", p.stationLabel(), err)
	}
	var errs []error
	for _, t := range p.targets {
		if err := p.produceTo(ctx, t, &o, done); err != nil {
			errs = append(errs, opErr("produce", t.name, err))
		}
	}
	return joinErrs(errs)
}

// produceOptions applies a produce's options. pool (the connection's
// optsPool) holds the ProduceOpts they are applied to: an option is an
// opaque function taking a pointer, so without it every produce given
// options would allocate one.
func produceOptions(pool *sync.Pool, message any, opts []ProduceOpt) (ProduceOpts, error) {
	o := ProduceOpts{Message: message, AckWaitSec: DefaultAckWaitSec, AsyncProduce: DefaultAsyncProduce}
	if len(opts) > 0 {
		po := pool.Get().(*ProduceOpts)
		*po = o
		err := apply(po, opts)
		o = *po
		*po = ProduceOpts{}
		pool.Put(po)
		if err != nil {
			return o, err
		}
	}
	switch {
	case o.ackWaitSet && o.ackWait <= 0:
		return o, invalidf("AckWait %v must be positive", o.ackWait)
	case !o.ackWaitSet && o.AckWaitSec <= 0:
		return o, invalidf("AckWaitSec %d must be positive", o.AckWaitSec)
	}
	if o.msgIDSet && o.MsgId == "" {
		return o, invalidf("MsgId is empty; without an id the broker would not de-duplicate the message")
	}
	// Headers put straight into MsgHeaders skipped Add's checks.
	if err := checkHeaders(o.MsgHeaders.MsgHeaders); err != nil {
		return o, err
	}
	return o, nil
}

func (p *Producer) produceTo(ctx context.Context, t *target, o *ProduceOpts, done func(PubAck, error)) error {
	partition, data, err := p.prepare(ctx, t, o)
	h := p.conn.hooks
	if err != nil {
		if h != nil {
			h.produceRefused(ctx, p.name, t.name, partition, o, err)
		}
		return err
	}
	a := p.conn.acks
	hdr, own := p.header, false
	if len(o.MsgHeaders.MsgHeaders) > 0 || o.MsgId != "" {
		hdr, own = buildHeader(o.MsgHeaders.MsgHeaders, p.conn.connID, p.name, o.MsgId), true
	}
	var rec *ProduceRecord
	if h != nil {
		rec = h.produceStart(ctx, p.name, t.name, partition, len(data), o, hdr, own)
		hdr = rec.headerBlock(hdr)
	}
	m := nats.Msg{Subject: t.st.subject(partition), Data: data, Header: hdr}
	// The wait for room among pending produces is bounded by the ack wait
	// too, so a stalled broker turns into ErrMaxPending, not a hang. The ack
	// wait itself starts when the message is sent.
	ackWait := o.ackWaitDuration()
	req, err := a.acquire(ctx, ackWait)
	if err != nil {
		if h != nil {
			h.produceEnd(rec, PubAck{}, err)
		}
		return err
	}
	req.producer, req.name, req.partition, req.rec = p, t.name, partition, rec
	req.done, req.sync = done, !o.AsyncProduce
	if err := a.send(&m, req, ackWait); err != nil {
		return err
	}
	if o.AsyncProduce {
		return nil
	}
	_, err = a.wait(ctx, req)
	return err
}

// prepare checks that a produce may go ahead and makes its payload: the
// partition it goes to and the encoded (and validated) message.
func (p *Producer) prepare(ctx context.Context, t *target, o *ProduceOpts) (int, []byte, error) {
	if p.destroyed.Load() {
		return 0, nil, ErrProducerDestroyed
	}
	if p.conn.acks.closing.Load() {
		return 0, nil, ErrConnClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	partition, err := producePartition(t, o)
	if err != nil {
		return 0, nil, err
	}
	data, err := p.conn.encode(t.st, o.Message)
	if err != nil {
		var se *SchemaError
		if errors.As(err, &se) {
			p.conn.reportSchemaFailure(t.st, p.name, partition, o.Message, o.MsgHeaders.MsgHeaders, se)
		}
		return partition, nil, err
	}
	return partition, data, nil
}

// asyncFailure keeps the failure of an async produce without a done
// callback (wrapped by the caller) for Flush, unless an error handler will
// receive it. It runs where the outcome is decided, so a Flush that returns
// has seen it.
func (p *Producer) asyncFailure(err error) error {
	if p.errHandler == nil && p.conn.opts.AsyncErrorHandler == nil {
		p.failMu.Lock()
		if len(p.failures) < maxFlushErrors {
			p.failures = append(p.failures, err)
		} else {
			p.failMore++
		}
		p.failMu.Unlock()
	}
	return err
}

// reportAsync hands an async produce failure (wrapped by asyncFailure) to
// whoever listens. It runs on the callback goroutine.
func (p *Producer) reportAsync(err error) {
	switch {
	case p.errHandler != nil:
		p.errHandler(p, err)
	case p.conn.opts.AsyncErrorHandler != nil:
		p.conn.opts.AsyncErrorHandler(p, err)
	default:
		p.conn.logs.failure(slog.LevelError, p, "memphis: async produce failed", "async produces failed", err,
			"station", p.stationLabel(), "producer", p.name)
	}
}

// takeFailures returns, and forgets, the async failures kept for Flush.
func (p *Producer) takeFailures() []error {
	p.failMu.Lock()
	errs, more := p.failures, p.failMore
	p.failures, p.failMore = nil, 0
	p.failMu.Unlock()
	if more > 0 {
		errs = append(errs, opErr("produce", p.stationLabel(), fmt.Errorf("and %d more async produce failures", more)))
	}
	return errs
}

func (p *Producer) stationLabel() string {
	if len(p.targets) == 1 {
		return p.targets[0].name
	}
	return ""
}

// Flush waits until every asynchronous produce of this producer has been
// acknowledged or has failed, and its done callback or error handler has
// run.
//
// It returns the failures of async produces that reached no done callback
// and no error handler (ProducerErrorHandler, AsyncErrorHandler) since the
// previous Flush, joined into one error: errors.Is finds each one's kind.
// The first ten are kept in full and the rest counted ("and N more"). So
// with neither handler set, a failure of Produce(msg, AsyncProduce()) is
// never silent: Flush returns it (and the connection's Logger logs it).
//
// Flush may be called from inside a done callback or error handler. There it
// waits until the outcome of every produce is known, but not for the
// callbacks queued behind the running one: those run after it returns.
func (p *Producer) Flush(ctx context.Context) error {
	err := opErr("flush", p.stationLabel(), p.conn.acks.flush(ctx, p))
	return joinErrs(append([]error{err}, p.takeFailures()...))
}

// Destroy flushes the producer and unregisters it from its stations. It is
// DestroyContext with context.Background; the options are those of 1.x
// (TimeoutRetry).
func (p *Producer) Destroy(options ...RequestOpt) error {
	ctx, err := requestOptionsContext(context.Background(), options)
	if err != nil {
		return opErr("destroy producer", p.stationLabel(), err)
	}
	return p.DestroyContext(ctx)
}

// DestroyContext waits for the producer's outstanding async produces (bounded
// by ctx and the connection's RequestTimeout) and unregisters it. Like
// Flush, it returns the async failures no handler received. Later produces
// fail with ErrProducerDestroyed. Destroy is idempotent.
func (p *Producer) DestroyContext(ctx context.Context) error {
	if !p.destroyed.CompareAndSwap(false, true) {
		return nil
	}
	fctx, cancel := p.conn.requestCtx(ctx)
	ferr := p.conn.acks.flush(fctx, p)
	cancel()
	var errs []error
	if ferr != nil {
		errs = append(errs, opErr("destroy producer", p.stationLabel(), ferr))
	}
	errs = append(errs, p.takeFailures()...)
	for _, t := range p.targets {
		req := wire.DestroyProducerReq{Name: p.name, StationName: t.name, Username: p.conn.username,
			ConnectionID: p.conn.connID, ReqVersion: wire.DestroyReqVersion}
		if err := p.conn.requestText(ctx, wire.SubjProducerDestructions, req, "not exist"); err != nil {
			errs = append(errs, opErr("destroy producer", t.name, err))
		}
	}
	p.release()
	return joinErrs(errs)
}

// release drops the producer's hold on its stations and its cache entry.
func (p *Producer) release() {
	for _, t := range p.targets {
		p.conn.releaseStation(t.st)
	}
	p.conn.producers.remove(p)
}

// Produce sends a message through a cached producer, creating the producer
// (and the station) on first use. stationName is a station's name (a
// string) or, as in 1.x, a []string of several: then it is
// ProduceToStations. Any other type is refused with ErrInvalidOption before
// anything is sent. It is ProduceContext with context.Background.
func (c *Conn) Produce(stationName any, name string, message any, opts []ProducerOpt, pOpts []ProduceOpt) error {
	stations, multi, err := stationArg(stationName)
	if err != nil {
		return opErr("produce", "", err)
	}
	if multi {
		return c.ProduceToStations(context.Background(), stations, name, message, opts, pOpts)
	}
	return c.ProduceContext(context.Background(), stations[0], name, message, opts, pOpts)
}

// ProduceContext sends a message through a cached producer, creating it on
// first use. A cached producer that was destroyed is replaced.
func (c *Conn) ProduceContext(ctx context.Context, stationName, name string, message any, opts []ProducerOpt, pOpts []ProduceOpt) error {
	// The produce options are checked before a producer is created, so a
	// bad one sends nothing.
	o, err := produceOptions(&c.optsPool, message, pOpts)
	if err != nil {
		if h := c.hooks; h != nil {
			h.produceRefused(ctx, lowerASCII(name), lowerASCII(stationName), 0, &o, err)
		}
		return opErr("produce", stationName, err)
	}
	return c.produceCached(ctx, stationName, name, opts, &o)
}

func (c *Conn) produceCached(ctx context.Context, stationName, name string, opts []ProducerOpt, o *ProduceOpts) error {
	p, err := c.cachedProducer(ctx, stationName, name, opts)
	if err != nil {
		return err
	}
	err = p.produceAll(ctx, o)
	if errors.Is(err, ErrProducerDestroyed) {
		if p, err = c.cachedProducer(ctx, stationName, name, opts); err != nil {
			return err
		}
		err = p.produceAll(ctx, o)
	}
	return err
}

// ProduceToStations sends one message to several stations through cached
// producers named name.
func (c *Conn) ProduceToStations(ctx context.Context, stationNames []string, name string, message any, opts []ProducerOpt, pOpts []ProduceOpt) error {
	if len(stationNames) == 0 {
		return opErr("produce", "", invalidf("no station given"))
	}
	o, err := produceOptions(&c.optsPool, message, pOpts)
	if err != nil {
		return opErr("produce", "", err)
	}
	var errs []error
	for _, s := range stationNames {
		errs = append(errs, c.produceCached(ctx, s, name, opts, &o))
	}
	return joinErrs(errs)
}

func (c *Conn) cachedProducer(ctx context.Context, stationName, name string, opts []ProducerOpt) (*Producer, error) {
	key := clientKey{wire.InternalName(stationName), lowerASCII(name)}
	return c.producers.get(ctx, key, "create producer", stationName, func() (*Producer, error) {
		return c.CreateProducerContext(ctx, stationName, name, opts...)
	})
}

func (p *Producer) usable() bool { return !p.destroyed.Load() }
