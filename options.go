package memphis

import (
	"crypto/tls"
	"log/slog"
	"time"
)

// This file holds every option of the SDK, so the whole configuration
// surface reads in one place. Setters never fail and never clamp: values are
// checked once, when the call that uses them runs, and a bad value is an
// ErrInvalidOption naming it.

// apply runs option functions over o in order, skipping nil ones. Options
// are validated here and when the call runs, never clamped: an option's own
// error comes back as an ErrInvalidOption.
func apply[T any, F ~func(*T) error](o *T, opts []F) error {
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(o); err != nil {
			return invalidf("%w", err)
		}
	}
	return nil
}

// ---- Connection ----

// TLSOpts names the files of a mutual-TLS connection.
type TLSOpts struct {
	// TlsCert is the client certificate file (PEM).
	TlsCert string
	// TlsKey is the client key file (PEM).
	TlsKey string
	// CaFile is the CA certificate file (PEM) that signed the broker's certificate.
	CaFile string
}

// Options configures a connection. Connect starts from the Default
// constants and applies the Option functions in order.
type Options struct {
	// Host is the broker's host name, with or without http(s)://, or several
	// of them separated by commas for a cluster. Each may carry its own :port.
	Host string
	// Port is used for hosts that carry no port. Default DefaultPort.
	Port int
	// Username is the Memphis user.
	Username string
	// AccountId is the tenant; only the cloud broker has more than one.
	// Default DefaultAccountID.
	AccountId int
	// ConnectionToken authenticates in token mode. Exactly one of
	// ConnectionToken and Password must be set.
	ConnectionToken string
	// Password authenticates in user/password mode.
	Password string
	// Reconnect says whether to reconnect after the connection drops.
	// Default DefaultReconnect.
	Reconnect bool
	// MaxReconnect is how many reconnect attempts to make, honoured as given;
	// negative means forever. Default DefaultMaxReconnect (forever).
	MaxReconnect int
	// ReconnectInterval is the wait between reconnect attempts.
	// Default DefaultReconnectInterval.
	ReconnectInterval time.Duration
	// PingInterval is how often the connection pings the broker to check
	// that it is alive. Default DefaultPingInterval.
	PingInterval time.Duration
	// MaxPingsOut is how many pings may go unanswered before the
	// connection is declared dead and a reconnect begins.
	// Default DefaultMaxPingsOut.
	MaxPingsOut int
	// Timeout bounds the dial of each connection attempt. Default DefaultTimeout.
	Timeout time.Duration
	// RequestTimeout bounds control-plane calls whose context has no deadline.
	// Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// TLSOpts are certificate files for mutual TLS.
	TLSOpts TLSOpts
	// TLSConfig is a ready TLS configuration; it takes precedence over TLSOpts.
	TLSConfig *tls.Config
	// MaxPending bounds the produces, sync and async alike, awaiting
	// acknowledgement on this connection at once. Default DefaultMaxPending.
	MaxPending int
	// CloseTimeout bounds how long Close waits for outstanding asynchronous
	// produces. Default DefaultCloseTimeout.
	CloseTimeout time.Duration
	// Logger receives the SDK's logs. Default: warnings and errors go to
	// slog.Default().
	Logger *slog.Logger
	// DisconnectHandler is called when the connection drops.
	DisconnectHandler func(*Conn, error)
	// ReconnectHandler is called when the connection is re-established.
	ReconnectHandler func(*Conn)
	// ClosedHandler is called once the connection is closed for good.
	ClosedHandler func(*Conn)
	// AsyncErrorHandler receives failures of asynchronous produces whose
	// producer has no ProducerErrorHandler. Default: they are logged at Error.
	AsyncErrorHandler func(*Producer, error)
	// Hooks observe the connection's produces, consumed messages and
	// connection events (see Hook). Default: none.
	Hooks []Hook
}

// Option configures Connect.
type Option func(*Options) error

// Port sets the port for hosts given without one. Default DefaultPort.
func Port(port int) Option { return func(o *Options) error { o.Port = port; return nil } }

// Reconnect sets whether to reconnect after the connection drops.
// Default DefaultReconnect.
func Reconnect(reconnect bool) Option {
	return func(o *Options) error { o.Reconnect = reconnect; return nil }
}

// MaxReconnect sets how many reconnect attempts are made; negative means
// forever. After the last attempt fails the connection is closed for
// good: calls fail with ErrConnClosed and consumers stop. Default
// DefaultMaxReconnect: forever.
func MaxReconnect(maxReconnect int) Option {
	return func(o *Options) error { o.MaxReconnect = maxReconnect; return nil }
}

