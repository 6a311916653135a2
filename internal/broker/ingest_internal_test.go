package broker

import (
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/memphisdev/memphis.go/internal/wire"
)

func TestMsgLineParse(t *testing.T) {
	for _, tc := range []struct {
		line           string
		ok             bool
		subject, reply string
		hdrLen, total  int
	}{
		{"MSG $memphis_ingest.s$1 7 _INBOX.a 5\r\n", true, "$memphis_ingest.s$1", "_INBOX.a", 0, 5},
		{"MSG $memphis_ingest.s$1 7 5\r\n", true, "$memphis_ingest.s$1", "", 0, 5},
		{"HMSG $memphis_ingest.s$1 7 _INBOX.b 12 20\r\n", true, "$memphis_ingest.s$1", "_INBOX.b", 12, 20},
		{"HMSG $memphis_ingest.s$1 7 12 20\r\n", true, "$memphis_ingest.s$1", "", 12, 20},
		{"HMSG $memphis_ingest.s$1 7 30 20\r\n", false, "", "", 0, 0}, // header longer than the message
		{"MSG $memphis_ingest.s$1 7 -5\r\n", false, "", "", 0, 0},
		{"MSG $memphis_ingest.s$1 5\r\n", false, "", "", 0, 0},
		{"MSG a b c d e f g\r\n", false, "", "", 0, 0},
		{"MSG other.subject 7 5\r\n", false, "", "", 0, 0}, // not an ingest subject
	} {
		var m msgLine
		ok := m.parse([]byte(tc.line))
		if ok != tc.ok {
			t.Errorf("%q: ok = %v", tc.line, ok)
			continue
		}
		if ok && (string(m.subject) != tc.subject || string(m.reply) != tc.reply || m.hdrLen != tc.hdrLen || m.total != tc.total) {
			t.Errorf("%q: got %q %q %d %d", tc.line, m.subject, m.reply, m.hdrLen, m.total)
		}
	}
}

