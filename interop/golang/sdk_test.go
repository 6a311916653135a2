package interop

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
	"google.golang.org/protobuf/encoding/protowire"
)

// connect opens an official-SDK connection to the primary broker.
func connect(t *testing.T) *memphis.Conn {
	t.Helper()
	c, err := connectTo(primary)
	if err != nil {
		t.Fatalf("connect to %s: %v", primary.kind, err)
	}
	t.Cleanup(c.Close)
	return c
}

func connectTo(b target) (*memphis.Conn, error) {
	auth := memphis.Password(b.password)
	if b.token != "" {
		auth = memphis.ConnectionToken(b.token)
	}
	return memphis.Connect(b.host, b.user, auth, memphis.Port(b.port), memphis.Timeout(10*time.Second))
}

// fetchN fetches until n messages arrived or the deadline passed.
func fetchN(t *testing.T, c *memphis.Consumer, n int, within time.Duration, opts ...memphis.ConsumingOpt) []*memphis.Msg {
	t.Helper()
	var got []*memphis.Msg
	deadline := time.Now().Add(within)
	for len(got) < n && time.Now().Before(deadline) {
		msgs, err := c.Fetch(n-len(got), false, opts...)
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		got = append(got, msgs...)
	}
	if len(got) < n {
		t.Fatalf("fetched %d messages within %v, want %d", len(got), within, n)
	}
	return got
}

func ackAll(t *testing.T, msgs []*memphis.Msg) {
	t.Helper()
	for _, m := range msgs {
		if err := m.Ack(); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
}

func data(msgs []*memphis.Msg) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Data()))
	}
	sort.Strings(out)
	return out
}

func TestConnectPassword(t *testing.T) {
	if primary.token != "" {
		t.Skip("the broker at MEMPHIS_HOST is in token mode; TestConnectToken covers it")
	}
	c := connect(t)
	if !c.IsConnected() {
		t.Fatal("not connected")
	}
	bad := primary
	bad.password = "wrong-" + primary.password
	if c, err := connectTo(bad); err == nil {
		c.Close()
		t.Fatal("a wrong password was accepted")
	}
}

func TestConnectToken(t *testing.T) {
	if tokenBroker == nil {
		// Memphis at MEMPHIS_HOST in password mode: a token is refused.
		tok := primary
		tok.password, tok.token = "", "not-a-password"
		if c, err := connectTo(tok); err == nil {
			c.Close()
			t.Fatalf("%s in password mode accepted a connection token", primary.kind)
		}
		return
	}
	c, err := connectTo(*tokenBroker)
	if err != nil {
		t.Fatalf("token connect: %v", err)
	}
	defer c.Close()
	if _, err := c.CreateStation(name(t, "tok")); err != nil {
		t.Fatalf("station in token mode: %v", err)
	}
	bad := *tokenBroker
	bad.token = "wrong-" + tokenBroker.token
	if c, err := connectTo(bad); err == nil {
		c.Close()
		t.Fatal("a wrong token was accepted")
	}
}

func TestStationOptions(t *testing.T) {
	c := connect(t)
	st := name(t, "opts")
	s, err := c.CreateStation(st,
		memphis.RetentionTypeOpt(memphis.MaxMessageAgeSeconds), memphis.RetentionVal(600),
		memphis.StorageTypeOpt(memphis.Memory), memphis.Replicas(1),
		memphis.IdempotencyWindow(30*time.Second), memphis.PartitionsNumber(3),
		memphis.SendPoisonMsgToDls(true), memphis.SendSchemaFailedMsgToDls(false),
		memphis.DlsStation(st+"-dls"), memphis.TieredStorageEnabled(false))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	defer s.Destroy()
	// Creating it again is no error, and changes nothing.
	if _, err := c.CreateStation(st, memphis.PartitionsNumber(1)); err != nil {
		t.Fatalf("create again: %v", err)
	}
	p, err := s.CreateProducer("p")
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	for part := 1; part <= 3; part++ {
		if err := p.Produce([]byte("x"), memphis.ProducerPartitionNumber(part)); err != nil {
			t.Fatalf("partition %d: %v", part, err)
		}
	}
	if err := p.Produce([]byte("x"), memphis.ProducerPartitionNumber(4)); err == nil {
		t.Fatal("partition 4 of 3 accepted")
	}
	if _, err := c.CreateStation(st+"-bad", memphis.RetentionVal(10), memphis.IdempotencyWindow(time.Minute)); err == nil {
		t.Fatal("an idempotency window longer than the retention was accepted")
	}
}