// ReconnectInterval sets the wait between reconnect attempts.
// Default DefaultReconnectInterval.
func ReconnectInterval(d time.Duration) Option {
	return func(o *Options) error { o.ReconnectInterval = d; return nil }
}

// PingInterval sets how often the connection pings the broker to check
// that it is alive (it must be positive). A connection whose peer vanished
// without a reset is declared dead at the tick that finds more than
// MaxPingsOut pings unanswered: MaxPingsOut+1 ticks after the last answered
// ping, so between MaxPingsOut and MaxPingsOut+1 intervals after the
// connection went silent. A partition shorter than MaxPingsOut intervals
// is ridden out. Default DefaultPingInterval.
func PingInterval(d time.Duration) Option {
	return func(o *Options) error { o.PingInterval = d; return nil }
}

// MaxPingsOut sets how many pings may go unanswered (at least 1) before
// the connection is declared dead and a reconnect begins.
// Default DefaultMaxPingsOut.
func MaxPingsOut(n int) Option { return func(o *Options) error { o.MaxPingsOut = n; return nil } }

// Timeout bounds the dial of each connection attempt. Default DefaultTimeout.
func Timeout(d time.Duration) Option { return func(o *Options) error { o.Timeout = d; return nil } }

// RequestTimeout bounds control-plane calls whose context has no deadline.
// Default DefaultRequestTimeout.
func RequestTimeout(d time.Duration) Option {
	return func(o *Options) error { o.RequestTimeout = d; return nil }
}

// ConnectionToken authenticates with a connection token (token mode).
func ConnectionToken(token string) Option {
	return func(o *Options) error { o.ConnectionToken = token; return nil }
}

// Password authenticates with the user's password (user/password mode).
func Password(password string) Option {
	return func(o *Options) error { o.Password = password; return nil }
}

// AccountId sets the tenant; only the cloud broker has more than one.
// Default DefaultAccountID.
func AccountId(accountID int) Option {
	return func(o *Options) error { o.AccountId = accountID; return nil }
}

// Tls connects with mutual TLS using certificate files (PEM): the client
// certificate, its key and the CA that signed the broker's certificate.
func Tls(certFile, keyFile, caFile string) Option {
	return func(o *Options) error {
		o.TLSOpts = TLSOpts{TlsCert: certFile, TlsKey: keyFile, CaFile: caFile}
		return nil
	}
}

// TLSConfig connects with TLS configured in memory. It takes precedence over Tls.
func TLSConfig(cfg *tls.Config) Option {
	return func(o *Options) error { o.TLSConfig = cfg; return nil }
}

// MaxPending bounds the produces, sync and async alike, awaiting
// acknowledgement on the connection at once; past it, a produce waits for
// room (bounded by its context and AckWaitSec) and then fails with
// ErrMaxPending. Default DefaultMaxPending.
func MaxPending(n int) Option { return func(o *Options) error { o.MaxPending = n; return nil } }

// CloseTimeout bounds how long Close waits for outstanding asynchronous
// produces (CloseContext takes a context instead). Default
// DefaultCloseTimeout.
func CloseTimeout(d time.Duration) Option {
	return func(o *Options) error { o.CloseTimeout = d; return nil }
}

// Logger sends the SDK's logs (connection events at Info, failures nobody
// else was told about at Warn and Error) to l. Default: warnings and errors
// go to slog.Default(); pass a logger with a discarding handler to silence
// them.
func Logger(l *slog.Logger) Option { return func(o *Options) error { o.Logger = l; return nil } }

// DisconnectHandler is called when the connection drops (default: none),
// with an *OpError
// wrapping the reason (nats.go's error underneath), or nil when the drop
// was Close's doing.
func DisconnectHandler(fn func(*Conn, error)) Option {
	return func(o *Options) error { o.DisconnectHandler = fn; return nil }
}

// ReconnectHandler is called when the connection is re-established.
// Default: none.
func ReconnectHandler(fn func(*Conn)) Option {
	return func(o *Options) error { o.ReconnectHandler = fn; return nil }
}

// ClosedHandler is called once the connection is closed for good.
// Default: none.
func ClosedHandler(fn func(*Conn)) Option {
	return func(o *Options) error { o.ClosedHandler = fn; return nil }
}

// AsyncErrorHandler receives failures of asynchronous produces from producers
// that have no ProducerErrorHandler. Default: they are logged at Error level.
func AsyncErrorHandler(fn func(*Producer, error)) Option {
	return func(o *Options) error { o.AsyncErrorHandler = fn; return nil }
}

