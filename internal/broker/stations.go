package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// Station settings and their defaults (PROTOCOL §5.2, §5.6).
const (
	retentionAge      = "message_age_sec"
	retentionMessages = "messages"
	retentionBytes    = "bytes"
	retentionAckBased = "ack_based"
	storageFile       = "file"
	storageMemory     = "memory"

	defaultRetentionValue = 3600   // seconds
	defaultIdempotencyMs  = 120000 // 2 minutes
	minIdempotencyMs      = 100
	maxIdempotencyMs      = 86400000 // 24 hours
	// stationVersion is what every station created by broker 1.4.4 is.
	stationVersion = 2
)

// The request types carry the real broker's names: they appear in its
// decoding errors.
type (
	createStationRequest  wire.CreateStationReq
	destroyStationRequest wire.DestroyStationReq
)

// splitTenant handles the "<user>$<tenant id>" form of a username: only
// tenant 1, the global one, exists in an open-source broker.
func splitTenant(username string) (user, tenant string, ok bool) {
	u, id, found := strings.Cut(username, "$")
	if !found || id == "" || strings.Trim(id, "0123456789") != "" {
		return username, "", true
	}
	return u, id, id == "1"
}

func (cp *controlPlane) createStation(body []byte) []byte {
	var r createStationRequest
	if err := decode(body, &r); err != nil {
		return text(err.Error())
	}
	name := strings.ToLower(r.Name)
	if err := wire.ValidateName(wire.ObjStation, name); err != nil {
		return text(err.Error())
	}
	user, tenant, ok := splitTenant(r.Username)
	if !ok {
		return text(fmt.Sprintf("createStationDirect: Station %s: Tenant with id %s does not exist", r.Name, tenant))
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if _, exists := cp.reg.Stations[name]; exists {
		return nil // Q1: nothing changes, and that is success
	}
	if !cp.b.userExists(user) {
		return nil // Q2: success, nothing created
	}
	switch {
	case r.PartitionsNumber == 0:
		return text("you are using an old SDK, make sure to update your SDK")
	case r.PartitionsNumber < 1:
		return text(fmt.Sprintf("cannot create station with %d partitions (max:10000 min:1): Station -  %s, ", r.PartitionsNumber, r.Name))
	}
	st := &station{Name: name, Intern: wire.InternalName(name), TieredStorage: r.TieredStorageEnabled,
		DLSPoison: r.DLSConfiguration.Poison, DLSSchemaverse: r.DLSConfiguration.Schemaverse}
	if r.SchemaName != "" {
		sc := cp.reg.Schemas[strings.ToLower(r.SchemaName)]
		if sc == nil || sc.active() == nil {
			return nil // Q2: success, nothing created
		}
		st.Schema, st.SchemaVersion = sc.Name, sc.active().Number
	}
	st.RetentionType, st.RetentionValue = strings.ToLower(r.RetentionType), r.RetentionValue
	switch st.RetentionType {
	case "":
		st.RetentionType, st.RetentionValue = retentionAge, defaultRetentionValue
	case retentionAge, retentionMessages, retentionBytes, retentionAckBased:
		if st.RetentionValue <= 0 && st.RetentionType != retentionAckBased {
			st.RetentionType, st.RetentionValue = retentionAge, defaultRetentionValue // Q20
		}
	default:
		return text("retention type can be one of the following message_age_sec/messages/bytes/ack_based")
	}
	st.StorageType = strings.ToLower(r.StorageType)
	switch st.StorageType {
	case "":
		st.StorageType = storageFile
	case storageFile, storageMemory:
	default:
		return text("storage type can be one of the following file/memory")
	}
	st.Replicas = normalizeReplicas(r.Replicas)
	st.IdempotencyMs = r.IdempotencyWindowMs
	switch {
	case st.IdempotencyMs <= 0:
		st.IdempotencyMs = defaultIdempotencyMs
	case st.IdempotencyMs < minIdempotencyMs:
		st.IdempotencyMs = minIdempotencyMs
	}
	if st.IdempotencyMs > maxIdempotencyMs {
		return text("idempotency window can not exceed 24 hours")
	}
	if st.RetentionType == retentionAge && int64(st.RetentionValue)*1000 < st.IdempotencyMs {
		return text("idempotency window cannot be greater than the station retention") // Q19
	}
	if r.DLSStation != "" {
		dls := strings.ToLower(r.DLSStation)
		if err := wire.ValidateName(wire.ObjStation, dls); err != nil {
			return text(err.Error())
		}
		if _, exists := cp.reg.Stations[dls]; !exists {
			if _, err := cp.createDefaultStation(dls); err != nil {
				return text(err.Error())
			}
		}
		st.DLSStation = dls
	}
	for p := 1; p <= r.PartitionsNumber; p++ {
		st.Partitions = append(st.Partitions, p)
	}
	if err := cp.createStreams(st); err != nil {
		return text(err.Error())
	}
	cp.reg.Stations[name] = st
	cp.save()
	return nil
}

// normalizeReplicas maps a requested replica count to what the real broker
// uses: an odd raft group of 1, 3 or 5 (Q21).
func normalizeReplicas(n int) int {
	switch {
	case n <= 0:
		return 1
	case n == 2 || n == 4:
		return 3
	case n > 5:
		return 5
	}
	return n
}

// createDefaultStation creates the station a producer or consumer names
// when it does not exist (PROTOCOL §5.6); cp.mu is held.
func (cp *controlPlane) createDefaultStation(name string) (*station, error) {
	st := &station{
		Name: name, Intern: wire.InternalName(name), Partitions: []int{1},
		RetentionType: retentionAge, RetentionValue: defaultRetentionValue, StorageType: storageFile,
		Replicas: 1, IdempotencyMs: defaultIdempotencyMs, DLSPoison: true, DLSSchemaverse: true,
	}
	if err := cp.createStreams(st); err != nil {
		return nil, err
	}
	cp.reg.Stations[name] = st
	cp.save()
	return st, nil
}

// streamConfig is the JetStream stream of one partition (PROTOCOL §5.3).
func streamConfig(st *station, partition int) jetstream.StreamConfig {
	name := wire.StreamName(st.Intern, partition)
	cfg := jetstream.StreamConfig{
		Name:              name,
		Subjects:          wire.StreamSubjects(name),
		Retention:         jetstream.LimitsPolicy,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgsPerSubject: -1,
		MaxConsumers:      -1,
		Discard:           jetstream.DiscardOld,
		Storage:           jetstream.FileStorage,
		Replicas:          st.Replicas,
		Duplicates:        time.Duration(st.IdempotencyMs) * time.Millisecond,
	}
	// Kept with DirectPublish too, so a store directory serves both ways.
	src, dest := ingestTransform(name)
	cfg.SubjectTransform = &jetstream.SubjectTransformConfig{Source: src, Destination: dest}
	switch st.RetentionType {
	case retentionAge:
		cfg.MaxAge = time.Duration(st.RetentionValue) * time.Second
	case retentionMessages:
		cfg.MaxMsgs = int64(st.RetentionValue)
	case retentionBytes:
		cfg.MaxBytes = int64(st.RetentionValue)
	case retentionAckBased:
		cfg.Retention = jetstream.InterestPolicy
	}
	if st.StorageType == storageMemory {
		cfg.Storage = jetstream.MemoryStorage
	}
	return cfg
}

// JetStream error codes the station handlers translate.
const (
	jsErrReplicasNotSupported = 10074 // replicas > 1 not supported in non-clustered mode
	jsErrInsufficientNodes    = 10005 // no suitable peers (a cluster smaller than the replicas)
	jsErrStreamNotFound       = 10059
	jsErrConsumerNotFound     = 10014
	// jsErrStoreCreate: nats-server removes an account's emptied streams
	// directory in the background after a stream is deleted; a stream
	// created meanwhile fails to make its store and succeeds when retried.
	jsErrStoreCreate = 10049
	storeRetries     = 5
)

// createStreams creates every partition's stream, removing those already
// made when one fails; cp.mu is held.
func (cp *controlPlane) createStreams(st *station) error {
	ctx, cancel := jsCtx()
	defer cancel()
	for i, p := range st.Partitions {
		if err := cp.createStream(ctx, streamConfig(st, p)); err != nil {
			for _, done := range st.Partitions[:i] {
				_ = cp.js.DeleteStream(ctx, wire.StreamName(st.Intern, done))
			}
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && (apiErr.ErrorCode == jsErrReplicasNotSupported || apiErr.ErrorCode == jsErrInsufficientNodes ||
				strings.Contains(apiErr.Description, "insufficient resources")) {
				return errors.New("station can not be created, probably since replicas count is larger than the cluster size")
			}
			return errors.New(jsErrorText(err))
		}
	}
	if err := cp.ingest.add(st.idempotencyWindow(), st.streams()...); err != nil {
		return err
	}
	return nil
}

// seedMsgIDs tells the ingest which msg-ids a restarted broker's streams
// stored within the idempotency window, as JetStream rebuilds its own
// de-duplication state from stored messages on start.
func (cp *controlPlane) seedMsgIDs(st *station) {
	ctx, cancel := jsCtx()
	defer cancel()
	since := time.Now().Add(-st.idempotencyWindow())
	for _, stream := range st.streams() {
		s, err := cp.js.Stream(ctx, stream)
		if err != nil {
			continue // nothing stored
		}
		// Newest first, back to the window's start; then seeded oldest
		// first, so the first copy of an id is the one remembered.
		var found []*jetstream.RawStreamMsg
		state := s.CachedInfo().State
		for seq := state.LastSeq; seq >= state.FirstSeq && seq > 0; seq-- {
			m, err := s.GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue // deleted
			}
			if err != nil || m.Time.Before(since) {
				break
			}
			found = append(found, m)
		}
		for i := len(found) - 1; i >= 0; i-- {
			if id := found[i].Header.Get(wire.HdrMsgID); id != "" {
				cp.ingest.ids.seed(stream, id, found[i].Sequence, found[i].Time)
			}
		}
	}
}

