package memphis_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
)

// TestNothingPrintedByDefault: "the SDK logs with log/slog and never
// prints on its own", and by default only warnings and errors reach
// slog.Default(): a session that goes well, with every option at its
// default and no Logger, writes nothing to stdout or stderr and logs
// nothing to slog.Default.
func TestNothingPrintedByDefault(t *testing.T) {
	b := testenv.Start(t)
	station := testenv.Name(t, "quiet")
	dls := testenv.Name(t, "quiet-dls")

	logs := &logCapture{}
	prevLog := slog.Default()
	prevOut, prevErr := os.Stdout, os.Stderr
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	printed := make(chan []byte)
	go func() {
		out, _ := io.ReadAll(r)
		printed <- out
	}()
	slog.SetDefault(slog.New(logs))
	os.Stdout, os.Stderr = w, w
	restore := func() {
		os.Stdout, os.Stderr = prevOut, prevErr
		slog.SetDefault(prevLog)
	}
	defer restore()

	failed := session(b, station, dls)

	restore()
	_ = w.Close()
	out := <-printed
	if failed != nil {
		t.Fatalf("the session failed: %v", failed)
	}
	if len(out) > 0 {
		t.Errorf("printed to stdout or stderr:\n%s", out)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	for _, rec := range logs.records {
		t.Errorf("logged to slog.Default: %s %s", rec.Level, rec.Message)
	}
}

// session uses the SDK the way a service does, with its defaults, and
// returns the first failure (it must not call t.Log while output is
// captured).
func session(b *testenv.Broker, station, dls string) error {
	c, err := memphis.Connect(b.Host, b.Username, credentials(b)...)
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := c.CreateStation(station, memphis.PartitionsNumber(2), memphis.DlsStation(dls))
	if err != nil {
		return err
	}
	p, err := s.CreateProducer("p")
	if err != nil {
		return err
	}
	var h memphis.Headers
	if err := h.Add("k", "v"); err != nil {
		return err
	}
	for i := range 10 {
		if err := p.Produce([]byte{byte('a' + i)}, memphis.MsgHeaders(h), memphis.MsgId(string(rune('a'+i)))); err != nil {
			return err
		}
		if err := p.Produce([]byte("async"), memphis.AsyncProduce()); err != nil {
			return err
		}
	}
	acked := make(chan error, 1)
	if err := p.ProduceAsync(context.Background(), []byte("cb"), func(_ memphis.PubAck, err error) { acked <- err }); err != nil {
		return err
	}
	if err := p.Flush(context.Background()); err != nil {
		return err
	}
	if err := <-acked; err != nil {
		return err
	}
	cons, err := s.CreateConsumer("c", memphis.BatchMaxWaitTime(200*time.Millisecond))
	if err != nil {
		return err
	}
	got := make(chan struct{}, 32)
	if err := cons.Consume(func(msgs []*memphis.Msg, err error, _ context.Context) {
		for _, m := range msgs {
			_ = m.Ack()
			got <- struct{}{}
		}
	}); err != nil {
		return err
	}
	for range 21 {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			return context.DeadlineExceeded
		}
	}
	cons.StopConsume()
	if err := p.Produce([]byte("last")); err != nil {
		return err
	}
	reader, err := s.CreateConsumer("reader", memphis.BatchMaxWaitTime(200*time.Millisecond), memphis.StartConsumeFromSeq(1))
	if err != nil {
		return err
	}
	msgs, err := reader.Fetch(5, true)
	if err != nil {
		return err
	}
	if len(msgs) > 0 {
		if err := msgs[0].DeadLetter("a reason"); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	for m, err := range reader.Messages(ctx) {
		if err != nil {
			return err
		}
		_ = m.Nack()
		break
	}
	for _, err := range []error{reader.Destroy(), cons.Destroy(), p.Destroy(), s.Destroy()} {
		if err != nil {
			return err
		}
	}
	if dlsStation, err := c.CreateStation(dls); err == nil {
		_ = dlsStation.Destroy()
	}
	return c.CloseContext(context.Background())
}