// Hooks adds hooks that observe the connection: produces, consumed
// messages, consumers and connection events (see Hook for the interfaces
// and where each runs). Repeated, it adds more; nil hooks are skipped, and
// a value implementing no hook interface is refused with ErrInvalidOption.
// Default: none, and then the SDK's produce and consume paths do no hook
// work at all.
func Hooks(hooks ...Hook) Option {
	return func(o *Options) error { o.Hooks = append(o.Hooks, hooks...); return nil }
}

// ---- Control-plane requests (1.x) ----

// RequestOpts configures a control-plane call of the 1.x form (Destroy,
// CreateSchema, EnforceSchema, DetachSchema).
type RequestOpts struct {
	// TimeoutRetries is how many more times a request the broker did not
	// answer within RequestTimeout is sent again. Default 0.
	TimeoutRetries int
}

// RequestOpt configures a control-plane call of the 1.x form.
type RequestOpt func(*RequestOpts) error

// TimeoutRetry sends a control-plane request that timed out up to retries
// more times, each attempt bounded by the connection's RequestTimeout.
// Default 0: one attempt (1.x made five more).
//
// Deprecated: bound the call with a context instead, through its Context
// form (DestroyContext, CreateSchemaContext, ...), or raise RequestTimeout.
// TimeoutRetry still works.
func TimeoutRetry(retries int) RequestOpt {
	return func(o *RequestOpts) error { o.TimeoutRetries = retries; return nil }
}

// ---- Station ----

// StationOpts configures CreateStation. CreateStation starts from
// GetStationDefaultOptions (the Default constants) and applies the
// StationOpt functions in order.
type StationOpts struct {
	// Name is the station's name; CreateStation sets it from its argument
	// before applying the options, so the Name option can replace it.
	Name string
	// RetentionType says how the station decides which messages to keep.
	// Default DefaultRetentionType.
	RetentionType RetentionType
	// RetentionVal is the retention limit in RetentionType's unit (seconds,
	// messages or bytes; ignored for AckBased). Default DefaultRetentionValue.
	RetentionVal int
	// StorageType says where messages are stored. Default DefaultStorageType.
	StorageType StorageType
	// Replicas is how many copies of each message a cluster keeps.
	// Default DefaultReplicas.
	Replicas int
	// IdempotencyWindow is how long message ids are remembered, from
	// MinIdempotencyWindow to MaxIdempotencyWindow.
	// Default DefaultIdempotencyWindow.
	IdempotencyWindow time.Duration
	// SchemaName is a schema to enforce from creation. Default: none.
	SchemaName string
	// SendPoisonMsgToDls keeps poison messages in the dead-letter station.
	// Default DefaultSendPoisonMsgToDls.
	SendPoisonMsgToDls bool
	// SendSchemaFailedMsgToDls keeps messages that failed the schema in the
	// dead-letter station. Default DefaultSendSchemaFailedMsgToDls.
	SendSchemaFailedMsgToDls bool
	// TieredStorageEnabled moves messages past retention to tier-2 storage.
	// Default DefaultTieredStorageEnabled.
	TieredStorageEnabled bool
	// PartitionsNumber is how many partitions the station has, at most
	// MaxPartitionsNumber; 0 means the default, as in 1.x.
	// Default DefaultPartitionsNumber.
	PartitionsNumber int
	// DlsStation names a station that receives a copy of every dead-letter
	// event. Default: none.
	DlsStation string
	// TimeoutRetry is how many more times the creation request is sent when
	// the broker did not answer it in time. Default 0.
	//
	// Deprecated: see StationTimeoutRetry.
	TimeoutRetry int
}

// GetStationDefaultOptions returns the options CreateStation starts from:
// the Default constants (DefaultRetentionType, DefaultRetentionValue, ...).
func GetStationDefaultOptions() StationOpts {
	return StationOpts{
		RetentionType:            DefaultRetentionType,
		RetentionVal:             DefaultRetentionValue,
		StorageType:              DefaultStorageType,
		Replicas:                 DefaultReplicas,
		IdempotencyWindow:        DefaultIdempotencyWindow,
		SendPoisonMsgToDls:       DefaultSendPoisonMsgToDls,
		SendSchemaFailedMsgToDls: DefaultSendSchemaFailedMsgToDls,
		TieredStorageEnabled:     DefaultTieredStorageEnabled,
		PartitionsNumber:         DefaultPartitionsNumber,
	}
}

// StationOpt configures CreateStation.
type StationOpt func(*StationOpts) error

