// Package v1compat holds the memphis.go 1.x API as programs use it, so that
// the promise of the module path (a program written against 1.x still
// compiles) cannot break without the build failing.
//
// signatures.go pins every exported signature of v1.3.2 as a 1.x program
// could depend on it: each method through an interface the type must still
// implement, each function and constant through a variable of its 1.x type.
// programs.go holds small programs in the style of 1.x users, one per API
// this SDK restored, and programs_test.go runs them against a broker.
//
// Nothing here is for use outside the repository.
package v1compat

//lint:file-ignore SA1019 this package exists to use the 1.x API, deprecated parts included

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go"
)

// The methods of 1.x's types, with their 1.x signatures.
type (
	v1Conn interface {
		AttachSchema(name string, stationName string) error
		Close()
		CreateConsumer(stationName, consumerName string, opts ...memphis.ConsumerOpt) (*memphis.Consumer, error)
		CreateProducer(stationName interface{}, name string, opts ...memphis.ProducerOpt) (*memphis.Producer, error)
		CreateSchema(name, schemaType, path string, options ...memphis.RequestOpt) error
		CreateStation(Name string, opts ...memphis.StationOpt) (*memphis.Station, error)
		DetachSchema(stationName string, options ...memphis.RequestOpt) error
		EnforceSchema(name string, stationName string, options ...memphis.RequestOpt) error
		FetchMessages(stationName string, consumerName string, opts ...memphis.FetchOpt) ([]*memphis.Msg, error)
		GetPartitionFromKey(key string, stationName string) (int, error)
		IsConnected() bool
		Produce(stationName interface{}, name string, message any, opts []memphis.ProducerOpt, pOpts []memphis.ProduceOpt) error
		ValidatePartitionNumber(partitionNumber int, stationName string) error
	}
	v1Station interface {
		CreateConsumer(name string, opts ...memphis.ConsumerOpt) (*memphis.Consumer, error)
		CreateProducer(name string, opts ...memphis.ProducerOpt) (*memphis.Producer, error)
		Destroy(options ...memphis.RequestOpt) error
	}
	v1Producer interface {
		Destroy(options ...memphis.RequestOpt) error
		Produce(message any, opts ...memphis.ProduceOpt) error
	}
	v1Consumer interface {
		Consume(handlerFunc memphis.ConsumeHandler, opts ...memphis.ConsumingOpt) error
		Destroy(options ...memphis.RequestOpt) error
		Fetch(batchSize int, prefetch bool, opts ...memphis.ConsumingOpt) ([]*memphis.Msg, error)
		SetContext(ctx context.Context)
		StopConsume()
	}
	v1Msg interface {
		Ack() error
		Data() []byte
		DataDeserialized() (any, error)
		DeadLetter(reason string) error
		Delay(duration time.Duration) error
		GetHeaders() map[string]string
		GetSequenceNumber() (uint64, error)
		GetTimeSent() (time.Time, error)
		Nack() error
	}
	v1Headers interface {
		Add(key, value string) error
		New()
	}
	v1Generator interface{ Next() int }
	v1Stringer  interface{ String() string }
)

var (
	_ v1Conn      = (*memphis.Conn)(nil)
	_ v1Station   = (*memphis.Station)(nil)
	_ v1Producer  = (*memphis.Producer)(nil)
	_ v1Consumer  = (*memphis.Consumer)(nil)
	_ v1Msg       = (*memphis.Msg)(nil)
	_ v1Headers   = (*memphis.Headers)(nil)
	_ v1Generator = (*memphis.RoundRobinProducerConsumerGenerator)(nil)
	_ v1Stringer  = memphis.RetentionType(0)
	_ v1Stringer  = memphis.StorageType(0)
)