// ensureTransforms gives a station's streams the subject transform the
// ingest relies on, when they were stored by a build of this broker that
// did not set it: without it, forwarded messages would be stored where no
// consumer looks.
func (cp *controlPlane) ensureTransforms(st *station) error {
	ctx, cancel := jsCtx()
	defer cancel()
	for _, p := range st.Partitions {
		s, err := cp.js.Stream(ctx, wire.StreamName(st.Intern, p))
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue // nothing stored to fix
		}
		if err != nil {
			return fmt.Errorf("broker: station %s: %w", st.Name, err)
		}
		cfg := s.CachedInfo().Config
		if cfg.SubjectTransform != nil {
			continue
		}
		want := streamConfig(st, p).SubjectTransform
		cfg.SubjectTransform = want
		if _, err := cp.js.UpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("broker: station %s: %w", st.Name, err)
		}
	}
	return nil
}

// createStream creates one stream, retrying the store-creation race.
func (cp *controlPlane) createStream(ctx context.Context, cfg jetstream.StreamConfig) error {
	for try := 1; ; try++ {
		_, err := cp.js.CreateStream(ctx, cfg)
		var apiErr *jetstream.APIError
		if err == nil || try == storeRetries || !errors.As(err, &apiErr) || apiErr.ErrorCode != jsErrStoreCreate {
			return err
		}
		time.Sleep(time.Duration(try) * 10 * time.Millisecond)
	}
}