// Name replaces the station name given to CreateStation.
//
// Deprecated: give the name to CreateStation. Name still works.
func Name(name string) StationOpt {
	return func(o *StationOpts) error { o.Name = name; return nil }
}

// StationTimeoutRetry sends the creation request up to retries more times
// when the broker did not answer it within RequestTimeout. Default 0.
//
// Deprecated: use CreateStationContext with a context, or raise
// RequestTimeout. StationTimeoutRetry still works.
func StationTimeoutRetry(retries int) StationOpt {
	return func(o *StationOpts) error { o.TimeoutRetry = retries; return nil }
}

// RetentionTypeOpt sets how the station decides which messages to keep.
// Default DefaultRetentionType.
func RetentionTypeOpt(t RetentionType) StationOpt {
	return func(o *StationOpts) error { o.RetentionType = t; return nil }
}

// RetentionVal sets the retention limit in the retention type's unit
// (seconds, messages or bytes; ignored for AckBased). Default DefaultRetentionValue.
func RetentionVal(v int) StationOpt {
	return func(o *StationOpts) error { o.RetentionVal = v; return nil }
}

// StorageTypeOpt sets where messages are stored. Default DefaultStorageType.
func StorageTypeOpt(t StorageType) StationOpt {
	return func(o *StationOpts) error { o.StorageType = t; return nil }
}

// Replicas sets how many copies of each message a cluster keeps (1, 3 or 5).
// Default DefaultReplicas.
func Replicas(n int) StationOpt { return func(o *StationOpts) error { o.Replicas = n; return nil } }

// IdempotencyWindow sets how long message ids are remembered to drop
// duplicates. Default DefaultIdempotencyWindow.
func IdempotencyWindow(d time.Duration) StationOpt {
	return func(o *StationOpts) error { o.IdempotencyWindow = d; return nil }
}

// SchemaName enforces a schema on the station from its creation. Default: none.
func SchemaName(name string) StationOpt {
	return func(o *StationOpts) error { o.SchemaName = name; return nil }
}

// SendPoisonMsgToDls sets whether poison messages (delivered
// MaxMsgDeliveries times without ack) go to the dead-letter station.
// Default DefaultSendPoisonMsgToDls.
func SendPoisonMsgToDls(b bool) StationOpt {
	return func(o *StationOpts) error { o.SendPoisonMsgToDls = b; return nil }
}

// SendSchemaFailedMsgToDls sets whether messages that fail the schema go to
// the dead-letter station. Default DefaultSendSchemaFailedMsgToDls.
func SendSchemaFailedMsgToDls(b bool) StationOpt {
	return func(o *StationOpts) error { o.SendSchemaFailedMsgToDls = b; return nil }
}

// TieredStorageEnabled moves messages past retention to tier-2 storage
// instead of deleting them. Default DefaultTieredStorageEnabled.
func TieredStorageEnabled(b bool) StationOpt {
	return func(o *StationOpts) error { o.TieredStorageEnabled = b; return nil }
}

// PartitionsNumber sets how many partitions the station has, at most
// MaxPartitionsNumber; 0 means the default, as in 1.x.
// Default DefaultPartitionsNumber.
func PartitionsNumber(n int) StationOpt {
	return func(o *StationOpts) error { o.PartitionsNumber = n; return nil }
}

// DlsStation names a station that receives a copy of every dead-letter
// event: the message with its headers, plus "station" (where it came from)
// and "type" ("unacked" for poison and dead-lettered messages,
// "failed_schema" for schema failures, which also carry
// "validation_error"). Default: none.
func DlsStation(name string) StationOpt {
	return func(o *StationOpts) error { o.DlsStation = name; return nil }
}

// ---- Producer ----

// ProducerOpts configures CreateProducer.
type ProducerOpts struct {
	// GenUniqueSuffix appends a random suffix to the producer's name.
	// Default false.
	GenUniqueSuffix bool
	// TimeoutRetry is how many more times the registration request is sent
	// when the broker did not answer it in time. Default 0.
	//
	// Deprecated: see ProducerTimeoutRetry.
	TimeoutRetry int
	// ErrHandler receives failures of this producer's asynchronous
	// produces. Default nil: see ProducerErrorHandler.
	ErrHandler func(*Producer, error)
}

// ProducerOpt configures CreateProducer.
type ProducerOpt func(*ProducerOpts) error

// ProducerGenUniqueSuffix appends a random suffix to the producer's name.
//
// Deprecated: producers of one name may share a station; give each a
// distinct name yourself if you need to tell them apart. It still works.
func ProducerGenUniqueSuffix() ProducerOpt {
	return func(o *ProducerOpts) error { o.GenUniqueSuffix = true; return nil }
}

