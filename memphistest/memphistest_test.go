package memphistest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/memphistest"
)

// Every goroutine of a server (nats-server's included) ends with Shutdown.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func connect(t *testing.T, s *memphistest.Server, opts ...memphis.Option) *memphis.Conn {
	t.Helper()
	base := []memphis.Option{memphis.Port(s.Port())}
	if s.Token() != "" {
		base = append(base, memphis.ConnectionToken(s.Token()))
	} else {
		base = append(base, memphis.Password(s.Password()))
	}
	c, err := memphis.Connect(s.Host(), s.Username(), append(base, opts...)...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestStartsQuicklyAndShutsDownClean(t *testing.T) {
	const runs = 5
	var total time.Duration
	for range runs {
		start := time.Now()
		s, err := memphistest.Start()
		if err != nil {
			t.Fatal(err)
		}
		total += time.Since(start)
		s.Shutdown()
		s.Shutdown() // idempotent
	}
	avg := total / runs
	t.Logf("a server starts in %v on average (%d runs)", avg, runs)
	// The target is well under a second; the bound leaves room for a
	// loaded two-core CI machine.
	if avg > 2*time.Second {
		t.Errorf("starting a server took %v on average", avg)
	}
}

func TestRestartKeepsStationsSchemasAndMessages(t *testing.T) {
	s := memphistest.NewServer(t)
	c := connect(t, s, memphis.MaxReconnect(-1), memphis.ReconnectInterval(50*time.Millisecond))
	st, err := c.CreateStation("kept", memphis.PartitionsNumber(2))
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.CreateProducer("p")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"one", "two", "three"} {
		if err := p.Produce([]byte(m), memphis.SyncProduce()); err != nil {
			t.Fatal(err)
		}
	}
	port := s.Port()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if s.Port() != port {
		t.Fatalf("port changed over a restart: %d -> %d", port, s.Port())
	}
	// The station is still known (a consumer learns its two partitions
	// from the broker), and its messages are still stored.
	cons, err := c.CreateConsumerContext(ctxFor(t, 20*time.Second), "kept", "c",
		memphis.BatchMaxWaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if got := cons.Partitions(); len(got) != 2 {
		t.Errorf("partitions after restart = %v, want 2", got)
	}
	var got []string
	ctx := ctxFor(t, 20*time.Second)
	for len(got) < 3 {
		msgs, err := cons.FetchContext(ctx, 10, false)
		if err != nil {
			t.Fatalf("fetch after restart: %v", err)
		}
		for _, m := range msgs {
			got = append(got, string(m.Data()))
			_ = m.Ack()
		}
	}
	if len(got) != 3 {
		t.Errorf("after restart got %v", got)
	}
}

func TestStorageDirOutlivesTheServer(t *testing.T) {
	dir := t.TempDir()
	s1 := memphistest.NewServer(t, memphistest.WithStorageDir(dir))
	c1 := connect(t, s1)
	if _, err := c1.CreateStationContext(ctxFor(t, 10*time.Second), "durable", memphis.RetentionTypeOpt(memphis.Messages), memphis.RetentionVal(5)); err != nil {
		t.Fatal(err)
	}
	if err := c1.Produce("durable", "p", []byte("survives"), nil, []memphis.ProduceOpt{memphis.SyncProduce()}); err != nil {
		t.Fatal(err)
	}
	c1.Close()
	s1.Shutdown()

	s2 := memphistest.NewServer(t, memphistest.WithStorageDir(dir))
	c2 := connect(t, s2)
	msgs, err := c2.FetchMessages("durable", "reader", memphis.FetchBatchMaxWaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || string(msgs[0].Data()) != "survives" {
		t.Fatalf("second server returned %d messages", len(msgs))
	}
}

func TestTokenMode(t *testing.T) {
	s := memphistest.NewServer(t, memphistest.WithToken("s3cret"))
	if s.Password() != "" || s.Token() != "s3cret" {
		t.Fatalf("password %q token %q", s.Password(), s.Token())
	}
	c := connect(t, s)
	if _, err := c.CreateStation("tok"); err != nil {
		t.Fatal(err)
	}
	_, err := memphis.Connect(s.Host(), s.Username(), memphis.Port(s.Port()),
		memphis.ConnectionToken("wrong"), memphis.Reconnect(false))
	if !errors.Is(err, memphis.ErrAuthorization) {
		t.Fatalf("wrong token: %v, want ErrAuthorization", err)
	}
}

func TestWithUser(t *testing.T) {
	s := memphistest.NewServer(t, memphistest.WithUser("svc", "pw"))
	if s.Username() != "svc" || s.Password() != "pw" {
		t.Fatalf("login %s/%s", s.Username(), s.Password())
	}
	connect(t, s)
	_, err := memphis.Connect(s.Host(), "root", memphis.Port(s.Port()), memphis.Password("memphis"), memphis.Reconnect(false))
	if !errors.Is(err, memphis.ErrAuthorization) {
		t.Fatalf("default root login still accepted: %v", err)
	}
}

func TestIntercept(t *testing.T) {
	s := memphistest.NewServer(t)
	c := connect(t, s)

	t.Run("reply", func(t *testing.T) {
		remove := s.Intercept(func(r memphistest.Request) memphistest.Action {
			if r.Subject == "$memphis_station_creations" && strings.Contains(string(r.Body), "refused") {
				return memphistest.Action{Reply: []byte("disk full")}
			}
			return memphistest.Action{}
		})
		defer remove()
		_, err := c.CreateStation("refused")
		var be *memphis.BrokerError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("err = %v, want the broker's text", err)
		}
		if _, err := c.CreateStation("accepted"); err != nil {
			t.Fatalf("a request the hook let through: %v", err)
		}
	})
	t.Run("drop", func(t *testing.T) {
		remove := s.Intercept(func(memphistest.Request) memphistest.Action { return memphistest.Action{Drop: true} })
		defer remove()
		start := time.Now()
		_, err := c.CreateStationContext(ctxFor(t, 300*time.Millisecond), "dropped")
		if !errors.Is(err, memphis.ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("gave up after %v, want about the context's 300ms", d)
		}
	})
	t.Run("delay", func(t *testing.T) {
		remove := s.Intercept(func(memphistest.Request) memphistest.Action {
			return memphistest.Action{Delay: 200 * time.Millisecond}
		})
		defer remove()
		start := time.Now()
		if _, err := c.CreateStation("delayed"); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Errorf("answered after %v, before the 200ms delay", d)
		}
	})
	t.Run("removed", func(t *testing.T) {
		if _, err := c.CreateStation("refused"); err != nil {
			t.Fatalf("after removing the hook: %v", err)
		}
	})
}