func TestAppendPub(t *testing.T) {
	for _, tc := range []struct {
		name          string
		reply         string
		hdrLen, total int
		want          string
	}{
		{"headers and reply", "_INBOX.r", 12, 17, "HPUB s$1.stored _INBOX.r 12 17\r\n"},
		{"headers, no reply", "", 12, 17, "HPUB s$1.stored 12 17\r\n"},
		{"no headers", "_INBOX.r", 0, 5, "PUB s$1.stored _INBOX.r 5\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(appendPub(nil, []byte("s$1"), storedSuffix, []byte(tc.reply), tc.hdrLen, tc.total)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStoredSeq(t *testing.T) {
	for _, tc := range []struct {
		name, hdr, body string
		want            uint64
	}{
		{"stored", "", `{"stream":"s$1","seq":7}`, 7},
		{"duplicate", "", `{"stream":"s$1","seq":3,"duplicate": true}`, 3},
		{"error", "", `{"error":{"code":503,"err_code":10077,"description":"x"},"stream":"s$1","seq":0}`, 0},
		{"no responders", "NATS/1.0 503\r\n\r\n", "", 0},
		{"plain header block", "NATS/1.0\r\nk: v\r\n\r\n", `{"stream":"s$1","seq":9}`, 9},
		{"not JSON", "", "oops", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := storedSeq([]byte(tc.hdr), []byte(tc.body)); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

// The de-duplication state: a new id is stored, a copy while the first is
// on its way waits, a stored id answers duplicates until the window ends,
// and a failed first copy lets a waiting one be stored instead.
func TestDedupe(t *testing.T) {
	d := newDedupe()
	d.track("s$1", time.Minute)
	now := time.Unix(1000, 0)
	admit := func(id string, at time.Time) (*idEntry, uint64, verdict) {
		return d.admit("s$1", id, at, []byte("_INBOX."+id), []byte("msg"), 0)
	}
	e, _, v := admit("a", now)
	if v != storeFirst {
		t.Fatalf("first copy: verdict %d", v)
	}
	if _, _, v := admit("a", now); v != held {
		t.Fatalf("copy while the first is on its way: verdict %d", v)
	}
	dups, next := d.resolve("s$1", e, 5, now)
	if len(dups) != 1 || next != nil || string(dups[0].reply) != "_INBOX.a" {
		t.Fatalf("resolve stored: %d duplicates, next %v", len(dups), next)
	}
	if _, seq, v := admit("a", now.Add(59*time.Second)); v != duplicate || seq != 5 {
		t.Fatalf("inside the window: verdict %d seq %d", v, seq)
	}
	if _, _, v := admit("a", now.Add(61*time.Second)); v != storeFirst {
		t.Fatalf("after the window: verdict %d", v)
	}

	f, _, _ := admit("b", now)
	admit("b", now)
	if dups, next := d.resolve("s$1", f, 0, now); len(dups) != 0 || next == nil {
		t.Fatalf("resolve failed: %d duplicates, next %v", len(dups), next)
	}
	if _, _, v := admit("b", now); v != held {
		t.Fatalf("after a failure, the next copy is on its way: verdict %d", v)
	}
	if _, _, v := admit("b", now.Add(inFlightLimit+time.Second)); v != storeFirst {
		t.Fatalf("a first copy never answered: verdict %d", v)
	}

	if _, _, v := d.admit("other$1", "a", now, nil, nil, 0); v != untracked {
		t.Fatalf("unknown stream: verdict %d", v)
	}
	d.forget("s$1")
	if _, _, v := admit("a", now); v != untracked {
		t.Fatalf("forgotten stream: verdict %d", v)
	}
}

// A node that drops the ingest's connection (it does so to a client that
// falls too far behind) gets it back: publishes are served again.
func TestIngestRedialsWhenDropped(t *testing.T) {
	b, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown()
	mustStation(t, b, "kick")
	js := client(t, b)
	subject := wire.ProduceSubject(wire.StreamName("kick", 1))
	if _, err := js.Publish(t.Context(), subject, []byte("before")); err != nil {
		t.Fatal(err)
	}
	ns := b.snapshotNodes()[0]
	cz, err := ns.Connz(&server.ConnzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cid uint64
	for _, c := range cz.Conns {
		if c.Name == ingestConnName {
			cid = c.Cid
		}
	}
	if cid == 0 {
		t.Fatal("no ingest connection")
	}
	if err := ns.DisconnectClientByID(cid); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := js.Publish(t.Context(), subject, []byte("after"), jetstream.WithRetryAttempts(0))
		if err == nil {
			break
		}
		if !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) {
			t.Fatalf("publish after the drop: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("publishes not served again: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A store kept from a build that gave streams no subject transform gets it
// on start: forwarded messages are stored under .final, where the durables
// look, not lost under .stored.
func TestStartAddsMissingTransforms(t *testing.T) {
	dir := t.TempDir()
	b, err := New(Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown()
	mustStation(t, b, "old")
	stream := wire.StreamName("old", 1)
	s, err := b.cp.js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.SubjectTransform = nil
	if _, err := b.cp.js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatalf("remove the transform: %v", err)
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	js := client(t, b)
	if _, err := js.Publish(t.Context(), wire.ProduceSubject(stream), []byte("kept")); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetLastMsgForSubject(t.Context(), wire.ProduceSubject(stream))
	if err != nil {
		t.Fatalf("no message under %s: %v", wire.ProduceSubject(stream), err)
	}
	if string(msg.Data) != "kept" {
		t.Errorf("stored %q", msg.Data)
	}
}

// mustStation creates a one-partition station through the control plane.
func mustStation(t *testing.T, b *Broker, name string) {
	t.Helper()
	if reply := b.cp.createStation(mustJSON(wire.CreateStationReq{Name: name, Username: DefaultUsername, PartitionsNumber: 1,
		RetentionType: retentionAge, RetentionValue: 3600, StorageType: storageFile, Replicas: 1})); reply != nil {
		t.Fatalf("create station %s: %s", name, reply)
	}
}

// client connects to the broker's first node as a Memphis SDK would,
// until the test ends.
func client(t *testing.T, b *Broker) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(b.URLs()[0], nats.UserInfo(DefaultUsername+"$1", DefaultPassword), nats.Name("test::"+DefaultUsername))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// The ingest keeps the msg-ids it has seen in memory, so a broker that
// comes back, restarted or started again over the same store, reads them
// back from its streams: a client that sends only msg-id (as the official
// Node.js and Python SDKs do) and retries across the restart must get the
// first copy's sequence as a duplicate, on each partition.
func TestDedupeReloadedOnRestart(t *testing.T) {
	const partitions = 3
	create := func(t *testing.T, b *Broker) {
		t.Helper()
		if reply := b.cp.createStation(mustJSON(wire.CreateStationReq{Name: "orders", Username: DefaultUsername,
			PartitionsNumber: partitions, RetentionType: retentionAge, RetentionValue: 3600, StorageType: storageFile,
			Replicas: 1, IdempotencyWindowMs: 600_000})); reply != nil {
			t.Fatalf("create station: %s", reply)
		}
	}
	// publish sends id to each partition with msg-id alone and returns the
	// acknowledgements in partition order.
	publish := func(t *testing.T, js jetstream.JetStream, id string) []*jetstream.PubAck {
		t.Helper()
		acks := make([]*jetstream.PubAck, partitions)
		for p := range partitions {
			m := nats.NewMsg(wire.ProduceSubject(wire.StreamName("orders", p+1)))
			m.Data = []byte(id)
			m.Header = nats.Header{wire.HdrMsgID: {id}}
			a, err := js.PublishMsg(t.Context(), m)
			if err != nil {
				t.Fatalf("publish %s to partition %d: %v", id, p+1, err)
			}
			acks[p] = a
		}
		return acks
	}
	check := func(t *testing.T, js jetstream.JetStream, before []*jetstream.PubAck) {
		t.Helper()
		for p, a := range publish(t, js, "order-1") {
			if !a.Duplicate || a.Sequence != before[p].Sequence {
				t.Errorf("partition %d: retry after the restart acknowledged as %+v, want a duplicate of seq %d", p+1, a, before[p].Sequence)
			}
		}
		for p, a := range publish(t, js, "order-2") {
			if a.Duplicate {
				t.Errorf("partition %d: a new id after the restart was taken for a duplicate: %+v", p+1, a)
			}
		}
		for p := range partitions {
			s, err := js.Stream(t.Context(), wire.StreamName("orders", p+1))
			if err != nil {
				t.Fatal(err)
			}
			if n := s.CachedInfo().State.Msgs; n != 2 {
				t.Errorf("partition %d stored %d messages, want 2 (order-1 once, order-2)", p+1, n)
			}
		}
	}

	t.Run("Restart", func(t *testing.T) {
		b, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Shutdown()
		create(t, b)
		before := publish(t, client(t, b), "order-1")
		if err := b.Restart(); err != nil {
			t.Fatal(err)
		}
		check(t, client(t, b), before)
	})
	t.Run("same store", func(t *testing.T) {
		dir := t.TempDir()
		b1, err := New(Config{StoreDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		create(t, b1)
		before := publish(t, client(t, b1), "order-1")
		b1.Shutdown()
		b2, err := New(Config{StoreDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer b2.Shutdown()
		check(t, client(t, b2), before)
	})
}

// A port found free and taken before its node binds it (as another
// process's listener or connection may take it) costs a first start one
// more try with fresh ports, not the start: the second port handed out,
// node 1's client port, is held by a listener here.
func TestFirstStartTriesOtherPorts(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	held := busy.Addr().(*net.TCPAddr).Port
	picked := 0
	pick := func(host string) (int, error) {
		if picked++; picked == 2 {
			return held, nil
		}
		return freePort(host)
	}
	b, err := newBroker(Config{Nodes: 3}, pick, 2*time.Second)
	if err != nil {
		t.Fatalf("start with a port taken: %v", err)
	}
	defer b.Shutdown()
	if slices.Contains(b.ports, held) {
		t.Errorf("ports %v still include the busy %d", b.ports, held)
	}
	if picked <= 6 {
		t.Errorf("%d ports picked, want a second set after the first 6", picked)
	}
	for _, u := range b.URLs() {
		nc, err := nats.Connect(u, nats.UserInfo(DefaultUsername+"$1", DefaultPassword))
		if err != nil {
			t.Fatalf("node at %s: %v", u, err)
		}
		nc.Close()
	}
}