// ProducerErrorHandler receives the failures of this producer's
// asynchronous produces (each exactly once). Default: the connection's
// AsyncErrorHandler.
func ProducerErrorHandler(fn func(*Producer, error)) ProducerOpt {
	return func(o *ProducerOpts) error { o.ErrHandler = fn; return nil }
}

// ProducerTimeoutRetry sends the registration request up to retries more
// times when the broker did not answer it within RequestTimeout. Default 0.
//
// Deprecated: use CreateProducerContext with a context, or raise
// RequestTimeout. ProducerTimeoutRetry still works.
func ProducerTimeoutRetry(retries int) ProducerOpt {
	return func(o *ProducerOpts) error { o.TimeoutRetry = retries; return nil }
}

// ---- Produce ----

// ProduceOpts configures one Produce.
type ProduceOpts struct {
	// Message is the message to produce: Produce sets it from its argument
	// before applying the options, so an option may replace it.
	Message any
	// AckWaitSec bounds the wait for the broker's acknowledgement, in seconds.
	// Default DefaultAckWaitSec.
	AckWaitSec int
	// MsgHeaders are user headers; the SDK copies them and never writes to
	// them. Default: none.
	MsgHeaders Headers
	// AsyncProduce returns without waiting for the acknowledgement.
	// Default DefaultAsyncProduce.
	AsyncProduce bool
	// MsgId makes the produce idempotent within the station's idempotency
	// window. Without ProducerPartitionKey or ProducerPartitionNumber it
	// also picks the partition, as a key would, so that a retry reaches the
	// partition that stored the first try. Default: none.
	MsgId string
	// ProducerPartitionKey routes the message to the partition its murmur3
	// hash picks. Default: none.
	ProducerPartitionKey string
	// ProducerPartitionNumber routes the message to this partition
	// (1-based). Default 0: the partition MsgId routes to, or else
	// round-robin over the station's partitions.
	ProducerPartitionNumber int

	byKey      bool          // ProducerPartitionKey was given, possibly empty
	msgIDSet   bool          // MsgId was given, possibly empty
	ackWait    time.Duration // AckWait's, when ackWaitSet: it overrides AckWaitSec
	ackWaitSet bool
}

// ackWaitDuration is the wait AckWait or AckWaitSec set, whichever came last.
func (o *ProduceOpts) ackWaitDuration() time.Duration {
	if o.ackWaitSet {
		return o.ackWait
	}
	return time.Duration(o.AckWaitSec) * time.Second
}

// ProduceOpt configures one Produce.
type ProduceOpt func(*ProduceOpts) error

// AckWaitSec bounds the wait for the broker's acknowledgement, in whole
// seconds. Default DefaultAckWaitSec. AckWait takes any duration.
func AckWaitSec(sec int) ProduceOpt {
	return func(o *ProduceOpts) error {
		o.AckWaitSec, o.ackWaitSet = sec, false
		return nil
	}
}

// AckWait bounds the wait for the broker's acknowledgement; it must be
// positive. Default DefaultAckWait. Of AckWait and AckWaitSec, the one
// given last counts.
func AckWait(d time.Duration) ProduceOpt {
	return func(o *ProduceOpts) error {
		o.ackWait, o.ackWaitSet = d, true
		return nil
	}
}

// MsgHeaders attaches user headers. The SDK copies them, so one Headers value
// can be shared by concurrent produces. Default: none.
func MsgHeaders(h Headers) ProduceOpt {
	return func(o *ProduceOpts) error { o.MsgHeaders = h; return nil }
}

// AsyncProduce returns as soon as the message is sent. Its outcome still
// reaches the producer's error handler if it fails; Producer.Flush waits for
// all outstanding ones. Default DefaultAsyncProduce.
func AsyncProduce() ProduceOpt {
	return func(o *ProduceOpts) error { o.AsyncProduce = true; return nil }
}

// SyncProduce waits for the broker's acknowledgement: it undoes an earlier
// AsyncProduce. This is the default (DefaultAsyncProduce is false).
func SyncProduce() ProduceOpt {
	return func(o *ProduceOpts) error { o.AsyncProduce = false; return nil }
}

