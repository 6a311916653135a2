package memphis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// RetentionType says how a station decides which messages to keep.
type RetentionType int

// Retention types.
const (
	// MaxMessageAgeSeconds keeps messages for RetentionVal seconds.
	MaxMessageAgeSeconds RetentionType = iota
	// Messages keeps the newest RetentionVal messages.
	Messages
	// Bytes keeps the newest RetentionVal bytes of messages.
	Bytes
	// AckBased keeps a message until every consumer group acknowledged it.
	AckBased
)

// String returns the retention type's name on the wire.
func (r RetentionType) String() string {
	switch r {
	case MaxMessageAgeSeconds:
		return "message_age_sec"
	case Messages:
		return "messages"
	case Bytes:
		return "bytes"
	case AckBased:
		return "ack_based"
	}
	return fmt.Sprintf("RetentionType(%d)", int(r))
}

// StorageType says where a station stores messages.
type StorageType int

// Storage types.
const (
	// Disk stores messages in files.
	Disk StorageType = iota
	// Memory stores messages in the broker's memory.
	Memory
)

// String returns the storage type's name on the wire.
func (s StorageType) String() string {
	switch s {
	case Disk:
		return "file"
	case Memory:
		return "memory"
	}
	return fmt.Sprintf("StorageType(%d)", int(s))
}

// Station is a station on the broker.
//
// Its exported fields are the options it was created with, as in 1.x. For a
// station that already existed they are the options asked for, which the
// broker did not apply. The SDK keeps its own copy of the name, so writing
// to the fields changes nothing.
type Station struct {
	// Name is the station's name, lower-cased as the broker keeps it.
	Name string
	// RetentionType, RetentionValue, StorageType, Replicas,
	// IdempotencyWindow, SchemaName, TieredStorageEnabled,
	// PartitionsNumber and DlsStation are the options given to
	// CreateStation, or their defaults (see StationOpts).
	RetentionType        RetentionType
	RetentionValue       int
	StorageType          StorageType
	Replicas             int
	IdempotencyWindow    time.Duration
	SchemaName           string
	TieredStorageEnabled bool
	PartitionsNumber     int
	DlsStation           string
	// DlsConfiguration holds SendPoisonMsgToDls (Poison) and
	// SendSchemaFailedMsgToDls (Schemaverse).
	DlsConfiguration dlsConfiguration

	conn   *Conn
	name   string
	intern string
}

// dlsConfiguration is the type of Station.DlsConfiguration, unexported as
// in 1.x.
type dlsConfiguration struct {
	Poison      bool `json:"poison"`
	Schemaverse bool `json:"schemaverse"`
}

// CreateStation creates a station, or returns the existing one of that name
// unchanged (the broker keeps its configuration). It is CreateStationContext
// with context.Background.
func (c *Conn) CreateStation(name string, opts ...StationOpt) (*Station, error) {
	return c.CreateStationContext(context.Background(), name, opts...)
}

