package memphis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
	"github.com/memphisdev/memphis.go/internal/wire"
)

// TestSeedReadme runs every call the Go README documents, written as the
// README writes it. Corrections, all of the README's own slips: missing
// commas between arguments, "." for ",", placeholders replaced by values,
// ";" dropped, and string(msg.DataDeserialized()) (DataDeserialized returns
// (any, error), which string() can not take) written as two statements.
func TestSeedReadme(t *testing.T) {
	b := testenv.Start(t)
	host, user := b.Host, b.Username
	pw := memphis.Password(b.Password)
	if b.Token != "" {
		pw = memphis.ConnectionToken(b.Token)
	}
	station := testenv.Name(t, "readme")

	// Connecting to Memphis (function params).
	c, err := memphis.Connect(host,
		user,
		pw,
		memphis.AccountId(1),
		memphis.Port(b.Port),
		memphis.Reconnect(true),
		memphis.MaxReconnect(10),
		memphis.ReconnectInterval(1*time.Second),
		memphis.Timeout(15*time.Second),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.IsConnected() {
		t.Fatal("conn.IsConnected() is false")
	}

	// TLS needs all three files; the README's placeholder paths do not exist,
	// so Connect explains that instead of dialing without TLS.
	_, err = memphis.Connect("localhost", "root", memphis.Tls(
		"~/tls_file_path.key",
		"~/tls_cert_file_path.crt",
		"~/tls_cert_file_path.crt",
	), memphis.Password("memphis"))
	if !errors.Is(err, memphis.ErrInvalidOption) {
		t.Fatalf("Tls with missing files: %v", err)
	}
	var opts memphis.Options = memphis.Options{Host: host, TLSOpts: memphis.TLSOpts{TlsCert: "", TlsKey: "", CaFile: ""}}
	_ = opts

	// Creating a Station.
	s0, err := c.CreateStation(station)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := c.CreateStation(station+"-1",
		memphis.RetentionTypeOpt(memphis.Messages),
		memphis.RetentionVal(10),
		memphis.StorageTypeOpt(memphis.Memory),
		memphis.Replicas(1),
		memphis.IdempotencyWindow(3*time.Second),
		memphis.SchemaName(""),
		memphis.SendPoisonMsgToDls(true),
		memphis.SendSchemaFailedMsgToDls(true),
		memphis.TieredStorageEnabled(false),
		memphis.PartitionsNumber(3),
		memphis.DlsStation(""),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range []memphis.RetentionType{memphis.MaxMessageAgeSeconds, memphis.Messages, memphis.Bytes, memphis.AckBased} {
		if rt.String() == "" {
			t.Fatal("retention type without a name")
		}
	}
	for _, st := range []memphis.StorageType{memphis.Disk, memphis.Memory} {
		if st.String() == "" {
			t.Fatal("storage type without a name")
		}
	}

	// Creating a Producer, from a Conn and from a Station.
	p0, err := c.CreateProducer(
		station,
		"producer-name",
	)
	if err != nil {
		t.Fatal(err)
	}
	p1, err := s0.CreateProducer("producer-name-1")
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := c.CreateProducer(station, "legacy", memphis.ProducerGenUniqueSuffix())
	if err != nil {
		t.Fatal(err)
	}
	_ = legacy.Destroy()

	// Producing a message without creating a producer.
	if err := c.Produce(station, "producer_name_a", []byte("Hey There!"), []memphis.ProducerOpt{}, []memphis.ProduceOpt{}); err != nil {
		t.Fatal(err)
	}
	// Producing with a producer, with every ProduceOpt.
	hdrs := memphis.Headers{}
	hdrs.New()
	if err := hdrs.Add("key", "value"); err != nil {
		t.Fatal(err)
	}
	for _, o := range [][]memphis.ProduceOpt{
		{memphis.AckWaitSec(15)},
		{memphis.AckWaitSec(15), memphis.MsgHeaders(hdrs)},
		{memphis.AckWaitSec(15), memphis.AsyncProduce()},
		{memphis.AckWaitSec(15), memphis.SyncProduce()},
		{memphis.AckWaitSec(15), memphis.MsgId("343")},
		{memphis.ProducerPartitionKey("2ndPartition")},
		{memphis.ProducerPartitionNumber(1)},
	} {
		if err := p0.Produce([]byte("My Message :)"), o...); err != nil {
			t.Fatal(err)
		}
	}
	if err := p0.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p1.Produce([]byte("from p1")); err != nil {
		t.Fatal(err)
	}

	// Creating a Consumer, with every ConsumerOpt.
	consumer0, err := s0.CreateConsumer("consumer-name",
		memphis.ConsumerGroup("consumer-group"),
		memphis.PullInterval(1*time.Second),
		memphis.BatchSize(10),
		memphis.BatchMaxWaitTime(5*time.Second),
		memphis.MaxAckTime(30*time.Second),
		memphis.MaxMsgDeliveries(10),
		memphis.ConsumerErrorHandler(func(*memphis.Consumer, error) {}),
		memphis.StartConsumeFromSeq(1),
		memphis.LastMessages(-1),
	)
	if err != nil {
		t.Fatal(err)
	}
	consumer1, err := c.CreateConsumer(station, "consumer-name-1", memphis.ConsumerGenUniqueSuffix(),
		memphis.StartConsumeFromSequence(1))
	if err != nil {
		t.Fatal(err)
	}
	// The README's MaxMsgDeliveries(100) is accepted; the broker caps it at 10.
	if _, err := c.CreateConsumer(station, "MyNewConsumer",
		memphis.PullInterval(10*time.Second),
		memphis.BatchSize(100),
		memphis.BatchMaxWaitTime(15*time.Second),
		memphis.MaxMsgDeliveries(100),
	); err != nil {
		t.Fatal(err)
	}

	// Passing a context to a message handler, and processing messages.
	ctx := context.Background()
	ctx = context.WithValue(ctx, ctxKey("key"), "value")
	consumer0.SetContext(ctx)
	received := make(chan string, 100)
	handler := func(msgs []*memphis.Msg, err error, ctx context.Context) {
		if err != nil {
			fmt.Printf("Fetch failed: %v", err)
			return
		}
		for _, msg := range msgs {
			received <- string(msg.Data())
			v, _ := msg.DataDeserialized()
			_ = v
			msg.Ack()
		}
	}
	if err := consumer0.Consume(handler,
		memphis.ConsumerPartitionKey("key"),
	); err != nil {
		t.Fatal(err)
	}
	select {
	case <-received:
	case <-time.After(10 * time.Second):
		t.Fatal("the README's handler got nothing")
	}
	consumer0.StopConsume()

	// Fetch a single batch, from the Conn with every FetchOpt, and from a consumer.
	msgs, err := c.FetchMessages(station, "fetcher",
		memphis.FetchBatchSize(10),
		memphis.FetchConsumerGroup("fetch-group"),
		memphis.FetchBatchMaxWaitTime(1*time.Second),
		memphis.FetchMaxAckTime(30*time.Second),
		memphis.FetchMaxMsgDeliveries(10),
		memphis.FetchConsumerErrorHandler(func(*memphis.Consumer, error) {}),
		memphis.FetchStartConsumeFromSeq(1),
		memphis.FetchLastMessages(-1),
		memphis.FetchPartitionKey("key"),
	)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("FetchMessages: %d, %v", len(msgs), err)
	}
	if _, err := c.FetchMessages(station, "fetcher-2", memphis.FetchConsumerGenUniqueSuffix(),
		memphis.FetchPartitionNumber(1), memphis.FetchPrefetch(), memphis.FetchBatchMaxWaitTime(100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	msgs, err = consumer1.Fetch(10,
		true,
		memphis.ConsumerPartitionKey("key"),
	)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("consumer.Fetch: %d, %v", len(msgs), err)
	}
	message := msgs[0]
	message.Ack()
	msg := msgs[len(msgs)-1]
	headers := msg.GetHeaders()
	_ = headers
	sequenceNumber, err := msg.GetSequenceNumber()
	if err != nil || sequenceNumber == 0 {
		t.Fatalf("GetSequenceNumber: %d, %v", sequenceNumber, err)
	}
	msg.Delay(time.Millisecond)

	// Schemas: creating one needs a file (see the Schemaverse tests); here
	// the calls the README shows, on a schema that does not exist.
	if err := c.EnforceSchema("no-such-schema", station); !errors.Is(err, memphis.ErrSchemaNotFound) {
		t.Fatalf("EnforceSchema: %v", err)
	}
	if err := c.AttachSchema("no-such-schema", station); !errors.Is(err, memphis.ErrSchemaNotFound) {
		t.Fatalf("AttachSchema: %v", err)
	}
	if err := c.DetachSchema(station); err != nil {
		t.Fatalf("DetachSchema: %v", err)
	}

	// Destroying.
	if err := consumer1.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := consumer0.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := p0.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := s1.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := s0.Destroy(); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

type ctxKey string

// TestSeedReadmeOptionsDoWhatTheySay checks what the options the Go README
// documents do, not only that TestSeedReadme's calls succeed. Options
// checked elsewhere: MsgId (TestMsgIdDeduplicates), Delay and Nack
// (TestNackDelayAndDeliveryCount), partition keys and numbers
// (TestPartitionRouting), StartConsumeFromSeq and LastMessages
// (TestStartPositions), ConsumerGroup (TestConsumerGroupSharesMessages),
// MaxMsgDeliveries and DlsStation (TestDeadLetterReachesTheDLSStation),
// SendSchemaFailedMsgToDls (TestSchemaDeadLetter), ConsumerErrorHandler
// (TestEachConsumeFailureReachesOneDestination), SetContext
// (TestSetContextReachesEveryCall), AsyncProduce and Flush
// (TestAsyncProduceFlushAndErrors), Timeout
// (TestConnectUnreachableHostFailsWithinTimeout), MaxReconnect
// (TestConsumerReportsAConnectionThatGaveUp).
func TestSeedReadmeOptionsDoWhatTheySay(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	tap := newWiretap(t, b)

	t.Run("station options shape its streams", func(t *testing.T) {
		name := testenv.Name(t, "readme-opts")
		s, err := c.CreateStation(name,
			memphis.RetentionTypeOpt(memphis.Messages),
			memphis.RetentionVal(10),
			memphis.StorageTypeOpt(memphis.Memory),
			memphis.Replicas(1),
			memphis.IdempotencyWindow(3*time.Second),
			memphis.PartitionsNumber(3),
		)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Destroy() })
		nc := b.NATS(t)
		for part := 1; part <= 4; part++ {
			reply, err := nc.Request("$JS.API.STREAM.INFO."+wire.StreamName(wire.InternalName(name), part), nil, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var info struct {
				Config struct {
					MaxMsgs   int64         `json:"max_msgs"`
					MaxAge    time.Duration `json:"max_age"`
					Storage   string        `json:"storage"`
					Replicas  int           `json:"num_replicas"`
					Duplicate time.Duration `json:"duplicate_window"`
				} `json:"config"`
				Error *struct{ Code int } `json:"error"`
			}
			if err := json.Unmarshal(reply.Data, &info); err != nil {
				t.Fatal(err)
			}
			if part == 4 {
				if info.Error == nil {
					t.Error("PartitionsNumber(3) made a fourth partition")
				}
				continue
			}
			cfg := info.Config
			if info.Error != nil || cfg.MaxMsgs != 10 || cfg.MaxAge != 0 || cfg.Storage != "memory" || cfg.Replicas != 1 || cfg.Duplicate != 3*time.Second {
				t.Errorf("partition %d: %s, want 10 messages kept in memory, one replica, a 3s idempotency window", part, reply.Data)
			}
		}
	})

	// requests returns the names and groups of the producers and consumers
	// the SDK asked the broker to create on station since mark.
	requests := func(t *testing.T, mark int, station string) (producers, consumers, groups []string) {
		t.Helper()
		fence := testenv.Name(t, "readme-fence")
		fs, err := c.CreateStation(fence)
		if err != nil {
			t.Fatal(err)
		}
		if err := fs.Destroy(); err != nil {
			t.Fatal(err)
		}
		for _, s := range tap.until(t, mark, fence) {
			subject, body, _ := strings.Cut(s, " ")
			var req struct {
				Name    string `json:"name"`
				Station string `json:"station_name"`
				Group   string `json:"consumers_group"`
			}
			if json.Unmarshal([]byte(body), &req) != nil || req.Station != station {
				continue
			}
			switch subject {
			case wire.SubjProducerCreations:
				producers = append(producers, req.Name)
			case wire.SubjConsumerCreations:
				consumers = append(consumers, req.Name)
				groups = append(groups, req.Group)
			}
		}
		return producers, consumers, groups
	}
	t.Run("unique suffixes", func(t *testing.T) {
		station := testenv.Name(t, "readme-suffix")
		mark := tap.mark()
		for range 2 {
			mustProducer(t, c, station, "legacy", memphis.ProducerGenUniqueSuffix())
			mustConsumer(t, c, station, "consumer-name-1", memphis.ConsumerGenUniqueSuffix())
			if _, err := c.FetchMessages(station, "fetcher-2", memphis.FetchConsumerGenUniqueSuffix(),
				memphis.FetchBatchMaxWaitTime(time.Millisecond)); err != nil {
				t.Fatal(err)
			}
		}
		producers, consumers, groups := requests(t, mark, station)
		suffixed := func(what, base string, names []string, want int) {
			t.Helper()
			re := regexp.MustCompile("^" + base + "_[0-9a-f]{8}$")
			seen := map[string]bool{}
			for _, n := range names {
				if re.MatchString(n) {
					seen[n] = true
				}
			}
			if len(seen) != want {
				t.Errorf("%s: created %q, want %d distinct %s_<8 hex digits> names", what, names, want, base)
			}
		}
		suffixed("ProducerGenUniqueSuffix", "legacy", producers, 2)
		suffixed("ConsumerGenUniqueSuffix", "consumer-name-1", consumers, 2)
		// FetchMessages creates its consumer once and reuses it: the suffix
		// is drawn once per connection, not per call.
		suffixed("FetchConsumerGenUniqueSuffix", "fetcher-2", consumers, 1)
		for i := range consumers {
			if groups[i] != consumers[i] {
				t.Errorf("consumer %s joined group %s, want a group of its own name", consumers[i], groups[i])
			}
		}
	})

	t.Run("headers, batch size and batch wait", func(t *testing.T) {
		station := testenv.Name(t, "readme-batch")
		p := mustProducer(t, c, station, "p")
		hdrs := memphis.Headers{}
		hdrs.New()
		if err := hdrs.Add("key", "value"); err != nil {
			t.Fatal(err)
		}
		produceN(t, p, 10, "b", memphis.MsgHeaders(hdrs))
		cons := mustConsumer(t, c, station, "c", memphis.BatchSize(3), memphis.BatchMaxWaitTime(500*time.Millisecond))
		col := newCollector()
		largest := 0
		var mu sync.Mutex
		if err := cons.Consume(func(msgs []*memphis.Msg, err error, ctx context.Context) {
			mu.Lock()
			largest = max(largest, len(msgs))
			mu.Unlock()
			for _, m := range msgs {
				if v := m.GetHeaders()["key"]; v != "value" {
					t.Errorf("header key = %q, want value", v)
				}
			}
			col.handler(msgs, err, ctx)
		}); err != nil {
			t.Fatal(err)
		}
		col.wait(t, 10, 10*time.Second)
		cons.StopConsume()
		mu.Lock()
		if largest > 3 {
			t.Errorf("BatchSize(3): a handler call got %d messages", largest)
		}
		mu.Unlock()
		// With nothing left, Fetch waits out BatchMaxWaitTime, and no more.
		start := time.Now()
		msgs, err := cons.Fetch(3, false)
		took := time.Since(start)
		if err != nil || len(msgs) != 0 {
			t.Fatalf("fetch from an empty station: %d, %v", len(msgs), err)
		}
		if took < 400*time.Millisecond || took > 5*time.Second {
			t.Errorf("an empty fetch took %v, want about the 500ms BatchMaxWaitTime", took)
		}
	})

	t.Run("MaxAckTime", func(t *testing.T) {
		station := testenv.Name(t, "readme-ack")
		produceN(t, mustProducer(t, c, station, "p"), 1, "a")
		cons := mustConsumer(t, c, station, "c", memphis.MaxAckTime(time.Second), memphis.BatchMaxWaitTime(3*time.Second))
		first, err := cons.Fetch(1, false)
		if err != nil || len(first) != 1 {
			t.Fatalf("fetch: %d, %v", len(first), err)
		}
		start := time.Now() // not acked: it comes again after MaxAckTime
		again, err := cons.Fetch(1, false)
		took := time.Since(start)
		if err != nil || len(again) != 1 {
			t.Fatalf("fetch after MaxAckTime: %d, %v", len(again), err)
		}
		if n, _ := again[0].DeliveryCount(); n != 2 || took < 800*time.Millisecond {
			t.Errorf("delivered again after %v (delivery %d), want after the 1s MaxAckTime", took, n)
		}
		_ = again[0].Ack()
	})
}

// TestReadmeDefaultsTable checks the README's Defaults table against the
// Default constants: each row's default starts with its constant's value.
func TestReadmeDefaultsTable(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "\n## Defaults\n")
	if start < 0 {
		t.Fatal("README has no Defaults section")
	}
	section = section[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	secs := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'g', -1, 64) + " s" }
	want := map[string]string{
		"DefaultPort":              strconv.Itoa(memphis.DefaultPort),
		"DefaultAccountID":         strconv.Itoa(memphis.DefaultAccountID),
		"DefaultReconnect":         strconv.FormatBool(memphis.DefaultReconnect),
		"DefaultMaxReconnect":      strconv.Itoa(memphis.DefaultMaxReconnect) + ": forever",
		"DefaultReconnectInterval": secs(memphis.DefaultReconnectInterval),
		"DefaultPingInterval":      secs(memphis.DefaultPingInterval),
		"DefaultMaxPingsOut":       strconv.Itoa(memphis.DefaultMaxPingsOut),
		"DefaultTimeout":           secs(memphis.DefaultTimeout),
		"DefaultRequestTimeout":    secs(memphis.DefaultRequestTimeout),
		"DefaultMaxPending":        strconv.Itoa(memphis.DefaultMaxPending),
		"DefaultCloseTimeout":      secs(memphis.DefaultCloseTimeout),
		"DefaultRetentionType": "`" + map[memphis.RetentionType]string{memphis.MaxMessageAgeSeconds: "MaxMessageAgeSeconds",
			memphis.Messages: "Messages", memphis.Bytes: "Bytes", memphis.AckBased: "AckBased"}[memphis.DefaultRetentionType] + "`",
		"DefaultRetentionValue":           strconv.Itoa(memphis.DefaultRetentionValue),
		"DefaultStorageType":              "`" + map[memphis.StorageType]string{memphis.Disk: "Disk", memphis.Memory: "Memory"}[memphis.DefaultStorageType] + "`",
		"DefaultReplicas":                 strconv.Itoa(memphis.DefaultReplicas),
		"DefaultIdempotencyWindow":        strconv.FormatFloat(memphis.DefaultIdempotencyWindow.Minutes(), 'g', -1, 64) + " min",
		"DefaultPartitionsNumber":         strconv.Itoa(memphis.DefaultPartitionsNumber),
		"DefaultSendPoisonMsgToDls":       strconv.FormatBool(memphis.DefaultSendPoisonMsgToDls),
		"DefaultSendSchemaFailedMsgToDls": strconv.FormatBool(memphis.DefaultSendSchemaFailedMsgToDls),
		"DefaultTieredStorageEnabled":     strconv.FormatBool(memphis.DefaultTieredStorageEnabled),
		"DefaultAckWaitSec":               strconv.Itoa(memphis.DefaultAckWaitSec) + " s",
		"DefaultAckWait":                  fmt.Sprint(memphis.DefaultAckWait.Seconds()) + " s",
		"DefaultAsyncProduce":             map[bool]string{false: "sync", true: "async"}[memphis.DefaultAsyncProduce],
		"DefaultPullInterval":             secs(memphis.DefaultPullInterval),
		"DefaultBatchSize":                strconv.Itoa(memphis.DefaultBatchSize),
		"DefaultBatchMaxWaitTime":         secs(memphis.DefaultBatchMaxWaitTime),
		"DefaultMaxAckTime":               secs(memphis.DefaultMaxAckTime),
		"DefaultMaxMsgDeliveries":         strconv.Itoa(memphis.DefaultMaxMsgDeliveries),
		"DefaultStartConsumeFromSeq":      "sequence " + strconv.FormatUint(memphis.DefaultStartConsumeFromSeq, 10),
		"DefaultLastMessages":             strconv.FormatInt(memphis.DefaultLastMessages, 10),
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 6 {
			continue
		}
		value, constant := strings.TrimSpace(cells[3]), strings.TrimSpace(cells[4])
		name, _, ok := strings.Cut(strings.TrimPrefix(constant, "`"), "`")
		if !ok || !strings.HasPrefix(name, "Default") {
			continue
		}
		w, known := want[name]
		if !known {
			t.Errorf("the README names %s, which this test does not know", name)
			continue
		}
		seen[name] = true
		if !strings.HasPrefix(value, w) {
			t.Errorf("README: %s is %q, the constant says %q", name, value, w)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("the README's Defaults table has no row for %s", name)
		}
	}
}