// MsgId gives the message an id: a second message with the same id inside
// the station's idempotency window is dropped by the broker. An empty id is
// refused with ErrInvalidOption before anything is sent, so an id that came
// out empty never silently turns de-duplication off. Each partition
// de-duplicates only the messages it stores, so a message with an id and
// neither ProducerPartitionKey nor ProducerPartitionNumber goes to the
// partition its id routes to, PartitionForKey(id, partitions), rather than
// round-robin: a retry lands where the first try did. Default: none.
func MsgId(id string) ProduceOpt {
	return func(o *ProduceOpts) error { o.MsgId, o.msgIDSet = id, true; return nil }
}

// ProducerPartitionKey routes the message by key: the same key always goes
// to the same partition, as with every Memphis SDK. Default: none (see
// ProducerPartitionNumber).
func ProducerPartitionKey(key string) ProduceOpt {
	return func(o *ProduceOpts) error { o.ProducerPartitionKey, o.byKey = key, true; return nil }
}

// ProducerPartitionNumber routes the message to a partition (1-based).
// Default: the partition the MsgId routes to if there is one, or else
// round-robin over the station's partitions.
func ProducerPartitionNumber(n int) ProduceOpt {
	return func(o *ProduceOpts) error { o.ProducerPartitionNumber = n; return nil }
}

// ---- Consumer ----

// ConsumerErrHandler receives errors that happen in a consumer's background
// work, e.g. ErrStationUnreachable. During Consume it runs on the goroutine
// that calls the message handler, never concurrently with it, and may call
// any method (StopConsume, Destroy, Conn.Close).
type ConsumerErrHandler func(*Consumer, error)

// ConsumerOpts configures CreateConsumer. CreateConsumer starts from the
// Default constants and applies the ConsumerOpt functions in order.
type ConsumerOpts struct {
	// Name is the consumer's name and StationName its station's: set from
	// CreateConsumer's arguments before the options are applied.
	Name        string
	StationName string
	// ConsumerGroup is the group the consumer joins. Default "": a group
	// named after the consumer.
	ConsumerGroup string
	// PullInterval is the pause after a pull that found the station empty.
	// Default DefaultPullInterval.
	PullInterval time.Duration
	// BatchSize is the most messages handed over at once, 1 to MaxBatchSize.
	// Default DefaultBatchSize.
	BatchSize int
	// BatchMaxTimeToWait is how long a pull waits for its batch to fill, at
	// least MinBatchMaxWaitTime. Set it with BatchMaxWaitTime.
	// Default DefaultBatchMaxWaitTime.
	BatchMaxTimeToWait time.Duration
	// MaxAckTime is how long the broker waits for an ack before it delivers a
	// message again. Default DefaultMaxAckTime.
	MaxAckTime time.Duration
	// MaxMsgDeliveries is how many times a message is delivered before it is a
	// poison message, at most MaxMsgDeliveriesLimit.
	// Default DefaultMaxMsgDeliveries.
	MaxMsgDeliveries int
	// GenUniqueSuffix appends a random suffix to the consumer's name.
	// Default false.
	GenUniqueSuffix bool
	// ErrHandler receives the consumer's background failures. Default nil:
	// see ConsumerErrorHandler for where they go then.
	ErrHandler ConsumerErrHandler
	// StartConsumeFromSequence is where a new consumer group starts, per
	// partition. Default DefaultStartConsumeFromSeq.
	StartConsumeFromSequence uint64
	// LastMessages starts a new consumer group at the last n messages of each
	// partition; -1 means not used. Default DefaultLastMessages.
	LastMessages int64
	// TimeoutRetry is how many more times the registration request is sent
	// when the broker did not answer it in time. Default 0.
	//
	// Deprecated: see ConsumerTimeoutRetry.
	TimeoutRetry int
}

// ConsumerOpt configures CreateConsumer.
type ConsumerOpt func(*ConsumerOpts) error

// ConsumerGroup makes the consumer a member of a group that shares the
// station's messages. Default: a group named after the consumer.
func ConsumerGroup(cg string) ConsumerOpt {
	return func(o *ConsumerOpts) error { o.ConsumerGroup = cg; return nil }
}

// PullInterval sets the pause after a pull that found the station empty.
// While messages flow the next pull is always already in flight.
// Default DefaultPullInterval.
func PullInterval(d time.Duration) ConsumerOpt {
	return func(o *ConsumerOpts) error { o.PullInterval = d; return nil }
}

// BatchSize sets the most messages handed over at once (1 to MaxBatchSize).
// Default DefaultBatchSize.
func BatchSize(n int) ConsumerOpt { return func(o *ConsumerOpts) error { o.BatchSize = n; return nil } }

// BatchMaxWaitTime sets how long a pull waits for its batch to fill (at
// least MinBatchMaxWaitTime). Default DefaultBatchMaxWaitTime.
func BatchMaxWaitTime(d time.Duration) ConsumerOpt {
	return func(o *ConsumerOpts) error { o.BatchMaxTimeToWait = d; return nil }
}

