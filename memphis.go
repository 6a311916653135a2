// Package memphis is a Go client for the Memphis.dev message broker.
//
// Memphis keeps messages in stations. Producers write to a station;
// consumers read from it, each as a member of a consumer group, and the
// members of one group share the station's messages between them. A station
// may be split into partitions, may enforce a schema on every message, and
// keeps the messages its consumers gave up on in a dead-letter station.
//
// # A first program
//
//	conn, err := memphis.Connect("localhost", "root", memphis.Password("memphis"))
//	if err != nil { ... }
//	defer conn.Close()
//
//	station, err := conn.CreateStation("orders")
//	producer, err := station.CreateProducer("checkout")
//	err = producer.Produce([]byte("order 1")) // returns once the broker stored it
//
//	consumer, err := station.CreateConsumer("billing")
//	err = consumer.Consume(func(msgs []*memphis.Msg, err error, ctx context.Context) {
//		for _, m := range msgs {
//			fmt.Printf("%s\n", m.Data())
//			m.Ack()
//		}
//	})
//
// The package's examples (pkg.go.dev shows them; go doc does not) run
// against an in-process broker from package
// github.com/memphisdev/memphis.go/memphistest, which your own tests can use
// too; the repository's examples/ directory holds complete programs.
//
// # Where things are
//
// A Conn makes Stations; a Station (or the Conn directly) makes Producers
// and Consumers; a Consumer hands out Msgs.
//
//	Conn      connect.go     Connect, Close, connection status and events
//	          requests.go    control requests to the broker and their timeouts
//	          jetstream.go   the JetStream API calls the SDK makes itself
//	          outbox.go      what is published while the connection is down
//	          secrets.go     credentials kept out of printed values and errors
//	Station   station.go     CreateStation, Destroy, the station table, broker updates
//	Producer  producer.go    CreateProducer, Produce, ProduceAsync, Flush, Conn.Produce
//	          acker.go       produces awaiting acknowledgement: slots, timeouts, Flush
//	          callbacks.go   the goroutine that runs async callbacks, one at a time
//	          puback.go      PubAck, the broker's acknowledgement, and its parser
//	Consumer  consumer.go    CreateConsumer, the consumer group, Destroy
//	          consume.go     Consume, ConsumeUntil, Messages, StopConsume
//	          fetch.go       Fetch, Conn.FetchMessages
//	          pull.go        the pull engine under all of them: pullers and their depth
//	          cache.go       the clients Conn.Produce and FetchMessages create on first use
//	          lag.go         Lag: how far the consumer group is behind
//	Msg       message.go     Data, DataDeserialized, headers, Ack, Nack, Delay, DeadLetter
//	Headers   headers.go     the headers of produced and consumed messages
//	schemas   schemas.go     CreateSchema, EnforceSchema, DetachSchema; validation
//	          partitions.go  PartitionForKey and partition choice
//	options   options.go     every option, each naming its Default constant
//	hooks     hooks.go       the Hook interfaces: observing produces, consumed messages, connections
//	defaults  memphis.go     the Default constants (this file)
//	errors    errors.go      sentinel errors, *OpError, *BrokerError, *SchemaError
//	logging   logging.go     the default logger; repeated failures summed up
//	internals names.go       name rules, ids and suffixes
//	          usercode.go    how a call made from a handler or callback is told apart
//	1.x       compat.go      what memphis.go 1.x exported that only old code needs
//
// # Producing
//
// Produce is synchronous by default (DefaultAsyncProduce): it returns after
// the broker acknowledged the message, so a failure is the call's error.
// AsyncProduce returns at once; its failure reaches the producer's
// ProducerErrorHandler, else the connection's AsyncErrorHandler, else the
// logger and the producer's next Flush, which waits for every outstanding
// produce. At most
// MaxPending produces await acknowledgement per connection; beyond that
// Produce waits for room, bounded by its context and AckWaitSec, and then
// fails with ErrMaxPending. ProduceAsync calls a function with each
// outcome. MsgId makes a produce idempotent; ProducerPartitionKey and
// ProducerPartitionNumber pick the partition, otherwise a message with a
// MsgId goes to the partition its id routes to (so a retry meets the first
// try) and other messages take the partitions in turn.
//
// # Consuming
//
// One pull engine has four faces: Consume calls a handler in the background
// until StopConsume; ConsumeUntil does the same but blocks until its
// context ends and returns the failure that ended it, if one did; Messages
// is an iterator for a range loop; Fetch and Conn.FetchMessages return one
// batch. The handler is never called concurrently with itself. A failure
// in the background (say, the station was destroyed) reaches exactly one
// place: the consumer's ConsumerErrorHandler if it has one; without one,
// Consume's handler as its err argument with no messages, ConsumeUntil's
// return value, or the Messages loop, which yields it once (see
// ConsumerErrorHandler for the details).
//
// A message is acknowledged with Ack; Nack asks for it again now, Delay
// later, and DeadLetter gives it up: the broker keeps it in the station's
// dead-letter store and copies it to the DlsStation, if the station has
// one. A message delivered MaxMsgDeliveries times without an ack becomes a
// poison message and goes there too (SendPoisonMsgToDls, on by default).
//
// # Schemaverse
//
// A station with a schema validates every produced message before it is
// sent; a message that does not match fails with a *SchemaError, which
// errors.Is matches to ErrSchemaValidation. Besides []byte, each schema type
// takes these Go values:
//
//	SchemaTypeProtobuf  a proto.Message (v1 or v2 API), or a map[string]any read as protojson
//	SchemaTypeJSON      a string of JSON text, or any value json.Marshal takes (structs with json tags, maps)
//	SchemaTypeGraphQL   a string holding the GraphQL document
//	SchemaTypeAvro      a string of JSON text, a map[string]any, or a struct with avro tags
//
// Avro messages travel as JSON checked against the schema, as with the
// other Memphis SDKs; whole numbers fit int and long fields. On the
// consuming side Msg.DataDeserialized decodes with the station's schema.
// EnforceSchema and DetachSchema take effect at once on live producers and
// consumers of the station.
//
// # Contexts, errors and logging
//
// Every call that waits on the network has a form taking a context.Context
// (ConnectContext, ProduceContext, FetchContext, ...); the short forms use
// context.Background. Control-plane calls without a deadline are bounded by
// the connection's RequestTimeout (DefaultRequestTimeout).
//
// Errors are *OpError values naming the call and station and wrapping a
// sentinel such as ErrInvalidName or ErrStationNotFound, a *BrokerError
// carrying the broker's own words, a *SchemaError, or a context error; test
// them with errors.Is and errors.As. Bad names and option values are
// refused before anything is sent.
//
// The SDK logs through log/slog. By default its warnings and errors go to
// slog.Default(); the Logger option sends all of them, connection events at
// Info and Debug included, to a logger of your choice, whose handler picks
// the level. The SDK never prints and never panics on a runtime condition.
// Failures that come in storms are not logged one by one: the first of a
// kind from a producer, consumer or the connection is logged at once, and
// its repeats are summed up in one line every 10 s.
//
// # A network that fails
//
// A connection reconnects forever by default (DefaultMaxReconnect) and
// pings the broker every DefaultPingInterval, so a silently dead
// connection is replaced within 25-30 s and a shorter partition is ridden
// out. While it is down, produces and acks wait for it inside the SDK and
// calls that need it wait for it, all bounded by their contexts, and
// consumers resume when it is back. TLS failures are ErrTLS. Printing or
// logging a Conn or Options never shows a password or token.
//
// # Observability
//
// The Hooks option gives a connection hooks: values implementing any of the
// Hook… interfaces, told of every produce (before it is sent, and its
// outcome), every consumed message, handler call and settlement, failures
// of consuming and connection events (see Hook). Consumer.Lag asks the
// broker how many messages the group has not received yet, per partition.
// The module github.com/memphisdev/memphis.go/otelmemphis builds
// OpenTelemetry tracing and metrics on both.
//
// All types are safe for concurrent use. Goroutines the SDK starts end when
// their owner is closed: Conn.Close, Consumer.StopConsume, Consumer.Destroy.
package memphis