// CreateStationContext creates a station, or returns the existing one of
// that name unchanged. Options are checked before anything is sent.
func (c *Conn) CreateStationContext(ctx context.Context, name string, opts ...StationOpt) (*Station, error) {
	o := GetStationDefaultOptions()
	o.Name = name
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, opErr("create station", name, fmt.Errorf("%w: %w", ErrInvalidOption, err))
		}
	}
	name = o.Name
	if o.PartitionsNumber == 0 {
		o.PartitionsNumber = DefaultPartitionsNumber // as 1.x read an unset number
	}
	lower, err := checkName(wire.ObjStation, name)
	if err != nil {
		return nil, opErr("create station", name, err)
	}
	if err := o.validate(); err != nil {
		return nil, opErr("create station", name, err)
	}
	if o.Replicas == 2 || o.Replicas == 4 {
		c.log.Warn("memphis: the broker rounds this replica count up to 3", "station", lower, "replicas", o.Replicas)
	}
	req := wire.CreateStationReq{
		Name:                 lower,
		SchemaName:           strings.ToLower(o.SchemaName),
		RetentionType:        o.RetentionType.String(),
		RetentionValue:       o.RetentionVal,
		StorageType:          o.StorageType.String(),
		Replicas:             o.Replicas,
		IdempotencyWindowMs:  o.IdempotencyWindow.Milliseconds(),
		DLSConfiguration:     wire.DLSConfig{Poison: o.SendPoisonMsgToDls, Schemaverse: o.SendSchemaFailedMsgToDls},
		Username:             c.username,
		TieredStorageEnabled: o.TieredStorageEnabled,
		PartitionsNumber:     o.PartitionsNumber,
		DLSStation:           strings.ToLower(o.DlsStation),
	}
	ctx = withTimeoutRetries(ctx, o.TimeoutRetry)
	// A station that already exists is success (PROTOCOL Q1, §5.2.17).
	if err := c.requestText(ctx, wire.SubjStationCreations, req, "already exist"); err != nil {
		return nil, opErr("create station", lower, err)
	}
	intern := wire.InternalName(lower)
	if req.SchemaName != "" {
		// The broker answers success but creates nothing when the schema
		// does not exist (PROTOCOL Q2); the station's first stream tells.
		if _, err := c.streamLastSeq(ctx, wire.StreamName(intern, 1)); errors.Is(err, ErrStationNotFound) {
			return nil, opErr("create station", lower, fmt.Errorf("%w: %s (the broker created no station)", ErrSchemaNotFound, req.SchemaName))
		} else if err != nil {
			return nil, opErr("create station", lower, err)
		}
	}
	return &Station{
		Name:                 lower,
		RetentionType:        o.RetentionType,
		RetentionValue:       o.RetentionVal,
		StorageType:          o.StorageType,
		Replicas:             o.Replicas,
		IdempotencyWindow:    o.IdempotencyWindow,
		SchemaName:           req.SchemaName,
		TieredStorageEnabled: o.TieredStorageEnabled,
		PartitionsNumber:     o.PartitionsNumber,
		DlsStation:           req.DLSStation,
		DlsConfiguration:     dlsConfiguration{Poison: o.SendPoisonMsgToDls, Schemaverse: o.SendSchemaFailedMsgToDls},
		conn:                 c, name: lower, intern: intern,
	}, nil
}

func (o *StationOpts) validate() error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
	}
	switch {
	case o.RetentionType < MaxMessageAgeSeconds || o.RetentionType > AckBased:
		return invalid("unknown retention type %v", o.RetentionType)
	case o.RetentionType != AckBased && o.RetentionVal <= 0:
		// The broker would silently turn it into one hour of age retention (PROTOCOL Q20).
		return invalid("retention value %d must be positive", o.RetentionVal)
	case o.StorageType != Disk && o.StorageType != Memory:
		return invalid("unknown storage type %v", o.StorageType)
	case o.Replicas < 1 || o.Replicas > 5:
		return invalid("replicas %d must be 1 to 5", o.Replicas)
	case o.IdempotencyWindow < 0:
		return invalid("idempotency window %v is negative", o.IdempotencyWindow)
	case o.IdempotencyWindow > 0 && o.IdempotencyWindow < MinIdempotencyWindow:
		return invalid("idempotency window %v is shorter than %v", o.IdempotencyWindow, MinIdempotencyWindow)
	case o.IdempotencyWindow > MaxIdempotencyWindow:
		return invalid("idempotency window %v exceeds %v", o.IdempotencyWindow, MaxIdempotencyWindow)
	case o.RetentionType == MaxMessageAgeSeconds && o.IdempotencyWindow > time.Duration(o.RetentionVal)*time.Second:
		return invalid("idempotency window %v is longer than the retention of %d seconds", o.IdempotencyWindow, o.RetentionVal)
	case o.PartitionsNumber < 1 || o.PartitionsNumber > MaxPartitionsNumber:
		return invalid("partitions number %d must be 1 to %d", o.PartitionsNumber, MaxPartitionsNumber)
	case o.TimeoutRetry < 0:
		return invalid("timeout retries %d is negative", o.TimeoutRetry)
	}
	if o.SchemaName != "" {
		// The broker lower-cases the name before looking the schema up
		// (PROTOCOL §5.2 step 10, Q12), so "SensorLogs" names sensorlogs.
		if _, err := checkName(wire.ObjSchema, o.SchemaName); err != nil {
			return err
		}
	}
	if o.DlsStation != "" {
		if _, err := checkName(wire.ObjStation, o.DlsStation); err != nil {
			return err
		}
	}
	return nil
}

