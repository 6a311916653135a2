package broker_test

// Protocol-level suite: it speaks to a broker with plain nats.go requests (no
// SDK) and checks the broker's replies and the JetStream resources it makes,
// following PROTOCOL.md (Memphis 1.4.4). It runs against the in-process broker
// by default and against the broker at MEMPHIS_HOST when it is set (the dev
// broker, or a real Memphis 1.4.4); where the real broker has a documented
// bug that this module's broker fixes, one assertion branches on
// b.IsMemphis() and names the quirk.

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/memphisdev/memphis.go/internal/testenv"
	"github.com/memphisdev/memphis.go/internal/wire"
)

const (
	// reqTimeout bounds every control request: the broker answers at once,
	// so a missing reply is a failure, not slowness.
	reqTimeout = 10 * time.Second
	// asyncTimeout bounds effects the broker produces in the background
	// (dead-letter handling collects events for up to 5 s).
	asyncTimeout = 45 * time.Second
	pollEvery    = 100 * time.Millisecond
)

// pt is one protocol-test client: a plain NATS connection, its JetStream
// view and the connection id the broker knows it by.
type pt struct {
	t      *testing.T
	b      *testenv.Broker
	nc     *nats.Conn
	js     jetstream.JetStream
	connID string
}

func newPT(t *testing.T) *pt {
	t.Helper()
	return newPTOn(t, testenv.Start(t))
}

// newPTOn is newPT on a broker of the test's choosing.
func newPTOn(t *testing.T, b *testenv.Broker) *pt {
	t.Helper()
	nc := b.NATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	id, _, ok := strings.Cut(nc.Opts.Name, "::")
	if !ok {
		t.Fatalf("connection name %q has no connection id", nc.Opts.Name)
	}
	return &pt{t: t, b: b, nc: nc, js: js, connID: id}
}

// with is p bound to a subtest, so failures and cleanups belong to it.
func (p *pt) with(t *testing.T) *pt {
	q := *p
	q.t = t
	return &q
}

func encode(t testing.TB, body any) []byte {
	t.Helper()
	switch v := body.(type) {
	case []byte:
		return v
	case string:
		return []byte(v)
	}
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatalf("marshal %T: %v", body, err)
	}
	return data
}

// request sends one control request and returns the reply body; no reply
// within reqTimeout fails the test.
func (p *pt) request(subj string, body any) string {
	p.t.Helper()
	m, err := p.nc.Request(subj, encode(p.t, body), reqTimeout)
	if err != nil {
		p.t.Fatalf("request %s %s: %v", subj, encode(p.t, body), err)
	}
	return string(m.Data)
}

// replies sends a request and collects the first reply (required) and,
// if extra > 0, a second one arriving within extra.
func (p *pt) replies(subj string, body any, extra time.Duration) []string {
	p.t.Helper()
	inbox := p.nc.NewRespInbox()
	sub, err := p.nc.SubscribeSync(inbox)
	if err != nil {
		p.t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := p.nc.PublishRequest(subj, inbox, encode(p.t, body)); err != nil {
		p.t.Fatal(err)
	}
	m, err := sub.NextMsg(reqTimeout)
	if err != nil {
		p.t.Fatalf("request %s: no reply: %v", subj, err)
	}
	out := []string{string(m.Data)}
	if extra > 0 {
		if m, err := sub.NextMsg(extra); err == nil {
			out = append(out, string(m.Data))
		}
	}
	return out
}

// replyError is the error a reply carries: the "error" field of a JSON
// object reply, else the whole body (plain-text family).
func replyError(body string) string {
	var e struct {
		Err *string `json:"error"`
	}
	if json.Unmarshal([]byte(body), &e) == nil && e.Err != nil {
		return *e.Err
	}
	return body
}

func isJSONObject(s string) bool {
	var m map[string]any
	return json.Unmarshal([]byte(s), &m) == nil
}

// stationReq is a creation request with the SDK defaults (PROTOCOL §5.1).
func (p *pt) stationReq(name string) wire.CreateStationReq {
	return wire.CreateStationReq{
		Name: name, RetentionType: "message_age_sec", RetentionValue: 3600,
		StorageType: "file", Replicas: 1, IdempotencyWindowMs: 120000,
		DLSConfiguration: wire.DLSConfig{Poison: true, Schemaverse: true},
		Username:         p.b.Username, PartitionsNumber: 1,
	}
}

// createStation sends a creation request and destroys the station when the
// test ends, whatever the reply was.
func (p *pt) createStation(r any, name string) string {
	p.t.Helper()
	p.cleanupStation(name)
	return p.request(wire.SubjStationCreations, r)
}

func (p *pt) cleanupStation(name string) {
	p.t.Cleanup(func() {
		// Best effort: the connection is still open (it closes after us).
		_, _ = p.nc.Request(wire.SubjStationDestructions,
			encode(p.t, wire.DestroyStationReq{StationName: name, Username: p.b.Username}), reqTimeout)
	})
}

// mustStation creates a station that must succeed, after mod adjusts the
// default request.
func (p *pt) mustStation(name string, mod func(*wire.CreateStationReq)) {
	p.t.Helper()
	r := p.stationReq(name)
	if mod != nil {
		mod(&r)
	}
	if got := p.createStation(r, name); got != "" {
		p.t.Fatalf("create station %s: %q", name, got)
	}
}

func (p *pt) destroyStation(name string) string {
	p.t.Helper()
	return p.request(wire.SubjStationDestructions, wire.DestroyStationReq{StationName: name, Username: p.b.Username})
}

func (p *pt) streamInfo(stream string) *jetstream.StreamInfo {
	p.t.Helper()
	s, err := p.js.Stream(p.t.Context(), stream)
	if err != nil {
		p.t.Fatalf("stream %s: %v", stream, err)
	}
	return s.CachedInfo()
}

func (p *pt) streamExists(stream string) bool {
	p.t.Helper()
	_, err := p.js.Stream(p.t.Context(), stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrInvalidStreamName) {
		return false
	}
	if err != nil {
		p.t.Fatalf("stream %s: %v", stream, err)
	}
	return true
}

func (p *pt) consumerInfo(stream, durable string) *jetstream.ConsumerInfo {
	p.t.Helper()
	c, err := p.js.Consumer(p.t.Context(), stream, durable)
	if err != nil {
		p.t.Fatalf("durable %s on %s: %v", durable, stream, err)
	}
	return c.CachedInfo()
}

func (p *pt) consumerExists(stream, durable string) bool {
	p.t.Helper()
	_, err := p.js.Consumer(p.t.Context(), stream, durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return false
	}
	if err != nil {
		p.t.Fatalf("durable %s on %s: %v", durable, stream, err)
	}
	return true
}

func (p *pt) producerReq(station, name string) wire.CreateProducerReq {
	return wire.CreateProducerReq{
		Name: name, StationName: station, ConnectionID: p.connID, ProducerType: "application",
		Username: p.b.Username, ReqVersion: wire.CreateReqVersion, AppID: p.connID, SDKLang: "go",
	}
}

func (p *pt) createProducer(r any) (wire.CreateProducerResp, string) {
	p.t.Helper()
	raw := p.request(wire.SubjProducerCreations, r)
	var resp wire.CreateProducerResp
	if err := json.Unmarshal([]byte(raw), &resp); err != nil {
		p.t.Fatalf("producer creation reply is not JSON: %q", raw)
	}
	return resp, raw
}

func (p *pt) consumerReq(station, name, cg string) wire.CreateConsumerReq {
	return wire.CreateConsumerReq{
		Name: name, StationName: station, ConnectionID: p.connID, ConsumerType: "application",
		ConsumerGroup: cg, MaxAckTimeMs: 30000, MaxMsgDeliveries: 2, Username: p.b.Username,
		StartConsumeFromSequence: 1, LastMessages: -1, ReqVersion: wire.CreateReqVersion,
		AppID: p.connID, SDKLang: "go",
	}
}

// createConsumer returns the first reply: the parsed JSON reply, or nil and
// the plain-text error (PROTOCOL Q5).
func (p *pt) createConsumer(r any) (*wire.CreateConsumerResp, string) {
	p.t.Helper()
	raw := p.request(wire.SubjConsumerCreations, r)
	var resp wire.CreateConsumerResp
	if err := json.Unmarshal([]byte(raw), &resp); err != nil {
		return nil, raw
	}
	return &resp, raw
}

// mustConsumer registers a consumer that must succeed.
func (p *pt) mustConsumer(r wire.CreateConsumerReq) *wire.CreateConsumerResp {
	p.t.Helper()
	resp, raw := p.createConsumer(r)
	if resp == nil || resp.Err != "" {
		p.t.Fatalf("create consumer %s/%s: %q", r.StationName, r.Name, raw)
	}
	return resp
}

func (p *pt) destroyConsumer(station, name string) string {
	p.t.Helper()
	return p.request(wire.SubjConsumerDestructions, wire.DestroyConsumerReq{
		Name: name, StationName: station, Username: p.b.Username, ConnectionID: p.connID,
		ReqVersion: wire.DestroyReqVersion,
	})
}

func (p *pt) createSchema(name, typ, content string) string {
	p.t.Helper()
	return replyErrorJSON(p.t, p.request(wire.SubjSchemaCreations, wire.CreateSchemaReq{
		Name: name, Type: typ, CreatedByUsername: p.b.Username, SchemaContent: content,
	}))
}

// replyErrorJSON insists on a JSON {"error":…} reply and returns the error.
func replyErrorJSON(t testing.TB, raw string) string {
	t.Helper()
	var e struct {
		Err *string `json:"error"`
	}
	if err := json.Unmarshal([]byte(raw), &e); err != nil || e.Err == nil {
		t.Fatalf("reply is not a JSON error object: %q", raw)
	}
	return *e.Err
}

// publish stores a message in a station stream as an SDK producer would.
func (p *pt) publish(stream string, data string, hdr nats.Header) *jetstream.PubAck {
	p.t.Helper()
	m := nats.NewMsg(wire.ProduceSubject(stream))
	m.Data = []byte(data)
	m.Header = nats.Header{}
	m.Header.Set(wire.HdrConnectionID, p.connID)
	m.Header.Set(wire.HdrProducedBy, "prod")
	for k, v := range hdr {
		m.Header[k] = v
	}
	ack, err := p.js.PublishMsg(p.t.Context(), m)
	if err != nil {
		p.t.Fatalf("publish to %s: %v", m.Subject, err)
	}
	return ack
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(pollEvery)
	}
}

