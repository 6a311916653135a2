package memphis_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
	"github.com/memphisdev/memphis.go/internal/wire"
)

// wiretap records every control request and every produced message that
// reaches the broker, seen from a second connection, so a test can prove
// that a locally refused call sent nothing.
type wiretap struct {
	mu   sync.Mutex
	seen []string
	news chan struct{}
}

// The tap sees every client of the broker, so on a shared real broker
// nothing else may use it meanwhile (make integration runs one package at
// a time).
func newWiretap(t *testing.T, b *testenv.Broker) *wiretap {
	w := &wiretap{news: make(chan struct{}, 1)}
	nc := b.NATS(t)
	// Only what an SDK sends counts: control requests and reports, station
	// publishes and JetStream API calls. Brokers publish on other subjects
	// of their own (the real one logs to $memphis_syslogs.>).
	sdkSubjects := map[string]bool{}
	for _, s := range []string{
		wire.SubjStationCreations, wire.SubjStationDestructions, wire.SubjProducerCreations,
		wire.SubjProducerDestructions, wire.SubjConsumerCreations, wire.SubjConsumerDestructions,
		wire.SubjSchemaCreations, wire.SubjSchemaAttachments, wire.SubjSchemaDetachments,
		wire.SubjNackedDLS, wire.SubjSchemaverseDLS, wire.SubjPMAcks, wire.SubjNotifications,
	} {
		sdkSubjects[s] = true
	}
	_, err := nc.Subscribe(">", func(m *nats.Msg) {
		if !sdkSubjects[m.Subject] && !testenv.IsStationPublish(m.Subject) && !strings.HasPrefix(m.Subject, "$JS.API.") {
			return
		}
		w.mu.Lock()
		w.seen = append(w.seen, m.Subject+" "+string(m.Data))
		w.mu.Unlock()
		select {
		case w.news <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

// since returns what reached the broker after mark, up to and excluding the
// fence request: the SDK connection sends the fence after the call under
// test, and one connection's messages arrive in order.
func (w *wiretap) until(t *testing.T, mark int, fence string) []string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		w.mu.Lock()
		seen := append([]string(nil), w.seen[mark:]...)
		w.mu.Unlock()
		for i, s := range seen {
			if strings.HasPrefix(s, wire.SubjStationDestructions) && strings.Contains(s, fence) {
				return seen[:i]
			}
		}
		select {
		case <-w.news:
		case <-deadline:
			t.Fatalf("the fence request %s never reached the broker", fence)
		}
	}
}

func (w *wiretap) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen)
}

// badInput is one call that must fail with want.
type badInput struct {
	name string
	want error
	// remote: the check needs the broker (credentials, reachability).
	remote bool
	call   func(e *badEnv) error
}

// badEnv is what the calls work with.
type badEnv struct {
	t        *testing.T
	b        *testenv.Broker
	conn     *memphis.Conn
	station  *memphis.Station // three partitions
	producer *memphis.Producer
	consumer *memphis.Consumer
	// connect replaces memphis.Connect in the connect rows when set (to add
	// hooks, say).
	connect func(host, user string, opts ...memphis.Option) (*memphis.Conn, error)
}

// newBadEnv creates the three-partition station the rows use, with its
// producer and consumer, on conn.
func newBadEnv(t *testing.T, b *testenv.Broker, conn *memphis.Conn, stationName string) *badEnv {
	t.Helper()
	station, err := conn.CreateStation(stationName, memphis.PartitionsNumber(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = station.Destroy() })
	producer, err := station.CreateProducer("bad-input-producer")
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := station.CreateConsumer("bad-input-reader")
	if err != nil {
		t.Fatal(err)
	}
	return &badEnv{t: t, b: b, conn: conn, station: station, producer: producer, consumer: consumer}
}

// dial is how the connect rows connect.
func (e *badEnv) dial(host, user string, opts ...memphis.Option) (*memphis.Conn, error) {
	if e.connect != nil {
		return e.connect(host, user, opts...)
	}
	return memphis.Connect(host, user, opts...)
}