import "time"

// Version is this SDK's version.
const Version = "1.4.0-dev"

// Connection defaults.
const (
	// DefaultPort is the broker's client port.
	DefaultPort = 6666
	// DefaultAccountID is the account (tenant) of an open-source broker.
	DefaultAccountID = 1
	// DefaultReconnect: reconnect after the connection drops.
	DefaultReconnect = true
	// DefaultMaxReconnect (-1) reconnects forever: a broker that takes a
	// minute to come back (a rescheduled Kubernetes pod, a rolling upgrade)
	// finds its clients waiting rather than closed for good. A positive
	// MaxReconnect gives up after that many attempts.
	DefaultMaxReconnect = -1
	// DefaultReconnectInterval is the wait between reconnect attempts.
	DefaultReconnectInterval = time.Second
	// DefaultPingInterval is how often a connection pings the broker to
	// check that it is alive. With DefaultMaxPingsOut it bounds how long a
	// silently dead connection (a crashed host, a dropped NAT entry: no
	// reset, no bytes) goes unnoticed. nats.go counts a ping out at every
	// tick, resets the count at every answer, and declares the connection
	// dead at the tick that finds more than MaxPingsOut unanswered: 6 ticks
	// after the last answered ping, so 25 to 30 s after the connection went
	// silent. A partition shorter than 5 intervals (25 s) is ridden out
	// without a reconnect.
	DefaultPingInterval = 5 * time.Second
	// DefaultMaxPingsOut is how many pings may go unanswered; the next tick
	// of DefaultPingInterval declares the connection dead and reconnects.
	DefaultMaxPingsOut = 5
	// DefaultTimeout bounds the dial of each connection attempt.
	DefaultTimeout = 15 * time.Second
	// DefaultRequestTimeout bounds control-plane calls (create, destroy,
	// schemas) whose context has no deadline.
	DefaultRequestTimeout = 20 * time.Second
	// DefaultMaxPending is how many produces, sync and async alike, a
	// connection lets await acknowledgement at once; the next one waits for
	// room.
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
	// DefaultAckWait is DefaultAckWaitSec as a time.Duration, for AckWait.
	DefaultAckWait = DefaultAckWaitSec * time.Second
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