// MaxAckTime sets how long the broker waits for an ack before delivering a
// message again. Default DefaultMaxAckTime.
func MaxAckTime(d time.Duration) ConsumerOpt {
	return func(o *ConsumerOpts) error { o.MaxAckTime = d; return nil }
}

// MaxMsgDeliveries sets how many times a message is delivered before it is a
// poison message; the broker allows at most MaxMsgDeliveriesLimit.
// Default DefaultMaxMsgDeliveries.
func MaxMsgDeliveries(n int) ConsumerOpt {
	return func(o *ConsumerOpts) error { o.MaxMsgDeliveries = n; return nil }
}

// ConsumerGenUniqueSuffix appends a random suffix to the consumer's name.
//
// Deprecated: name consumers yourself; it still works.
func ConsumerGenUniqueSuffix() ConsumerOpt {
	return func(o *ConsumerOpts) error { o.GenUniqueSuffix = true; return nil }
}

// ConsumerErrorHandler receives the failures of the consumer's background
// work: ErrStationUnreachable when the station is gone, ErrConnClosed when
// reconnecting gave up, a pull the broker did not serve, a re-sent dead
// letter with no room to wait in. Each failure reaches exactly one place.
// With this handler set it is this handler, for every failure: then
// ConsumeUntil returns nil and Messages ends without yielding an error
// when a failure ends consuming. Default (no handler): Consume passes each
// failure to the message handler as err, with no messages; ConsumeUntil
// does the same with the failures it recovers from and returns the one
// that ends it; Messages yields the one that ends it and logs the others at
// Error, as it does failures outside any consume loop.
func ConsumerErrorHandler(fn ConsumerErrHandler) ConsumerOpt {
	return func(o *ConsumerOpts) error { o.ErrHandler = fn; return nil }
}

// StartConsumeFromSeq starts a new consumer group at this sequence number
// (per partition). Default DefaultStartConsumeFromSeq.
func StartConsumeFromSeq(seq uint64) ConsumerOpt {
	return func(o *ConsumerOpts) error { o.StartConsumeFromSequence = seq; return nil }
}

// StartConsumeFromSequence is StartConsumeFromSeq under the name the 1.x
// code used.
//
// Deprecated: use StartConsumeFromSeq, the name the README documents.
func StartConsumeFromSequence(seq uint64) ConsumerOpt { return StartConsumeFromSeq(seq) }

// LastMessages starts a new consumer group at the last n messages of each
// partition; -1 means not used. Default DefaultLastMessages.
func LastMessages(n int64) ConsumerOpt {
	return func(o *ConsumerOpts) error { o.LastMessages = n; return nil }
}

// ConsumerTimeoutRetry sends the registration request up to retries more
// times when the broker did not answer it within RequestTimeout. Default 0.
//
// Deprecated: use CreateConsumerContext with a context, or raise
// RequestTimeout. ConsumerTimeoutRetry still works.
func ConsumerTimeoutRetry(retries int) ConsumerOpt {
	return func(o *ConsumerOpts) error { o.TimeoutRetry = retries; return nil }
}

// ---- Consume and Fetch on a consumer ----

// ConsumingOpts selects the partition Consume or Fetch reads.
type ConsumingOpts struct {
	// ConsumerPartitionKey reads the partition the key routes to.
	// Default: none.
	ConsumerPartitionKey string
	// ConsumerPartitionNumber reads this partition (1-based). Default 0:
	// every partition (Consume, Messages) or the next one round-robin
	// (Fetch).
	ConsumerPartitionNumber int

	byKey bool // ConsumerPartitionKey was given, possibly empty
}

// ConsumingOpt configures Consume or Fetch.
type ConsumingOpt func(*ConsumingOpts) error

// ConsumerPartitionKey reads only the partition the key routes to.
// Default: all partitions.
func ConsumerPartitionKey(key string) ConsumingOpt {
	return func(o *ConsumingOpts) error { o.ConsumerPartitionKey, o.byKey = key, true; return nil }
}

// ConsumerPartitionNumber reads only this partition (1-based).
// Default: all partitions.
func ConsumerPartitionNumber(n int) ConsumingOpt {
	return func(o *ConsumingOpts) error { o.ConsumerPartitionNumber = n; return nil }
}

// ---- Conn.FetchMessages ----