func connectWith(e *badEnv, opts ...memphis.Option) error {
	c, err := e.dial(e.b.Host, e.b.Username, append(credentials(e.b), opts...)...)
	if err == nil {
		c.Close()
	}
	return err
}

func newConsumer(e *badEnv, opts ...memphis.ConsumerOpt) error {
	_, err := e.station.CreateConsumer("bad-input-consumer", opts...)
	return err
}

func badInputs() []badInput {
	ok := []byte("ok")
	return []badInput{
		// Connecting.
		{name: "connect/empty host", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.dial("", "root", memphis.Password("x"))
			return err
		}},
		{name: "connect/empty username", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.dial(e.b.Host, "", memphis.Password("x"))
			return err
		}},
		{name: "connect/no password or token", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.dial(e.b.Host, "root", memphis.Port(e.b.Port))
			return err
		}},
		{name: "connect/password and token", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.dial(e.b.Host, "root", memphis.Password("x"), memphis.ConnectionToken("y"))
			return err
		}},
		{name: "connect/port zero", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return connectWith(e, memphis.Port(0))
		}},
		{name: "connect/port too large", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return connectWith(e, memphis.Port(70000))
		}},
		{name: "connect/negative timeout", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return connectWith(e, memphis.Timeout(-time.Second))
		}},
		{name: "connect/negative reconnect interval", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return connectWith(e, memphis.ReconnectInterval(-time.Second))
		}},
		{name: "connect/zero max pending", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return connectWith(e, memphis.MaxPending(0))
		}},
		{name: "connect/tls without key and ca", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return connectWith(e, memphis.Tls("cert.pem", "", ""))
		}},
		{name: "connect/zero ping interval", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return connectWith(e, memphis.PingInterval(0))
		}},
		{name: "connect/zero max pings out", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return connectWith(e, memphis.MaxPingsOut(0))
		}},
		{name: "connect/credentials in the host", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.dial("nats://"+e.b.Username+":"+canary+"@"+e.b.Host, e.b.Username, memphis.Password(canary))
			return err
		}},
		{name: "connect/hook implementing no hook interface", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return connectWith(e, memphis.Hooks("not a hook"))
		}},
		{name: "connect/wrong password", want: memphis.ErrAuthorization, remote: true, call: func(e *badEnv) error {
			_, err := e.dial(e.b.Host, e.b.Username, memphis.Port(e.b.Port), memphis.Password(canary))
			return err
		}},
		{name: "connect/wrong token", want: memphis.ErrAuthorization, remote: true, call: func(e *badEnv) error {
			// A broker in password mode refuses any token.
			_, err := e.dial(e.b.Host, e.b.Username, memphis.Port(e.b.Port), memphis.ConnectionToken(canary))
			return err
		}},
		{name: "connect/unknown user", want: memphis.ErrAuthorization, remote: true, call: func(e *badEnv) error {
			_, err := e.dial(e.b.Host, "nosuchuser", memphis.Port(e.b.Port), memphis.Password("x"))
			return err
		}},
		{name: "connect/unreachable host", want: memphis.ErrNoServers, remote: true, call: func(e *badEnv) error {
			_, err := e.dial("127.0.0.1", "root", memphis.Password("x"), memphis.Port(1),
				memphis.Timeout(200*time.Millisecond))
			return err
		}},

		// Stations.
		{name: "station/empty name", want: memphis.ErrInvalidName, call: func(e *badEnv) error {
			_, err := e.conn.CreateStation("")
			return err
		}},
		{name: "station/name too long", want: memphis.ErrInvalidName, call: func(e *badEnv) error {
			_, err := e.conn.CreateStation(strings.Repeat("a", 129))
			return err
		}},
		{name: "station/bad characters", want: memphis.ErrInvalidName, call: func(e *badEnv) error {
			_, err := e.conn.CreateStation("no spaces!")
			return err
		}},
		{name: "station/leading dash", want: memphis.ErrInvalidName, call: func(e *badEnv) error {
			_, err := e.conn.CreateStation("-orders")
			return err
		}},
		{name: "station/zero retention", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.conn.CreateStation("bad-input-x", memphis.RetentionVal(0))
			return err
		}},
		{name: "station/unknown retention type", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.conn.CreateStation("bad-input-x", memphis.RetentionTypeOpt(memphis.RetentionType(42)))
			return err
		}},
		{name: "station/unknown storage type", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.conn.CreateStation("bad-input-x", memphis.StorageTypeOpt(memphis.StorageType(42)))
			return err
		}},
		{name: "station/zero replicas", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.conn.CreateStation("bad-input-x", memphis.Replicas(0))
			return err
		}},
		{name: "station/six replicas", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.conn.CreateStation("bad-input-x", memphis.Replicas(6))
			return err
		}},
		{name: "station/negative partitions", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.conn.CreateStation("bad-input-x", memphis.PartitionsNumber(-1))
			return err
		}},
		{name: "station/too many partitions", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.conn.CreateStation("bad-input-x", memphis.PartitionsNumber(memphis.MaxPartitionsNumber+1))
			return err
		}},
		{name: "station/negative idempotency window", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.conn.CreateStation("bad-input-x", memphis.IdempotencyWindow(-time.Second))
			return err
		}},
		{name: "station/idempotency window below minimum", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.conn.CreateStation("bad-input-x", memphis.IdempotencyWindow(time.Millisecond))
			return err
		}},
		{name: "station/idempotency window beyond retention", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.conn.CreateStation("bad-input-x", memphis.RetentionVal(60), memphis.IdempotencyWindow(2*time.Minute))
			return err
		}},
		{name: "station/negative timeout retry", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.conn.CreateStation("bad-input-x", memphis.StationTimeoutRetry(-1))
			return err
		}},
		{name: "station/destroy with negative timeout retry", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return e.station.Destroy(memphis.TimeoutRetry(-1))
		}},
		{name: "station/bad schema name", want: memphis.ErrInvalidName, call: func(e *badEnv) error {
			_, err := e.conn.CreateStation("bad-input-x", memphis.SchemaName("no spaces!"))
			return err
		}},
		{name: "station/bad dls station", want: memphis.ErrInvalidName, call: func(e *badEnv) error {
			_, err := e.conn.CreateStation("bad-input-x", memphis.DlsStation("no spaces!"))
			return err
		}},

		// Producing.
		{name: "producer/empty name", want: memphis.ErrInvalidName, call: func(e *badEnv) error {
			_, err := e.station.CreateProducer("")
			return err
		}},
		{name: "producer/bad station name", want: memphis.ErrInvalidName, call: func(e *badEnv) error {
			_, err := e.conn.CreateProducer("no spaces!", "p")
			return err
		}},
		{name: "producer/no stations", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.conn.CreateMultiStationProducer(nil, "p")
			return err
		}},
		{name: "producer/station of another type", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.conn.CreateProducer(42, "p")
			return err
		}},
		{name: "producer/nil station", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.conn.CreateProducer(nil, "p")
			return err
		}},
		{name: "producer/negative timeout retry", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.station.CreateProducer("p", memphis.ProducerTimeoutRetry(-1))
			return err
		}},
		{name: "produce/conn station of another type", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return e.conn.Produce([]any{e.station.Name}, "p", ok, nil, nil)
		}},
		{name: "produce/reserved header in the map", want: memphis.ErrReservedHeader, call: func(e *badEnv) error {
			h := memphis.Headers{MsgHeaders: map[string][]string{"trace": {"1"}, "$memphis_connectionId": {"forged"}}}
			return e.producer.Produce(ok, memphis.MsgHeaders(h))
		}},
		{name: "produce/empty header key in the map", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			h := memphis.Headers{MsgHeaders: map[string][]string{"": {"v"}}}
			return e.producer.Produce(ok, memphis.MsgHeaders(h))
		}},
		{name: "produce/empty message id", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return e.producer.Produce(ok, memphis.MsgId(""))
		}},
		{name: "produce/empty message id through the cache", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return e.conn.Produce(e.station.Name, "bad-input-producer", ok, nil, []memphis.ProduceOpt{memphis.MsgId("")})
		}},
		{name: "produce/reserved header", want: memphis.ErrReservedHeader, call: func(e *badEnv) error {
			var h memphis.Headers
			return h.Add("$memphis_producedBy", "me")
		}},
		{name: "produce/empty header key", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			var h memphis.Headers
			return h.Add("", "v")
		}},
		{name: "produce/partition out of range", want: memphis.ErrPartitionNotFound, call: func(e *badEnv) error {
			return e.producer.Produce(ok, memphis.ProducerPartitionNumber(4))
		}},
		{name: "produce/negative partition", want: memphis.ErrPartitionNotFound, call: func(e *badEnv) error {
			return e.producer.Produce(ok, memphis.ProducerPartitionNumber(-1))
		}},
		{name: "produce/partition key and number", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return e.producer.Produce(ok, memphis.ProducerPartitionKey("k"), memphis.ProducerPartitionNumber(1))
		}},
		{name: "produce/zero ack wait", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return e.producer.Produce(ok, memphis.AckWaitSec(0))
		}},
		{name: "produce/negative ack wait duration", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return e.producer.Produce(ok, memphis.AckWait(-time.Second))
		}},
		{name: "produce/unsupported type", want: memphis.ErrInvalidMessage, call: func(e *badEnv) error {
			return e.producer.Produce(42)
		}},
		{name: "produce/nil message", want: memphis.ErrInvalidMessage, call: func(e *badEnv) error {
			return e.producer.Produce(nil)
		}},
		{name: "produce/over max payload", want: memphis.ErrMessageTooLarge, call: func(e *badEnv) error {
			return e.producer.Produce(make([]byte, 9<<20))
		}},
		{name: "produce/nil done callback", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return e.producer.ProduceAsync(context.Background(), ok, nil)
		}},
		{name: "produce/cancelled context", want: context.Canceled, call: func(e *badEnv) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return e.producer.ProduceContext(ctx, ok)
		}},

		// Consuming.
		{name: "consumer/empty name", want: memphis.ErrInvalidName, call: func(e *badEnv) error {
			_, err := e.station.CreateConsumer("")
			return err
		}},
		{name: "consumer/bad group", want: memphis.ErrInvalidName, call: func(e *badEnv) error {
			return newConsumer(e, memphis.ConsumerGroup("no spaces!"))
		}},
		{name: "consumer/zero batch", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return newConsumer(e, memphis.BatchSize(0))
		}},
		{name: "consumer/batch too large", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return newConsumer(e, memphis.BatchSize(memphis.MaxBatchSize+1))
		}},
		{name: "consumer/zero batch wait", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return newConsumer(e, memphis.BatchMaxWaitTime(0))
		}},
		{name: "consumer/negative pull interval", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return newConsumer(e, memphis.PullInterval(-time.Second))
		}},
		{name: "consumer/zero max ack time", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return newConsumer(e, memphis.MaxAckTime(0))
		}},
		{name: "consumer/zero max deliveries", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return newConsumer(e, memphis.MaxMsgDeliveries(0))
		}},
		{name: "consumer/start sequence zero", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return newConsumer(e, memphis.StartConsumeFromSeq(0))
		}},
		{name: "consumer/start sequence and last messages", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return newConsumer(e, memphis.StartConsumeFromSeq(5), memphis.LastMessages(3))
		}},
		{name: "consumer/last messages below -1", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return newConsumer(e, memphis.LastMessages(-2))
		}},
		{name: "consumer/negative timeout retry", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return newConsumer(e, memphis.ConsumerTimeoutRetry(-1))
		}},
		{name: "fetch/zero batch", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.consumer.Fetch(0, false)
			return err
		}},
		{name: "fetch/batch too large", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.consumer.Fetch(memphis.MaxBatchSize+1, false)
			return err
		}},
		{name: "fetch/partition out of range", want: memphis.ErrPartitionNotFound, call: func(e *badEnv) error {
			_, err := e.consumer.Fetch(1, false, memphis.ConsumerPartitionNumber(9))
			return err
		}},
		{name: "fetchmessages/zero batch", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			_, err := e.conn.FetchMessages(e.station.Name, "c", memphis.FetchBatchSize(0))
			return err
		}},
		{name: "consume/nil handler", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return e.consumer.Consume(nil)
		}},
		{name: "consume/partition key and number", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return e.consumer.Consume(func([]*memphis.Msg, error, context.Context) {},
				memphis.ConsumerPartitionKey("k"), memphis.ConsumerPartitionNumber(1))
		}},

		// Schemas.
		{name: "schema/unknown type", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return e.conn.CreateSchema("bad-input-schema", "xml", "testdata/schemas/person.json")
		}},
		{name: "schema/missing file", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return e.conn.CreateSchema("bad-input-schema", memphis.SchemaTypeJSON, "testdata/no-such-file.json")
		}},
		{name: "schema/bad name", want: memphis.ErrInvalidName, call: func(e *badEnv) error {
			return e.conn.CreateSchema("no spaces!", memphis.SchemaTypeJSON, "testdata/schemas/person.json")
		}},
		{name: "schema/enforce on bad station", want: memphis.ErrInvalidName, call: func(e *badEnv) error {
			return e.conn.EnforceSchema("person", "no spaces!")
		}},
		{name: "schema/detach with negative timeout retry", want: memphis.ErrInvalidOption, call: func(e *badEnv) error {
			return e.conn.DetachSchema(e.station.Name, memphis.TimeoutRetry(-1))
		}},
	}
}