// TestProduceHeadersAndIDs: sync and async produce with headers and message
// ids; consumers see exactly the headers the producer set, and a repeated
// id is stored once.
func TestProduceHeadersAndIDs(t *testing.T) {
	c := connect(t)
	st := name(t, "hdr")
	s, err := c.CreateStation(st)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	p, err := s.CreateProducer("p")
	if err != nil {
		t.Fatal(err)
	}
	var h memphis.Headers
	h.New()
	if err := h.Add("trace-id", "t-1"); err != nil {
		t.Fatal(err)
	}
	if err := h.Add("$memphis_x", "no"); err == nil {
		t.Fatal("a reserved header key was accepted")
	}
	if err := p.Produce([]byte("sync"), memphis.MsgHeaders(h), memphis.MsgId("id-1")); err != nil {
		t.Fatalf("sync produce: %v", err)
	}
	if err := p.Produce([]byte("sync again"), memphis.MsgId("id-1")); err != nil {
		t.Fatalf("repeated id: %v", err)
	}
	var h2 memphis.Headers
	h2.New()
	_ = h2.Add("k", "v")
	if err := p.Produce([]byte("async"), memphis.AsyncProduce(), memphis.MsgHeaders(h2), memphis.MsgId("id-2")); err != nil {
		t.Fatalf("async produce: %v", err)
	}
	cons, err := s.CreateConsumer("c", memphis.BatchMaxWaitTime(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	msgs := fetchN(t, cons, 2, 20*time.Second)
	want := map[string]map[string]string{
		"sync":  {"trace-id": "t-1", "msg-id": "id-1"},
		"async": {"k": "v", "msg-id": "id-2"},
	}
	for _, m := range msgs {
		w, ok := want[string(m.Data())]
		if !ok {
			t.Errorf("unexpected message %q (a repeated id stored twice?)", m.Data())
			continue
		}
		// Every broker delivers what the producer sent, and only that.
		if got := m.GetHeaders(); !sameHeaders(got, w) {
			t.Errorf("%s: headers of %q = %v, want %v", primary.kind, m.Data(), got, w)
		}
	}
	ackAll(t, msgs)
	// Nothing more: the repeated id was dropped.
	if more, err := cons.Fetch(10, false); err != nil || len(more) != 0 {
		t.Errorf("after the two messages: %d more (%v)", len(more), err)
	}
}

func sameHeaders(got, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func TestPartitionsByKeyAndNumber(t *testing.T) {
	c := connect(t)
	st := name(t, "part")
	s, err := c.CreateStation(st, memphis.PartitionsNumber(3))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	p, err := s.CreateProducer("p")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Produce([]byte("keyed"), memphis.ProducerPartitionKey("customer-42")); err != nil {
		t.Fatal(err)
	}
	if err := p.Produce([]byte("numbered"), memphis.ProducerPartitionNumber(2)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := p.Produce([]byte("rr")); err != nil {
			t.Fatal(err)
		}
	}
	keyed, err := s.CreateConsumer("by-key", memphis.BatchMaxWaitTime(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// The key's partition also holds a round-robin message or two.
	found := false
	deadline := time.Now().Add(10 * time.Second)
	for !found && time.Now().Before(deadline) {
		for _, m := range fetchN(t, keyed, 1, 10*time.Second, memphis.ConsumerPartitionKey("customer-42")) {
			found = found || string(m.Data()) == "keyed"
		}
	}
	if !found {
		t.Error("the keyed message is not on the key's partition")
	}
	num, err := s.CreateConsumer("by-number", memphis.BatchMaxWaitTime(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	two := fetchN(t, num, 2, 10*time.Second, memphis.ConsumerPartitionNumber(2))
	if got := data(two); strings.Join(got, ",") != "numbered,rr" {
		t.Errorf("partition 2 holds %v, want numbered and one round-robin message", got)
	}
	if _, err := num.Fetch(1, false, memphis.ConsumerPartitionNumber(4)); err == nil {
		t.Error("fetch from partition 4 of 3 accepted")
	}
}

func TestConsumeCallback(t *testing.T) {
	c := connect(t)
	st := name(t, "cons")
	s, err := c.CreateStation(st, memphis.PartitionsNumber(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	p, err := s.CreateProducer("p")
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := 0; i < n; i++ {
		if err := p.Produce([]byte{byte('a' + i)}, memphis.AsyncProduce()); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := s.CreateConsumer("c", memphis.PullInterval(50*time.Millisecond), memphis.BatchMaxWaitTime(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	all := make(chan struct{})
	err = cons.Consume(func(msgs []*memphis.Msg, err error, _ context.Context) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			_ = m.Ack()
			seen[string(m.Data())] = true
		}
		if len(seen) == n {
			select {
			case <-all:
			default:
				close(all)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		mu.Lock()
		t.Errorf("consumed %d of %d", len(seen), n)
		mu.Unlock()
	}
	cons.StopConsume()
}

func TestNackAndDelay(t *testing.T) {
	c := connect(t)
	st := name(t, "nack")
	s, err := c.CreateStation(st)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	p, err := s.CreateProducer("p")
	if err != nil {
		t.Fatal(err)
	}
	cons, err := s.CreateConsumer("c", memphis.MaxMsgDeliveries(5), memphis.BatchMaxWaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Produce([]byte("again")); err != nil {
		t.Fatal(err)
	}
	first := fetchN(t, cons, 1, 10*time.Second)
	if err := first[0].Nack(); err != nil {
		t.Fatal(err)
	}
	second := fetchN(t, cons, 1, 10*time.Second)
	if string(second[0].Data()) != "again" {
		t.Fatalf("after nack got %q", second[0].Data())
	}
	const delay = 2 * time.Second
	start := time.Now()
	if err := second[0].Delay(delay); err != nil {
		t.Fatal(err)
	}
	third := fetchN(t, cons, 1, 15*time.Second)
	if d := time.Since(start); d < delay-200*time.Millisecond {
		t.Errorf("delayed message came back after %v, want %v", d, delay)
	}
	ackAll(t, third)
}

// TestDeadLetters: a message dead-lettered by the client and a poison
// message both reach the dead-letter station, with headers saying why.
func TestDeadLetters(t *testing.T) {
	c := connect(t)
	st := name(t, "dls")
	dls := st + "-dead"
	s, err := c.CreateStation(st, memphis.DlsStation(dls), memphis.SendPoisonMsgToDls(true))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	p, err := s.CreateProducer("p")
	if err != nil {
		t.Fatal(err)
	}
	cons, err := s.CreateConsumer("c", memphis.MaxMsgDeliveries(2), memphis.MaxAckTime(time.Second),
		memphis.BatchMaxWaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Produce([]byte("given-up")); err != nil {
		t.Fatal(err)
	}
	m := fetchN(t, cons, 1, 10*time.Second)
	if err := m[0].DeadLetter("no use"); err != nil {
		t.Fatal(err)
	}
	if err := p.Produce([]byte("poison")); err != nil {
		t.Fatal(err)
	}
	// Two deliveries without an ack make it poison.
	for i := 0; i < 2; i++ {
		got := fetchN(t, cons, 1, 15*time.Second)
		if string(got[0].Data()) != "poison" {
			t.Fatalf("delivery %d: %q", i+1, got[0].Data())
		}
	}
	// The broker learns of the poison message when JetStream would deliver
	// it a third time: keep pulling until then.
	for until := time.Now().Add(2 * time.Second); time.Now().Before(until); {
		if more, err := cons.Fetch(1, false); err != nil || len(more) != 0 {
			t.Fatalf("a third delivery: %d messages, %v", len(more), err)
		}
	}
	reader, err := c.CreateConsumer(dls, "reader", memphis.BatchMaxWaitTime(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// Read until both copies arrived; any copy beyond them is a duplicate.
	var copies []*memphis.Msg
	seen := map[string]int{}
	deadline := time.Now().Add(45 * time.Second)
	for (seen["given-up"] == 0 || seen["poison"] == 0) && time.Now().Before(deadline) {
		msgs, err := reader.Fetch(10, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			seen[string(m.Data())]++
		}
		copies = append(copies, msgs...)
	}
	if seen["given-up"] == 0 || seen["poison"] == 0 {
		t.Errorf("%s: dead-letter station holds %v, want a copy of each", primary.kind, data(copies))
	}
	t.Logf("%s: dead-letter station holds %v", primary.kind, data(copies))
	for _, m := range copies {
		h := m.GetHeaders()
		if h["station"] != st || h["type"] != "unacked" {
			t.Errorf("copy of %q: station=%q type=%q", m.Data(), h["station"], h["type"])
		}
	}
	ackAll(t, copies)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// schemaCase is one schema type: a good message, a bad one, and what
// DataDeserialized gives for the good one.
type schemaCase struct {
	typ, file, content string
	good, bad          any
	check              func(t *testing.T, v any)
}

func TestSchemas(t *testing.T) {
	person := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "Ada")
	person = protowire.AppendVarint(protowire.AppendTag(person, 2, protowire.VarintType), 36)
	cases := []schemaCase{
		{typ: "json", file: "p.json",
			content: `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name"]}`,
			good:    []byte(`{"name":"Ada","age":36}`), bad: []byte(`{"age":"old"}`),
			check: func(t *testing.T, v any) {
				if m, ok := v.(map[string]any); !ok || m["name"] != "Ada" {
					t.Errorf("json decoded %#v", v)
				}
			}},
		{typ: "protobuf", file: "p.proto",
			content: "syntax = \"proto3\";\nmessage Person {\n  string name = 1;\n  int32 age = 2;\n}\n",
			good:    person, bad: []byte{0x0a, 0xff, 0xff},
			check: func(t *testing.T, v any) {
				b, err := json.Marshal(v)
				if err != nil || !strings.Contains(string(b), "Ada") {
					t.Errorf("protobuf decoded %s (%v)", b, err)
				}
			}},
		{typ: "graphql", file: "p.graphql",
			content: "type Query {\n  name: String\n  age: Int\n}\n",
			good:    []byte("query { name }"), bad: []byte("query { salary }"),
			check: func(t *testing.T, v any) {
				if v == nil {
					t.Error("graphql decoded nil")
				}
			}},
		{typ: "avro", file: "p.avsc",
			content: `{"type":"record","name":"Person","fields":[{"name":"name","type":"string"},{"name":"age","type":"double"}]}`,
			good:    []byte(`{"name":"Ada","age":36}`), bad: []byte(`not json`),
			check: func(t *testing.T, v any) {
				if m, ok := v.(map[string]any); !ok || m["name"] != "Ada" {
					t.Errorf("avro decoded %#v", v)
				}
			}},
	}
	c := connect(t)
	for _, tc := range cases {
		t.Run(tc.typ, func(t *testing.T) {
			schema := name(t, "s-"+tc.typ)
			if err := c.CreateSchema(schema, tc.typ, writeFile(t, tc.file, tc.content)); err != nil {
				t.Fatalf("create schema: %v", err)
			}
			st := name(t, "sch-"+tc.typ)
			s, err := c.CreateStation(st)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Destroy()
			if err := c.EnforceSchema(schema, st); err != nil {
				t.Fatalf("enforce: %v", err)
			}
			p, err := s.CreateProducer("p")
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Produce(tc.good); err != nil {
				t.Fatalf("valid message refused: %v", err)
			}
			if err := p.Produce(tc.bad); err == nil {
				t.Fatal("invalid message accepted")
			}
			cons, err := s.CreateConsumer("c", memphis.BatchMaxWaitTime(300*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			msgs := fetchN(t, cons, 1, 10*time.Second)
			v, err := msgs[0].DataDeserialized()
			if err != nil {
				t.Fatalf("deserialize: %v", err)
			}
			tc.check(t, v)
			ackAll(t, msgs)
			if err := c.DetachSchema(st); err != nil {
				t.Fatalf("detach: %v", err)
			}
		})
	}
}

// TestShortFetch: a fetch that finds fewer messages than its batch waits
// for BatchMaxWaitTime on every broker (the official Go SDK pulls with an
// expiry, never with no_wait).
func TestShortFetch(t *testing.T) {
	c := connect(t)
	st := name(t, "short")
	s, err := c.CreateStation(st)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	p, err := s.CreateProducer("p")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := p.Produce([]byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	const wait = time.Second
	cons, err := s.CreateConsumer("c", memphis.BatchMaxWaitTime(wait))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	msgs, err := cons.Fetch(10, false)
	d := time.Since(start)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("fetch: %d messages, %v", len(msgs), err)
	}
	if d < wait-100*time.Millisecond || d > wait+3*time.Second {
		t.Errorf("%s: a short fetch took %v, want about %v", primary.kind, d, wait)
	}
	t.Logf("%s: short fetch of 3 of 10 took %v", primary.kind, d)
	ackAll(t, msgs)
}

// TestFetchMessagesAndConnProduce: the connection-level calls that cache a
// producer and a consumer per station, and a producer to several stations.
func TestFetchMessagesAndConnProduce(t *testing.T) {
	c := connect(t)
	a, b := name(t, "multi-a"), name(t, "multi-b")
	if err := c.Produce(a, "cp", []byte("one"), nil, nil); err != nil {
		t.Fatalf("conn produce: %v", err)
	}
	if err := c.Produce(a, "cp", []byte("two"), nil, nil); err != nil {
		t.Fatalf("conn produce, cached: %v", err)
	}
	if _, err := c.CreateStation(b); err != nil {
		t.Fatal(err)
	}
	multi, err := c.CreateProducer([]string{a, b}, "both")
	if err != nil {
		t.Fatalf("multi-station producer: %v", err)
	}
	if err := multi.Produce([]byte("three")); err != nil {
		t.Fatalf("multi produce: %v", err)
	}
	var got []*memphis.Msg
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < 3 && time.Now().Before(deadline) {
		msgs, err := c.FetchMessages(a, "fm", memphis.FetchBatchSize(10), memphis.FetchBatchMaxWaitTime(300*time.Millisecond))
		if err != nil {
			t.Fatalf("fetch messages: %v", err)
		}
		got = append(got, msgs...)
	}
	if d := data(got); strings.Join(d, ",") != "one,three,two" {
		t.Errorf("station a holds %v", d)
	}
	ackAll(t, got)
	if err := multi.Destroy(); err != nil {
		t.Errorf("destroy multi producer: %v", err)
	}
	for _, st := range []string{a, b} {
		s, err := c.CreateStation(st)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Destroy(); err != nil {
			t.Errorf("destroy %s: %v", st, err)
		}
	}
}

// TestDestroy: producers, consumers and stations destroyed through the SDK,
// several times over, with cached producers and consumers on the
// connection. The official SDK's Station.Destroy iterates its producer map
// while its client-update handler may write to it: a broker that broadcast
// remove_station on an SDK destroy would crash the test binary
// intermittently ("concurrent map iteration and map write").
func TestDestroy(t *testing.T) {
	c := connect(t)
	for round := 0; round < 5; round++ {
		st := name(t, "destroy")
		s, err := c.CreateStation(st, memphis.PartitionsNumber(2))
		if err != nil {
			t.Fatal(err)
		}
		var producers []*memphis.Producer
		for i := 0; i < 4; i++ {
			p, err := s.CreateProducer("p" + string(rune('a'+i)))
			if err != nil {
				t.Fatal(err)
			}
			producers = append(producers, p)
		}
		if err := c.Produce(st, "cached", []byte("x"), nil, nil); err != nil {
			t.Fatal(err)
		}
		cons, err := s.CreateConsumer("c")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.FetchMessages(st, "fm", memphis.FetchBatchMaxWaitTime(50*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if err := producers[0].Destroy(); err != nil {
			t.Errorf("producer destroy: %v", err)
		}
		if err := cons.Destroy(); err != nil {
			t.Errorf("consumer destroy: %v", err)
		}
		if err := s.Destroy(); err != nil {
			t.Errorf("station destroy: %v", err)
		}
	}
}

// TestLastMessagesOnePartition: LastMessages on a one-partition station.
// Memphis 1.4.4 creates no durable consumer there (a bug), so the official
// SDK's CreateConsumer fails to bind; the dev broker creates it, and the
// consumer reads the last messages.
func TestLastMessagesOnePartition(t *testing.T) {
	c := connect(t)
	st := name(t, "last")
	s, err := c.CreateStation(st)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	p, err := s.CreateProducer("p")
	if err != nil {
		t.Fatal(err)
	}
	// Sync: this SDK produces asynchronously by default, and the broker
	// counts the last messages when the consumer is created.
	for _, d := range []string{"a", "b", "c", "d"} {
		if err := p.Produce([]byte(d), memphis.SyncProduce()); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := s.CreateConsumer("c", memphis.LastMessages(2), memphis.BatchMaxWaitTime(300*time.Millisecond))
	if primary.kind == memphis14 {
		if err == nil {
			t.Fatal("Memphis 1.4.4 created the durable: its LastMessages bug seems fixed")
		}
		t.Logf("%s: %v", primary.kind, err)
		return
	}
	if err != nil {
		t.Fatalf("%s: %v", primary.kind, err)
	}
	msgs := fetchN(t, cons, 2, 10*time.Second)
	if got := data(msgs); strings.Join(got, ",") != "c,d" {
		t.Errorf("the last two messages: %v", got)
	}
	ackAll(t, msgs)
}
