package broker

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// Consumer defaults and bounds; out-of-range values are clamped silently,
// as on the real broker (docs/protocol.md#quirk-consumer-limits-clamped).
const (
	defaultMaxAckTimeMs = 30000
	maxDeliveriesCap    = 10
)

// The request types carry the real broker's names: they appear in its
// decoding errors. One struct serves every request version: later
// versions only add fields.
type (
	createProducerRequestV0  wire.CreateProducerReq
	destroyProducerRequestV0 wire.DestroyProducerReq
	createConsumerRequestV0  wire.CreateConsumerReq
	destroyConsumerRequestV0 wire.DestroyConsumerReq
)

func validClientType(t string) bool { return t == "application" || t == "connector" }

func producerError(msg string) []byte {
	return mustJSON(wire.CreateProducerResp{Err: msg})
}

func (cp *controlPlane) createProducer(body []byte) []byte {
	var r createProducerRequestV0
	if err := decode(body, &r); err != nil {
		return producerError(err.Error())
	}
	stName := strings.ToLower(r.StationName)
	if err := wire.ValidateName(wire.ObjStation, stName); err != nil {
		return producerError(err.Error())
	}
	name := strings.ToLower(r.Name)
	if err := wire.ValidateName(wire.ObjProducer, name); err != nil {
		return producerError(err.Error())
	}
	if !validClientType(strings.ToLower(r.ProducerType)) {
		return producerError("producer type has to be one of the following application/connector")
	}
	if !cp.b.userExists(r.Username) {
		return producerError(fmt.Sprintf("User %s does not exist", r.Username))
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	st, err := cp.stationForClient(stName, r.ReqVersion,
		"this station does not exist, a default station can not be created automatically, please upgrade your SDK version",
		"to produce to this station please upgrade your SDK version")
	if err != nil {
		return producerError(err.Error())
	}
	cp.reg.Producers = append(cp.reg.Producers, producerRec{Name: name, Station: stName, ConnID: r.ConnectionID})
	cp.save()
	return mustJSON(wire.CreateProducerResp{
		SchemaUpdate:                    cp.schemaInit(st),
		PartitionsUpdate:                wire.PartitionsUpdate{PartitionsList: partitionsOf(st)},
		SchemaverseToDLS:                st.DLSSchemaverse,
		StationVersion:                  stationVersion,
		StationPartitionsFirstFunctions: map[string]int{},
	})
}

// stationForClient finds the station a producer or consumer names. Current
// SDKs (request version 2 and later) get a default station when it is
// missing; older ones get noAuto, and upgrade on a partitioned station
// (docs/protocol.md#request-versions). The texts differ between producers
// and consumers.
// cp.mu is held.
func (cp *controlPlane) stationForClient(name string, reqVersion int, noAuto, upgrade string) (*station, error) {
	st := cp.reg.Stations[name]
	switch {
	case st == nil && reqVersion < 2:
		return nil, errors.New(noAuto)
	case st == nil:
		return cp.createDefaultStation(name)
	case reqVersion < 2 && len(st.Partitions) > 0:
		return nil, errors.New(upgrade)
	}
	return st, nil
}

// partitionsOf never returns nil: replies carry [] for a station without
// partitions, null only in errors.
func partitionsOf(st *station) []int {
	return append([]int{}, st.Partitions...)
}

func (cp *controlPlane) destroyProducer(body []byte) []byte {
	var r destroyProducerRequestV0
	if err := decode(body, &r); err != nil {
		return text(err.Error())
	}
	stName := strings.ToLower(r.StationName)
	if err := wire.ValidateName(wire.ObjStation, stName); err != nil {
		return text(err.Error())
	}
	name := strings.ToLower(r.Name)
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.reg.Producers = filterSlice(cp.reg.Producers, func(p producerRec) bool {
		return !(p.Name == name && p.Station == stName && sameConn(r.ReqVersion, r.ConnectionID, p.ConnID))
	})
	cp.save()
	return nil // success whether or not anything was registered, as on the real broker
}

// sameConn matches the connection of a destroy request with a
// registration's. Version 0 requests carry no connection id; the real
// broker takes the requesting connection's, which an internal subscriber
// cannot see, so any connection matches.
func sameConn(reqVersion int, reqConnID, connID string) bool {
	if reqVersion < 1 && reqConnID == "" {
		return true
	}
	return reqConnID == connID
}

func (cp *controlPlane) createConsumer(body []byte) []byte {
	var r createConsumerRequestV0
	if err := decode(body, &r); err != nil {
		return mustJSON(wire.ErrorResp{Err: err.Error()})
	}
	switch {
	case r.StartConsumeFromSequence <= 0:
		return text("startConsumeFromSequence has to be a positive number")
	case r.LastMessages < -1:
		return text("min value for LastMessages is -1")
	case r.StartConsumeFromSequence > 1 && r.LastMessages > -1:
		return text("consumer creation options can't contain both startConsumeFromSequence and lastMessages")
	}
	// Errors from here on come as plain text; the real broker then sends a
	// second, JSON reply that SDKs ignore
	// (docs/protocol.md#quirk-consumer-error-two-replies). One reply is enough.
	name := strings.ToLower(r.Name)
	if err := wire.ValidateName(wire.ObjConsumer, name); err != nil {
		return text(err.Error())
	}
	group := strings.ToLower(r.ConsumerGroup)
	if group == "" {
		group = name
	}
	if err := wire.ValidateName(wire.ObjConsumer, group); err != nil {
		return text(err.Error())
	}
	typ := strings.ToLower(r.ConsumerType)
	if !validClientType(typ) {
		return text("consumer type has to be one of the following application/connector and not " + typ)
	}
	stName := strings.ToLower(r.StationName)
	if err := wire.ValidateName(wire.ObjStation, stName); err != nil {
		return text(err.Error())
	}
	if !cp.b.userExists(r.Username) {
		return text("user does not exist")
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	st, err := cp.stationForClient(stName, r.ReqVersion,
		"This station does not exist, a default station can not be created automatically, please upgrade your SDK version",
		"to consume from this station please upgrade your SDK version")
	if err != nil {
		return text(err.Error())
	}
	rec := consumerRec{
		Name: name, Station: stName, Group: group, ConnID: r.ConnectionID, Type: typ,
		MaxAckTimeMs: r.MaxAckTimeMs, MaxDeliveries: r.MaxMsgDeliveries,
		StartSeq: r.StartConsumeFromSequence, LastMessages: r.LastMessages, Partitions: partitionsOf(st),
	}
	// A group with a connected member keeps its durables unless the joiner
	// asks for other ack or delivery settings; a joiner's start options are
	// then ignored (docs/protocol.md#quirk-group-joiner-start-ignored).
	member := cp.activeMember(stName, group)
	if member == nil || member.MaxAckTimeMs != rec.MaxAckTimeMs || member.MaxDeliveries != rec.MaxDeliveries {
		if err := cp.createDurables(st, rec); err != nil {
			return text(err.Error())
		}
	}
	cp.reg.Consumers = append(cp.reg.Consumers, rec)
	cp.save()
	return mustJSON(wire.CreateConsumerResp{
		SchemaUpdate:     cp.schemaInit(st),
		PartitionsUpdate: wire.PartitionsUpdate{PartitionsList: partitionsOf(st)},
	})
}

// activeMember is a connected member of a group on a station; cp.mu is held.
func (cp *controlPlane) activeMember(stName, group string) *consumerRec {
	live := cp.b.liveConnectionIDs()
	for i := range cp.reg.Consumers {
		c := &cp.reg.Consumers[i]
		if c.Station == stName && c.Group == group && isActive(live, c.ConnID) {
			return c
		}
	}
	return nil
}

// durableConfig is the JetStream durable of a group on one partition
// (docs/protocol.md#consumer-durables). lastSeq is the partition's last
// sequence, used by LastMessages.
func durableConfig(stream, durable string, c consumerRec, lastSeq uint64) jetstream.ConsumerConfig {
	ackMs := c.MaxAckTimeMs
	if ackMs <= 0 {
		ackMs = defaultMaxAckTimeMs
	}
	deliveries := c.MaxDeliveries
	if deliveries <= 0 || deliveries > maxDeliveriesCap {
		deliveries = maxDeliveriesCap // silently, as the real broker does
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Duration(ackMs) * time.Millisecond,
		MaxDeliver:    deliveries,
		FilterSubject: wire.ProduceSubject(stream),
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
		MaxAckPending: -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	switch {
	case c.LastMessages == 0 && c.StartSeq == 1:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	case c.LastMessages > 0:
		// Per partition (docs/protocol.md#quirk-last-messages-per-partition);
		// an empty partition starts at 1. The real broker forgets this on
		// one-partition stations
		// (docs/protocol.md#quirk-last-messages-no-durable); not here.
		start := int64(lastSeq) - c.LastMessages + 1
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, uint64(max(start, 1))
	case c.StartSeq > 1:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, c.StartSeq
	}
	return cfg
}

// createDurables creates or updates a group's durable on every partition;
// cp.mu is held.
func (cp *controlPlane) createDurables(st *station, c consumerRec) error {
	ctx, cancel := jsCtx()
	defer cancel()
	durable := wire.InternalName(c.Group)
	for _, p := range st.Partitions {
		stream := wire.StreamName(st.Intern, p)
		var lastSeq uint64
		if c.LastMessages > 0 {
			s, err := cp.js.Stream(ctx, stream)
			if err != nil {
				return errors.New(jsErrorText(err))
			}
			lastSeq = s.CachedInfo().State.LastSeq
		}
		if _, err := cp.js.CreateOrUpdateConsumer(ctx, stream, durableConfig(stream, durable, c, lastSeq)); err != nil {
			return errors.New(jsErrorText(err))
		}
	}
	return nil
}

func (cp *controlPlane) destroyConsumer(body []byte) []byte {
	var r destroyConsumerRequestV0
	if err := decode(body, &r); err != nil {
		return text(err.Error())
	}
	stName := strings.ToLower(r.StationName)
	if err := wire.ValidateName(wire.ObjStation, stName); err != nil {
		return text(err.Error())
	}
	name := strings.ToLower(r.Name)
	cp.mu.Lock()
	defer cp.mu.Unlock()
	i := slices.IndexFunc(cp.reg.Consumers, func(c consumerRec) bool {
		return c.Name == name && c.Station == stName && sameConn(r.ReqVersion, r.ConnectionID, c.ConnID)
	})
	if i < 0 {
		return text(fmt.Sprintf("Consumer %s at station %s does not exist", r.Name, r.StationName))
	}
	gone := cp.reg.Consumers[i]
	cp.reg.Consumers = slices.Delete(cp.reg.Consumers, i, i+1)
	// The durables go with the group's last connected member; disconnects
	// alone never delete them (docs/protocol.md#quirk-durables-outlive-connections).
	if cp.activeMember(stName, gone.Group) == nil {
		cp.deleteDurables(cp.reg.Stations[stName], gone)
		cp.forgetGroup(gone.Group)
	}
	cp.save()
	return nil
}

// deleteDurables removes a group's durable from the partitions it was
// created on; cp.mu is held.
func (cp *controlPlane) deleteDurables(st *station, c consumerRec) {
	if st == nil {
		return
	}
	ctx, cancel := jsCtx()
	defer cancel()
	durable := wire.InternalName(c.Group)
	for _, p := range c.Partitions {
		err := cp.js.DeleteConsumer(ctx, wire.StreamName(st.Intern, p), durable)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
			cp.b.log.Warn("broker: durable not deleted", "station", st.Name, "group", c.Group, "err", err)
		}
	}
}