func expectEq[T comparable](t testing.TB, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// ---------------------------------------------------------------------------
// §1 auth and connect

func TestProtocolAuth(t *testing.T) {
	t.Parallel()
	b := testenv.Start(t)
	if b.Password == "" {
		t.Skip("the broker runs in token mode; these cases are about user/password mode")
	}
	connect := func(name, user, pass string) error {
		opts := []nats.Option{nats.NoReconnect(), nats.Timeout(reqTimeout), nats.UserInfo(user, pass)}
		if name != "" {
			opts = append(opts, nats.Name(name))
		}
		nc, err := nats.Connect(b.URL(), opts...)
		if err != nil {
			return err
		}
		defer nc.Close()
		// A request round trip proves the connection was accepted.
		return nc.FlushTimeout(reqTimeout)
	}
	id := fmt.Sprintf("%d", time.Now().UnixNano())
	user := b.Username
	full := fmt.Sprintf("%s$%d", user, b.AccountID)
	cases := []struct {
		label, name, user, pass string
		ok                      bool
	}{
		{"tenant suffix", id + "::" + user, full, b.Password, true},
		{"bare username", id + "::" + user, user, b.Password, true},
		{"upper-case username in name", id + "::" + strings.ToUpper(user), full, b.Password, true},
		{"plain NATS client name", "some nats client", full, b.Password, true},
		{"no name at all", "", full, b.Password, true},
		{"empty connection id", "::" + user, full, b.Password, true},
		{"wrong password", id + "::" + user, full, b.Password + "x", false},
		{"wrong password bare user", id + "::" + user, user, "nope", false},
		{"unknown user", id + "::nosuchuser", "nosuchuser$1", b.Password, false},
		{"unknown tenant", id + "::" + user, user + "$77", b.Password, false},
		{"name with three parts", "a::b::c", full, b.Password, false},
		{"name naming an unknown user", id + "::nosuchuser", full, b.Password, false},
	}
	for _, c := range cases {
		t.Run(c.label, func(t *testing.T) {
			err := connect(c.name, c.user, c.pass)
			if c.ok && err != nil {
				t.Fatalf("connect name=%q user=%q: %v", c.name, c.user, err)
			}
			if !c.ok {
				if err == nil {
					t.Fatalf("connect name=%q user=%q succeeded, want Authorization Violation", c.name, c.user)
				}
				if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
					t.Fatalf("connect name=%q user=%q: %v, want Authorization Violation", c.name, c.user, err)
				}
			}
		})
	}
	t.Run("info", func(t *testing.T) {
		nc := b.NATS(t)
		if !nc.HeadersSupported() {
			t.Error("server does not announce headers support")
		}
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.AccountInfo(t.Context()); err != nil {
			t.Errorf("JetStream account info: %v", err)
		}
	})
}

// ---------------------------------------------------------------------------
// §5 stations