// TestBadInputTable feeds the API bad input: each call fails with its
// sentinel, within a bound, without a panic ("no panics": a panic is
// recovered and reported as this case's failure), and calls refused
// locally send nothing.
func TestBadInputTable(t *testing.T) {
	b := testenv.Start(t)
	conn := connect(t, b)
	tap := newWiretap(t, b)
	e := newBadEnv(t, b, conn, testenv.Name(t, "bad-input"))
	fence, err := conn.CreateStation(testenv.Name(t, "bad-input-fence"))
	if err != nil {
		t.Fatal(err)
	}
	// The tap may hear the set-up late (the broker's own JetStream calls
	// come on its connection): wait for all of it, so that no case is
	// blamed for it. The second destruction request is sent after the
	// first was handled, stream deletion included.
	for range 2 {
		if err := fence.Destroy(); err != nil {
			t.Fatal(err)
		}
	}
	first := tap.until(t, 0, fence.Name)
	tap.until(t, len(first)+1, fence.Name)

	cases := badInputs()
	if len(cases) < 40 {
		t.Fatalf("only %d bad inputs", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mark := tap.mark()
			start := time.Now()
			err := func() (err error) {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("panicked: %v", p)
					}
				}()
				return tc.call(e)
			}()
			took := time.Since(start)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "memphis: ") && tc.want != context.Canceled {
				t.Errorf("error %q does not start with memphis:", err)
			}
			// Secrets passed in are never repeated, however the error is printed.
			noCanary(t, "the error", printings(err)...)
			// A refused call that waited on the broker would wait for one of
			// its timeouts (seconds); a second leaves room for a loaded
			// machine (a 9 MB message took 120 ms to build under -race and
			// CPU load) and still tells the two apart. The wiretap below is
			// the proof that nothing was sent.
			limit := time.Second
			if tc.remote {
				limit = 5 * time.Second
			}
			if took > limit {
				t.Errorf("took %v, want under %v", took, limit)
			}
			if tc.remote {
				return
			}
			if err := fence.Destroy(); err != nil {
				t.Fatal(err)
			}
			if sent := tap.until(t, mark, fence.Name); len(sent) > 0 {
				t.Errorf("a call refused locally sent %d messages: %q", len(sent), sent)
			}
		})
	}
}