// The functions of 1.x, with their 1.x types.
var (
	_ func(string, string, ...memphis.Option) (*memphis.Conn, error) = memphis.Connect
	_ func(int) memphis.Option                                       = memphis.AccountId
	_ func(string) memphis.Option                                    = memphis.ConnectionToken
	_ func(int) memphis.Option                                       = memphis.MaxReconnect
	_ func(string) memphis.Option                                    = memphis.Password
	_ func(int) memphis.Option                                       = memphis.Port
	_ func(bool) memphis.Option                                      = memphis.Reconnect
	_ func(time.Duration) memphis.Option                             = memphis.ReconnectInterval
	_ func(time.Duration) memphis.Option                             = memphis.Timeout
	_ func(string, string, string) memphis.Option                    = memphis.Tls

	_ func() memphis.StationOpts                     = memphis.GetStationDefaultOptions
	_ func(string) memphis.StationOpt                = memphis.DlsStation
	_ func(time.Duration) memphis.StationOpt         = memphis.IdempotencyWindow
	_ func(string) memphis.StationOpt                = memphis.Name
	_ func(int) memphis.StationOpt                   = memphis.PartitionsNumber
	_ func(int) memphis.StationOpt                   = memphis.Replicas
	_ func(memphis.RetentionType) memphis.StationOpt = memphis.RetentionTypeOpt
	_ func(int) memphis.StationOpt                   = memphis.RetentionVal
	_ func(string) memphis.StationOpt                = memphis.SchemaName
	_ func(bool) memphis.StationOpt                  = memphis.SendPoisonMsgToDls
	_ func(bool) memphis.StationOpt                  = memphis.SendSchemaFailedMsgToDls
	_ func(int) memphis.StationOpt                   = memphis.StationTimeoutRetry
	_ func(memphis.StorageType) memphis.StationOpt   = memphis.StorageTypeOpt
	_ func(bool) memphis.StationOpt                  = memphis.TieredStorageEnabled

	_ func() memphis.ProducerOpt    = memphis.ProducerGenUniqueSuffix
	_ func(int) memphis.ProducerOpt = memphis.ProducerTimeoutRetry

	_ func(int) memphis.ProduceOpt             = memphis.AckWaitSec
	_ func() memphis.ProduceOpt                = memphis.AsyncProduce
	_ func(memphis.Headers) memphis.ProduceOpt = memphis.MsgHeaders
	_ func(string) memphis.ProduceOpt          = memphis.MsgId
	_ func(string) memphis.ProduceOpt          = memphis.ProducerPartitionKey
	_ func(int) memphis.ProduceOpt             = memphis.ProducerPartitionNumber
	_ func() memphis.ProduceOpt                = memphis.SyncProduce

	_ func(time.Duration) memphis.ConsumerOpt              = memphis.BatchMaxWaitTime
	_ func(int) memphis.ConsumerOpt                        = memphis.BatchSize
	_ func(memphis.ConsumerErrHandler) memphis.ConsumerOpt = memphis.ConsumerErrorHandler
	_ func() memphis.ConsumerOpt                           = memphis.ConsumerGenUniqueSuffix
	_ func(string) memphis.ConsumerOpt                     = memphis.ConsumerGroup
	_ func(int) memphis.ConsumerOpt                        = memphis.ConsumerTimeoutRetry
	_ func(int64) memphis.ConsumerOpt                      = memphis.LastMessages
	_ func(time.Duration) memphis.ConsumerOpt              = memphis.MaxAckTime
	_ func(int) memphis.ConsumerOpt                        = memphis.MaxMsgDeliveries
	_ func(time.Duration) memphis.ConsumerOpt              = memphis.PullInterval
	_ func(uint64) memphis.ConsumerOpt                     = memphis.StartConsumeFromSequence

	_ func(string) memphis.ConsumingOpt = memphis.ConsumerPartitionKey
	_ func(int) memphis.ConsumingOpt    = memphis.ConsumerPartitionNumber

	_ func(time.Duration) memphis.FetchOpt              = memphis.FetchBatchMaxWaitTime
	_ func(int) memphis.FetchOpt                        = memphis.FetchBatchSize
	_ func(memphis.ConsumerErrHandler) memphis.FetchOpt = memphis.FetchConsumerErrorHandler
	_ func() memphis.FetchOpt                           = memphis.FetchConsumerGenUniqueSuffix
	_ func(string) memphis.FetchOpt                     = memphis.FetchConsumerGroup
	_ func(time.Duration) memphis.FetchOpt              = memphis.FetchMaxAckTime
	_ func(int) memphis.FetchOpt                        = memphis.FetchMaxMsgDeliveries
	_ func(string) memphis.FetchOpt                     = memphis.FetchPartitionKey
	_ func(int) memphis.FetchOpt                        = memphis.FetchPartitionNumber
	_ func() memphis.FetchOpt                           = memphis.FetchPrefetch

	_ func(int) memphis.RequestOpt = memphis.TimeoutRetry

	_ func(*memphis.Consumer, error) = memphis.DefaultConsumerErrHandler
	_ func(*nats.Conn)               = memphis.DefaultErrHandler

	_ memphis.ConsumeHandler     = func([]*memphis.Msg, error, context.Context) {}
	_ memphis.ConsumerErrHandler = func(*memphis.Consumer, error) {}
)

