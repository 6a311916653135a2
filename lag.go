package memphis

import (
	"context"
	"fmt"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// Lag is how far a consumer group is behind its station, as the broker
// counts it for the group's durable consumer on each partition.
type Lag struct {
	// Station is the consumer's station (lower-cased).
	Station string
	// Group is the consumer's group (lower-cased).
	Group string
	// Pending is the number of messages stored on the station that the
	// group has not received yet: the lag proper. It does not count
	// messages received and not yet acknowledged, nor those given back with
	// Nack or Delay that wait to be delivered again (Unacked counts those).
	Pending uint64
	// Unacked is the number of messages delivered to the group and not yet
	// acknowledged; the broker delivers each again after MaxAckTime (or its
	// Delay).
	Unacked uint64
	// Partitions has the figures of each partition, in the order of
	// Consumer.Partitions (one entry, partition 0, for a station without
	// partitions).
	Partitions []PartitionLag
}

// PartitionLag is one partition's share of a Lag.
type PartitionLag struct {
	// Partition is the partition's number.
	Partition int
	// Pending is the number of the partition's messages the group has not
	// received yet.
	Pending uint64
	// Unacked is the number of the partition's messages delivered to the
	// group and not yet acknowledged.
	Unacked uint64
}

// Lag asks the broker how far the consumer's group is behind: one request
// per partition (JetStream's consumer info for the group's durable on the
// partition's stream), one after another. Each partition's figures are
// the broker's counts as of its answer to that request. A message stops
// counting as Pending once the broker has sent it to any member of the
// group (messages on their way to a Consume loop, or waiting in its
// buffer, are no longer Pending). JetStream updates these counts off its
// publish and ack paths, so they trail the clients by a moment: a Lag
// asked right after a produce was acknowledged may not count that message
// yet, and one asked right after an Ack may still count it as Unacked. The
// whole call is bounded by ctx, or by the connection's RequestTimeout when
// ctx has no deadline.
//
// It fails with ErrConsumerDestroyed after Destroy and with
// ErrStationUnreachable when the station or the group's durable is gone.
// It is safe to call while consuming, from any goroutine.
func (c *Consumer) Lag(ctx context.Context) (Lag, error) {
	if err := c.checkUsable(); err != nil {
		return Lag{}, opErr("lag", c.station, err)
	}
	ctx, cancel := c.conn.requestCtx(ctx)
	defer cancel()
	parts := c.streamPartitions()
	lag := Lag{Station: c.station, Group: c.group, Partitions: make([]PartitionLag, 0, len(parts))}
	for _, p := range parts {
		pl, err := c.partitionLag(ctx, p)
		if err != nil {
			return Lag{}, opErr("lag", c.station, err)
		}
		lag.Pending += pl.Pending
		lag.Unacked += pl.Unacked
		lag.Partitions = append(lag.Partitions, pl)
	}
	return lag, nil
}

// jsConsumerInfo is the part of JetStream's consumer info Lag reads.
type jsConsumerInfo struct {
	NumAckPending int    `json:"num_ack_pending"`
	NumPending    uint64 `json:"num_pending"`
}

func (c *Consumer) partitionLag(ctx context.Context, partition int) (PartitionLag, error) {
	stream := wire.StreamName(c.st.intern, partition)
	var info jsConsumerInfo
	apiErr, err := c.conn.jsAPI(ctx, "$JS.API.CONSUMER.INFO."+stream+"."+c.durable, nil, &info)
	switch {
	case err != nil:
		return PartitionLag{}, err
	case apiErr == nil:
		return PartitionLag{Partition: partition, Pending: info.NumPending, Unacked: uint64(max(info.NumAckPending, 0))}, nil
	case apiErr.ErrCode == jsErrConsumerNotFound || apiErr.ErrCode == jsErrStreamNotFound:
		return PartitionLag{}, fmt.Errorf("%w: consumer group %s has no durable on %s", ErrStationUnreachable, c.group, stream)
	}
	return PartitionLag{}, apiErr.brokerError()
}
