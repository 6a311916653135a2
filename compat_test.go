package memphis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
	"github.com/memphisdev/memphis.go/internal/wire"
	"github.com/memphisdev/memphis.go/memphistest"
)

// The tests of this file hold the behaviour 1.x programs rely on; the
// programs of internal/v1compat hold the names and signatures.

// semver is the grammar of semver.org 2.0.0, written out.
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
	`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
	`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

func TestVersionIsSemverOnMajorOne(t *testing.T) {
	for v, want := range map[string]bool{
		"1.4.0-dev": true, "1.4.0": true, "1.0.0-rc.1+build.5": true, "2.0.0-dev": true,
		"1.4": false, "v1.4.0": false, "01.4.0": false, "1.4.0-": false, "1.4.0-01": false,
	} {
		if got := semver.MatchString(v); got != want {
			t.Errorf("semver(%q) = %v, want %v", v, got, want)
		}
	}
	m := semver.FindStringSubmatch(memphis.Version)
	if m == nil {
		t.Fatalf("Version %q is not a semantic version", memphis.Version)
	}
	// The module path is the one 1.x was released under, so every release
	// of it is a v1.
	if m[1] != "1" {
		t.Errorf("Version %q: major %s, want 1", memphis.Version, m[1])
	}
}

func TestGetStationDefaultOptionsAreTheDefaults(t *testing.T) {
	o := memphis.GetStationDefaultOptions()
	want := memphis.StationOpts{
		RetentionType: memphis.DefaultRetentionType, RetentionVal: memphis.DefaultRetentionValue,
		StorageType: memphis.DefaultStorageType, Replicas: memphis.DefaultReplicas,
		IdempotencyWindow:  memphis.DefaultIdempotencyWindow,
		SendPoisonMsgToDls: memphis.DefaultSendPoisonMsgToDls, SendSchemaFailedMsgToDls: memphis.DefaultSendSchemaFailedMsgToDls,
		TieredStorageEnabled: memphis.DefaultTieredStorageEnabled, PartitionsNumber: memphis.DefaultPartitionsNumber,
	}
	if o != want {
		t.Errorf("GetStationDefaultOptions() = %+v, want %+v", o, want)
	}
}

func TestV1ErrorNamesMatchTheirSentinels(t *testing.T) {
	if !errors.Is(memphis.ConsumerErrStationUnreachable, memphis.ErrStationUnreachable) ||
		!errors.Is(memphis.ConsumerErrDelayDlsMsg, memphis.ErrNotSupported) {
		t.Error("a 1.x error name does not match its sentinel")
	}
	if errors.Is(memphis.ConsumerErrConsumeInactive, memphis.ErrStationUnreachable) {
		t.Error("ConsumerErrConsumeInactive matches an unrelated sentinel")
	}
}

// recorder keeps the bodies of the control requests an in-process broker
// receives, by subject.
type recorder struct {
	mu     sync.Mutex
	bodies map[string][][]byte
}

func record(srv *memphistest.Server) *recorder {
	r := &recorder{bodies: map[string][][]byte{}}
	srv.Intercept(func(req memphistest.Request) memphistest.Action {
		r.mu.Lock()
		r.bodies[req.Subject] = append(r.bodies[req.Subject], req.Body)
		r.mu.Unlock()
		return memphistest.Action{}
	})
	return r
}

