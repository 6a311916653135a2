package memphis

import (
	"errors"
	"log/slog"

	"github.com/nats-io/nats.go"
)

// This file keeps what memphis.go 1.x exported and this SDK has no use for,
// so that programs written against 1.x still compile: deprecated errors and
// handlers, and types that described 1.x's internal messages and caches.
// The "Upgrading from 1.x" section of the README lists them. Deprecated 1.x
// options live in options.go with the others, and 1.x partition helpers in
// partitions.go.

// Errors of 1.x consumers.
var (
	// ConsumerErrStationUnreachable is ErrStationUnreachable.
	//
	// Deprecated: use errors.Is(err, ErrStationUnreachable). The error a
	// handler receives wraps it, so == no longer matches.
	ConsumerErrStationUnreachable = ErrStationUnreachable
	// ConsumerErrDelayDlsMsg is ErrNotSupported, which Msg.Delay returns
	// for a message the broker re-sent from the dead-letter station.
	//
	// Deprecated: use errors.Is(err, ErrNotSupported).
	ConsumerErrDelayDlsMsg = ErrNotSupported
	// ConsumerErrConsumeInactive is what 1.x passed to the error handler
	// when StopConsume was called on a consumer that was not consuming.
	//
	// Deprecated: StopConsume on such a consumer does nothing and reports
	// nothing; the SDK never returns this error.
	//
	//lint:ignore ST1012 the name is 1.x's, kept so that 1.x code compiles
	ConsumerErrConsumeInactive = errors.New("memphis: consumer is inactive")
)

// JetstreamOperationTimeout is the time, in seconds, 1.x allowed a JetStream
// management call.
//
// Deprecated: this SDK bounds every control-plane call by the connection's
// RequestTimeout (DefaultRequestTimeout) or the call's context.
const JetstreamOperationTimeout = 30

// DefaultConsumerErrHandler logs a consumer's background error at Error
// level through the connection's Logger, as 1.x's default handler printed
// it. Give it to ConsumerErrorHandler to have such errors logged instead of
// passed to the message handler.
func DefaultConsumerErrHandler(c *Consumer, err error) {
	if c == nil || c.conn == nil {
		slog.Default().Error("memphis: consumer error", "err", err)
		return
	}
	c.conn.log.Error("memphis: consumer error", "station", c.station, "consumer", c.name, "err", err)
}

// DefaultErrHandler logs the last error of a NATS connection, if it has one,
// at Error level to slog.Default(). 1.x installed it as the connection's
// closed callback.
//
// Deprecated: connection events reach the Logger option and the
// DisconnectHandler, ReconnectHandler and ClosedHandler options.
func DefaultErrHandler(nc *nats.Conn) {
	if nc == nil {
		return
	}
	if err := nc.LastError(); err != nil {
		slog.Default().Error("memphis: connection error", "err", err)
	}
}

// StationName is a station's name. Conn.CreateProducer and Conn.Produce
// take it as they take a string.
//
// Deprecated: use a string.
type StationName string

// ProducersMap is the type of 1.x's producer cache.
//
// Deprecated: the SDK does not use it; Conn.Produce keeps its own cache.
type ProducersMap map[string]*Producer

// ConsumersMap is the type of 1.x's consumer cache.
//
// Deprecated: the SDK does not use it; Conn.FetchMessages keeps its own
// cache.
type ConsumersMap map[string]*Consumer

// PrefetchedMsgs is the type of 1.x's store of prefetched messages.
//
// Deprecated: the SDK does not use it; see Consumer.Fetch for prefetching.
type PrefetchedMsgs struct{}

// The types below describe messages 1.x exchanged with the broker. The SDK
// does not use them: its own copies are internal, so that the protocol can
// follow the broker without changing this package's API.

// Schema is a schema as 1.x sent it to the broker to create it.
//
// Deprecated: use Conn.CreateSchema.
type Schema struct {
	Name              string `json:"name"`
	Type              string `json:"type"`
	CreatedByUsername string `json:"created_by_username"`
	SchemaContent     string `json:"schema_content"`
	MessageStructName string `json:"message_struct_name"`
}

