package broker

import (
	"errors"
	"fmt"
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

func TestAppendForward(t *testing.T) {
	const (
		msgIDOnly = "NATS/1.0\r\nmsg-id: abc\r\n\r\n"
		both      = "NATS/1.0\r\nmsg-id: abc\r\nNats-Msg-Id: xyz\r\n\r\n"
		neither   = "NATS/1.0\r\nother: 1\r\n\r\n"
		lookalike = "NATS/1.0\r\nx-msg-id: abc\r\n\r\n" // not the msg-id header
	)
	const copied = "NATS/1.0\r\nmsg-id: abc\r\nNats-Msg-Id: abc\r\n\r\n"
	hpub := func(reply, hdr string) string {
		if reply != "" {
			reply = " " + reply
		}
		return fmt.Sprintf("HPUB s$1.stored%s %d %d\r\n%s", reply, len(hdr), len(hdr)+5, hdr)
	}
	for _, tc := range []struct {
		name, hdr, reply string
		want             string
	}{
		{"msg-id copied", msgIDOnly, "_INBOX.r", hpub("_INBOX.r", copied)},
		{"Nats-Msg-Id kept", both, "_INBOX.r", hpub("_INBOX.r", both)},
		{"no id", neither, "", hpub("", neither)},
		{"only a look-alike", lookalike, "", hpub("", lookalike)},
		{"no header", "", "_INBOX.r", "PUB s$1.stored _INBOX.r 5\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := msgLine{subject: []byte(IngestPrefix + "s$1"), reply: []byte(tc.reply), hdrLen: len(tc.hdr), total: len(tc.hdr) + 5}
			if got := string(appendForward(nil, &m, []byte(tc.hdr))); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
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
