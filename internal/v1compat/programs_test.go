package v1compat

//lint:file-ignore SA1019 this package exists to use the 1.x API, deprecated parts included

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func connect(t *testing.T) *memphis.Conn {
	t.Helper()
	b := testenv.Start(t)
	opts := []memphis.Option{memphis.Port(b.Port)}
	if b.Token != "" {
		opts = append(opts, memphis.ConnectionToken(b.Token))
	} else {
		opts = append(opts, memphis.Password(b.Password))
	}
	conn, err := memphis.Connect(b.Host, b.Username, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}

// station returns a fresh station name, destroyed when the test ends.
func station(t *testing.T, conn *memphis.Conn, prefix string) string {
	name := testenv.Name(t, prefix)
	t.Cleanup(func() {
		if s, err := conn.CreateStation(name); err == nil {
			_ = s.Destroy()
		}
	})
	return name
}

func TestStationSettings(t *testing.T) {
	conn := connect(t)
	name := station(t, conn, "v1-settings")
	got, err := StationSettings(conn, name)
	if err != nil {
		t.Fatal(err)
	}
	want := name + ` partitions=2 retention=messages/1000 storage=memory replicas=1 idempotency=2m0s schema="" dls="" tiered=false poison=true schemaverse=false`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestStationFromDefaults(t *testing.T) {
	conn := connect(t)
	name := station(t, conn, "v1-defaults")
	s, err := StationFromDefaults(conn, name, 3)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != name || s.PartitionsNumber != 3 || s.RetentionValue != memphis.DefaultRetentionValue {
		t.Errorf("station %q, %d partitions, retention %d", s.Name, s.PartitionsNumber, s.RetentionValue)
	}
}

func TestClientNames(t *testing.T) {
	conn := connect(t)
	got, err := ClientNames(conn, station(t, conn, "v1-names"))
	if err != nil {
		t.Fatal(err)
	}
	want := "conn=36 producer=orders-writer consumer=orders-reader group=billing pull=500ms batch=20 wait=1s ack=45s deliveries=4 start=1 last=-1"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestFanOut(t *testing.T) {
	conn := connect(t)
	a, b := station(t, conn, "v1-fan-a"), station(t, conn, "v1-fan-b")
	if err := FanOut(conn, []string{a, b}, []byte("event")); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{a, b} {
		msgs, err := conn.FetchMessages(s, "counter", memphis.FetchBatchMaxWaitTime(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 3 {
			t.Errorf("%s holds %d messages, want 3 (producer, list through the cache, one by one)", s, len(msgs))
		}
	}
}

func TestHeadersRoundTrip(t *testing.T) {
	conn := connect(t)
	got, err := HeadersRoundTrip(conn, station(t, conn, "v1-headers"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "msg-id=m-1 tags=red,blue trace-id=abc | m-1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSchemaLifecycle(t *testing.T) {
	conn := connect(t)
	if err := SchemaLifecycle(conn, station(t, conn, "v1-schema"), testenv.Name(t, "v1-person"), "../../testdata/schemas/person.json"); err != nil {
		t.Fatal(err)
	}
}

func TestKeyRouting(t *testing.T) {
	conn := connect(t)
	name := station(t, conn, "v1-routing")
	if _, err := conn.CreateStation(name, memphis.PartitionsNumber(4)); err != nil {
		t.Fatal(err)
	}
	got, err := KeyRouting(conn, name, "customer-42")
	if err != nil {
		t.Fatal(err)
	}
	if want := memphis.PartitionForKey("customer-42", []int{1, 2, 3, 4}); got != want {
		t.Errorf("partition %d, want %d", got, want)
	}
}

func TestErrorHandlers(t *testing.T) {
	conn := connect(t)
	name := station(t, conn, "v1-errors")
	c, seen, err := ErrorHandlers(conn, name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.StopConsume()
	s, err := conn.CreateStation(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-seen:
		if got != "unreachable: watcher" {
			t.Errorf("handler saw %q", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the error handler never heard that the station is gone")
	}
}

func TestOptionsByHand(t *testing.T) {
	conn := connect(t)
	got, err := OptionsByHand(conn, station(t, conn, "v1-by-hand"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	if want := []string{"partition-1", "partition-2"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q (partition 2 fetched by hand, then partition 1)", got, want)
	}
}

// The 1.x error names still match what the SDK returns.
func TestErrorNames(t *testing.T) {
	conn := connect(t)
	if _, err := conn.CreateProducer(3.14, "p"); err == nil || !strings.HasPrefix(err.Error(), "memphis: ") {
		t.Errorf("a float station: %v", err)
	}
	if !errors.Is(memphis.ConsumerErrDelayDlsMsg, memphis.ErrNotSupported) {
		t.Error("ConsumerErrDelayDlsMsg is not ErrNotSupported")
	}
}