func TestResendDeadLetters(t *testing.T) {
	s := memphistest.NewServer(t)
	c := connect(t, s)
	st, err := c.CreateStation("resend")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Produce("resend", "p", []byte("poison"), nil, []memphis.ProduceOpt{memphis.SyncProduce()}); err != nil {
		t.Fatal(err)
	}
	cons, err := st.CreateConsumer("c", memphis.MaxMsgDeliveries(1), memphis.MaxAckTime(300*time.Millisecond),
		memphis.BatchMaxWaitTime(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// Take the message and never ack it: with one delivery allowed, it is
	// poison once its ack time passes and the next pull finds it expired.
	ctx := ctxFor(t, 30*time.Second)
	msgs, err := cons.FetchContext(ctx, 1, false)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("first fetch: %d, %v", len(msgs), err)
	}
	for len(s.DeadLetters("resend")) == 0 {
		if ctx.Err() != nil {
			t.Fatal("the poison message was never recorded")
		}
		if _, err := cons.FetchContext(ctx, 1, false); err != nil {
			t.Fatal(err)
		}
	}
	dl := s.DeadLetters("resend")[0]
	if string(dl.Data) != "poison" || len(dl.Groups) != 1 || dl.Groups[0] != "c" {
		t.Fatalf("dead letter = %+v", dl)
	}
	if n, err := s.ResendDeadLetters("resend"); err != nil || n != 1 {
		t.Fatalf("resend: %d, %v", n, err)
	}
	// The consumer receives the re-sent message; acking it clears the record.
	for {
		msgs, err := cons.FetchContext(ctx, 1, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 1 {
			if !msgs[0].IsResent() || string(msgs[0].Data()) != "poison" {
				t.Fatalf("got %q resent=%v", msgs[0].Data(), msgs[0].IsResent())
			}
			if err := msgs[0].Ack(); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	// The ack is a fire-and-forget report; the broker's store is the only
	// place that shows it was handled, so poll it.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for len(s.DeadLetters("resend")) != 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the acked dead letter was never removed")
		case <-tick.C:
		}
	}
	if _, err := s.ResendDeadLetters("nope"); err == nil {
		t.Error("resend on a missing station succeeded")
	}
}

// An SDK's destroy tells other clients nothing, as on Memphis 1.4.4: a
// connection that cached a producer of the station finds out when it
// produces. DestroyStation, as the UI does, tells every client at once: the
// connection drops its cached producer and its next produce creates the
// station again.
func TestDestroyStationTellsClients(t *testing.T) {
	s := memphistest.NewServer(t)
	a, b := connect(t, s), connect(t, s)
	updates := make(chan *nats.Msg, 8)
	nc, err := nats.Connect(s.URL(), nats.UserInfo(s.Username()+"$1", s.Password()), nats.Name("watcher::"+s.Username()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.ChanSubscribe("$memphis_sdk_clients_updates", updates); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	if err := b.Produce("sdk-destroyed", "p", []byte("1"), nil, nil); err != nil {
		t.Fatal(err)
	}
	st, err := a.CreateStation("sdk-destroyed")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := b.Produce("sdk-destroyed", "p", []byte("2"), nil, nil); !errors.Is(err, memphis.ErrStationNotFound) {
		t.Fatalf("produce after an SDK destroy: err = %v, want ErrStationNotFound", err)
	}

	if err := b.Produce("ui-destroyed", "p", []byte("1"), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DestroyStation("ui-destroyed"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-updates:
		if got := string(m.Data); !strings.Contains(got, `"remove_station"`) || !strings.Contains(got, `"ui-destroyed"`) {
			t.Fatalf("update = %s", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no remove_station update after DestroyStation")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := b.Produce("ui-destroyed", "p", []byte("2"), nil, nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("produce after DestroyStation: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // the update reaches b's handler on its own goroutine
	}
	if err := s.DestroyStation("no-such-station"); err == nil {
		t.Error("DestroyStation of a missing station: no error")
	}
	select {
	case m := <-updates:
		t.Errorf("unexpected update %s", m.Data)
	default:
	}
}

// A producer that retries across a broker restart (Restart, or a new
// server over the same storage directory) gets the first copy's
// acknowledgement back as a duplicate, on every partition, and the
// message is stored once. The ingest's own memory of msg-id headers,
// which other SDKs rely on, is tested in internal/broker
// (TestDedupeReloadedOnRestart).
func TestMsgIdDeduplicationOutlivesARestart(t *testing.T) {
	produceIDs := func(t *testing.T, c *memphis.Conn, station string, ids ...string) []memphis.PubAck {
		t.Helper()
		p, err := c.CreateProducerContext(ctxFor(t, 20*time.Second), station, "p")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = p.Destroy() }()
		acks := make([]memphis.PubAck, len(ids))
		for i, id := range ids {
			done := func(a memphis.PubAck, err error) {
				if err != nil {
					t.Errorf("produce %s: %v", id, err)
				}
				acks[i] = a
			}
			if err := p.ProduceAsync(ctxFor(t, 20*time.Second), []byte(id), done, memphis.MsgId(id)); err != nil {
				t.Fatal(err)
			}
		}
		// Flush returns after every callback ran.
		if err := p.Flush(ctxFor(t, 20*time.Second)); err != nil {
			t.Fatal(err)
		}
		return acks
	}
	// stored reads every message of the station with a new group.
	stored := func(t *testing.T, c *memphis.Conn, station string, want int) []string {
		t.Helper()
		cons, err := c.CreateConsumerContext(ctxFor(t, 20*time.Second), station, "reader",
			memphis.BatchMaxWaitTime(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cons.Destroy() }()
		var got []string
		ctx := ctxFor(t, 20*time.Second)
		// One more fetch once the expected count is reached, so an extra
		// copy would be seen.
		for empty := 0; empty < 2 && ctx.Err() == nil; {
			msgs, err := cons.FetchContext(ctx, 10, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) == 0 && len(got) >= want {
				empty++
			}
			for _, m := range msgs {
				got = append(got, string(m.Data()))
				_ = m.Ack()
			}
		}
		return got
	}
	ids := []string{"order-0", "order-1", "order-2", "order-3", "order-4", "order-5"}
	check := func(t *testing.T, c *memphis.Conn, station string, before []memphis.PubAck) {
		t.Helper()
		after := produceIDs(t, c, station, append(ids, "order-new")...)
		partitions := map[int]bool{}
		for i := range ids {
			if !after[i].Duplicate || after[i].Sequence != before[i].Sequence || after[i].Partition != before[i].Partition {
				t.Errorf("%s after the restart: %+v, want a duplicate of %+v", ids[i], after[i], before[i])
			}
			partitions[before[i].Partition] = true
		}
		if len(partitions) < 2 {
			t.Errorf("the ids reached partitions %v only; the check needs several", partitions)
		}
		if a := after[len(ids)]; a.Duplicate {
			t.Errorf("a new id after the restart was taken for a duplicate: %+v", a)
		}
		if got := stored(t, c, station, len(ids)+1); len(got) != len(ids)+1 {
			t.Errorf("stored %d messages %v, want each id once (%d)", len(got), got, len(ids)+1)
		}
	}

	t.Run("Restart", func(t *testing.T) {
		s := memphistest.NewServer(t)
		c := connect(t, s, memphis.ReconnectInterval(50*time.Millisecond))
		if _, err := c.CreateStation("orders", memphis.PartitionsNumber(3)); err != nil {
			t.Fatal(err)
		}
		before := produceIDs(t, c, "orders", ids...)
		if err := s.Restart(); err != nil {
			t.Fatal(err)
		}
		check(t, c, "orders", before)
	})
	t.Run("storage directory", func(t *testing.T) {
		dir := t.TempDir()
		s1 := memphistest.NewServer(t, memphistest.WithStorageDir(dir))
		c1 := connect(t, s1)
		if _, err := c1.CreateStation("orders", memphis.PartitionsNumber(3)); err != nil {
			t.Fatal(err)
		}
		before := produceIDs(t, c1, "orders", ids...)
		c1.Close()
		s1.Shutdown()

		s2 := memphistest.NewServer(t, memphistest.WithStorageDir(dir))
		check(t, connect(t, s2), "orders", before)
	})
}