// The constants and error variables of 1.x, with their 1.x types.
var (
	_ memphis.RetentionType = memphis.MaxMessageAgeSeconds
	_ memphis.RetentionType = memphis.Messages
	_ memphis.RetentionType = memphis.Bytes
	_ memphis.RetentionType = memphis.AckBased
	_ memphis.StorageType   = memphis.Disk
	_ memphis.StorageType   = memphis.Memory

	_ memphis.SchemaUpdateType = memphis.SchemaUpdateTypeInit
	_ memphis.SchemaUpdateType = memphis.SchemaUpdateTypeDrop

	_ int = memphis.SEED
	_ int = memphis.JetstreamOperationTimeout

	_ error = memphis.ConsumerErrStationUnreachable
	_ error = memphis.ConsumerErrConsumeInactive
	_ error = memphis.ConsumerErrDelayDlsMsg
)

// The exported fields of 1.x's types, with their 1.x types, as composite
// literals and selectors would use them.
var (
	_ = memphis.Options{
		Host: "", Port: 0, Username: "", AccountId: 0, ConnectionToken: "", Reconnect: false,
		MaxReconnect: 0, ReconnectInterval: time.Duration(0), Timeout: time.Duration(0),
		TLSOpts: memphis.TLSOpts{TlsCert: "", TlsKey: "", CaFile: ""}, Password: "",
	}
	_ = memphis.StationOpts{
		Name: "", RetentionType: memphis.MaxMessageAgeSeconds, RetentionVal: 0, StorageType: memphis.Disk,
		Replicas: 0, IdempotencyWindow: time.Duration(0), SchemaName: "", SendPoisonMsgToDls: false,
		SendSchemaFailedMsgToDls: false, TieredStorageEnabled: false, PartitionsNumber: 0, DlsStation: "",
		TimeoutRetry: 0,
	}
	_ = memphis.ProducerOpts{GenUniqueSuffix: false, TimeoutRetry: 0}
	_ = memphis.ProduceOpts{
		Message: nil, AckWaitSec: 0, MsgHeaders: memphis.Headers{MsgHeaders: map[string][]string{}},
		AsyncProduce: false, ProducerPartitionKey: "", ProducerPartitionNumber: 0,
	}
	_ = memphis.ConsumerOpts{
		Name: "", StationName: "", ConsumerGroup: "", PullInterval: time.Duration(0), BatchSize: 0,
		BatchMaxTimeToWait: time.Duration(0), MaxAckTime: time.Duration(0), MaxMsgDeliveries: 0,
		GenUniqueSuffix: false, ErrHandler: memphis.ConsumerErrHandler(nil), StartConsumeFromSequence: uint64(0),
		LastMessages: int64(0), TimeoutRetry: 0,
	}
	_ = memphis.ConsumingOpts{ConsumerPartitionKey: "", ConsumerPartitionNumber: 0}
	_ = memphis.FetchOpts{
		ConsumerName: "", StationName: "", ConsumerGroup: "", BatchSize: 0, BatchMaxTimeToWait: time.Duration(0),
		MaxAckTime: time.Duration(0), MaxMsgDeliveries: 0, GenUniqueSuffix: false,
		ErrHandler: memphis.ConsumerErrHandler(nil), StartConsumeFromSequence: uint64(0), LastMessages: int64(0),
		Prefetch: false, FetchPartitionKey: "", FetchPartitionNumber: 0,
	}
	_ = memphis.RequestOpts{TimeoutRetries: 0}
	_ = memphis.RoundRobinProducerConsumerGenerator{NumberOfPartitions: 0, Partitions: []int(nil), Current: 0}
	_ = memphis.Station{
		Name: "", RetentionType: memphis.MaxMessageAgeSeconds, RetentionValue: 0, StorageType: memphis.Disk,
		Replicas: 0, IdempotencyWindow: time.Duration(0), SchemaName: "", TieredStorageEnabled: false,
		PartitionsNumber: 0, DlsStation: "",
	}
	_ = memphis.Producer{Name: "", PartitionGenerator: (*memphis.RoundRobinProducerConsumerGenerator)(nil)}
	_ = memphis.Consumer{
		Name: "", ConsumerGroup: "", PullInterval: time.Duration(0), BatchSize: 0,
		BatchMaxTimeToWait: time.Duration(0), MaxAckTime: time.Duration(0), MaxMsgDeliveries: 0,
		StartConsumeFromSequence: uint64(0), LastMessages: int64(0),
		PartitionGenerator: (*memphis.RoundRobinProducerConsumerGenerator)(nil),
	}
	_ = memphis.Conn{ConnId: ""}
	_ = memphis.Headers{MsgHeaders: map[string][]string(nil)}
	_ = memphis.Station{}.DlsConfiguration.Poison || memphis.Station{}.DlsConfiguration.Schemaverse

	_ = memphis.Schema{Name: "", Type: "", CreatedByUsername: "", SchemaContent: "", MessageStructName: ""}
	_ = memphis.SchemaVersion{VersionNumber: 0, Descriptor: "", Content: "", MessageStructName: ""}
	_ = memphis.SchemaUpdateInit{SchemaName: "", ActiveVersion: memphis.SchemaVersion{}, SchemaType: ""}
	_ = memphis.SchemaUpdate{UpdateType: memphis.SchemaUpdateTypeInit, Init: memphis.SchemaUpdateInit{}}
	_ = memphis.SdkClientsUpdate{StationName: "", Type: "", Update: false}
	_ = memphis.PartitionsUpdate{PartitionsList: []int(nil)}
	_ = memphis.FunctionsUpdate{Functions: map[int]int(nil)}
	_ = memphis.ProducerDetails{Name: "", ConnectionId: ""}
	_ = memphis.MessagePayloadDls{Size: 0, Data: "", Headers: map[string]string(nil)}
	_ = memphis.DlsMessage{StationName: "", Producer: memphis.ProducerDetails{}, Message: memphis.MessagePayloadDls{}, ValidationError: ""}
	_ = memphis.NackedDlsMessage{StationName: "", Error: "", Partition: 0, CgName: "", Seq: uint64(0)}
	_ = memphis.PMsgToAck{ID: 0, CgName: ""}
	_ = memphis.Notification{Title: "", Msg: "", Code: "", Type: ""}
	_ = memphis.ProducersMap(map[string]*memphis.Producer(nil))
	_ = memphis.ConsumersMap(map[string]*memphis.Consumer(nil))
	_ = memphis.PrefetchedMsgs{}
	_ = memphis.StationName("")
	_ = memphis.TLSOpts{}
)
