package broker

import (
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// Dead-letter record types and the "type" header of their copies: the real
// broker types a client's dead letter "unacked", like a poison message.
const (
	dlsPoison        = "poison"
	dlsSchema        = "schema"
	copyUnacked      = wire.DLSTypeUnacked
	copyFailedSchema = wire.DLSTypeFailedSchema
)

// onMaxDeliveries handles JetStream's advisory for a message that ran out
// of deliveries: a poison message (docs/protocol.md#dls-poison).
func (cp *controlPlane) onMaxDeliveries(data []byte) {
	var adv struct {
		Stream    string `json:"stream"`
		Consumer  string `json:"consumer"`
		StreamSeq uint64 `json:"stream_seq"`
	}
	if err := json.Unmarshal(data, &adv); err != nil || strings.HasPrefix(adv.Stream, "$memphis") {
		return
	}
	intern, partition := wire.SplitStreamName(adv.Stream)
	group := wire.ExternalName(adv.Consumer)
	cp.deadLetter(intern, partition, adv.StreamSeq, group, "", dlsPoison)
}

// onNackedDLS handles a consumer's dead-letter report
// (docs/protocol.md#dls-nacked).
func (cp *controlPlane) onNackedDLS(data []byte) {
	var r wire.NackedDLSMsg
	if err := json.Unmarshal(data, &r); err != nil {
		return
	}
	if r.Partition < 1 {
		// The real broker crashes here
		// (docs/protocol.md#quirk-nacked-partition-zero-crash); a report
		// without a partition names no stream, so it is dropped.
		cp.b.log.Warn("broker: dead-letter report without a partition dropped", "station", r.StationName)
		return
	}
	cp.deadLetter(r.StationName, r.Partition, r.Seq, r.CGName, r.Error, dlsPoison)
}

// deadLetter records a poisoned message of a group and copies it to the
// station's dead-letter station.
func (cp *controlPlane) deadLetter(intern string, partition int, seq uint64, group, reason, typ string) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	st := cp.reg.stationByIntern(intern)
	if st == nil || !st.DLSPoison {
		return
	}
	ctx, cancel := jsCtx()
	defer cancel()
	s, err := cp.js.Stream(ctx, wire.StreamName(intern, partition))
	if err != nil {
		return
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return // gone already: nothing to keep
	}
	producer := m.Header.Get(wire.HdrProducedBy)
	if producer == wire.DLSProducer {
		return // a re-sent dead letter is not poisoned twice
	}
	if producer == "" {
		producer = "unknown"
	}
	// A record is kept only for a group some consumer belongs to
	// (docs/protocol.md#quirk-dls-group-must-exist).
	if cp.reg.groupKnown(group) {
		i := cp.reg.findDeadLetter(intern, partition, seq)
		if i < 0 {
			cp.reg.DeadLetters = append(cp.reg.DeadLetters, DeadLetter{
				ID: cp.reg.NextDLSID, Station: intern, Partition: partition, Seq: seq, Type: typ,
				Groups: []string{group}, Reason: reason, Producer: producer,
				Headers: m.Header, Data: m.Data,
			})
			cp.reg.NextDLSID++
		} else {
			d := &cp.reg.DeadLetters[i]
			if !slices.Contains(d.Groups, group) {
				d.Groups = append(d.Groups, group)
			}
			d.Reason = reason
		}
		cp.save()
	}
	cp.copyToDLSStation(st, m.Data, m.Header, copyUnacked)
}

