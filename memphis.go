// Package memphis is a Go client for the Memphis.dev message broker.
//
// Memphis keeps messages in stations. Producers write to a station and
// consumers read from it, alone or as members of a consumer group that
// shares the work. A station may be split into partitions and may enforce a
// schema on every message.
//
// The concepts map to files:
//
//	Conn      connect.go     one connection to a broker (Connect, Close)
//	Station   station.go     create and destroy stations
//	Producer  producer.go    produce messages (sync, async, to several stations)
//	Consumer  consumer.go    consumer registration; consume.go (Consume), fetch.go (Fetch)
//	Msg       message.go     a consumed message: Data, Ack, Nack, DeadLetter, Delay
//	Headers   headers.go     user headers on produced messages
//	schemas   schemas.go     Schemaverse: create, enforce, detach; validation on produce
//	          partitions.go  which partition a message goes to or comes from
//	options   options.go     every option and its default
//	errors    errors.go      sentinel errors, *OpError, *BrokerError, *SchemaError
//
// Every call that waits on the network has a form taking a context.Context
// (ConnectContext, ProduceContext, FetchContext, ...); the short forms use
// context.Background. Control-plane calls without a deadline are bounded by
// the connection's RequestTimeout (DefaultRequestTimeout).
//
// Errors are *OpError values wrapping a sentinel such as ErrInvalidName or
// ErrStationNotFound, a *BrokerError carrying the broker's own words, a
// *SchemaError, or a context error; test them with errors.Is and errors.As.
//
// All types are safe for concurrent use. Goroutines the SDK starts end when
// their owner is closed: Conn.Close, Consumer.StopConsume, Consumer.Destroy.
//
// Tests and examples can run against an in-process broker: see package
// github.com/memphisdev/memphis.go/memphistest.
package memphis

import "time"

// Version is this SDK's version.
const Version = "2.0.0-dev"

// Connection defaults.
const (
	// DefaultPort is the broker's client port.
	DefaultPort = 6666
	// DefaultAccountID is the account (tenant) of an open-source broker.
	DefaultAccountID = 1
	// DefaultReconnect: reconnect after the connection drops.
	DefaultReconnect = true
	// DefaultMaxReconnect is how many reconnect attempts are made; a negative
	// value means forever.
	DefaultMaxReconnect = 10
	// DefaultReconnectInterval is the wait between reconnect attempts.
	DefaultReconnectInterval = time.Second
	// DefaultTimeout bounds the dial of each connection attempt.
	DefaultTimeout = 15 * time.Second
	// DefaultRequestTimeout bounds control-plane calls (create, destroy,
	// schemas) whose context has no deadline.
	DefaultRequestTimeout = 20 * time.Second
	// DefaultMaxPending is how many asynchronous produces a connection lets
	// await acknowledgement before AsyncProduce waits for room.
	DefaultMaxPending = 4096
	// DefaultCloseTimeout bounds how long Close waits for outstanding
	// asynchronous produces to be acknowledged.
	DefaultCloseTimeout = 5 * time.Second
)

// Station defaults.
const (
	// DefaultRetentionType keeps messages for a number of seconds.
	DefaultRetentionType = MaxMessageAgeSeconds
	// DefaultRetentionValue is one hour, in the retention type's unit.
	DefaultRetentionValue = 3600
	// DefaultStorageType stores messages on disk.
	DefaultStorageType = Disk
	// DefaultReplicas is one copy of each message.
	DefaultReplicas = 1
	// DefaultIdempotencyWindow is how long message ids are remembered.
	DefaultIdempotencyWindow = 2 * time.Minute
	// MinIdempotencyWindow is the shortest window the broker keeps.
	MinIdempotencyWindow = 100 * time.Millisecond
	// MaxIdempotencyWindow is the longest window the broker accepts.
	MaxIdempotencyWindow = 24 * time.Hour
	// DefaultPartitionsNumber is one partition.
	DefaultPartitionsNumber = 1
	// MaxPartitionsNumber is the most partitions a station may have.
	MaxPartitionsNumber = 10000
	// DefaultSendPoisonMsgToDls keeps poison messages in the dead-letter station.
	DefaultSendPoisonMsgToDls = true
	// DefaultSendSchemaFailedMsgToDls keeps schema-failed messages in the
	// dead-letter station.
	DefaultSendSchemaFailedMsgToDls = true
	// DefaultTieredStorageEnabled: no tier-2 storage.
	DefaultTieredStorageEnabled = false
)

// Produce defaults.
const (
	// DefaultAckWaitSec is how long a produce waits for the broker's
	// acknowledgement, in seconds.
	DefaultAckWaitSec = 15
	// DefaultAsyncProduce: Produce waits for the acknowledgement unless
	// AsyncProduce is given, so that no failure goes unseen by default.
	DefaultAsyncProduce = false
)

// Consumer defaults.
const (
	// DefaultPullInterval is the pause after a pull that found the station empty.
	DefaultPullInterval = time.Second
	// DefaultBatchSize is the most messages handed over at once.
	DefaultBatchSize = 10
	// MaxBatchSize is the largest batch the broker serves.
	MaxBatchSize = 5000
	// DefaultBatchMaxWaitTime is how long a pull waits for its batch to fill.
	DefaultBatchMaxWaitTime = 5 * time.Second
	// MinBatchMaxWaitTime is the shortest BatchMaxWaitTime accepted.
	MinBatchMaxWaitTime = time.Millisecond
	// DefaultMaxAckTime is how long the broker waits for an ack before it
	// delivers a message again.
	DefaultMaxAckTime = 30 * time.Second
	// DefaultMaxMsgDeliveries is how many times a message is delivered before
	// it becomes a poison message.
	DefaultMaxMsgDeliveries = 10
	// MaxMsgDeliveriesLimit is the most deliveries the broker allows; larger
	// values are lowered to it by the broker.
	MaxMsgDeliveriesLimit = 10
	// DefaultStartConsumeFromSeq starts a new consumer group at the first message.
	DefaultStartConsumeFromSeq uint64 = 1
	// DefaultLastMessages (-1) means LastMessages is not used.
	DefaultLastMessages int64 = -1
)