func (cp *controlPlane) destroyStation(body []byte) []byte {
	var r destroyStationRequest
	if err := decode(body, &r); err != nil {
		return text(err.Error())
	}
	name := strings.ToLower(r.StationName)
	if err := wire.ValidateName(wire.ObjStation, name); err != nil {
		return text(err.Error())
	}
	if _, tenant, ok := splitTenant(r.Username); !ok {
		return text(fmt.Sprintf("removeStationDirect: Station %s: Tenant with id %s does not exist", r.StationName, tenant))
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	st := cp.reg.Stations[name]
	if st == nil {
		return text("Station  does not exist") // Q3: the name comes from an empty record
	}
	// Memphis 1.4.4 tells no client when an SDK destroys a station: only a
	// removal from its UI does. Clients are written for that; the official
	// Go SDK (v1.3.2) even crashes when the update races with its own
	// destroy. So this path stays silent too.
	cp.removeStation(st)
	return nil
}

// destroyStationAsUI removes a station as the real broker's UI does: like
// an SDK destroy, and then every client is told with a remove_station
// update.
func (cp *controlPlane) destroyStationAsUI(name string) error {
	name = strings.ToLower(name)
	cp.mu.Lock()
	defer cp.mu.Unlock()
	st := cp.reg.Stations[name]
	if st == nil {
		return fmt.Errorf("broker: station %s does not exist", name)
	}
	cp.removeStation(st)
	cp.publishJSON(wire.SubjClientUpdates, wire.ClientUpdate{StationName: st.Intern, Type: wire.UpdateRemoveStation})
	return nil
}

// removeStation deletes a station's streams and its record; cp.mu is held.
func (cp *controlPlane) removeStation(st *station) {
	ctx, cancel := jsCtx()
	defer cancel()
	cp.ingest.remove(st.streams()...)
	for _, p := range st.Partitions {
		err := cp.js.DeleteStream(ctx, wire.StreamName(st.Intern, p))
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			cp.b.log.Warn("broker: stream not deleted", "station", st.Name, "partition", p, "err", err)
		}
	}
	cp.reg.dropStation(st.Name)
	cp.save()
}

// pickPartition chooses where a dead-letter copy goes: any partition (the
// real broker never picks the last one, Q26).
func pickPartition(st *station) int {
	if len(st.Partitions) == 0 {
		return 0
	}
	return st.Partitions[rand.IntN(len(st.Partitions))]
}