// onSchemaverseDLS handles a producer's report of a message its schema
// refused (docs/protocol.md#dls-schema-failures).
func (cp *controlPlane) onSchemaverseDLS(data []byte) {
	var r wire.SchemaverseDLSMsg
	if err := json.Unmarshal(data, &r); err != nil {
		return
	}
	payload, err := hex.DecodeString(r.Message.Data)
	if err != nil {
		return
	}
	hdr := nats.Header{}
	for k, v := range r.Message.Headers {
		hdr.Set(k, v)
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	st := cp.reg.stationByIntern(r.StationName)
	if st == nil {
		return
	}
	cp.reg.DeadLetters = append(cp.reg.DeadLetters, DeadLetter{
		ID: cp.reg.NextDLSID, Station: st.Intern, Partition: r.PartitionNumber, Type: dlsSchema,
		Reason: r.ValidationError, Producer: r.Producer.Name, Headers: hdr, Data: payload,
	})
	cp.reg.NextDLSID++
	cp.save()
	cp.copyToDLSStation(st, payload, hdr, copyFailedSchema)
}

// copyToDLSStation publishes a dead letter to the station's dead-letter
// station, with headers naming where it came from; cp.mu is held.
func (cp *controlPlane) copyToDLSStation(src *station, data []byte, hdr nats.Header, typ string) {
	if src.DLSStation == "" {
		return
	}
	dst := cp.reg.Stations[src.DLSStation]
	if dst == nil {
		return
	}
	m := nats.NewMsg(wire.ProduceSubject(wire.StreamName(dst.Intern, pickPartition(dst))))
	m.Data = data
	for k, vs := range hdr {
		m.Header[k] = append([]string(nil), vs...)
	}
	m.Header.Set(wire.HdrDLSStation, src.Name)
	m.Header.Set(wire.HdrDLSType, typ)
	if err := cp.nc.PublishMsg(m); err != nil {
		cp.b.log.Warn("broker: dead letter not copied", "station", src.Name, "err", err)
	}
}

// onPMAck handles a consumer's ack of a re-sent dead letter: the group is
// done with it, and the record goes with its last group
// (docs/protocol.md#dls-resend-acks).
func (cp *controlPlane) onPMAck(data []byte) {
	var r wire.PMAck
	if err := json.Unmarshal(data, &r); err != nil {
		return
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for i := range cp.reg.DeadLetters {
		d := &cp.reg.DeadLetters[i]
		if d.ID != r.ID {
			continue
		}
		d.Groups = filterSlice(d.Groups, func(g string) bool { return g != r.CGName })
		if len(d.Groups) == 0 {
			cp.reg.DeadLetters = append(cp.reg.DeadLetters[:i], cp.reg.DeadLetters[i+1:]...)
		}
		cp.save()
		return
	}
}

// forgetGroup removes a group from every dead letter it poisoned, when its
// last member is destroyed (docs/protocol.md#consumer-destroy); cp.mu is held.
func (cp *controlPlane) forgetGroup(group string) {
	for i := range cp.reg.DeadLetters {
		d := &cp.reg.DeadLetters[i]
		d.Groups = filterSlice(d.Groups, func(g string) bool { return g != group })
	}
}

// resendDeadLetters re-sends a station's poison messages to each group
// they poisoned, on the current and the legacy subject
// (docs/protocol.md#dls-resend).
func (cp *controlPlane) resendDeadLetters(stationName string) (int, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	st := cp.reg.Stations[strings.ToLower(stationName)]
	if st == nil {
		return 0, &notFoundError{"station " + stationName}
	}
	sent := 0
	for _, d := range cp.reg.DeadLetters {
		if d.Station != st.Intern || d.Type != dlsPoison {
			continue
		}
		for _, g := range d.Groups {
			for _, subj := range []string{
				wire.DLSResendSubject(st.Intern, wire.InternalName(g)),
				wire.LegacyDLSResendSubject(st.Intern, wire.InternalName(g)),
			} {
				m := nats.NewMsg(subj)
				m.Data = d.Data
				for k, vs := range d.Headers {
					m.Header[k] = append([]string(nil), vs...)
				}
				m.Header.Del("producedBy")
				m.Header.Set(wire.HdrProducedBy, wire.DLSProducer)
				m.Header.Set(wire.HdrPMID, strconv.Itoa(d.ID))
				m.Header.Set(wire.HdrPMCGName, g)
				if err := cp.nc.PublishMsg(m); err != nil {
					return sent, err
				}
			}
			sent++
		}
	}
	return sent, cp.nc.Flush()
}

// deadLetters lists a station's records.
func (cp *controlPlane) deadLetters(stationName string) []DeadLetter {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	st := cp.reg.Stations[strings.ToLower(stationName)]
	if st == nil {
		return nil
	}
	var out []DeadLetter
	for _, d := range cp.reg.DeadLetters {
		if d.Station == st.Intern {
			d.Groups = append([]string(nil), d.Groups...)
			out = append(out, d)
		}
	}
	return out
}

type notFoundError struct{ what string }

func (e *notFoundError) Error() string { return "broker: no " + e.what }