func TestProtocolStationCreate(t *testing.T) {
	t.Parallel()
	p := newPT(t)

	type streamWant struct {
		retention jetstream.RetentionPolicy
		maxAge    time.Duration
		maxMsgs   int64
		maxBytes  int64
		storage   jetstream.StorageType
		dup       time.Duration
	}
	def := streamWant{jetstream.LimitsPolicy, time.Hour, -1, -1, jetstream.FileStorage, 2 * time.Minute}
	checkStreams := func(t *testing.T, intern string, n int, w streamWant) {
		t.Helper()
		p := p.with(t)
		for part := 1; part <= n; part++ {
			stream := wire.StreamName(intern, part)
			cfg := p.streamInfo(stream).Config
			expectEq(t, stream+" name", cfg.Name, stream)
			if len(cfg.Subjects) != 1 || cfg.Subjects[0] != stream+".>" {
				t.Errorf("%s subjects = %v, want [%s.>]", stream, cfg.Subjects, stream)
			}
			expectEq(t, stream+" retention", cfg.Retention, w.retention)
			expectEq(t, stream+" max_age", cfg.MaxAge, w.maxAge)
			expectEq(t, stream+" max_msgs", cfg.MaxMsgs, w.maxMsgs)
			expectEq(t, stream+" max_bytes", cfg.MaxBytes, w.maxBytes)
			expectEq(t, stream+" storage", cfg.Storage, w.storage)
			expectEq(t, stream+" replicas", cfg.Replicas, 1)
			expectEq(t, stream+" duplicate_window", cfg.Duplicates, w.dup)
			expectEq(t, stream+" discard", cfg.Discard, jetstream.DiscardOld)
			expectEq(t, stream+" max_msgs_per_subject", cfg.MaxMsgsPerSubject, int64(-1))
			expectEq(t, stream+" max_consumers", cfg.MaxConsumers, -1)
			expectEq(t, stream+" no_ack", cfg.NoAck, false)
		}
		if p.streamExists(wire.StreamName(intern, n+1)) {
			t.Errorf("stream for partition %d exists, want %d partitions", n+1, n)
		}
		if p.streamExists(intern) {
			t.Errorf("a legacy stream %q without partition exists", intern)
		}
	}

	t.Run("defaults", func(t *testing.T) {
		p := p.with(t)
		name := testenv.Name(t, "pst")
		p.mustStation(name, nil)
		checkStreams(t, name, 1, def)
	})
	t.Run("partitions messages memory idempotency floor", func(t *testing.T) {
		p := p.with(t)
		name := testenv.Name(t, "pst")
		p.mustStation(name, func(r *wire.CreateStationReq) {
			r.PartitionsNumber, r.RetentionType, r.RetentionValue = 3, "MESSAGES", 100
			r.StorageType, r.IdempotencyWindowMs = "Memory", 50
		})
		checkStreams(t, name, 3, streamWant{jetstream.LimitsPolicy, 0, 100, -1, jetstream.MemoryStorage, 100 * time.Millisecond})
	})
	t.Run("ack based", func(t *testing.T) {
		p := p.with(t)
		name := testenv.Name(t, "pst")
		p.mustStation(name, func(r *wire.CreateStationReq) { r.RetentionType, r.RetentionValue = "ack_based", 0 })
		checkStreams(t, name, 1, streamWant{jetstream.InterestPolicy, 0, -1, -1, jetstream.FileStorage, 2 * time.Minute})
	})
	t.Run("bytes", func(t *testing.T) {
		p := p.with(t)
		name := testenv.Name(t, "pst")
		p.mustStation(name, func(r *wire.CreateStationReq) { r.RetentionType, r.RetentionValue = "bytes", 4096 })
		checkStreams(t, name, 1, streamWant{jetstream.LimitsPolicy, 0, -1, 4096, jetstream.FileStorage, 2 * time.Minute})
	})
	t.Run("age and idempotency", func(t *testing.T) {
		p := p.with(t)
		name := testenv.Name(t, "pst")
		p.mustStation(name, func(r *wire.CreateStationReq) {
			r.RetentionValue, r.IdempotencyWindowMs, r.Replicas = 7200, 1, 0
		})
		checkStreams(t, name, 1, streamWant{jetstream.LimitsPolicy, 2 * time.Hour, -1, -1, jetstream.FileStorage, 100 * time.Millisecond})
	})
	t.Run("non-positive values fall back to defaults", func(t *testing.T) {
		p := p.with(t)
		// Q20: a retention value <= 0 becomes one hour of age retention;
		// idempotency <= 0 becomes 2 minutes; replicas <= 0 becomes 1.
		name := testenv.Name(t, "pst")
		p.mustStation(name, func(r *wire.CreateStationReq) {
			r.RetentionType, r.RetentionValue, r.IdempotencyWindowMs, r.Replicas = "messages", 0, 0, -3
		})
		checkStreams(t, name, 1, def)
	})
	t.Run("empty retention type ignores the value", func(t *testing.T) {
		p := p.with(t)
		name := testenv.Name(t, "pst")
		p.mustStation(name, func(r *wire.CreateStationReq) { r.RetentionType, r.RetentionValue = "", 10 })
		checkStreams(t, name, 1, def)
	})
	t.Run("case-insensitive field names", func(t *testing.T) {
		p := p.with(t)
		name := testenv.Name(t, "pst")
		raw := fmt.Sprintf(`{"NAME":%q,"Partitions_Number":2,"USERNAME":%q}`, name, p.b.Username)
		if got := p.createStation(raw, name); got != "" {
			t.Fatalf("reply %q", got)
		}
		checkStreams(t, name, 2, def)
	})
	t.Run("dots and upper case", func(t *testing.T) {
		p := p.with(t)
		base := testenv.Name(t, "pst")
		name := base + ".Sub.A"
		intern := base + "#sub#a"
		p.cleanupStation(strings.ToLower(name))
		p.mustStation(name, nil)
		checkStreams(t, intern, 1, def)
	})
	t.Run("name of 128 characters", func(t *testing.T) {
		p := p.with(t)
		name := testenv.Name(t, "pst")
		name += strings.Repeat("x", wire.MaxNameLen-len(name))
		p.mustStation(name, nil)
		checkStreams(t, name, 1, def)
	})
	t.Run("tiered storage flag accepted", func(t *testing.T) {
		p := p.with(t)
		name := testenv.Name(t, "pst")
		p.mustStation(name, func(r *wire.CreateStationReq) { r.TieredStorageEnabled = true })
		checkStreams(t, name, 1, def)
	})
	t.Run("missing dls station is auto-created", func(t *testing.T) {
		p := p.with(t)
		name := testenv.Name(t, "pst")
		dls := testenv.Name(t, "pst-dls")
		p.cleanupStation(dls)
		p.mustStation(name, func(r *wire.CreateStationReq) { r.DLSStation = strings.ToUpper(dls) })
		checkStreams(t, name, 1, def)
		checkStreams(t, dls, 1, def)
	})
	t.Run("already exists changes nothing", func(t *testing.T) {
		p := p.with(t)
		// Q1: the second creation is answered with success.
		name := testenv.Name(t, "pst")
		p.mustStation(name, nil)
		r := p.stationReq(name)
		r.RetentionType, r.RetentionValue, r.PartitionsNumber, r.StorageType = "messages", 5, 2, "memory"
		if got := p.request(wire.SubjStationCreations, r); got != "" && !strings.Contains(got, "already exist") {
			t.Fatalf("second creation: %q", got)
		}
		checkStreams(t, name, 1, def)
	})

	long := strings.Repeat("a", wire.MaxNameLen+1)
	errCases := []struct {
		label string
		mod   func(r *wire.CreateStationReq)
		want  func(name string) string
	}{
		{"empty name", func(r *wire.CreateStationReq) { r.Name = "" },
			func(string) string { return "Station name can not be empty" }},
		{"too long", func(r *wire.CreateStationReq) { r.Name = long },
			func(string) string { return "Station should be under 128 characters" }},
		{"hash in name", func(r *wire.CreateStationReq) { r.Name += "#x" },
			func(string) string {
				return "Only alphanumeric and the '_', '-', '.' characters are allowed in Station"
			}},
		{"space and bang", func(r *wire.CreateStationReq) { r.Name += " bad!" },
			func(string) string {
				return "Only alphanumeric and the '_', '-', '.' characters are allowed in Station"
			}},
		{"leading dash", func(r *wire.CreateStationReq) { r.Name = "-" + r.Name },
			func(string) string { return "Station name can not start or end with non alphanumeric character" }},
		{"trailing dot", func(r *wire.CreateStationReq) { r.Name += "." },
			func(string) string { return "Station name can not start or end with non alphanumeric character" }},
		{"zero partitions", func(r *wire.CreateStationReq) { r.PartitionsNumber = 0 },
			func(string) string { return "you are using an old SDK, make sure to update your SDK" }},
		{"negative partitions", func(r *wire.CreateStationReq) { r.PartitionsNumber = -2 },
			func(n string) string {
				return "cannot create station with -2 partitions (max:10000 min:1): Station -  " + n + ", "
			}},
		{"unknown retention type", func(r *wire.CreateStationReq) { r.RetentionType = "forever" },
			func(string) string {
				return "retention type can be one of the following message_age_sec/messages/bytes/ack_based"
			}},
		{"unknown storage type", func(r *wire.CreateStationReq) { r.StorageType = "ssd" },
			func(string) string { return "storage type can be one of the following file/memory" }},
		{"idempotency over a day", func(r *wire.CreateStationReq) {
			r.RetentionValue, r.IdempotencyWindowMs = 200000, 90000000
		}, func(string) string { return "idempotency window can not exceed 24 hours" }},
		{"idempotency over retention", func(r *wire.CreateStationReq) { r.RetentionValue, r.IdempotencyWindowMs = 10, 20000 },
			func(string) string { return "idempotency window cannot be greater than the station retention" }},
		{"default idempotency over short retention", func(r *wire.CreateStationReq) { r.RetentionValue, r.IdempotencyWindowMs = 60, 0 },
			func(string) string { return "idempotency window cannot be greater than the station retention" }},
		{"replicas beyond the cluster", func(r *wire.CreateStationReq) { r.Replicas = 3 },
			func(string) string {
				return "station can not be created, probably since replicas count is larger than the cluster size"
			}},
		{"bad dls station name", func(r *wire.CreateStationReq) { r.DLSStation = "Bad Name!" },
			func(string) string {
				return "Only alphanumeric and the '_', '-', '.' characters are allowed in Station"
			}},
		{"unknown tenant id", func(r *wire.CreateStationReq) { r.Username = p.b.Username + "$9" },
			func(n string) string {
				return "createStationDirect: Station " + n + ": Tenant with id 9 does not exist"
			}},
	}
	for _, c := range errCases {
		t.Run("error "+c.label, func(t *testing.T) {
			p := p.with(t)
			name := testenv.Name(t, "pst")
			r := p.stationReq(name)
			c.mod(&r)
			got := p.createStation(r, r.Name)
			expectEq(t, "reply", got, c.want(r.Name))
			if r.Name != "" && p.streamExists(wire.StreamName(wire.InternalName(r.Name), 1)) {
				t.Errorf("a stream was created despite the error")
			}
		})
	}

	t.Run("error malformed JSON", func(t *testing.T) {
		p := p.with(t)
		expectEq(t, "reply", p.request(wire.SubjStationCreations, `"just a string"`),
			"json: cannot unmarshal string into Go value of type server.createStationRequest")
		if got := p.request(wire.SubjStationCreations, `{"name":`); got == "" {
			t.Error("truncated JSON answered with success")
		}
	})
	t.Run("error request with headers", func(t *testing.T) {
		p := p.with(t)
		// Q18: only Nats-Request-Info may ride on a request; other headers
		// break the broker's JSON decoding.
		name := testenv.Name(t, "pst")
		p.cleanupStation(name)
		m := nats.NewMsg(wire.SubjStationCreations)
		m.Header.Set("Foo", "bar")
		m.Data = encode(t, p.stationReq(name))
		reply, err := p.nc.RequestMsg(m, reqTimeout)
		if err != nil {
			t.Fatalf("no reply: %v", err)
		}
		expectEq(t, "reply", string(reply.Data), "invalid character 'N' looking for beginning of value")
		if p.streamExists(wire.StreamName(name, 1)) {
			t.Error("station created from a request with headers")
		}
	})
	t.Run("unknown user creates nothing", func(t *testing.T) {
		p := p.with(t)
		// Q2: success reply, nothing created.
		name := testenv.Name(t, "pst")
		r := p.stationReq(name)
		r.Username = "ghost-user"
		expectEq(t, "reply", p.createStation(r, name), "")
		if p.streamExists(wire.StreamName(name, 1)) {
			t.Error("station created for an unknown user")
		}
	})
	t.Run("unknown schema creates nothing", func(t *testing.T) {
		p := p.with(t)
		// Q2: success reply, nothing created.
		name := testenv.Name(t, "pst")
		r := p.stationReq(name)
		r.SchemaName = testenv.Name(t, "noschema")
		expectEq(t, "reply", p.createStation(r, name), "")
		if p.streamExists(wire.StreamName(name, 1)) {
			t.Error("station created with an unknown schema")
		}
	})
}

func TestProtocolStationDestroy(t *testing.T) {
	t.Parallel()
	p := newPT(t)

	updates := make(chan *nats.Msg, 64)
	sub, err := p.nc.ChanSubscribe(wire.SubjClientUpdates, updates)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	t.Run("removes every partition stream", func(t *testing.T) {
		p := p.with(t)
		base := testenv.Name(t, "psd")
		name := base + ".X"
		intern := base + "#x"
		p.mustStation(name, func(r *wire.CreateStationReq) { r.PartitionsNumber = 3 })
		for part := 1; part <= 3; part++ {
			if !p.streamExists(wire.StreamName(intern, part)) {
				t.Fatalf("partition %d stream missing before destroy", part)
			}
		}
		// Destroying by the upper-case external name finds the station.
		expectEq(t, "destroy reply", p.destroyStation(strings.ToUpper(name)), "")
		for part := 1; part <= 3; part++ {
			if p.streamExists(wire.StreamName(intern, part)) {
				t.Errorf("partition %d stream still exists", part)
			}
		}
		// Q3: the station is gone, so a second destroy reports it missing.
		expectEq(t, "second destroy", p.destroyStation(name), "Station  does not exist")

		// Q16: the SDK path publishes no remove_station update; only a
		// removal from the UI does. No broker may send one here: the
		// official Go SDK crashes when it races with its own destroy.
		select {
		case m := <-updates:
			t.Errorf("%v sent a client update on SDK destroy: %s", p.b.Kind, m.Data)
		case <-time.After(time.Second):
		}
	})
	t.Run("missing station", func(t *testing.T) {
		p := p.with(t)
		expectEq(t, "reply", p.destroyStation(testenv.Name(t, "psd-missing")), "Station  does not exist")
	})
	t.Run("invalid names", func(t *testing.T) {
		p := p.with(t)
		expectEq(t, "bad chars", p.destroyStation("Bad Name!"),
			"Only alphanumeric and the '_', '-', '.' characters are allowed in Station")
		expectEq(t, "empty", p.request(wire.SubjStationDestructions, `{}`), "Station name can not be empty")
		expectEq(t, "malformed", p.request(wire.SubjStationDestructions, `"x"`),
			"json: cannot unmarshal string into Go value of type server.destroyStationRequest")
	})
}

// ---------------------------------------------------------------------------
// §6 producers and publishing

