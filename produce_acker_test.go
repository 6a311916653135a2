package memphis

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go/internal/testenv"
)

// M1: between failing what is pending and closing the NATS connection,
// Close leaves a window in which a produce used to register itself with
// nobody left to complete it: the sync produce hung and the async one's
// callback was lost. Every produce must fail fast or complete exactly once.
func TestProduceAfterAckerStopped(t *testing.T) {
	b := testenv.Start(t)
	opts := []Option{Port(b.Port)}
	if b.Token != "" {
		opts = append(opts, ConnectionToken(b.Token))
	} else {
		opts = append(opts, Password(b.Password))
	}
	c, err := Connect(b.Host, b.Username, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := c.CreateProducer(testenv.Name(t, "stopped"), "p")
	if err != nil {
		t.Fatal(err)
	}
	c.acks.stop() // Close's state just before nc.Close
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.ProduceContext(ctx, []byte("sync")); !errors.Is(err, ErrConnClosed) {
		t.Errorf("sync produce: %v, want ErrConnClosed", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("sync produce took %v to fail", d)
	}
	called := make(chan error, 2)
	err = p.ProduceAsync(ctx, []byte("async"), func(_ PubAck, err error) { called <- err })
	if err == nil {
		select {
		case <-called:
		case <-time.After(3 * time.Second):
			t.Fatal("ProduceAsync returned nil and its callback was never called")
		}
	} else if !errors.Is(err, ErrConnClosed) {
		t.Errorf("async produce: %v, want ErrConnClosed", err)
	}
}

func TestScanPubAck(t *testing.T) {
	for _, tc := range []struct {
		in  string
		seq uint64
		dup bool
		ok  bool
	}{
		{`{"stream":"orders$1","seq":1}`, 1, false, true},
		{`{"stream":"orders$1","seq":18446744073709551615}`, 0, false, false}, // 20 digits: left to encoding/json
		{`{"stream":"orders$1","seq":9999999999999999999}`, 9999999999999999999, false, true},
		{`{"stream":"o","domain":"hub","seq":42,"duplicate":true}`, 42, true, true},
		{`{"stream":"o","seq":42,"duplicate":false}`, 42, false, true},
		{`{"seq":7,"stream":"o"}`, 7, false, true},
		{`{"stream":"o"}`, 0, false, false},
		{`{"stream":"o","seq":"7"}`, 0, false, false},
		{`{"stream":"o","seq":-7}`, 0, false, false},
		{`{"stream":"o","seq":7,}`, 0, false, false},
		{`{"stream":"o","seq":7,"seq":8}`, 0, false, false},
		{`{"stream":"o\"x","seq":7}`, 0, false, false},
		{`{"stream": "o", "seq": 7}`, 0, false, false},
		{`{"error":{"code":503,"err_code":10077,"description":"x"},"stream":"o","seq":0}`, 0, false, false},
		{`{"stream":"o","seq":7,"duplicate":1}`, 0, false, false},
		{`{"stream":"o","seq":7,"batch":"b"}`, 0, false, false},
		{``, 0, false, false},
		{`{}`, 0, false, false},
		{`not json`, 0, false, false},
	} {
		seq, dup, ok := scanPubAck([]byte(tc.in))
		if ok != tc.ok || (ok && (seq != tc.seq || dup != tc.dup)) {
			t.Errorf("scanPubAck(%s) = %d, %v, %v; want %d, %v, %v", tc.in, seq, dup, ok, tc.seq, tc.dup, tc.ok)
		}
	}
	// The fast path takes the server's usual answer without allocating.
	ack := []byte(`{"stream":"orders$1","domain":"hub","seq":123456,"duplicate":true}`)
	if n := testing.AllocsPerRun(100, func() { _, _, _ = scanPubAck(ack) }); n != 0 {
		t.Errorf("scanPubAck allocates %v times", n)
	}
}

// FuzzScanPubAck: whatever the fast parser accepts, encoding/json reads the
// same way; parsePubAck never panics.
func FuzzScanPubAck(f *testing.F) {
	for _, s := range []string{`{"stream":"a$1","seq":5}`, `{"stream":"a","domain":"d","seq":1,"duplicate":true}`,
		`{"error":{"code":400}}`, `{"seq":1}`, `{"stream":"","seq":0,"duplicate":false}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parsePubAck(&nats.Msg{Data: b})
		seq, dup, ok := scanPubAck(b)
		if !ok {
			return
		}
		var pa jsPubAck
		if err := json.Unmarshal(b, &pa); err != nil {
			t.Fatalf("scanPubAck accepted %q, which encoding/json refuses: %v", b, err)
		}
		if pa.Error != nil || pa.Seq != seq || pa.Duplicate != dup {
			t.Fatalf("scanPubAck(%q) = %d, %v; encoding/json: %+v", b, seq, dup, pa)
		}
	})
}

func TestPendingCountWait(t *testing.T) {
	var pc pendingCount
	if err := pc.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	pc.add()
	pc.add()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := pc.wait(ctx); !errors.Is(err, ErrTimeout) {
		t.Fatalf("wait with 2 pending: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- pc.wait(context.Background()) }()
	time.Sleep(10 * time.Millisecond)
	pc.done()
	select {
	case <-done:
		t.Fatal("wait returned with 1 pending")
	case <-time.After(20 * time.Millisecond):
	}
	pc.done()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("wait missed the drop to zero")
	}
}
