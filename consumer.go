package memphis

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// Consumer reads a station's messages as a member of a consumer group. Use
// Consume (a callback loop), ConsumeUntil, Messages (an iterator) or Fetch
// (one batch). It is safe for concurrent use.
//
// Its exported fields tell how it was created, as in 1.x. The SDK keeps its
// own copy, so writing to them changes nothing.
type Consumer struct {
	// Name is the consumer's name as registered (lower-cased, with the
	// suffix ConsumerGenUniqueSuffix added).
	Name string
	// ConsumerGroup is the consumer's group (lower-cased).
	ConsumerGroup string
	// PullInterval, BatchSize, BatchMaxTimeToWait, MaxAckTime,
	// MaxMsgDeliveries, StartConsumeFromSequence and LastMessages are the
	// options the consumer was created with (see ConsumerOpts).
	PullInterval             time.Duration
	BatchSize                int
	BatchMaxTimeToWait       time.Duration
	MaxAckTime               time.Duration
	MaxMsgDeliveries         int
	StartConsumeFromSequence uint64
	LastMessages             int64
	// PartitionGenerator takes the station's partitions in turn; nil for a
	// station without partitions. The SDK does not use it.
	//
	// Deprecated: Partitions lists the partitions; Fetch already takes them
	// in turn.
	PartitionGenerator *RoundRobinProducerConsumerGenerator

	conn       *Conn
	name       string // lower-cased
	group      string // lower-cased consumer group
	durable    string // the group's JetStream durable name
	station    string // lower-cased external name
	st         *stationState
	opts       ConsumerOpts
	partitions []int

	handlerCtx atomic.Pointer[context.Context]
	rr         atomic.Uint64

	dlsSub *nats.Subscription
	resent chan *Msg // messages the broker re-sent from the dead-letter station

	// life ends when the consumer is destroyed or its connection closed; it
	// bounds prefetches.
	life     context.Context
	lifeStop context.CancelFunc
	bg       sync.WaitGroup

	mu        sync.Mutex
	destroyed bool
	released  bool
	run       *consumeRun
	lastRun   *consumeRun
	prefetch  *prefetchSlot
}

// resentBuffer bounds the re-sent dead-letter messages waiting for a
// Consume or Fetch; the broker keeps them, so more can be re-sent later.
const resentBuffer = 1000

// Station is the name of the consumer's station.
func (c *Consumer) Station() string { return c.station }

// Partitions lists the station's partitions.
func (c *Consumer) Partitions() []int { return append([]int(nil), c.partitions...) }

// CreateConsumer registers a consumer on a station, creating the station
// with default options if it does not exist. It is CreateConsumerContext
// with context.Background.
func (c *Conn) CreateConsumer(stationName, consumerName string, opts ...ConsumerOpt) (*Consumer, error) {
	return c.CreateConsumerContext(context.Background(), stationName, consumerName, opts...)
}

// CreateConsumerContext registers a consumer on a station. Options are
// checked before anything is sent.
func (c *Conn) CreateConsumerContext(ctx context.Context, stationName, consumerName string, opts ...ConsumerOpt) (*Consumer, error) {
	o := defaultConsumerOpts()
	o.Name, o.StationName = consumerName, stationName
	if err := apply(&o, opts); err != nil {
		return nil, opErr("create consumer", stationName, err)
	}
	return c.createConsumer(ctx, o)
}

// CreateConsumer registers a consumer on the station.
func (s *Station) CreateConsumer(name string, opts ...ConsumerOpt) (*Consumer, error) {
	return s.conn.CreateConsumerContext(context.Background(), s.name, name, opts...)
}

// CreateConsumerContext registers a consumer on the station.
func (s *Station) CreateConsumerContext(ctx context.Context, name string, opts ...ConsumerOpt) (*Consumer, error) {
	return s.conn.CreateConsumerContext(ctx, s.name, name, opts...)
}