// FetchOpts configures Conn.FetchMessages: the consumer it creates (or
// reuses) and the fetch itself. It starts from the same defaults as
// CreateConsumer.
type FetchOpts struct {
	// ConsumerName and StationName are FetchMessages' arguments, set before
	// the options are applied.
	ConsumerName string
	StationName  string
	// The consumer FetchMessages creates on first use; see the fields of
	// the same names in ConsumerOpts for their meaning and defaults.
	ConsumerGroup            string
	BatchMaxTimeToWait       time.Duration
	MaxAckTime               time.Duration
	MaxMsgDeliveries         int
	GenUniqueSuffix          bool
	ErrHandler               ConsumerErrHandler
	StartConsumeFromSequence uint64
	LastMessages             int64
	// BatchSize is how many messages to fetch at most. Default DefaultBatchSize.
	BatchSize int
	// Prefetch fetches the next batch in the background for the next call.
	// Default false.
	Prefetch bool
	// FetchPartitionKey fetches from the partition the key routes to.
	// Default: none.
	FetchPartitionKey string
	// FetchPartitionNumber fetches from this partition (1-based). Default 0:
	// the next partition, round-robin.
	FetchPartitionNumber int

	byKey bool // FetchPartitionKey was given, possibly empty
}

// FetchOpt configures Conn.FetchMessages.
type FetchOpt func(*FetchOpts) error

// FetchConsumerGroup: see ConsumerGroup. Default: a group named after the
// consumer.
func FetchConsumerGroup(cg string) FetchOpt {
	return func(o *FetchOpts) error { o.ConsumerGroup = cg; return nil }
}

// FetchBatchSize sets how many messages to fetch. Default DefaultBatchSize.
func FetchBatchSize(n int) FetchOpt { return func(o *FetchOpts) error { o.BatchSize = n; return nil } }

// FetchBatchMaxWaitTime: see BatchMaxWaitTime. Default DefaultBatchMaxWaitTime.
func FetchBatchMaxWaitTime(d time.Duration) FetchOpt {
	return func(o *FetchOpts) error { o.BatchMaxTimeToWait = d; return nil }
}

// FetchMaxAckTime: see MaxAckTime. Default DefaultMaxAckTime.
func FetchMaxAckTime(d time.Duration) FetchOpt {
	return func(o *FetchOpts) error { o.MaxAckTime = d; return nil }
}

// FetchMaxMsgDeliveries: see MaxMsgDeliveries. Default DefaultMaxMsgDeliveries.
func FetchMaxMsgDeliveries(n int) FetchOpt {
	return func(o *FetchOpts) error { o.MaxMsgDeliveries = n; return nil }
}

// FetchConsumerGenUniqueSuffix appends a random suffix to the name of the
// consumer FetchMessages creates. FetchMessages creates it once per
// connection and reuses it, so the suffix is drawn once.
//
// Deprecated: a random name makes a consumer group nobody else can join or
// resume; name consumers yourself. It still works.
func FetchConsumerGenUniqueSuffix() FetchOpt {
	return func(o *FetchOpts) error { o.GenUniqueSuffix = true; return nil }
}

// FetchConsumerErrorHandler: see ConsumerErrorHandler. Default: none.
func FetchConsumerErrorHandler(fn ConsumerErrHandler) FetchOpt {
	return func(o *FetchOpts) error { o.ErrHandler = fn; return nil }
}

// FetchStartConsumeFromSeq: see StartConsumeFromSeq. Default
// DefaultStartConsumeFromSeq.
func FetchStartConsumeFromSeq(seq uint64) FetchOpt {
	return func(o *FetchOpts) error { o.StartConsumeFromSequence = seq; return nil }
}

// FetchLastMessages: see LastMessages. Default DefaultLastMessages.
func FetchLastMessages(n int64) FetchOpt {
	return func(o *FetchOpts) error { o.LastMessages = n; return nil }
}

// FetchPartitionKey fetches from the partition the key routes to. Default:
// none (see FetchPartitionNumber).
func FetchPartitionKey(key string) FetchOpt {
	return func(o *FetchOpts) error { o.FetchPartitionKey, o.byKey = key, true; return nil }
}

// FetchPartitionNumber fetches from this partition (1-based). Default: the
// next partition, round-robin.
func FetchPartitionNumber(n int) FetchOpt {
	return func(o *FetchOpts) error { o.FetchPartitionNumber = n; return nil }
}

// FetchPrefetch starts fetching the next batch as soon as this one returns,
// so the next FetchMessages call finds it ready. Default: off.
func FetchPrefetch() FetchOpt { return func(o *FetchOpts) error { o.Prefetch = true; return nil } }
