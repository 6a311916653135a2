package v1compat

//lint:file-ignore SA1019 this package exists to use the 1.x API, deprecated parts included

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/memphisdev/memphis.go"
)

// Each program below is written the way 1.x users wrote them, against an
// API this SDK restored. They return what they saw, for the test to check.

// StationSettings reads a station's settings back from the value, as 1.x
// provisioning scripts did.
func StationSettings(conn *memphis.Conn, station string) (string, error) {
	s, err := conn.CreateStation(station,
		memphis.PartitionsNumber(2),
		memphis.RetentionTypeOpt(memphis.Messages),
		memphis.RetentionVal(1000),
		memphis.StorageTypeOpt(memphis.Memory),
		memphis.SendSchemaFailedMsgToDls(false))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s partitions=%d retention=%v/%d storage=%v replicas=%d idempotency=%v schema=%q dls=%q tiered=%v poison=%v schemaverse=%v",
		s.Name, s.PartitionsNumber, s.RetentionType, s.RetentionValue, s.StorageType, s.Replicas,
		s.IdempotencyWindow, s.SchemaName, s.DlsStation, s.TieredStorageEnabled,
		s.DlsConfiguration.Poison, s.DlsConfiguration.Schemaverse), nil
}

// StationFromDefaults starts from GetStationDefaultOptions and adjusts it,
// as 1.x services with a configuration file of their own did.
func StationFromDefaults(conn *memphis.Conn, station string, partitions int) (*memphis.Station, error) {
	opts := memphis.GetStationDefaultOptions()
	if partitions > 0 {
		opts.PartitionsNumber = partitions
	}
	return conn.CreateStation("placeholder",
		memphis.Name(station),
		memphis.RetentionTypeOpt(opts.RetentionType),
		memphis.RetentionVal(opts.RetentionVal),
		memphis.StorageTypeOpt(opts.StorageType),
		memphis.Replicas(opts.Replicas),
		memphis.IdempotencyWindow(opts.IdempotencyWindow),
		memphis.PartitionsNumber(opts.PartitionsNumber),
		memphis.StationTimeoutRetry(opts.TimeoutRetry))
}

// ClientNames logs the names of a connection's clients, as 1.x services did
// at start-up.
func ClientNames(conn *memphis.Conn, station string) (string, error) {
	p, err := conn.CreateProducer(station, "Orders-Writer", memphis.ProducerTimeoutRetry(2))
	if err != nil {
		return "", err
	}
	defer p.Destroy()
	c, err := conn.CreateConsumer(station, "orders-reader",
		memphis.ConsumerGroup("billing"),
		memphis.PullInterval(500*time.Millisecond),
		memphis.BatchSize(20),
		memphis.BatchMaxWaitTime(time.Second),
		memphis.MaxAckTime(45*time.Second),
		memphis.MaxMsgDeliveries(4),
		memphis.ConsumerTimeoutRetry(2))
	if err != nil {
		return "", err
	}
	defer c.Destroy()
	return fmt.Sprintf("conn=%d producer=%s consumer=%s group=%s pull=%v batch=%d wait=%v ack=%v deliveries=%d start=%d last=%d",
		len(conn.ConnId), p.Name, c.Name, c.ConsumerGroup, c.PullInterval, c.BatchSize,
		c.BatchMaxTimeToWait, c.MaxAckTime, c.MaxMsgDeliveries, c.StartConsumeFromSequence, c.LastMessages), nil
}