func TestProtocolProducer(t *testing.T) {
	t.Parallel()
	p := newPT(t)

	station := testenv.Name(t, "ppr")
	p.mustStation(station, func(r *wire.CreateStationReq) {
		r.PartitionsNumber = 3
		r.DLSConfiguration.Schemaverse = false
	})

	t.Run("create v4 reply", func(t *testing.T) {
		p := p.with(t)
		resp, raw := p.createProducer(p.producerReq(station, "Prod-1"))
		expectEq(t, "error", resp.Err, "")
		if fmt.Sprint(resp.PartitionsUpdate.PartitionsList) != "[1 2 3]" {
			t.Errorf("partitions_list = %v, want [1 2 3]", resp.PartitionsUpdate.PartitionsList)
		}
		expectEq(t, "schemaverse_to_dls", resp.SchemaverseToDLS, false)
		expectEq(t, "send_notification", resp.SendNotification, false)
		expectEq(t, "station_version", resp.StationVersion, 2)
		expectEq(t, "schema_update", resp.SchemaUpdate, wire.SchemaUpdateInit{})
		var fields map[string]json.RawMessage
		if err := json.Unmarshal([]byte(raw), &fields); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"schema_update", "partitions_update", "schemaverse_to_dls", "send_notification",
			"station_version", "station_partitions_first_functions", "error"} {
			if _, ok := fields[k]; !ok {
				t.Errorf("reply lacks %q: %s", k, raw)
			}
		}
		expectEq(t, "station_partitions_first_functions", string(fields["station_partitions_first_functions"]), "{}")
	})
	t.Run("schemaverse_to_dls follows the station", func(t *testing.T) {
		p := p.with(t)
		other := testenv.Name(t, "ppr")
		p.mustStation(other, nil)
		resp, raw := p.createProducer(p.producerReq(other, "p"))
		expectEq(t, "error", resp.Err, "")
		if !resp.SchemaverseToDLS {
			t.Errorf("schemaverse_to_dls false for a station with schemaverse DLS on: %s", raw)
		}
	})
	t.Run("same producer twice", func(t *testing.T) {
		p := p.with(t)
		// Q27: registrations are rows; a repeat is accepted.
		for i := 0; i < 2; i++ {
			resp, raw := p.createProducer(p.producerReq(station, "twice"))
			if resp.Err != "" {
				t.Fatalf("creation %d: %s", i+1, raw)
			}
		}
	})
	t.Run("request versions 2 and 3", func(t *testing.T) {
		p := p.with(t)
		for _, v := range []int{2, 3} {
			r := p.producerReq(station, fmt.Sprintf("v%d", v))
			r.ReqVersion = v
			resp, raw := p.createProducer(r)
			if resp.Err != "" || len(resp.PartitionsUpdate.PartitionsList) != 3 {
				t.Errorf("req_version %d: %s", v, raw)
			}
		}
	})
	t.Run("connector type in any case", func(t *testing.T) {
		p := p.with(t)
		r := p.producerReq(station, "conn")
		r.ProducerType = "CONNECTOR"
		resp, raw := p.createProducer(r)
		expectEq(t, "error of "+raw, resp.Err, "")
	})
	t.Run("auto-creates a missing station", func(t *testing.T) {
		p := p.with(t)
		name := testenv.Name(t, "ppr-auto")
		p.cleanupStation(name)
		resp, raw := p.createProducer(p.producerReq(name, "p"))
		expectEq(t, "error", resp.Err, "")
		if fmt.Sprint(resp.PartitionsUpdate.PartitionsList) != "[1]" || !resp.SchemaverseToDLS || resp.StationVersion != 2 {
			t.Errorf("reply for an auto-created station: %s", raw)
		}
		cfg := p.streamInfo(wire.StreamName(name, 1)).Config
		expectEq(t, "max_age", cfg.MaxAge, time.Hour)
		expectEq(t, "storage", cfg.Storage, jetstream.FileStorage)
		expectEq(t, "duplicates", cfg.Duplicates, 2*time.Minute)
		if p.streamExists(wire.StreamName(name, 2)) {
			t.Error("auto-created station has more than one partition")
		}
	})

	errCases := []struct {
		label string
		mod   func(r *wire.CreateProducerReq)
		want  string
	}{
		{"bad station name", func(r *wire.CreateProducerReq) { r.StationName = "Bad Name!" },
			"Only alphanumeric and the '_', '-', '.' characters are allowed in Station"},
		{"bad producer name", func(r *wire.CreateProducerReq) { r.Name = "bad name" },
			"Only alphanumeric and the '_', '-', '.' characters are allowed in Producer"},
		{"empty producer name", func(r *wire.CreateProducerReq) { r.Name = "" }, "Producer name can not be empty"},
		{"producer name edge", func(r *wire.CreateProducerReq) { r.Name = "p_" },
			"Producer name can not start or end with non alphanumeric character"},
		{"bad type", func(r *wire.CreateProducerReq) { r.ProducerType = "robot" },
			"producer type has to be one of the following application/connector"},
		{"unknown user", func(r *wire.CreateProducerReq) { r.Username = "ghost" }, "User ghost does not exist"},
		{"v1 on a partitioned station", func(r *wire.CreateProducerReq) { r.ReqVersion = 1 },
			"to produce to this station please upgrade your SDK version"},
		{"v1 on a missing station", func(r *wire.CreateProducerReq) {
			r.ReqVersion, r.StationName = 1, r.StationName+"-missing"
		}, "this station does not exist, a default station can not be created automatically, please upgrade your SDK version"},
	}
	for _, c := range errCases {
		t.Run("error "+c.label, func(t *testing.T) {
			p := p.with(t)
			r := p.producerReq(station, "p1")
			c.mod(&r)
			resp, raw := p.createProducer(r)
			expectEq(t, "error", resp.Err, c.want)
			expectEq(t, "station_version", resp.StationVersion, 0)
			if len(resp.PartitionsUpdate.PartitionsList) != 0 {
				t.Errorf("error reply carries partitions: %s", raw)
			}
		})
	}
	t.Run("error v0 body", func(t *testing.T) {
		p := p.with(t)
		raw := fmt.Sprintf(`{"name":"p0","station_name":%q,"connection_id":%q,"producer_type":"application","username":%q}`,
			station, p.connID, p.b.Username)
		resp, _ := p.createProducer(raw)
		expectEq(t, "error", resp.Err, "to produce to this station please upgrade your SDK version")
	})
	t.Run("error unknown user on a missing station creates nothing", func(t *testing.T) {
		p := p.with(t)
		name := testenv.Name(t, "ppr-ghost")
		p.cleanupStation(name)
		r := p.producerReq(name, "p")
		r.Username = "ghost"
		resp, _ := p.createProducer(r)
		expectEq(t, "error", resp.Err, "User ghost does not exist")
		if p.streamExists(wire.StreamName(name, 1)) {
			t.Error("station auto-created for an unknown user")
		}
	})
	t.Run("error malformed JSON", func(t *testing.T) {
		p := p.with(t)
		resp, _ := p.createProducer(`"x"`)
		expectEq(t, "error", resp.Err, "json: cannot unmarshal string into Go value of type server.createProducerRequestV0")
	})

	t.Run("destroy", func(t *testing.T) {
		p := p.with(t)
		if _, raw := p.createProducer(p.producerReq(station, "to-destroy")); replyError(raw) != "" {
			t.Fatalf("create: %s", raw)
		}
		d := wire.DestroyProducerReq{Name: "to-destroy", StationName: station, Username: p.b.Username,
			ConnectionID: p.connID, ReqVersion: wire.DestroyReqVersion}
		expectEq(t, "destroy", p.request(wire.SubjProducerDestructions, d), "")
		// Q4: unknown producers and stations are not errors.
		d.Name = "never-created"
		expectEq(t, "destroy unknown producer", p.request(wire.SubjProducerDestructions, d), "")
		d.StationName = testenv.Name(t, "ppr-missing")
		expectEq(t, "destroy on missing station", p.request(wire.SubjProducerDestructions, d), "")
		d.StationName = "Bad Name!"
		expectEq(t, "destroy bad station name", p.request(wire.SubjProducerDestructions, d),
			"Only alphanumeric and the '_', '-', '.' characters are allowed in Station")
		// Nothing happens to the data plane.
		for part := 1; part <= 3; part++ {
			if !p.streamExists(wire.StreamName(station, part)) {
				t.Errorf("partition %d stream gone after a producer destroy", part)
			}
		}
	})
}