// last decodes the last request sent to subject into the fields named.
func (r *recorder) last(t *testing.T, subject string) map[string]any {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bodies[subject]
	if len(b) == 0 {
		t.Fatalf("no request on %s", subject)
	}
	var m map[string]any
	if err := json.Unmarshal(b[len(b)-1], &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestV1FieldsDescribeAndWritingChangesNothing: the fields 1.x had are
// filled at creation, and a program that writes to them does not redirect
// the SDK: every request names the real station, producer, consumer and
// connection.
func TestV1FieldsDescribeAndWritingChangesNothing(t *testing.T) {
	b := testenv.Local(t)
	rec := record(b.Server)
	conn := connect(t, b)
	name := testenv.Name(t, "v1-fields")

	if conn.ConnId == "" || conn.ConnId != conn.ConnectionID() {
		t.Fatalf("ConnId = %q, ConnectionID() = %q", conn.ConnId, conn.ConnectionID())
	}
	realID := conn.ConnId

	s, err := conn.CreateStation(name, memphis.PartitionsNumber(3), memphis.RetentionTypeOpt(memphis.Messages),
		memphis.RetentionVal(500), memphis.StorageTypeOpt(memphis.Memory), memphis.IdempotencyWindow(time.Minute),
		memphis.SendPoisonMsgToDls(false), memphis.DlsStation("Dead-Letters"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != name || s.PartitionsNumber != 3 || s.RetentionType != memphis.Messages || s.RetentionValue != 500 ||
		s.StorageType != memphis.Memory || s.Replicas != memphis.DefaultReplicas || s.IdempotencyWindow != time.Minute ||
		s.SchemaName != "" || s.TieredStorageEnabled || s.DlsStation != "dead-letters" ||
		s.DlsConfiguration.Poison || !s.DlsConfiguration.Schemaverse {
		t.Errorf("station fields = %+v", *s)
	}

	p, err := conn.CreateProducer(name, "Writer")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "writer" {
		t.Errorf("producer Name = %q, want writer", p.Name)
	}
	if g := p.PartitionGenerator; g == nil || !slices.Equal(g.Partitions, []int{1, 2, 3}) || g.NumberOfPartitions != 3 {
		t.Fatalf("producer PartitionGenerator = %+v", g)
	}
	var turns []int
	for range 4 {
		turns = append(turns, p.PartitionGenerator.Next())
	}
	if !slices.Equal(turns, []int{1, 2, 3, 1}) {
		t.Errorf("Next() gave %v, want 1 2 3 1", turns)
	}

	c, err := conn.CreateConsumer(name, "Reader", memphis.ConsumerGroup("Readers"), memphis.PullInterval(2*time.Second),
		memphis.BatchSize(7), memphis.BatchMaxWaitTime(100*time.Millisecond), memphis.MaxAckTime(time.Minute), memphis.MaxMsgDeliveries(3))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "reader" || c.ConsumerGroup != "readers" || c.PullInterval != 2*time.Second || c.BatchSize != 7 ||
		c.BatchMaxTimeToWait != 100*time.Millisecond || c.MaxAckTime != time.Minute || c.MaxMsgDeliveries != 3 ||
		c.StartConsumeFromSequence != memphis.DefaultStartConsumeFromSeq || c.LastMessages != memphis.DefaultLastMessages {
		t.Errorf("consumer fields = name %q group %q pull %v batch %d wait %v ack %v deliveries %d start %d last %d",
			c.Name, c.ConsumerGroup, c.PullInterval, c.BatchSize, c.BatchMaxTimeToWait, c.MaxAckTime,
			c.MaxMsgDeliveries, c.StartConsumeFromSequence, c.LastMessages)
	}
	if c.PartitionGenerator == nil || !slices.Equal(c.PartitionGenerator.Partitions, []int{1, 2, 3}) {
		t.Errorf("consumer PartitionGenerator = %+v", c.PartitionGenerator)
	}

	// Scribble over everything a 1.x program could write to.
	conn.ConnId, s.Name, p.Name, c.Name, c.ConsumerGroup = "someone-else", "elsewhere", "impostor", "impostor", "impostors"
	c.BatchSize, p.PartitionGenerator.Partitions = 1, []int{9}

	if err := p.Produce([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(5, false)
	if err != nil || len(msgs) != 1 || string(msgs[0].Data()) != "still here" {
		t.Fatalf("fetch after the writes: %d messages, %v", len(msgs), err)
	}
	_ = msgs[0].Ack()
	p2, err := s.CreateProducer("second")
	if err != nil {
		t.Fatal(err)
	}
	if got := p2.Stations(); !slices.Equal(got, []string{name}) {
		t.Errorf("station.CreateProducer after s.Name was changed wrote to %v", got)
	}
	for _, check := range []struct {
		subject string
		fields  map[string]string
	}{
		{wire.SubjProducerCreations, map[string]string{"name": "second", "station_name": name, "connection_id": realID}},
	} {
		got := rec.last(t, check.subject)
		for k, want := range check.fields {
			if got[k] != want {
				t.Errorf("%s: %s = %v, want %s", check.subject, k, got[k], want)
			}
		}
	}
	if err := p.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, check := range []struct {
		subject string
		fields  map[string]string
	}{
		{wire.SubjProducerDestructions, map[string]string{"name": "writer", "station_name": name, "connection_id": realID}},
		{wire.SubjConsumerDestructions, map[string]string{"name": "reader", "station_name": name, "connection_id": realID}},
		{wire.SubjStationDestructions, map[string]string{"station_name": name}},
	} {
		got := rec.last(t, check.subject)
		for k, want := range check.fields {
			if got[k] != want {
				t.Errorf("%s: %s = %v, want %s", check.subject, k, got[k], want)
			}
		}
	}
}

// TestV1ZeroPartitionsIsTheDefault: 1.x read PartitionsNumber(0) as
// "not set", and so does this SDK.
func TestV1ZeroPartitionsIsTheDefault(t *testing.T) {
	b := testenv.Start(t)
	conn := connect(t, b)
	name := testenv.Name(t, "v1-zero-partitions")
	cleanupStation(t, conn, name)
	s, err := conn.CreateStation(name, memphis.PartitionsNumber(0))
	if err != nil {
		t.Fatal(err)
	}
	c := mustConsumer(t, conn, name, "c")
	if s.PartitionsNumber != memphis.DefaultPartitionsNumber || !slices.Equal(c.Partitions(), []int{1}) {
		t.Errorf("PartitionsNumber(0): field %d, partitions %v, want the default of %d", s.PartitionsNumber, c.Partitions(), memphis.DefaultPartitionsNumber)
	}
}

func TestV1NameStationOption(t *testing.T) {
	b := testenv.Start(t)
	conn := connect(t, b)
	name := testenv.Name(t, "v1-name-opt")
	s, err := conn.CreateStation("overridden", memphis.Name(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Destroy() })
	if s.Name != name {
		t.Errorf("Name option: station %q, want %q", s.Name, name)
	}
}

// TestV1StationArgument: CreateProducer and Produce take a station name,
// a StationName or a []string, as 1.x did.
func TestV1StationArgument(t *testing.T) {
	b := testenv.Start(t)
	conn := connect(t, b)
	a, z := testenv.Name(t, "v1-multi-a"), testenv.Name(t, "v1-multi-b")
	readers := map[string]*memphis.Consumer{}
	for _, s := range []string{a, z} {
		readers[s] = mustConsumer(t, conn, s, "reader")
		cleanupStation(t, conn, s)
	}

	multi, err := conn.CreateProducer([]string{a, z}, "fan-out")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(multi.Stations(), []string{a, z}) || multi.PartitionGenerator != nil {
		t.Fatalf("[]string producer: stations %v, generator %v", multi.Stations(), multi.PartitionGenerator)
	}
	if err := multi.Produce([]byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := conn.Produce([]string{a, z}, "conn-fan-out", []byte("2"), nil, nil); err != nil {
		t.Fatal(err)
	}
	var held any = a // a station name in an interface{}, as 1.x code passes it on
	if err := conn.Produce(held, "held", []byte("3"), nil, nil); err != nil {
		t.Fatal(err)
	}
	named, err := conn.CreateProducer(memphis.StationName(a), "named")
	if err != nil {
		t.Fatal(err)
	}
	if err := named.Produce([]byte("4")); err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string][]string{a: {"1", "2", "3", "4"}, z: {"1", "2"}} {
		var got []string
		for _, m := range fetchAll(t, readers[s], len(want), 10*time.Second) {
			got = append(got, string(m.Data()))
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("station %s got %v, want %v", s, got, want)
		}
	}
}

// TestV1HeadersThroughTheMap: headers put straight into MsgHeaders travel
// with every value; a reused Headers carries each key once; a consumer
// lists them all, the message id included.
func TestV1HeadersThroughTheMap(t *testing.T) {
	b := testenv.Start(t)
	conn := connect(t, b)
	name := testenv.Name(t, "v1-headers")
	p := mustProducer(t, conn, name, "p")
	c := mustConsumer(t, conn, name, "c")
	cleanupStation(t, conn, name)

	direct := memphis.Headers{MsgHeaders: map[string][]string{"multi": {"a", "b"}}}
	if err := p.Produce([]byte("direct"), memphis.MsgHeaders(direct), memphis.MsgId("id-direct")); err != nil {
		t.Fatal(err)
	}
	reused := memphis.Headers{}
	reused.New()
	for i := range 3 {
		if err := reused.Add("index", strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
		if err := p.Produce([]byte("reused"), memphis.MsgHeaders(reused)); err != nil {
			t.Fatal(err)
		}
	}
	msgs := fetchAll(t, c, 4, 10*time.Second)

	h := msgs[0].Headers()
	if !slices.Equal(h.MsgHeaders["multi"], []string{"a", "b"}) || h.Get("msg-id") != "id-direct" || h.Len() != 2 {
		t.Errorf("Headers() of the first message = %v", h.MsgHeaders)
	}
	var keys []string
	for k := range h.All() {
		keys = append(keys, k)
	}
	if !slices.Equal(keys, []string{"msg-id", "multi"}) {
		t.Errorf("All() yielded %v", keys)
	}
	if g := msgs[0].GetHeaders(); len(g) != 2 || g["multi"] != "a" || g["msg-id"] != "id-direct" {
		t.Errorf("GetHeaders() = %v", g)
	}
	for i, m := range msgs[1:] {
		if got := m.Headers().MsgHeaders["index"]; !slices.Equal(got, []string{strconv.Itoa(i)}) {
			t.Errorf("message %d: index header %v, want [%d]", i+1, got, i)
		}
	}
}

// TestV1ProduceOptsMessage: an option sees the message in ProduceOpts.Message
// and may replace it, as in 1.x.
func TestV1ProduceOptsMessage(t *testing.T) {
	b := testenv.Start(t)
	conn := connect(t, b)
	name := testenv.Name(t, "v1-produce-opts")
	p := mustProducer(t, conn, name, "p")
	c := mustConsumer(t, conn, name, "c")
	cleanupStation(t, conn, name)
	wrap := func(o *memphis.ProduceOpts) error {
		o.Message = append([]byte("wrapped:"), o.Message.([]byte)...)
		return nil
	}
	if err := p.Produce([]byte("x"), wrap); err != nil {
		t.Fatal(err)
	}
	if m := fetchAll(t, c, 1, 10*time.Second); string(m[0].Data()) != "wrapped:x" {
		t.Errorf("got %q", m[0].Data())
	}
}

// TestV1OptionStructFields: options written by hand against the 1.x field
// names of FetchOpts and ConsumingOpts take effect.
func TestV1OptionStructFields(t *testing.T) {
	b := testenv.Start(t)
	conn := connect(t, b)
	name := testenv.Name(t, "v1-opt-fields")
	if _, err := conn.CreateStation(name, memphis.PartitionsNumber(2)); err != nil {
		t.Fatal(err)
	}
	cleanupStation(t, conn, name)
	p := mustProducer(t, conn, name, "p")
	for n := 1; n <= 2; n++ {
		if err := p.Produce([]byte(strconv.Itoa(n)), func(o *memphis.ProduceOpts) error { o.ProducerPartitionNumber = n; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := conn.FetchMessages(name, "fetcher", func(o *memphis.FetchOpts) error {
		if o.StationName != name || o.ConsumerName != "fetcher" {
			t.Errorf("FetchOpts names = %q, %q", o.StationName, o.ConsumerName)
		}
		o.FetchPartitionNumber, o.ConsumerGroup, o.BatchMaxTimeToWait = 2, "by-hand", 200*time.Millisecond
		return nil
	})
	if err != nil || len(msgs) != 1 || string(msgs[0].Data()) != "2" || msgs[0].Partition() != 2 {
		t.Fatalf("FetchMessages with FetchPartitionNumber 2: %d messages, %v", len(msgs), err)
	}
	_ = msgs[0].Ack()
	c := mustConsumer(t, conn, name, "reader", memphis.BatchMaxWaitTime(200*time.Millisecond))
	msgs, err = c.Fetch(5, false, func(o *memphis.ConsumingOpts) error { o.ConsumerPartitionNumber = 1; return nil })
	if err != nil || len(msgs) != 1 || string(msgs[0].Data()) != "1" {
		t.Fatalf("Fetch with ConsumerPartitionNumber 1: %d messages, %v", len(msgs), err)
	}
	_ = msgs[0].Ack()
}

func TestV1PartitionHelpers(t *testing.T) {
	b := testenv.Start(t)
	conn := connect(t, b)
	name := testenv.Name(t, "v1-partitions")
	if _, err := conn.CreateStation(name, memphis.PartitionsNumber(3)); err != nil {
		t.Fatal(err)
	}
	cleanupStation(t, conn, name)
	if _, err := conn.GetPartitionFromKey("k", name); !errors.Is(err, memphis.ErrStationNotFound) {
		t.Errorf("without a producer: err = %v, want ErrStationNotFound", err)
	}
	p := mustProducer(t, conn, name, "p")
	for _, key := range []string{"", "customer-42", "ünï"} {
		got, err := conn.GetPartitionFromKey(key, name)
		if err != nil || got != memphis.PartitionForKey(key, []int{1, 2, 3}) {
			t.Errorf("GetPartitionFromKey(%q) = %d, %v", key, got, err)
		}
	}
	if err := conn.ValidatePartitionNumber(3, name); err != nil {
		t.Errorf("ValidatePartitionNumber(3): %v", err)
	}
	for _, n := range []int{0, 4, -1} {
		if err := conn.ValidatePartitionNumber(n, name); !errors.Is(err, memphis.ErrPartitionNotFound) {
			t.Errorf("ValidatePartitionNumber(%d) = %v, want ErrPartitionNotFound", n, err)
		}
	}
	if err := p.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.GetPartitionFromKey("k", name); !errors.Is(err, memphis.ErrStationNotFound) {
		t.Errorf("after the last producer is gone: err = %v, want ErrStationNotFound", err)
	}
}

// TestV1TimeoutRetry: control requests the broker does not answer are sent
// again as often as TimeoutRetry and its per-object forms say, and no more.
func TestV1TimeoutRetry(t *testing.T) {
	b := testenv.Local(t)
	conn := connect(t, b, memphis.RequestTimeout(200*time.Millisecond))
	var mu sync.Mutex
	drop := map[string]int{} // requests to leave unanswered, by subject
	seen := map[string]int{}
	b.Server.Intercept(func(r memphistest.Request) memphistest.Action {
		mu.Lock()
		defer mu.Unlock()
		seen[r.Subject]++
		if drop[r.Subject] > 0 {
			drop[r.Subject]--
			return memphistest.Action{Drop: true}
		}
		return memphistest.Action{}
	})
	arrange := func(subject string, dropped int) {
		mu.Lock()
		drop[subject], seen[subject] = dropped, 0
		mu.Unlock()
	}
	sent := func(subject string) int {
		mu.Lock()
		defer mu.Unlock()
		return seen[subject]
	}
	name := testenv.Name(t, "v1-retry")

	arrange(wire.SubjStationCreations, 1)
	if _, err := conn.CreateStation(name); !errors.Is(err, memphis.ErrTimeout) {
		t.Fatalf("no retries, one request dropped: err = %v, want ErrTimeout", err)
	}
	arrange(wire.SubjStationCreations, 2)
	s, err := conn.CreateStation(name, memphis.StationTimeoutRetry(2))
	if err != nil || sent(wire.SubjStationCreations) != 3 {
		t.Fatalf("StationTimeoutRetry(2), two dropped: %v after %d requests", err, sent(wire.SubjStationCreations))
	}

	arrange(wire.SubjProducerCreations, 1)
	p, err := conn.CreateProducer(name, "p", memphis.ProducerTimeoutRetry(1))
	if err != nil || sent(wire.SubjProducerCreations) != 2 {
		t.Fatalf("ProducerTimeoutRetry(1): %v after %d requests", err, sent(wire.SubjProducerCreations))
	}
	arrange(wire.SubjConsumerCreations, 1)
	c, err := conn.CreateConsumer(name, "c", memphis.ConsumerTimeoutRetry(1))
	if err != nil || sent(wire.SubjConsumerCreations) != 2 {
		t.Fatalf("ConsumerTimeoutRetry(1): %v after %d requests", err, sent(wire.SubjConsumerCreations))
	}
	arrange(wire.SubjProducerDestructions, 1)
	if err := p.Destroy(memphis.TimeoutRetry(1)); err != nil || sent(wire.SubjProducerDestructions) != 2 {
		t.Fatalf("producer Destroy(TimeoutRetry(1)): %v after %d requests", err, sent(wire.SubjProducerDestructions))
	}
	arrange(wire.SubjConsumerDestructions, 1)
	if err := c.Destroy(memphis.TimeoutRetry(1)); err != nil || sent(wire.SubjConsumerDestructions) != 2 {
		t.Fatalf("consumer Destroy(TimeoutRetry(1)): %v after %d requests", err, sent(wire.SubjConsumerDestructions))
	}
	// More dropped than retries: the call fails after exactly 1+retries.
	arrange(wire.SubjStationDestructions, 3)
	if err := s.Destroy(memphis.TimeoutRetry(1)); !errors.Is(err, memphis.ErrTimeout) || sent(wire.SubjStationDestructions) != 2 {
		t.Fatalf("station Destroy(TimeoutRetry(1)), three dropped: %v after %d requests", err, sent(wire.SubjStationDestructions))
	}
	arrange(wire.SubjStationDestructions, 1)
	if err := s.Destroy(memphis.TimeoutRetry(1)); err != nil {
		t.Fatalf("station Destroy(TimeoutRetry(1)), one dropped: %v", err)
	}
}

// TestV1DefaultsThatChanged holds the figures the README's upgrade table
// gives for defaults that differ from 1.x.
func TestV1DefaultsThatChanged(t *testing.T) {
	if memphis.DefaultTimeout != 15*time.Second || memphis.DefaultRequestTimeout != 20*time.Second ||
		memphis.DefaultMaxMsgDeliveries != 10 || memphis.DefaultAsyncProduce ||
		memphis.DefaultBatchMaxWaitTime != 5*time.Second || memphis.DefaultMaxAckTime != 30*time.Second {
		t.Fatal("a default the README's upgrade table quotes has changed")
	}
	// FetchMessages registers its consumer with the consumer defaults, not
	// 1.x's 10 s ack time and 2 deliveries.
	b := testenv.Local(t)
	rec := record(b.Server)
	conn := connect(t, b)
	name := testenv.Name(t, "v1-fetch-defaults")
	if _, err := conn.FetchMessages(name, "f", memphis.FetchBatchMaxWaitTime(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	got := rec.last(t, wire.SubjConsumerCreations)
	if got["max_ack_time_ms"] != float64(memphis.DefaultMaxAckTime.Milliseconds()) ||
		got["max_msg_deliveries"] != float64(memphis.DefaultMaxMsgDeliveries) {
		t.Errorf("FetchMessages registered its consumer with %v", got)
	}
}

func TestConsumeTwiceIsAnError(t *testing.T) {
	b := testenv.Start(t)
	conn := connect(t, b)
	name := testenv.Name(t, "v1-consume-twice")
	cleanupStation(t, conn, name)
	c := mustConsumer(t, conn, name, "c")
	handler := func([]*memphis.Msg, error, context.Context) {}
	if err := c.Consume(handler); err != nil {
		t.Fatal(err)
	}
	defer c.StopConsume()
	if err := c.Consume(handler); !errors.Is(err, memphis.ErrAlreadyConsuming) {
		t.Errorf("a second Consume: %v, want ErrAlreadyConsuming", err)
	}
}

func TestDefaultConsumerErrHandlerLogs(t *testing.T) {
	b := testenv.Start(t)
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
	conn := connect(t, b, memphis.Logger(logger))
	name := testenv.Name(t, "v1-errhandler")
	c := mustConsumer(t, conn, name, "c", memphis.ConsumerErrorHandler(memphis.DefaultConsumerErrHandler))
	cleanupStation(t, conn, name)
	memphis.DefaultConsumerErrHandler(c, memphis.ErrStationUnreachable)
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{"level=ERROR", "consumer=c", "station=" + name, "station unreachable"} {
		if !bytes.Contains([]byte(out), []byte(want)) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
	memphis.DefaultErrHandler(nil) // must not panic
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// cleanupStation destroys a station when the test ends.
func cleanupStation(t *testing.T, conn *memphis.Conn, name string) {
	t.Cleanup(func() {
		if s, err := conn.CreateStation(name); err == nil {
			_ = s.Destroy()
		}
	})
}