// FanOut writes one event to several stations, with the station list in an
// interface{}, as 1.x gateways that read their routes from JSON did.
func FanOut(conn *memphis.Conn, stations []string, event []byte) error {
	var routes interface{} = stations
	p, err := conn.CreateProducer(routes, "fan-out")
	if err != nil {
		return err
	}
	defer p.Destroy(memphis.TimeoutRetry(1))
	if err := p.Produce(event); err != nil {
		return err
	}
	// The connection's own cache, once with the list and once per name.
	if err := conn.Produce(stations, "fan-out-cached", event, []memphis.ProducerOpt{}, []memphis.ProduceOpt{}); err != nil {
		return err
	}
	for _, s := range stations {
		var route interface{} = s
		if err := conn.Produce(route, "one-by-one", event, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// HeadersRoundTrip produces with headers built the 1.x way, then reads every
// header of the message back through MsgHeaders.
func HeadersRoundTrip(conn *memphis.Conn, station string) (string, error) {
	p, err := conn.CreateProducer(station, "with-headers")
	if err != nil {
		return "", err
	}
	defer p.Destroy()
	hdrs := memphis.Headers{}
	hdrs.New()
	if err := hdrs.Add("trace-id", "abc"); err != nil {
		return "", err
	}
	hdrs.MsgHeaders["tags"] = []string{"red", "blue"}
	if err := p.Produce([]byte("hello"), memphis.MsgHeaders(hdrs), memphis.MsgId("m-1")); err != nil {
		return "", err
	}
	msgs, err := conn.FetchMessages(station, "header-reader", memphis.FetchBatchMaxWaitTime(300*time.Millisecond))
	if err != nil {
		return "", err
	}
	if len(msgs) != 1 {
		return "", fmt.Errorf("fetched %d messages", len(msgs))
	}
	var lines []string
	for k, v := range msgs[0].Headers().MsgHeaders {
		lines = append(lines, k+"="+strings.Join(v, ","))
	}
	sort.Strings(lines)
	return strings.Join(lines, " ") + " | " + msgs[0].GetHeaders()["msg-id"], msgs[0].Ack()
}

// SchemaLifecycle creates, enforces and detaches a schema with 1.x's retry
// options.
func SchemaLifecycle(conn *memphis.Conn, station, schemaName, schemaFile string) error {
	if err := conn.CreateSchema(schemaName, "json", schemaFile, memphis.TimeoutRetry(2)); err != nil {
		return err
	}
	s, err := conn.CreateStation(station)
	if err != nil {
		return err
	}
	if err := conn.EnforceSchema(schemaName, station, memphis.TimeoutRetry(2)); err != nil {
		return err
	}
	if err := conn.AttachSchema(schemaName, station); err != nil {
		return err
	}
	if err := conn.DetachSchema(station, memphis.TimeoutRetry(2)); err != nil {
		return err
	}
	return s.Destroy(memphis.TimeoutRetry(2))
}

// KeyRouting asks the connection where a key goes, as 1.x services that
// kept per-partition state did, and checks a partition number before
// producing to it.
func KeyRouting(conn *memphis.Conn, station, key string) (int, error) {
	p, err := conn.CreateProducer(station, "router")
	if err != nil {
		return 0, err
	}
	defer p.Destroy()
	partition, err := conn.GetPartitionFromKey(key, station)
	if err != nil {
		return 0, err
	}
	if err := conn.ValidatePartitionNumber(partition, station); err != nil {
		return 0, err
	}
	if p.PartitionGenerator != nil {
		_ = p.PartitionGenerator.Next()
	}
	return partition, p.Produce([]byte(key), memphis.ProducerPartitionNumber(partition))
}

// ErrorHandlers reacts to consumer errors by the 1.x names, with the 1.x
// default handler kept as a fallback.
func ErrorHandlers(conn *memphis.Conn, station string) (*memphis.Consumer, <-chan string, error) {
	seen := make(chan string, 4)
	handler := func(c *memphis.Consumer, err error) {
		switch {
		case errors.Is(err, memphis.ConsumerErrStationUnreachable):
			seen <- "unreachable: " + c.Name
		case errors.Is(err, memphis.ConsumerErrConsumeInactive), errors.Is(err, memphis.ConsumerErrDelayDlsMsg):
			seen <- "other"
		default:
			memphis.DefaultConsumerErrHandler(c, err)
		}
	}
	c, err := conn.CreateConsumer(station, "watcher", memphis.ConsumerErrorHandler(handler),
		memphis.BatchMaxWaitTime(100*time.Millisecond), memphis.PullInterval(50*time.Millisecond))
	if err != nil {
		return nil, nil, err
	}
	err = c.Consume(func(msgs []*memphis.Msg, err error, ctx context.Context) {
		for _, m := range msgs {
			_ = m.Ack()
		}
	})
	return c, seen, err
}

// OptionsByHand writes options as functions over the option structs, under
// their 1.x field names, as 1.x code that wrapped the SDK did.
func OptionsByHand(conn *memphis.Conn, station string) ([]string, error) {
	_, err := conn.CreateStation(station, func(o *memphis.StationOpts) error {
		o.PartitionsNumber, o.TimeoutRetry = 2, 1
		return nil
	})
	if err != nil {
		return nil, err
	}
	p, err := conn.CreateProducer(station, "by-hand", func(o *memphis.ProducerOpts) error {
		o.TimeoutRetry = 1
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer p.Destroy(func(o *memphis.RequestOpts) error { o.TimeoutRetries = 1; return nil })
	for n := 1; n <= 2; n++ {
		err := p.Produce([]byte("partition"), func(o *memphis.ProduceOpts) error {
			o.ProducerPartitionNumber = n
			o.Message = []byte(fmt.Sprintf("%s-%d", o.Message, n))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var got []string
	msgs, err := conn.FetchMessages(station, "by-hand-fetch", func(o *memphis.FetchOpts) error {
		o.FetchPartitionNumber, o.BatchMaxTimeToWait = 2, 200*time.Millisecond
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		got = append(got, string(m.Data()))
		_ = m.Ack()
	}
	c, err := conn.CreateConsumer(station, "by-hand-consumer", func(o *memphis.ConsumerOpts) error {
		o.BatchMaxTimeToWait, o.TimeoutRetry = 200*time.Millisecond, 1
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer c.Destroy()
	msgs, err = c.Fetch(10, false, func(o *memphis.ConsumingOpts) error {
		o.ConsumerPartitionNumber = 1
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		got = append(got, string(m.Data()))
		_ = m.Ack()
	}
	return got, nil
}
