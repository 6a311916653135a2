package memphis

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// Msg is a consumed message. Ack it when it is handled; otherwise the broker
// delivers it again after MaxAckTime, up to MaxMsgDeliveries times.
type Msg struct {
	raw       *nats.Msg
	cons      *Consumer
	partition int

	// A message the broker re-sent from the dead-letter station has no
	// JetStream reply subject; it is acknowledged through the broker.
	resent   bool
	resentID int
	resentCG string

	metaOnce sync.Once
	meta     *nats.MsgMetadata
	metaErr  error

	ctx context.Context // attached by HookConsumeMessage hooks; nil without
}

func newMsg(m *nats.Msg, c *Consumer, partition int) *Msg {
	return &Msg{raw: m, cons: c, partition: partition}
}

// Data is the message's payload as produced.
func (m *Msg) Data() []byte { return m.raw.Data }

// DataDeserialized decodes the payload with the station's schema: protobuf
// gives a map as protojson renders it, JSON and Avro the decoded value,
// GraphQL the string. Without a schema it returns the payload. A message
// produced before the schema was enforced, which does not decode, comes
// back as its raw payload without an error.
func (m *Msg) DataDeserialized() (any, error) {
	v, err := m.cons.st.decode(m.raw.Data)
	if err != nil {
		return m.raw.Data, nil
	}
	return v, nil
}

// GetHeaders returns the message's headers, each key with its first value:
// the producer's headers and the message id ("msg-id", when it was produced
// with one), without the "$memphis" headers of the broker and the SDK.
// Headers returns every value.
func (m *Msg) GetHeaders() map[string]string {
	h := make(map[string]string, len(m.raw.Header))
	for k, v := range m.raw.Header {
		if isHiddenHeader(k) || len(v) == 0 {
			continue
		}
		h[k] = v[0]
	}
	return h
}

// GetHeader returns the first value of one of the headers GetHeaders
// returns, or "": a single lookup, without building GetHeaders' map.
func (m *Msg) GetHeader(key string) string {
	if isHiddenHeader(key) {
		return ""
	}
	if v := m.raw.Header[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Headers returns the same headers as GetHeaders, each key with all its
// values: range over Headers().All(), or read its MsgHeaders as 1.x code
// does. It is a copy; changing it changes nothing in the message.
func (m *Msg) Headers() Headers {
	h := make(map[string][]string, len(m.raw.Header))
	for k, v := range m.raw.Header {
		if isHiddenHeader(k) || len(v) == 0 {
			continue
		}
		h[k] = slices.Clone(v)
	}
	return Headers{MsgHeaders: h}
}

func (m *Msg) metadata() (*nats.MsgMetadata, error) {
	m.metaOnce.Do(func() {
		if m.resent {
			m.metaErr = fmt.Errorf("%w: a message re-sent from the dead-letter station has no stream metadata", ErrNotSupported)
			return
		}
		m.meta, m.metaErr = m.raw.Metadata()
	})
	return m.meta, m.metaErr
}

// GetSequenceNumber is the message's sequence number in its partition.
func (m *Msg) GetSequenceNumber() (uint64, error) {
	md, err := m.metadata()
	if err != nil {
		return 0, opErr("message metadata", m.station(), err)
	}
	return md.Sequence.Stream, nil
}

// GetTimeSent is when the broker stored the message.
func (m *Msg) GetTimeSent() (time.Time, error) {
	md, err := m.metadata()
	if err != nil {
		return time.Time{}, opErr("message metadata", m.station(), err)
	}
	return md.Timestamp, nil
}

// DeliveryCount is how many times the message has been delivered to the
// consumer group, this delivery included (1 the first time).
func (m *Msg) DeliveryCount() (int, error) {
	md, err := m.metadata()
	if err != nil {
		return 0, opErr("message metadata", m.station(), err)
	}
	return int(md.NumDelivered), nil
}

// Partition is the partition the message came from (0 for a station
// without partitions or a re-sent dead-letter message).
func (m *Msg) Partition() int { return m.partition }

// IsResent reports whether the broker re-sent this message from the
// dead-letter station.
func (m *Msg) IsResent() bool { return m.resent }

func (m *Msg) station() string {
	if m.cons == nil {
		return ""
	}
	return m.cons.station
}

// Ack tells the broker the message is handled, so the consumer group does
// not get it again.
func (m *Msg) Ack() error {
	var err error
	if m.resent {
		data, _ := json.Marshal(wire.PMAck{ID: m.resentID, CGName: m.resentCG})
		err = mapNATSErr(m.cons.conn.nc.Publish(wire.SubjPMAcks, data))
	} else {
		err = mapNATSErr(m.raw.Ack())
	}
	if h := m.cons.conn.hooks; h != nil {
		h.settled(m, SettleAck, err)
	}
	return opErr("ack", m.station(), err)
}

// Nack tells the broker the message was not handled; it is delivered again
// at once (while MaxMsgDeliveries allows). A no-op on a re-sent dead-letter message.
func (m *Msg) Nack() error {
	var err error
	if !m.resent {
		err = mapNATSErr(m.raw.Nak())
	}
	if h := m.cons.conn.hooks; h != nil {
		h.settled(m, SettleNack, err)
	}
	return opErr("nack", m.station(), err)
}

// nakQuietly returns an unhandled message to its group.
func (m *Msg) nakQuietly() {
	if !m.resent {
		_ = m.raw.Nak()
	}
}

func nakAll(msgs []*Msg) {
	for _, m := range msgs {
		m.nakQuietly()
	}
}

// Delay asks the broker to deliver the message again after d (while
// MaxMsgDeliveries allows). Re-sent dead-letter messages can not be delayed
// (ErrNotSupported).
func (m *Msg) Delay(d time.Duration) error {
	var err error
	switch {
	case m.resent:
		err = fmt.Errorf("%w: a re-sent dead-letter message can not be delayed", ErrNotSupported)
	case d < 0:
		err = fmt.Errorf("%w: delay %v is negative", ErrInvalidOption, d)
	default:
		err = mapNATSErr(m.raw.NakWithDelay(d))
	}
	if h := m.cons.conn.hooks; h != nil {
		h.settled(m, SettleDelay, err)
	}
	return opErr("delay", m.station(), err)
}

// DeadLetter moves the message to the dead-letter station with a reason:
// the consumer group does not get it again (other groups still do). A
// no-op on a re-sent dead-letter message.
func (m *Msg) DeadLetter(reason string) error {
	err := m.deadLetter(reason)
	if h := m.cons.conn.hooks; h != nil {
		h.settled(m, SettleDeadLetter, err)
	}
	return opErr("dead letter", m.station(), err)
}

func (m *Msg) deadLetter(reason string) error {
	if m.resent {
		return nil
	}
	if err := m.raw.Term(); err != nil {
		return mapNATSErr(err)
	}
	md, err := m.metadata()
	if err != nil {
		return err
	}
	seq := md.Sequence.Stream
	// The broker needs a partition of at least 1: 0 would crash its handler
	// (PROTOCOL Q13), so a legacy station's message is only terminated.
	if m.partition < 1 {
		return nil
	}
	report := wire.NackedDLSMsg{
		StationName: m.cons.st.intern,
		Error:       reason,
		Partition:   m.partition,
		CGName:      m.cons.group, // lower-cased, as the broker stores it (Q14)
		Seq:         seq,
	}
	data, _ := json.Marshal(report)
	return mapNATSErr(m.cons.conn.nc.Publish(wire.SubjNackedDLS, data))
}
