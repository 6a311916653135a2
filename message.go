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
		err = m.cons.conn.out.publish(&nats.Msg{Subject: wire.SubjPMAcks, Data: data}, 0)
	} else {
		err = m.answer(answerAck)
	}
	return m.settled("ack", SettleAck, mapNATSErr(err))
}

// settled tells the hooks how the message was answered, and returns the
// answer's outcome as the call's error.
func (m *Msg) settled(op string, how Settle, err error) error {
	if h := m.cons.conn.hooks; h != nil {
		h.settled(m, how, err)
	}
	return opErr(op, m.station(), err)
}

// answerKind is how a JetStream message is answered.
type answerKind int

const (
	answerAck answerKind = iota
	answerNak
	answerTerm
)

// answer acks, naks or terms the message through nats.go (which also marks
// it answered), or, while the connection is down, queues the answer for
// the message's ack subject in the outbox: nats.go would make the caller
// wait for its reconnect attempts.
func (m *Msg) answer(kind answerKind) error {
	if out := m.cons.conn.out; out.down.Load() && m.raw.Reply != "" {
		body := [...]string{answerAck: "+ACK", answerNak: "-NAK", answerTerm: "+TERM"}[kind]
		return out.publish(&nats.Msg{Subject: m.raw.Reply, Data: []byte(body)}, 0)
	}
	switch kind {
	case answerNak:
		return m.raw.Nak()
	case answerTerm:
		return m.raw.Term()
	}
	return m.raw.Ack()
}

// Nack tells the broker the message was not handled; it is delivered again
// at once (while MaxMsgDeliveries allows). A no-op on a re-sent dead-letter message.
func (m *Msg) Nack() error {
	var err error
	if !m.resent {
		err = mapNATSErr(m.answer(answerNak))
	}
	return m.settled("nack", SettleNack, err)
}

// nakQuietly returns an unhandled message to its group.
func (m *Msg) nakQuietly() {
	if !m.resent {
		_ = m.answer(answerNak)
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
		err = invalidf("delay %v is negative", d)
	default:
		err = mapNATSErr(m.delay(d))
	}
	return m.settled("delay", SettleDelay, err)
}

// delay naks with a delay, through the outbox while the connection is
// down (see answer).
func (m *Msg) delay(d time.Duration) error {
	if out := m.cons.conn.out; out.down.Load() && m.raw.Reply != "" {
		body := fmt.Appendf(nil, "-NAK {\"delay\": %d}", d.Nanoseconds())
		return out.publish(&nats.Msg{Subject: m.raw.Reply, Data: body}, 0)
	}
	return m.raw.NakWithDelay(d)
}

// DeadLetter moves the message to the dead-letter station with a reason:
// the consumer group does not get it again (other groups still do). The
// broker keeps the reason with its dead-letter record; the copy it puts in
// the station's DlsStation carries the headers "station" and "type"
// ("unacked", as for a poison message), not the reason (Memphis 1.4.4 has
// no way to). A no-op on a re-sent dead-letter message.
func (m *Msg) DeadLetter(reason string) error {
	return m.settled("dead letter", SettleDeadLetter, m.deadLetter(reason))
}

func (m *Msg) deadLetter(reason string) error {
	if m.resent {
		return nil
	}
	if err := m.answer(answerTerm); err != nil {
		return mapNATSErr(err)
	}
	md, err := m.metadata()
	if err != nil {
		return err
	}
	// The broker needs a partition of at least 1: 0 would crash its handler
	// (docs/protocol.md#quirk-nacked-partition-zero-crash), so a legacy
	// station's message is only terminated.
	if m.partition < 1 {
		return nil
	}
	report := wire.NackedDLSMsg{
		StationName: m.cons.st.intern,
		Error:       reason,
		Partition:   m.partition,
		// Lower-cased, as the broker stores groups: it copies the message to
		// the dead-letter station whatever the name, but keeps the record
		// only for a group it knows (docs/protocol.md#quirk-dls-group-must-exist).
		CGName: m.cons.group,
		Seq:    md.Sequence.Stream,
	}
	data, _ := json.Marshal(report)
	return mapNATSErr(m.cons.conn.out.publish(&nats.Msg{Subject: wire.SubjNackedDLS, Data: data}, 0))
}