func defaultConsumerOpts() ConsumerOpts {
	return ConsumerOpts{
		PullInterval:             DefaultPullInterval,
		BatchSize:                DefaultBatchSize,
		BatchMaxTimeToWait:       DefaultBatchMaxWaitTime,
		MaxAckTime:               DefaultMaxAckTime,
		MaxMsgDeliveries:         DefaultMaxMsgDeliveries,
		StartConsumeFromSequence: DefaultStartConsumeFromSeq,
		LastMessages:             DefaultLastMessages,
	}
}

func (o *ConsumerOpts) validate() error {
	switch {
	case o.BatchSize < 1 || o.BatchSize > MaxBatchSize:
		return invalidf("batch size %d must be 1 to %d", o.BatchSize, MaxBatchSize)
	case o.PullInterval < 0:
		return invalidf("pull interval %v is negative", o.PullInterval)
	case o.BatchMaxTimeToWait < MinBatchMaxWaitTime:
		return invalidf("batch max wait time %v is shorter than %v", o.BatchMaxTimeToWait, MinBatchMaxWaitTime)
	case o.MaxAckTime < time.Millisecond:
		return invalidf("max ack time %v is shorter than 1ms", o.MaxAckTime)
	case o.MaxMsgDeliveries < 1:
		return invalidf("max message deliveries %d must be positive", o.MaxMsgDeliveries)
	case o.StartConsumeFromSequence < 1:
		return invalidf("start sequence must be at least 1")
	case o.LastMessages < -1:
		return invalidf("last messages %d is below -1", o.LastMessages)
	case o.StartConsumeFromSequence > 1 && o.LastMessages > -1:
		return invalidf("give StartConsumeFromSeq or LastMessages, not both")
	case o.TimeoutRetry < 0:
		return invalidf("timeout retries %d is negative", o.TimeoutRetry)
	}
	return nil
}