// Destroy removes the station with its messages, producers and consumers.
// It is DestroyContext with context.Background; the options are those of
// 1.x (TimeoutRetry).
func (s *Station) Destroy(options ...RequestOpt) error {
	ctx, err := requestOptionsContext(context.Background(), options)
	if err != nil {
		return opErr("destroy station", s.name, err)
	}
	return s.DestroyContext(ctx)
}

// DestroyContext removes the station with its messages, producers and
// consumers. Destroying a station that does not exist is not an error.
func (s *Station) DestroyContext(ctx context.Context) error {
	req := wire.DestroyStationReq{StationName: s.name, Username: s.conn.username}
	if err := s.conn.requestText(ctx, wire.SubjStationDestructions, req, "not exist"); err != nil {
		return opErr("destroy station", s.name, err)
	}
	s.conn.forgetStation(s.intern)
	return nil
}

// checkName lower-cases a name and applies the broker's rules to it, so bad
// names fail before anything is sent.
func checkName(obj, name string) (string, error) {
	// Schema names too: the broker lower-cases them wherever it looks one
	// up (attach, station creation; PROTOCOL §4.3, §9.2, Q12). Creating a
	// schema is stricter, see checkSchemaCreateName.
	lower := strings.ToLower(name)
	if err := wire.ValidateName(obj, lower); err != nil {
		return "", fmt.Errorf("%w: %s", ErrInvalidName, err.Error())
	}
	return lower, nil
}

// stationState is what a connection knows about a station its producers and
// consumers use: its partitions, its schema and its dead-letter settings. It
// is shared by all of them and reference-counted, so the schema-updates
// subscription lives exactly as long as someone uses the station.
type stationState struct {
	intern string

	partitions       atomic.Pointer[[]int]
	subjects         atomic.Pointer[map[int]string] // partition → produce subject
	schema           atomic.Pointer[schemaState]
	schemaverseToDLS atomic.Bool

	// refs and sub are guarded by Conn.mu.
	refs int
	sub  *nats.Subscription
}

// partitionList returns the station's partitions (nil before any producer or
// consumer registration told them).
func (st *stationState) partitionList() []int {
	if p := st.partitions.Load(); p != nil {
		return *p
	}
	return nil
}

// acquireStation returns the state of a station, subscribing to its schema
// updates on first use.
func (c *Conn) acquireStation(intern string) (*stationState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrConnClosed
	}
	st := c.stations[intern]
	if st == nil {
		st = &stationState{intern: intern}
		sub, err := c.nc.Subscribe(wire.SchemaUpdatesSubject(intern), func(m *nats.Msg) { c.onSchemaUpdate(st, m) })
		if err != nil {
			return nil, err
		}
		st.sub = sub
		c.stations[intern] = st
	}
	st.refs++
	return st, nil
}

// releaseStation drops one reference, unsubscribing with the last.
func (c *Conn) releaseStation(st *stationState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st.refs--
	if st.refs > 0 {
		return
	}
	if c.stations[st.intern] == st {
		delete(c.stations, st.intern)
	}
	if st.sub != nil {
		_ = st.sub.Unsubscribe()
	}
}

// applyRegistration stores what a producer or consumer registration told us
// about the station.
func (st *stationState) applyRegistration(c *Conn, partitions []int, su wire.SchemaUpdateInit) error {
	p := append([]int(nil), partitions...)
	subjects := make(map[int]string, len(p)+1)
	subjects[0] = wire.ProduceSubject(wire.StreamName(st.intern, 0))
	for _, n := range p {
		subjects[n] = wire.ProduceSubject(wire.StreamName(st.intern, n))
	}
	st.partitions.Store(&p)
	st.subjects.Store(&subjects)
	return c.setSchema(st, su)
}

// subject is the subject a message for partition goes to.
func (st *stationState) subject(partition int) string {
	if m := st.subjects.Load(); m != nil {
		if s, ok := (*m)[partition]; ok {
			return s
		}
	}
	return wire.ProduceSubject(wire.StreamName(st.intern, partition))
}