func TestProtocolPublish(t *testing.T) {
	t.Parallel()
	p := newPT(t)
	station := testenv.Name(t, "ppub")
	p.mustStation(station, func(r *wire.CreateStationReq) {
		r.PartitionsNumber = 2
		r.IdempotencyWindowMs = 100 // the smallest window, so expiry is quick
	})
	s1, s2 := wire.StreamName(station, 1), wire.StreamName(station, 2)

	t.Run("final subject per partition", func(t *testing.T) {
		p := p.with(t)
		a := p.publish(s1, "one", nil)
		expectEq(t, "stream", a.Stream, s1)
		b := p.publish(s2, "two", nil)
		expectEq(t, "stream", b.Stream, s2)
		st, err := p.js.Stream(t.Context(), s2)
		if err != nil {
			t.Fatal(err)
		}
		m, err := st.GetMsg(t.Context(), b.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		expectEq(t, "data", string(m.Data), "two")
		expectEq(t, "subject", m.Subject, s2+".final")
		expectEq(t, "producedBy header", m.Header.Get(wire.HdrProducedBy), "prod")
	})
	t.Run("no stream without partition suffix", func(t *testing.T) {
		p := p.with(t)
		_, err := p.js.Publish(t.Context(), wire.ProduceSubject(station), []byte("x"))
		if !errors.Is(err, jetstream.ErrNoStreamResponse) {
			t.Errorf("publish to %s.final: %v, want no response from stream", station, err)
		}
	})
	dedup := func(t *testing.T, stream string, hdr func(id string) nats.Header) (first, second *jetstream.PubAck) {
		p := p.with(t)
		id := testenv.Name(t, "id")
		first = p.publish(stream, "d1", hdr(id))
		second = p.publish(stream, "d2", hdr(id))
		return first, second
	}
	t.Run("both id headers dedup", func(t *testing.T) {
		p := p.with(t)
		// What the SDK sends: the id under msg-id and Nats-Msg-Id.
		both := func(id string) nats.Header {
			return nats.Header{wire.HdrMsgID: {id}, wire.HdrNatsMsgID: {id}}
		}
		// The window is 100 ms: retry until both publishes fall in one window.
		eventually(t, 10*time.Second, "a duplicate within the window", func() bool {
			a, b := dedup(t, s1, both)
			return b.Duplicate && b.Sequence == a.Sequence && !a.Duplicate
		})
		// After the window passes, the same id is stored again.
		id := testenv.Name(t, "id")
		first := p.publish(s1, "w1", both(id))
		eventually(t, 10*time.Second, "the window to expire", func() bool {
			a := p.publish(s1, "w2", both(id))
			return !a.Duplicate && a.Sequence > first.Sequence
		})
	})
	t.Run("msg-id header", func(t *testing.T) {
		only := func(id string) nats.Header { return nats.Header{wire.HdrMsgID: {id}} }
		var a, b *jetstream.PubAck
		eventually(t, 10*time.Second, "two publishes within the window", func() bool {
			a, b = dedup(t, s2, only)
			// Without dedup, b is simply the next sequence.
			return b.Duplicate || b.Sequence == a.Sequence+1
		})
		// Q9: the real broker de-duplicates on msg-id; the in-process one
		// does too, through its ingest (what the Node.js and Python SDKs need).
		if !b.Duplicate || b.Sequence != a.Sequence {
			t.Errorf("msg-id not de-duplicated: %+v %+v", a, b)
		}
		// The message is stored with the headers it was sent with, so a
		// consumer sees no Nats-Msg-Id beside msg-id.
		s, err := p.js.Stream(t.Context(), s2)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.GetMsg(t.Context(), a.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get(wire.HdrMsgID) == "" || m.Header.Get(wire.HdrNatsMsgID) != "" {
			t.Errorf("%v stored the headers %v, want %s and no %s", p.b.Kind, m.Header, wire.HdrMsgID, wire.HdrNatsMsgID)
		}
	})
	t.Run("Nats-Msg-Id header", func(t *testing.T) {
		p := p.with(t)
		only := func(id string) nats.Header { return nats.Header{wire.HdrNatsMsgID: {id}} }
		a, b := dedup(t, s2, only)
		if p.b.IsMemphis() {
			// Q9: the real broker ignores Nats-Msg-Id.
			if b.Duplicate || b.Sequence == a.Sequence {
				t.Errorf("Nats-Msg-Id de-duplicated on the real broker: %+v %+v", a, b)
			}
		} else if !b.Duplicate || b.Sequence != a.Sequence {
			// Difference: stock JetStream de-duplicates on Nats-Msg-Id, and
			// the ingest leaves it alone.
			t.Errorf("Nats-Msg-Id not de-duplicated in-process: %+v %+v", a, b)
		}
	})
}

// ---------------------------------------------------------------------------
// §7 consumers

func TestProtocolConsumer(t *testing.T) {
	t.Parallel()
	p := newPT(t)
	station := testenv.Name(t, "pco")
	p.mustStation(station, func(r *wire.CreateStationReq) { r.PartitionsNumber = 2 })
	s1, s2 := wire.StreamName(station, 1), wire.StreamName(station, 2)

	t.Run("durable per partition", func(t *testing.T) {
		p := p.with(t)
		r := p.consumerReq(station, "C1", "Grp.One")
		r.MaxAckTimeMs, r.MaxMsgDeliveries = 5000, 3
		resp, raw := p.createConsumer(r)
		if resp == nil {
			t.Fatalf("reply is not JSON: %q", raw)
		}
		expectEq(t, "error", resp.Err, "")
		if fmt.Sprint(resp.PartitionsUpdate.PartitionsList) != "[1 2]" {
			t.Errorf("partitions_list = %v", resp.PartitionsUpdate.PartitionsList)
		}
		expectEq(t, "schema_update", resp.SchemaUpdate, wire.SchemaUpdateInit{})
		for _, s := range []string{s1, s2} {
			ci := p.consumerInfo(s, "grp#one")
			c := ci.Config
			expectEq(t, s+" durable", c.Durable, "grp#one")
			expectEq(t, s+" ack_policy", c.AckPolicy, jetstream.AckExplicitPolicy)
			expectEq(t, s+" ack_wait", c.AckWait, 5*time.Second)
			expectEq(t, s+" max_deliver", c.MaxDeliver, 3)
			expectEq(t, s+" filter_subject", c.FilterSubject, s+".final")
			expectEq(t, s+" replay_policy", c.ReplayPolicy, jetstream.ReplayInstantPolicy)
			expectEq(t, s+" max_ack_pending", c.MaxAckPending, -1)
			expectEq(t, s+" max_waiting", c.MaxWaiting, 512)
			expectEq(t, s+" deliver_policy", c.DeliverPolicy, jetstream.DeliverAllPolicy)
			expectEq(t, s+" headers_only", c.HeadersOnly, false)
			expectEq(t, s+" inactive_threshold", c.InactiveThreshold, time.Duration(0))
			if ci.PushBound {
				t.Errorf("%s: durable is push-bound", s)
			}
			// A pull consumer has no deliver subject.
			raw := p.request("$JS.API.CONSUMER.INFO."+s+".grp#one", "")
			if strings.Contains(raw, `"deliver_subject"`) {
				t.Errorf("%s: durable has a deliver subject: %s", s, raw)
			}
		}
		expectEq(t, "destroy", p.destroyConsumer(station, "C1"), "")
	})
	t.Run("group defaults to the consumer name", func(t *testing.T) {
		p := p.with(t)
		p.mustConsumer(p.consumerReq(station, "Solo.C", ""))
		if !p.consumerExists(s1, "solo#c") || !p.consumerExists(s2, "solo#c") {
			t.Error("durable solo#c missing")
		}
		expectEq(t, "destroy", p.destroyConsumer(station, "solo.c"), "")
	})
	t.Run("defaults and clamps", func(t *testing.T) {
		p := p.with(t)
		// Q8: deliveries <= 0 or > 10 become 10; ack time <= 0 becomes 30 s.
		for _, c := range []struct {
			ack, deliveries int
			wantAck         time.Duration
			wantDeliver     int
		}{
			{0, 0, 30 * time.Second, 10},
			{-5, 11, 30 * time.Second, 10},
			{1000, 10, time.Second, 10},
			{1500, 1, 1500 * time.Millisecond, 1},
		} {
			name := testenv.Name(t, "cl")
			r := p.consumerReq(station, name, "")
			r.MaxAckTimeMs, r.MaxMsgDeliveries = c.ack, c.deliveries
			p.mustConsumer(r)
			cfg := p.consumerInfo(s1, name).Config
			expectEq(t, fmt.Sprintf("ack_wait for %d", c.ack), cfg.AckWait, c.wantAck)
			expectEq(t, fmt.Sprintf("max_deliver for %d", c.deliveries), cfg.MaxDeliver, c.wantDeliver)
			expectEq(t, "destroy", p.destroyConsumer(station, name), "")
		}
	})
	t.Run("deliver new", func(t *testing.T) {
		p := p.with(t)
		r := p.consumerReq(station, testenv.Name(t, "new"), "")
		r.LastMessages = 0
		p.mustConsumer(r)
		for _, s := range []string{s1, s2} {
			expectEq(t, s+" deliver_policy", p.consumerInfo(s, r.Name).Config.DeliverPolicy, jetstream.DeliverNewPolicy)
		}
		p.destroyConsumer(station, r.Name)
	})
	t.Run("start sequence", func(t *testing.T) {
		p := p.with(t)
		r := p.consumerReq(station, testenv.Name(t, "seq"), "")
		r.StartConsumeFromSequence = 7
		p.mustConsumer(r)
		for _, s := range []string{s1, s2} {
			c := p.consumerInfo(s, r.Name).Config
			expectEq(t, s+" deliver_policy", c.DeliverPolicy, jetstream.DeliverByStartSequencePolicy)
			expectEq(t, s+" opt_start_seq", c.OptStartSeq, uint64(7))
		}
		p.destroyConsumer(station, r.Name)
	})
	t.Run("last messages per partition", func(t *testing.T) {
		p := p.with(t)
		// Q7: last N is applied per partition; an empty partition starts at 1.
		st := testenv.Name(t, "pco-lm")
		p.mustStation(st, func(r *wire.CreateStationReq) { r.PartitionsNumber = 2 })
		for i := 0; i < 5; i++ {
			p.publish(wire.StreamName(st, 1), fmt.Sprint(i), nil)
		}
		r := p.consumerReq(st, "lm", "")
		r.LastMessages = 2
		p.mustConsumer(r)
		c1 := p.consumerInfo(wire.StreamName(st, 1), "lm").Config
		expectEq(t, "p1 deliver_policy", c1.DeliverPolicy, jetstream.DeliverByStartSequencePolicy)
		expectEq(t, "p1 opt_start_seq", c1.OptStartSeq, uint64(4))
		c2 := p.consumerInfo(wire.StreamName(st, 2), "lm").Config
		expectEq(t, "p2 deliver_policy", c2.DeliverPolicy, jetstream.DeliverByStartSequencePolicy)
		expectEq(t, "p2 opt_start_seq", c2.OptStartSeq, uint64(1))
	})
	t.Run("last messages on one partition", func(t *testing.T) {
		p := p.with(t)
		st := testenv.Name(t, "pco-lm1")
		p.mustStation(st, nil)
		for i := 0; i < 5; i++ {
			p.publish(wire.StreamName(st, 1), fmt.Sprint(i), nil)
		}
		r := p.consumerReq(st, "lm", "")
		r.LastMessages = 2
		resp := p.mustConsumer(r)
		if fmt.Sprint(resp.PartitionsUpdate.PartitionsList) != "[1]" {
			t.Errorf("partitions_list = %v", resp.PartitionsUpdate.PartitionsList)
		}
		if p.b.IsMemphis() {
			// Q6: the real broker creates no durable on a one-partition
			// station; the in-process broker fixes this.
			if p.consumerExists(wire.StreamName(st, 1), "lm") {
				t.Error("Q6 seems fixed in the real broker: the durable exists")
			}
			return
		}
		c := p.consumerInfo(wire.StreamName(st, 1), "lm").Config
		expectEq(t, "deliver_policy", c.DeliverPolicy, jetstream.DeliverByStartSequencePolicy)
		expectEq(t, "opt_start_seq", c.OptStartSeq, uint64(4))
	})
	t.Run("auto-creates a missing station", func(t *testing.T) {
		p := p.with(t)
		st := testenv.Name(t, "pco-auto")
		p.cleanupStation(st)
		resp := p.mustConsumer(p.consumerReq(st, "c", ""))
		if fmt.Sprint(resp.PartitionsUpdate.PartitionsList) != "[1]" {
			t.Errorf("partitions_list = %v", resp.PartitionsUpdate.PartitionsList)
		}
		if !p.consumerExists(wire.StreamName(st, 1), "c") {
			t.Error("durable missing on the auto-created station")
		}
	})
	t.Run("group members and durable lifetime", func(t *testing.T) {
		p := p.with(t)
		cg := testenv.Name(t, "grp")
		a := p.consumerReq(station, "m1", cg)
		p.mustConsumer(a)
		expectEq(t, "initial ack_wait", p.consumerInfo(s1, cg).Config.AckWait, 30*time.Second)
		// A joiner with other ack/delivery settings updates the durables.
		b := p.consumerReq(station, "m2", cg)
		b.MaxAckTimeMs, b.MaxMsgDeliveries = 5000, 20
		p.mustConsumer(b)
		for _, s := range []string{s1, s2} {
			c := p.consumerInfo(s, cg).Config
			expectEq(t, s+" ack_wait after join", c.AckWait, 5*time.Second)
			expectEq(t, s+" max_deliver after join", c.MaxDeliver, 10)
		}
		// A joiner whose start options would change the durable is refused.
		c := p.consumerReq(station, "m3", cg)
		c.MaxAckTimeMs, c.StartConsumeFromSequence = 7000, 5
		_, raw := p.createConsumer(c)
		expectEq(t, "conflicting joiner", replyError(raw), "deliver policy can not be updated (10012)")

		expectEq(t, "destroy m2", p.destroyConsumer(station, "m2"), "")
		if !p.consumerExists(s1, cg) || !p.consumerExists(s2, cg) {
			t.Fatal("durable deleted while a member is still active")
		}
		expectEq(t, "destroy m1", p.destroyConsumer(station, "M1"), "")
		for _, s := range []string{s1, s2} {
			if p.consumerExists(s, cg) {
				t.Errorf("%s: durable kept after the last member left", s)
			}
		}
	})
	t.Run("request versions 2 and 3", func(t *testing.T) {
		p := p.with(t)
		for _, v := range []int{2, 3} {
			r := p.consumerReq(station, fmt.Sprintf("v%d", v), "")
			r.ReqVersion = v
			resp := p.mustConsumer(r)
			if len(resp.PartitionsUpdate.PartitionsList) != 2 || !p.consumerExists(s2, r.Name) {
				t.Errorf("req_version %d: durable or partitions missing", v)
			}
			expectEq(t, "destroy", p.destroyConsumer(station, r.Name), "")
		}
	})
	t.Run("v0 destroy uses the connection's id", func(t *testing.T) {
		p := p.with(t)
		name := testenv.Name(t, "v0d")
		p.mustConsumer(p.consumerReq(station, name, ""))
		raw := fmt.Sprintf(`{"name":%q,"station_name":%q,"username":%q}`, name, station, p.b.Username)
		expectEq(t, "destroy", p.request(wire.SubjConsumerDestructions, raw), "")
		if p.consumerExists(s1, name) {
			t.Error("durable kept after a v0 destroy of the only member")
		}
	})
	t.Run("destroy errors", func(t *testing.T) {
		p := p.with(t)
		expectEq(t, "unknown consumer", p.destroyConsumer(station, "Nope"),
			"Consumer Nope at station "+station+" does not exist")
		name := testenv.Name(t, "other-conn")
		p.mustConsumer(p.consumerReq(station, name, ""))
		d := wire.DestroyConsumerReq{Name: name, StationName: station, Username: p.b.Username,
			ConnectionID: "someone-else", ReqVersion: wire.DestroyReqVersion}
		expectEq(t, "other connection id", p.request(wire.SubjConsumerDestructions, d),
			"Consumer "+name+" at station "+station+" does not exist")
		expectEq(t, "bad station name", p.destroyConsumer("Bad Name!", "x"),
			"Only alphanumeric and the '_', '-', '.' characters are allowed in Station")
		expectEq(t, "destroy", p.destroyConsumer(station, name), "")
	})

	errCases := []struct {
		label string
		mod   func(r *wire.CreateConsumerReq)
		want  string
	}{
		{"start sequence zero", func(r *wire.CreateConsumerReq) { r.StartConsumeFromSequence = 0 },
			"startConsumeFromSequence has to be a positive number"},
		{"last messages below -1", func(r *wire.CreateConsumerReq) { r.LastMessages = -5 },
			"min value for LastMessages is -1"},
		{"both start options", func(r *wire.CreateConsumerReq) { r.StartConsumeFromSequence, r.LastMessages = 4, 3 },
			"consumer creation options can't contain both startConsumeFromSequence and lastMessages"},
		{"bad consumer name", func(r *wire.CreateConsumerReq) { r.Name = "bad name" },
			"Only alphanumeric and the '_', '-', '.' characters are allowed in Consumer"},
		{"bad group name", func(r *wire.CreateConsumerReq) { r.ConsumerGroup = "_bad" },
			"Consumer name can not start or end with non alphanumeric character"},
		{"bad type", func(r *wire.CreateConsumerReq) { r.ConsumerType = "robot" },
			"consumer type has to be one of the following application/connector and not robot"},
		{"bad station name", func(r *wire.CreateConsumerReq) { r.StationName = "Bad Name!" },
			"Only alphanumeric and the '_', '-', '.' characters are allowed in Station"},
		{"unknown user", func(r *wire.CreateConsumerReq) { r.Username = "ghost" }, "user does not exist"},
		{"v1 on a partitioned station", func(r *wire.CreateConsumerReq) { r.ReqVersion = 1 },
			"to consume from this station please upgrade your SDK version"},
		{"v1 on a missing station", func(r *wire.CreateConsumerReq) {
			r.ReqVersion, r.StationName = 1, r.StationName+"-missing"
		}, "This station does not exist, a default station can not be created automatically, please upgrade your SDK version"},
	}
	for _, c := range errCases {
		t.Run("error "+c.label, func(t *testing.T) {
			p := p.with(t)
			r := p.consumerReq(station, "e1", "")
			c.mod(&r)
			// Q5: the first reply is plain text.
			resp, raw := p.createConsumer(r)
			if resp != nil {
				t.Fatalf("error reply is JSON, want plain text %q: %s", c.want, raw)
			}
			expectEq(t, "reply", raw, c.want)
		})
	}
	t.Run("error reply is followed by JSON on the real broker", func(t *testing.T) {
		p := p.with(t)
		r := p.consumerReq(station, "bad name", "")
		got := p.replies(wire.SubjConsumerCreations, r, 2*time.Second)
		expectEq(t, "first reply", got[0], "Only alphanumeric and the '_', '-', '.' characters are allowed in Consumer")
		if len(got) > 1 && !isJSONObject(got[1]) {
			t.Errorf("second reply is not JSON: %q", got[1])
		}
		if p.b.IsMemphis() && len(got) < 2 {
			// Q5: the real broker sends a second, JSON reply.
			t.Error("real broker sent no second reply")
		}
	})
	t.Run("error malformed JSON", func(t *testing.T) {
		p := p.with(t)
		resp, raw := p.createConsumer(`"x"`)
		if resp == nil {
			t.Fatalf("reply is not JSON: %q", raw)
		}
		expectEq(t, "error", resp.Err, "json: cannot unmarshal string into Go value of type server.createConsumerRequestV0")
	})
}

// ---------------------------------------------------------------------------
// §9 schemaverse

const (
	jsonSchemaV1 = `{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}`
	jsonSchemaV2 = `{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}`
	protoSchema  = "syntax = \"proto3\";\npackage pk;\nmessage Outer {\n  string id = 1;\n  Inner in = 2;\n}\nmessage Inner {\n  int32 n = 1;\n}\n"
	gqlSchema    = "type Query {\n  hello: String\n}\n"
	avroSchema   = `{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`
)

func TestProtocolSchemaCreate(t *testing.T) {
	t.Parallel()
	p := newPT(t)

	for _, c := range []struct{ typ, content string }{
		{"json", jsonSchemaV1}, {"protobuf", protoSchema}, {"graphql", gqlSchema}, {"avro", avroSchema},
	} {
		t.Run("valid "+c.typ, func(t *testing.T) {
			p := p.with(t)
			name := testenv.Name(t, "sc-"+c.typ)
			expectEq(t, "create", p.createSchema(name, c.typ, c.content), "")
			expectEq(t, "same content", p.createSchema(name, c.typ, c.content),
				name+" already exists in the db with the same schema content")
			// Content is checked first, so the other type gets valid content.
			other, content := "json", jsonSchemaV1
			if c.typ == "json" {
				other, content = "graphql", gqlSchema
			}
			expectEq(t, "other type", p.createSchema(name, other, content), name+" already exist with type - "+c.typ)
		})
	}
	t.Run("new version on changed content", func(t *testing.T) {
		p := p.with(t)
		name := testenv.Name(t, "sc-ver")
		expectEq(t, "v1", p.createSchema(name, "json", jsonSchemaV1), "")
		expectEq(t, "v2", p.createSchema(name, "json", jsonSchemaV2), "")
		// The comparison is with the latest version's content.
		expectEq(t, "v2 again", p.createSchema(name, "json", jsonSchemaV2),
			name+" already exists in the db with the same schema content")
		expectEq(t, "back to v1 content", p.createSchema(name, "json", jsonSchemaV1), "")
	})
	t.Run("invalid content", func(t *testing.T) {
		p := p.with(t)
		name := testenv.Name(t, "sc-bad")
		expectEq(t, "empty", p.createSchema(name, "json", ""), "your schema content is invalid")
		expectEq(t, "json", p.createSchema(name, "json", `{"type":12}`), "your json schema is invalid")
		expectEq(t, "json not parseable", p.createSchema(name, "json", `{"type":`), "your json schema is invalid")
		if got := p.createSchema(name, "protobuf", "syntax = \"proto3\";\nmessage {"); !strings.HasPrefix(got, "your Proto file is invalid: ") {
			t.Errorf("protobuf: %q", got)
		}
		if got := p.createSchema(name, "graphql", "type Query {"); got == "" {
			t.Error("invalid graphql accepted")
		}
		if got := p.createSchema(name, "avro", `{"type":"nosuchtype"}`); !strings.HasPrefix(got, "your Avro file is invalid: ") {
			t.Errorf("avro: %q", got)
		}
		// None of the failures created the schema.
		expectEq(t, "create after failures", p.createSchema(name, "json", jsonSchemaV1), "")
	})
	t.Run("unknown type", func(t *testing.T) {
		p := p.with(t)
		expectEq(t, "xml", p.createSchema(testenv.Name(t, "sc-xml"), "xml", "<a/>"),
			`invalid input value for enum enum_type: "xml"`)
	})
	t.Run("unknown creator accepted", func(t *testing.T) {
		p := p.with(t)
		raw := p.request(wire.SubjSchemaCreations, wire.CreateSchemaReq{
			Name: testenv.Name(t, "sc-ghost"), Type: "json", CreatedByUsername: "ghost", SchemaContent: jsonSchemaV1,
		})
		expectEq(t, "reply", raw, `{"error":""}`)
	})
	t.Run("malformed JSON", func(t *testing.T) {
		p := p.with(t)
		expectEq(t, "error", replyErrorJSON(t, p.request(wire.SubjSchemaCreations, `"x"`)),
			"json: cannot unmarshal string into Go value of type server.CreateSchemaReq")
	})
}

// awaitSchemaUpdate reads the next schema update from ch.
func awaitSchemaUpdate(t *testing.T, ch chan *nats.Msg) wire.SchemaUpdate {
	t.Helper()
	select {
	case m := <-ch:
		var u wire.SchemaUpdate
		if err := json.Unmarshal(m.Data, &u); err != nil {
			t.Fatalf("schema update is not JSON: %q", m.Data)
		}
		var keys map[string]json.RawMessage
		_ = json.Unmarshal(m.Data, &keys)
		if _, ok := keys["UpdateType"]; !ok {
			t.Errorf("schema update lacks the UpdateType key: %s", m.Data)
		}
		if _, ok := keys["init"]; !ok {
			t.Errorf("schema update lacks the init key: %s", m.Data)
		}
		return u
	case <-time.After(reqTimeout):
		t.Fatal("no schema update")
	}
	return wire.SchemaUpdate{}
}

func TestProtocolSchemaAttach(t *testing.T) {
	t.Parallel()
	p := newPT(t)

	attach := func(p *pt, schema, station string) string {
		return p.request(wire.SubjSchemaAttachments, wire.AttachSchemaReq{Name: schema, StationName: station, Username: p.b.Username})
	}
	detach := func(p *pt, station string) string {
		return p.request(wire.SubjSchemaDetachments, wire.DetachSchemaReq{StationName: station, Username: p.b.Username})
	}

	t.Run("json attach and detach", func(t *testing.T) {
		p := p.with(t)
		base := testenv.Name(t, "sa")
		station := base + ".x"
		intern := base + "#x"
		p.mustStation(station, nil)
		schema := testenv.Name(t, "sa-json")
		expectEq(t, "create schema", p.createSchema(schema, "json", jsonSchemaV1), "")

		ch := make(chan *nats.Msg, 8)
		sub, err := p.nc.ChanSubscribe(wire.SchemaUpdatesSubject(intern), ch)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		if err := p.nc.Flush(); err != nil {
			t.Fatal(err)
		}

		expectEq(t, "attach", attach(p, schema, station), "")
		want := wire.SchemaUpdateInit{SchemaName: schema, SchemaType: "json",
			ActiveVersion: wire.SchemaVersion{VersionNumber: 1, SchemaContent: jsonSchemaV1}}
		u := awaitSchemaUpdate(t, ch)
		expectEq(t, "update type", u.UpdateType, wire.SchemaUpdateKindInit)
		expectEq(t, "update init", u.Init, want)

		pr, _ := p.createProducer(p.producerReq(station, "p"))
		expectEq(t, "producer error", pr.Err, "")
		expectEq(t, "producer schema_update", pr.SchemaUpdate, want)
		cr := p.mustConsumer(p.consumerReq(station, "c", ""))
		expectEq(t, "consumer schema_update", cr.SchemaUpdate, want)

		// A new version is inactive: replies keep carrying version 1.
		expectEq(t, "new version", p.createSchema(schema, "json", jsonSchemaV2), "")
		pr, _ = p.createProducer(p.producerReq(station, "p2"))
		expectEq(t, "producer schema after new version", pr.SchemaUpdate, want)

		expectEq(t, "detach", detach(p, station), "")
		u = awaitSchemaUpdate(t, ch)
		expectEq(t, "drop type", u.UpdateType, wire.SchemaUpdateKindDrop)
		expectEq(t, "drop init", u.Init, wire.SchemaUpdateInit{})
		pr, _ = p.createProducer(p.producerReq(station, "p3"))
		expectEq(t, "producer schema after detach", pr.SchemaUpdate, wire.SchemaUpdateInit{})
		// Detaching again is fine.
		expectEq(t, "detach again", detach(p, station), "")
		p.destroyConsumer(station, "c")
	})
	t.Run("protobuf in replies", func(t *testing.T) {
		p := p.with(t)
		station := testenv.Name(t, "sa")
		schema := testenv.Name(t, "sa-pb")
		expectEq(t, "create schema", replyErrorJSON(t, p.request(wire.SubjSchemaCreations, wire.CreateSchemaReq{
			Name: schema, Type: "protobuf", CreatedByUsername: p.b.Username, SchemaContent: protoSchema,
			MessageStructName: "Inner",
		})), "")
		// Created with the schema: no update is published, replies carry it.
		p.mustStation(station, func(r *wire.CreateStationReq) { r.SchemaName = schema })
		pr, raw := p.createProducer(p.producerReq(station, "p"))
		expectEq(t, "error", pr.Err, "")
		su := pr.SchemaUpdate
		expectEq(t, "schema_name", su.SchemaName, schema)
		expectEq(t, "type", su.SchemaType, "protobuf")
		expectEq(t, "version", su.ActiveVersion.VersionNumber, 1)
		expectEq(t, "content", su.ActiveVersion.SchemaContent, protoSchema)
		// Q11: the first message declared wins over the requested name.
		expectEq(t, "message_struct_name", su.ActiveVersion.MessageStructName, "Outer")
		desc, err := base64.StdEncoding.DecodeString(su.ActiveVersion.Descriptor)
		if err != nil {
			t.Fatalf("descriptor is not base64: %v (%s)", err, raw)
		}
		var fds descriptorpb.FileDescriptorSet
		if err := proto.Unmarshal(desc, &fds); err != nil {
			t.Fatalf("descriptor is not a FileDescriptorSet: %v", err)
		}
		if len(fds.File) != 1 {
			t.Fatalf("descriptor has %d files, want 1", len(fds.File))
		}
		f := fds.File[0]
		expectEq(t, "file name", f.GetName(), schema+"_1.proto")
		expectEq(t, "package", f.GetPackage(), "pk")
		if len(f.MessageType) != 2 || f.MessageType[0].GetName() != "Outer" || f.MessageType[1].GetName() != "Inner" {
			t.Errorf("messages = %v", f.MessageType)
		}
	})
	t.Run("errors", func(t *testing.T) {
		p := p.with(t)
		station := testenv.Name(t, "sa")
		p.mustStation(station, nil)
		schema := testenv.Name(t, "sa-e")
		expectEq(t, "create schema", p.createSchema(schema, "json", jsonSchemaV1), "")
		missing := testenv.Name(t, "sa-missing")
		expectEq(t, "attach to missing station", attach(p, schema, missing), "memphis: Station "+missing+" does not exist")
		expectEq(t, "attach missing schema", attach(p, "NoSuch-"+schema, station), "Schema nosuch-"+schema+" does not exist")
		expectEq(t, "attach bad station name", attach(p, schema, "Bad Name!"),
			"Only alphanumeric and the '_', '-', '.' characters are allowed in Station")
		expectEq(t, "detach missing station", detach(p, missing), "station "+missing+" does not exist")
		expectEq(t, "detach bad station name", detach(p, "Bad Name!"),
			"Only alphanumeric and the '_', '-', '.' characters are allowed in Station")
		// Q12: schema names are stored as sent, but attach lower-cases.
		upper := strings.ToUpper(testenv.Name(t, "sa-up"))
		expectEq(t, "create upper-case schema", p.createSchema(upper, "json", jsonSchemaV1), "")
		expectEq(t, "attach upper-case schema", attach(p, upper, station), "Schema "+strings.ToLower(upper)+" does not exist")
	})
}

// ---------------------------------------------------------------------------
// §8 dead letters

// awaitDLSCopy polls the one-partition DLS station for a message with the
// given payload and returns it.
func (p *pt) awaitDLSCopy(t *testing.T, dlsStation, payload string) *jetstream.RawStreamMsg {
	t.Helper()
	stream := wire.StreamName(dlsStation, 1)
	st, err := p.js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	var found *jetstream.RawStreamMsg
	next := uint64(1)
	eventually(t, asyncTimeout, "a copy of "+payload+" in "+stream, func() bool {
		for {
			m, err := st.GetMsg(t.Context(), next)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return false
			}
			if err != nil {
				t.Fatalf("get %s #%d: %v", stream, next, err)
			}
			next++
			if string(m.Data) == payload {
				found = m
				return true
			}
		}
	})
	return found
}

func TestProtocolDLS(t *testing.T) {
	t.Parallel()
	p := newPT(t)

	// dlsPair makes a source station whose dead letters are copied to a
	// one-partition DLS station.
	dlsPair := func(t *testing.T) (src, dls string) {
		p := p.with(t)
		dls = testenv.Name(t, "dls-target")
		p.mustStation(dls, nil)
		src = testenv.Name(t, "dls-src")
		p.mustStation(src, func(r *wire.CreateStationReq) { r.DLSStation = dls })
		return src, dls
	}

	t.Run("poison after max deliveries", func(t *testing.T) {
		p := p.with(t)
		t.Parallel()
		src, dls := dlsPair(t)
		stream := wire.StreamName(src, 1)
		r := p.consumerReq(src, "pc", "Poison.Grp")
		r.MaxAckTimeMs, r.MaxMsgDeliveries = 500, 2
		p.mustConsumer(r)
		durable := "poison#grp"

		// The real broker re-sends dead letters to consumers only when asked
		// from its UI (§8.4); watch the re-send subject anyway.
		resent := make(chan *nats.Msg, 4)
		rsub, err := p.nc.ChanSubscribe(wire.DLSResendSubject(src, durable), resent)
		if err != nil {
			t.Fatal(err)
		}
		defer rsub.Unsubscribe()
		adv := make(chan *nats.Msg, 4)
		sub, err := p.nc.ChanSubscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."+stream+"."+durable, adv)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		if err := p.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		ack := p.publish(stream, "poison-me", nats.Header{"userh": {"v"}})

		cons, err := p.js.Consumer(t.Context(), stream, durable)
		if err != nil {
			t.Fatal(err)
		}
		deliveries := 0
		deadline := time.Now().Add(asyncTimeout)
	pull:
		for {
			select {
			case m := <-adv:
				var a struct {
					Stream     string `json:"stream"`
					Consumer   string `json:"consumer"`
					StreamSeq  uint64 `json:"stream_seq"`
					Deliveries uint64 `json:"deliveries"`
				}
				if err := json.Unmarshal(m.Data, &a); err != nil {
					t.Fatalf("advisory: %q", m.Data)
				}
				expectEq(t, "advisory stream", a.Stream, stream)
				expectEq(t, "advisory consumer", a.Consumer, durable)
				expectEq(t, "advisory stream_seq", a.StreamSeq, ack.Sequence)
				expectEq(t, "advisory deliveries", a.Deliveries, uint64(2))
				break pull
			default:
			}
			if time.Now().After(deadline) {
				t.Fatal("no max-deliveries advisory")
			}
			// Pull without acking; the advisory comes from a pull after the
			// last allowed delivery timed out.
			batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			for range batch.Messages() {
				deliveries++
			}
		}
		expectEq(t, "deliveries seen", deliveries, 2)

		m := p.awaitDLSCopy(t, dls, "poison-me")
		expectEq(t, "station header", m.Header.Get(wire.HdrDLSStation), src)
		expectEq(t, "type header", m.Header.Get(wire.HdrDLSType), "unacked")
		expectEq(t, "user header", m.Header.Get("userh"), "v")
		expectEq(t, "producedBy header", m.Header.Get(wire.HdrProducedBy), "prod")

		select {
		case rm := <-resent:
			if p.b.IsMemphis() {
				t.Errorf("real broker re-sent a dead letter unasked: %q", rm.Data)
			}
			expectEq(t, "re-sent data", string(rm.Data), "poison-me")
			expectEq(t, "re-sent producedBy", rm.Header.Get(wire.HdrProducedBy), wire.DLSProducer)
			expectEq(t, "re-sent cg", rm.Header.Get(wire.HdrPMCGName), "poison.grp")
			if rm.Header.Get(wire.HdrPMID) == "" {
				t.Error("re-sent message has no " + wire.HdrPMID)
			}
		case <-time.After(time.Second):
		}
	})
	t.Run("dead-lettered by the client", func(t *testing.T) {
		p := p.with(t)
		t.Parallel()
		src, dls := dlsPair(t)
		stream := wire.StreamName(src, 1)
		p.mustConsumer(p.consumerReq(src, "nc", "nack-grp"))
		p.publish(stream, "deadletter-me", nats.Header{"userh": {"w"}})
		cons, err := p.js.Consumer(t.Context(), stream, "nack-grp")
		if err != nil {
			t.Fatal(err)
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var got jetstream.Msg
		for m := range batch.Messages() {
			got = m
		}
		if got == nil {
			t.Fatal("no message fetched")
		}
		if err := got.Term(); err != nil {
			t.Fatal(err)
		}
		md, err := got.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		report := wire.NackedDLSMsg{StationName: wire.InternalName(src), Error: "bad message", Partition: 1,
			CGName: "nack-grp", Seq: md.Sequence.Stream}
		if err := p.nc.Publish(wire.SubjNackedDLS, encode(t, report)); err != nil {
			t.Fatal(err)
		}
		m := p.awaitDLSCopy(t, dls, "deadletter-me")
		expectEq(t, "station header", m.Header.Get(wire.HdrDLSStation), src)
		// Q15: client dead letters are typed "unacked" too.
		expectEq(t, "type header", m.Header.Get(wire.HdrDLSType), "unacked")
		expectEq(t, "user header", m.Header.Get("userh"), "w")
	})
	t.Run("schema validation failure", func(t *testing.T) {
		p := p.with(t)
		t.Parallel()
		src, dls := dlsPair(t)
		report := wire.SchemaverseDLSMsg{
			StationName: wire.InternalName(src),
			Producer:    wire.ProducerDetails{Name: "prod", ConnectionID: p.connID},
			Message: wire.MessagePayload{Data: hex.EncodeToString([]byte("oops")),
				Headers: map[string]string{wire.HdrProducedBy: "prod", "x": "y"}},
			ValidationError: "Schema validation has failed: bad", PartitionNumber: 1,
		}
		if err := p.nc.Publish(wire.SubjSchemaverseDLS, encode(t, report)); err != nil {
			t.Fatal(err)
		}
		m := p.awaitDLSCopy(t, dls, "oops")
		expectEq(t, "station header", m.Header.Get(wire.HdrDLSStation), src)
		expectEq(t, "type header", m.Header.Get(wire.HdrDLSType), "failed_schema")
		expectEq(t, "user header", m.Header.Get("x"), "y")
	})
	t.Run("partition zero report", func(t *testing.T) {
		p := p.with(t)
		if p.b.IsMemphis() {
			// Q13: the real broker crashes on a nacked-DLS report with
			// partition 0; only the in-process broker is tried.
			t.Skip("Q13: would crash the real broker")
		}
		t.Parallel()
		src, _ := dlsPair(t)
		report := wire.NackedDLSMsg{StationName: src, Error: "x", Partition: 0, CGName: "g", Seq: 1}
		if err := p.nc.Publish(wire.SubjNackedDLS, encode(t, report)); err != nil {
			t.Fatal(err)
		}
		if err := p.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		// The broker still answers.
		expectEq(t, "destroy after report", p.destroyStation(src), "")
	})
}

// ---------------------------------------------------------------------------
// Robustness: every malformed request gets a reply.

func TestProtocolBadRequests(t *testing.T) {
	t.Parallel()
	p := newPT(t)
	subjects := []string{
		wire.SubjStationCreations, wire.SubjStationDestructions, wire.SubjProducerCreations,
		wire.SubjProducerDestructions, wire.SubjConsumerCreations, wire.SubjConsumerDestructions,
		wire.SubjSchemaCreations, wire.SubjSchemaAttachments, wire.SubjSchemaDetachments,
	}
	bodies := []string{"", "null", "{}", "[]", "{", `"str"`, "42", `{"name":5,"station_name":[1]}`,
		`{"name":"` + strings.Repeat("z", 4096) + `"}`, "\x00\xff"}
	for _, subj := range subjects {
		t.Run(subj, func(t *testing.T) {
			p := p.with(t)
			for _, body := range bodies {
				m, err := p.nc.Request(subj, []byte(body), reqTimeout)
				if err != nil {
					t.Errorf("body %.20q: no reply: %v", body, err)
					continue
				}
				if replyError(string(m.Data)) == "" {
					t.Errorf("body %.20q: success reply %q", body, m.Data)
				}
			}
		})
	}
	t.Run("fire and forget subjects", func(t *testing.T) {
		p := p.with(t)
		// Garbage on the no-reply subjects must not take the broker down.
		// JSON objects are not sent: an empty nacked-DLS report is Q13.
		for _, subj := range []string{wire.SubjNackedDLS, wire.SubjSchemaverseDLS, wire.SubjPMAcks, wire.SubjNotifications} {
			for _, body := range []string{"", "garbage", "[]", "{"} {
				if err := p.nc.Publish(subj, []byte(body)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := p.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		expectEq(t, "broker still answers", p.destroyStation(testenv.Name(t, "alive")), "Station  does not exist")
	})
	t.Run("still serving", func(t *testing.T) {
		p := p.with(t)
		name := testenv.Name(t, "alive")
		p.mustStation(name, nil)
		if !p.streamExists(wire.StreamName(name, 1)) {
			t.Error("station not created after the bad requests")
		}
	})
}