func (c *Conn) createConsumer(ctx context.Context, o ConsumerOpts) (*Consumer, error) {
	op := "create consumer"
	stationName, consumerName := o.StationName, o.Name
	if o.GenUniqueSuffix {
		suffix, err := randomSuffix()
		if err != nil {
			return nil, opErr(op, stationName, err)
		}
		consumerName += "_" + suffix
	}
	station, err := checkName(wire.ObjStation, stationName)
	if err != nil {
		return nil, opErr(op, stationName, err)
	}
	name, err := checkName(wire.ObjConsumer, consumerName)
	if err != nil {
		return nil, opErr(op, station, err)
	}
	group := name
	if o.ConsumerGroup != "" {
		if group, err = checkName(wire.ObjConsumer, o.ConsumerGroup); err != nil {
			return nil, opErr(op, station, err)
		}
	}
	if err := o.validate(); err != nil {
		return nil, opErr(op, station, err)
	}
	if o.MaxMsgDeliveries > MaxMsgDeliveriesLimit {
		c.log.Warn("memphis: the broker lowers max message deliveries to its limit",
			"station", station, "consumer", name, "requested", o.MaxMsgDeliveries, "limit", MaxMsgDeliveriesLimit)
	}
	req := wire.CreateConsumerReq{
		Name:                     name,
		StationName:              station,
		ConnectionID:             c.connID,
		ConsumerType:             "application",
		ConsumerGroup:            group,
		MaxAckTimeMs:             int(o.MaxAckTime.Milliseconds()),
		MaxMsgDeliveries:         o.MaxMsgDeliveries,
		Username:                 c.username,
		StartConsumeFromSequence: o.StartConsumeFromSequence,
		LastMessages:             o.LastMessages,
		ReqVersion:               wire.CreateReqVersion,
		AppID:                    c.connID,
		SDKLang:                  "go",
	}
	reply, err := c.request(withTimeoutRetries(ctx, o.TimeoutRetry), wire.SubjConsumerCreations, req)
	if err != nil {
		return nil, opErr(op, station, err)
	}
	// Errors come as plain text, success as JSON (docs/protocol.md#consumer-create-reply).
	var resp wire.CreateConsumerResp
	if err := json.Unmarshal(reply, &resp); err != nil {
		return nil, opErr(op, station, newBrokerError(string(reply)))
	}
	if resp.Err != "" {
		return nil, opErr(op, station, newBrokerError(resp.Err))
	}
	st, err := c.acquireStation(wire.InternalName(station))
	if err != nil {
		return nil, opErr(op, station, err)
	}
	cons := &Consumer{
		Name: name, ConsumerGroup: group,
		PullInterval: o.PullInterval, BatchSize: o.BatchSize, BatchMaxTimeToWait: o.BatchMaxTimeToWait,
		MaxAckTime: o.MaxAckTime, MaxMsgDeliveries: o.MaxMsgDeliveries,
		StartConsumeFromSequence: o.StartConsumeFromSequence, LastMessages: o.LastMessages,
		PartitionGenerator: newRoundRobinGenerator(resp.PartitionsUpdate.PartitionsList),

		conn: c, name: name, group: group, durable: wire.InternalName(group), station: station,
		st: st, opts: o, partitions: resp.PartitionsUpdate.PartitionsList,
		resent: make(chan *Msg, resentBuffer),
	}
	cons.life, cons.lifeStop = context.WithCancel(context.Background())
	if err := st.applyRegistration(c, cons.partitions, resp.SchemaUpdate); err != nil {
		cons.release()
		return nil, opErr(op, station, err)
	}
	if o.LastMessages > 0 {
		if err := cons.ensureDurables(ctx); err != nil {
			cons.release()
			return nil, opErr(op, station, err)
		}
	}
	subj := wire.DLSResendSubject(st.intern, cons.durable)
	if cons.dlsSub, err = c.nc.QueueSubscribe(subj, subj, cons.onResent); err != nil {
		cons.release()
		return nil, opErr(op, station, err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cons.release()
		return nil, opErr(op, station, ErrConnClosed)
	}
	c.live[cons] = struct{}{}
	c.mu.Unlock()
	if h := c.hooks; h != nil {
		h.consumerCreated(cons)
	}
	return cons, nil
}

// ensureDurables makes sure every partition has the group's durable. The
// Memphis 1.4.4 broker creates none for LastMessages on a one-partition
// station (docs/protocol.md#quirk-last-messages-no-durable); the SDK then creates it as the broker means to.
func (c *Consumer) ensureDurables(ctx context.Context) error {
	for _, p := range c.streamPartitions() {
		stream := wire.StreamName(c.st.intern, p)
		found, err := c.conn.consumerExists(ctx, stream, c.durable)
		if err != nil {
			return err
		}
		if found {
			continue
		}
		last, err := c.conn.streamLastSeq(ctx, stream)
		if err != nil {
			return err
		}
		start := uint64(1)
		if n := uint64(c.opts.LastMessages); last >= n {
			start = last - n + 1
		}
		if err := c.conn.createDurable(ctx, stream, c.durable, c.opts, start); err != nil {
			return err
		}
		c.conn.log.Info("memphis: created the durable the broker left out (LastMessages on a one-partition station)", "station", c.station, "consumer", c.name, "partition", p)
	}
	return nil
}

// streamPartitions lists the partitions to read; a legacy station without
// partitions has the single stream numbered 0.
func (c *Consumer) streamPartitions() []int {
	if len(c.partitions) == 0 {
		return []int{0}
	}
	return c.partitions
}

// SetContext sets the context handed to the handler of Consume on every
// call. Default: context.Background.
func (c *Consumer) SetContext(ctx context.Context) {
	if ctx == nil {
		ctx = context.Background()
	}
	c.handlerCtx.Store(&ctx)
}

func (c *Consumer) contextForHandler() context.Context {
	if p := c.handlerCtx.Load(); p != nil {
		return *p
	}
	return context.Background()
}

// reportErr hands a failure outside any consume loop (a re-sent message
// dropped, a prefetch failing) to the consumer's error handler, or logs it.
func (c *Consumer) reportErr(err error) {
	err = opErr("consume", c.station, err)
	if fn := c.opts.ErrHandler; fn != nil {
		fn(c, err)
		return
	}
	c.conn.logs.failure(slog.LevelError, c, "memphis: consumer error", "consumer errors", err,
		"station", c.station, "consumer", c.name)
}

// onResent receives a message the broker re-sent from the dead-letter
// station (docs/protocol.md#dls-resend).
func (c *Consumer) onResent(m *nats.Msg) {
	id, _ := strconv.Atoi(m.Header.Get(wire.HdrPMID))
	msg := &Msg{raw: m, cons: c, resentID: id, resentCG: m.Header.Get(wire.HdrPMCGName), resent: true}
	select {
	case c.resent <- msg:
		return
	default:
	}
	err := fmt.Errorf("dropped a re-sent dead-letter message (id %d): %d are already waiting; the broker keeps it", id, resentBuffer)
	// This runs on nats.go's goroutine: a consume loop reports the failure
	// on its own goroutine, so that the error handler never runs beside the
	// message handler.
	c.mu.Lock()
	r := c.run
	c.mu.Unlock()
	if r != nil {
		r.report(err)
		return
	}
	c.reportErr(err)
}

// Destroy stops the consumer and unregisters it. It is DestroyContext with
// context.Background; the options are those of 1.x (TimeoutRetry).
func (c *Consumer) Destroy(options ...RequestOpt) error {
	ctx, err := requestOptionsContext(context.Background(), options)
	if err != nil {
		return opErr("destroy consumer", c.station, err)
	}
	return c.DestroyContext(ctx)
}

// DestroyContext stops consuming, returns unhandled buffered messages to the
// group, and unregisters the consumer. When the last member of a group is
// destroyed the broker deletes the group's position. Destroy is idempotent.
func (c *Consumer) DestroyContext(ctx context.Context) error {
	c.mu.Lock()
	if c.destroyed {
		c.mu.Unlock()
		return nil
	}
	c.destroyed = true
	c.mu.Unlock()
	c.StopConsume()
	c.release()
	req := wire.DestroyConsumerReq{Name: c.name, StationName: c.station, Username: c.conn.username,
		ConnectionID: c.conn.connID, ReqVersion: wire.DestroyReqVersion}
	if err := c.conn.requestText(ctx, wire.SubjConsumerDestructions, req, "not exist"); err != nil {
		return opErr("destroy consumer", c.station, err)
	}
	return nil
}

// release ends the consumer's local resources: prefetches, the dead-letter
// subscription, its station reference and cache entries. Idempotent.
func (c *Consumer) release() {
	c.mu.Lock()
	if c.released {
		c.mu.Unlock()
		return
	}
	c.released = true
	slot := c.prefetch
	c.prefetch = nil
	c.mu.Unlock()
	if c.lifeStop != nil {
		c.lifeStop()
	}
	c.bg.Wait()
	if slot != nil {
		nakAll(slot.result().msgs)
	}
	if c.dlsSub != nil {
		_ = c.dlsSub.Unsubscribe()
	}
	c.conn.releaseStation(c.st)
	c.conn.mu.Lock()
	_, announced := c.conn.live[c] // hooks heard of it when it joined live
	delete(c.conn.live, c)
	c.conn.mu.Unlock()
	c.conn.consumers.remove(c)
	if h := c.conn.hooks; h != nil && announced {
		h.consumerClosed(c)
	}
}

func (c *Consumer) usable() bool { return c.checkUsable() == nil }

func (c *Consumer) checkUsable() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.destroyed || c.released {
		return ErrConsumerDestroyed
	}
	return nil
}

// consumingOptions applies the options of one Consume or Fetch and picks
// the partition it reads: by key, by number, or 0 for "all" (Consume) or
// "in turn" (Fetch).
func (c *Consumer) consumingOptions(opts []ConsumingOpt) (ConsumingOpts, error) {
	var o ConsumingOpts
	if err := apply(&o, opts); err != nil {
		return o, err
	}
	byKey := o.byKey || o.ConsumerPartitionKey != ""
	if byKey && o.ConsumerPartitionNumber != 0 {
		return o, invalidf("give a partition key or a partition number, not both")
	}
	if o.ConsumerPartitionNumber != 0 || byKey {
		p, err := choosePartition(c.partitions, o.ConsumerPartitionKey, byKey, o.ConsumerPartitionNumber, &c.rr)
		if err != nil {
			return o, err
		}
		o.ConsumerPartitionNumber, o.ConsumerPartitionKey, o.byKey = p, "", false
	}
	return o, nil
}