// SchemaVersion is one version of a schema as the broker announces it.
//
// Deprecated: internal to the protocol; the SDK does not use it.
type SchemaVersion struct {
	VersionNumber     int    `json:"version_number"`
	Descriptor        string `json:"descriptor"`
	Content           string `json:"schema_content"`
	MessageStructName string `json:"message_struct_name"`
}

// SchemaUpdateInit is the schema a station enforces, as the broker
// announces it.
//
// Deprecated: internal to the protocol; the SDK does not use it.
type SchemaUpdateInit struct {
	SchemaName    string        `json:"schema_name"`
	ActiveVersion SchemaVersion `json:"active_version"`
	SchemaType    string        `json:"type"`
}

// SchemaUpdateType tells a schema being enforced from one being detached.
//
// Deprecated: internal to the protocol; the SDK does not use it.
type SchemaUpdateType int

// Kinds of schema update.
//
// Deprecated: internal to the protocol; the SDK does not use them.
const (
	SchemaUpdateTypeInit SchemaUpdateType = iota + 1
	SchemaUpdateTypeDrop
)

// SchemaUpdate is the broker's notice that a station's schema changed.
//
// Deprecated: internal to the protocol; the SDK does not use it.
type SchemaUpdate struct {
	UpdateType SchemaUpdateType
	Init       SchemaUpdateInit `json:"init,omitempty"`
}

// SdkClientsUpdate is the broker's notice of a setting change for clients.
//
// Deprecated: internal to the protocol; the SDK does not use it.
type SdkClientsUpdate struct {
	StationName string `json:"station_name"`
	Type        string `json:"type"`
	Update      bool   `json:"update"`
}

// PartitionsUpdate lists a station's partitions, as the broker tells them.
//
// Deprecated: internal to the protocol; Consumer.Partitions lists them.
type PartitionsUpdate struct {
	PartitionsList []int `json:"partitions_list"`
}

// FunctionsUpdate maps partitions to the functions the broker runs on them.
//
// Deprecated: internal to the protocol; the SDK does not use it.
type FunctionsUpdate struct {
	Functions map[int]int `json:"functions"`
}

// ProducerDetails names the producer of a dead-lettered message.
//
// Deprecated: internal to the protocol; the SDK does not use it.
type ProducerDetails struct {
	Name         string `json:"name"`
	ConnectionId string `json:"connection_id"`
}

// MessagePayloadDls is a message in a dead-letter report: its data (hex)
// and headers.
//
// Deprecated: internal to the protocol; the SDK does not use it.
type MessagePayloadDls struct {
	Size    int               `json:"size"`
	Data    string            `json:"data"`
	Headers map[string]string `json:"headers"`
}

// DlsMessage reports a message that failed its station's schema.
//
// Deprecated: internal to the protocol; the SDK does not use it.
type DlsMessage struct {
	StationName     string            `json:"station_name"`
	Producer        ProducerDetails   `json:"producer"`
	Message         MessagePayloadDls `json:"message"`
	ValidationError string            `json:"validation_error"`
}

// NackedDlsMessage reports a message a consumer gave up on (Msg.DeadLetter).
//
// Deprecated: internal to the protocol; the SDK does not use it.
type NackedDlsMessage struct {
	StationName string `json:"station_name"`
	Error       string `json:"error"`
	Partition   int    `json:"partition"`
	CgName      string `json:"cg_name"`
	Seq         uint64 `json:"seq"`
}

// PMsgToAck acknowledges a message the broker re-sent from the dead-letter
// station.
//
// Deprecated: internal to the protocol; the SDK does not use it.
type PMsgToAck struct {
	ID     int    `json:"id"`
	CgName string `json:"cg_name"`
}

// Notification is an alert 1.x sent the broker for its UI.
//
// Deprecated: internal to the protocol; the SDK does not use it.
type Notification struct {
	Title string
	Msg   string
	Code  string
	Type  string
}
