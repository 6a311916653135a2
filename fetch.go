package memphis

import (
	"context"
	"fmt"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// prefetchSlot holds the batch a prefetch is fetching for the next Fetch.
type prefetchSlot struct {
	partition int // the partition asked for; 0 means round-robin
	done      chan struct{}
	res       fetchResult
}

type fetchResult struct {
	msgs []*Msg
	err  error
}

func (s *prefetchSlot) result() fetchResult {
	<-s.done
	return s.res
}

// Fetch returns one batch of up to batchSize messages, waiting up to the
// consumer's BatchMaxWaitTime for the batch to fill; an empty station gives
// an empty batch and no error. Messages the broker re-sent from the
// dead-letter station come first. With prefetch the next batch is fetched
// in the background for the next call. It is FetchContext with
// context.Background.
func (c *Consumer) Fetch(batchSize int, prefetch bool, opts ...ConsumingOpt) ([]*Msg, error) {
	return c.FetchContext(context.Background(), batchSize, prefetch, opts...)
}

// FetchContext is Fetch bounded by ctx. Without a ConsumingOpt it reads the
// partitions round-robin, one per call.
func (c *Consumer) FetchContext(ctx context.Context, batchSize int, prefetch bool, opts ...ConsumingOpt) ([]*Msg, error) {
	msgs, err := c.fetch(ctx, batchSize, prefetch, opts)
	if h := c.conn.hooks; h != nil {
		h.fetched(c, msgs, ctx, err)
	}
	return msgs, opErr("fetch", c.station, err)
}

func (c *Consumer) fetch(ctx context.Context, batchSize int, prefetch bool, opts []ConsumingOpt) ([]*Msg, error) {
	if err := c.checkUsable(); err != nil {
		return nil, err
	}
	// A done context fails before anything is asked of the broker, rather
	// than racing the answer.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	if batchSize < 1 || batchSize > MaxBatchSize {
		return nil, invalidf("batch size %d must be 1 to %d", batchSize, MaxBatchSize)
	}
	co, err := c.consumingOptions(opts)
	if err != nil {
		return nil, err
	}
	part := co.ConsumerPartitionNumber
	msgs := make([]*Msg, 0, batchSize)
resent:
	for len(msgs) < batchSize {
		select {
		case m := <-c.resent:
			msgs = append(msgs, m)
		default:
			break resent
		}
	}
	if len(msgs) < batchSize {
		more, err := c.fetchPartition(ctx, part, batchSize-len(msgs))
		if err != nil && len(msgs) == 0 {
			return nil, err
		}
		msgs = append(msgs, more...)
	}
	if prefetch {
		c.startPrefetch(part, batchSize)
	}
	return msgs, nil
}

// fetchPartition takes a prefetched batch for the same partition choice if
// there is one, and pulls otherwise.
func (c *Consumer) fetchPartition(ctx context.Context, partition, n int) ([]*Msg, error) {
	c.mu.Lock()
	slot := c.prefetch
	if slot != nil && slot.partition == partition {
		c.prefetch = nil
	} else {
		slot = nil
	}
	c.mu.Unlock()
	if slot != nil {
		select {
		case <-slot.done:
		case <-ctx.Done():
			c.mu.Lock()
			if c.prefetch == nil {
				c.prefetch = slot // keep it for the next call
			}
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
		}
		res := slot.res
		if len(res.msgs) > n {
			nakAll(res.msgs[n:]) // asked for fewer than were prefetched
			res.msgs = res.msgs[:n]
		}
		if res.err == nil || len(res.msgs) > 0 {
			return res.msgs, nil
		}
	}
	if partition == 0 {
		partition = nextInTurn(c.streamPartitions(), &c.rr)
	}
	return c.fetchOnce(ctx, partition, n, c.opts.BatchMaxTimeToWait)
}

// startPrefetch fetches the next batch in the background, once at a time.
func (c *Consumer) startPrefetch(partition, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prefetch != nil || c.released {
		return
	}
	slot := &prefetchSlot{partition: partition, done: make(chan struct{})}
	c.prefetch = slot
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer close(slot.done)
		p := partition
		if p == 0 {
			p = nextInTurn(c.streamPartitions(), &c.rr)
		}
		slot.res.msgs, slot.res.err = c.fetchOnce(c.life, p, n, c.opts.BatchMaxTimeToWait)
	}()
}

// FetchMessages fetches one batch through a cached consumer, creating the
// consumer (and the station) on first use. It is FetchMessagesContext with
// context.Background.
func (c *Conn) FetchMessages(stationName, consumerName string, opts ...FetchOpt) ([]*Msg, error) {
	return c.FetchMessagesContext(context.Background(), stationName, consumerName, opts...)
}

// FetchMessagesContext fetches one batch through a cached consumer. The
// consumer options (group, ack time, start position, error handler) take
// effect when the consumer is created; later calls with the same station
// and consumer name reuse it as it is.
func (c *Conn) FetchMessagesContext(ctx context.Context, stationName, consumerName string, opts ...FetchOpt) ([]*Msg, error) {
	d := defaultConsumerOpts()
	o := FetchOpts{
		ConsumerName: consumerName, StationName: stationName,
		BatchMaxTimeToWait: d.BatchMaxTimeToWait, MaxAckTime: d.MaxAckTime, MaxMsgDeliveries: d.MaxMsgDeliveries,
		StartConsumeFromSequence: d.StartConsumeFromSequence, LastMessages: d.LastMessages,
		BatchSize: DefaultBatchSize,
	}
	if err := apply(&o, opts); err != nil {
		return nil, opErr("fetch", stationName, err)
	}
	co := d
	co.Name, co.StationName = o.ConsumerName, o.StationName
	co.ConsumerGroup = o.ConsumerGroup
	co.BatchSize = o.BatchSize
	co.BatchMaxTimeToWait = o.BatchMaxTimeToWait
	co.MaxAckTime = o.MaxAckTime
	co.MaxMsgDeliveries = o.MaxMsgDeliveries
	co.GenUniqueSuffix = o.GenUniqueSuffix
	co.ErrHandler = o.ErrHandler
	co.StartConsumeFromSequence = o.StartConsumeFromSequence
	co.LastMessages = o.LastMessages
	key := clientKey{wire.InternalName(o.StationName), lowerASCII(o.ConsumerName)}
	cons, err := c.consumers.get(ctx, key, "create consumer", o.StationName, func() (*Consumer, error) {
		return c.createConsumer(ctx, co)
	})
	if err != nil {
		return nil, err
	}
	var copts []ConsumingOpt
	if o.byKey || o.FetchPartitionKey != "" {
		copts = append(copts, ConsumerPartitionKey(o.FetchPartitionKey))
	}
	if o.FetchPartitionNumber != 0 {
		copts = append(copts, ConsumerPartitionNumber(o.FetchPartitionNumber))
	}
	return cons.FetchContext(ctx, o.BatchSize, o.Prefetch, copts...)
}
