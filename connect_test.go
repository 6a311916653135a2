package memphis_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
	"github.com/memphisdev/memphis.go/memphistest"
)

func TestConnectWithPassword(t *testing.T) {
	b := testenv.Start(t)
	if b.Token != "" {
		t.Skip("the broker runs in token mode")
	}
	var closed atomic.Bool
	c, err := memphis.Connect("http://"+b.Host+"/", b.Username, memphis.Password(b.Password), memphis.Port(b.Port),
		memphis.ClosedHandler(func(*memphis.Conn) { closed.Store(true) }))
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsConnected() {
		t.Fatal("not connected")
	}
	c.Close()
	c.Close() // idempotent
	if c.IsConnected() {
		t.Fatal("still connected after Close")
	}
	if _, err := c.CreateStation(testenv.Name(t, "st")); !errors.Is(err, memphis.ErrConnClosed) {
		t.Errorf("use after Close: %v, want ErrConnClosed", err)
	}
}

func TestConnectRefusesWrongPassword(t *testing.T) {
	b := testenv.Start(t)
	if b.Token != "" {
		t.Skip("the broker runs in token mode")
	}
	start := time.Now()
	_, err := memphis.Connect(b.Host, b.Username, memphis.Password("wrong"), memphis.Port(b.Port),
		memphis.Timeout(2*time.Second))
	if !errors.Is(err, memphis.ErrAuthorization) {
		t.Fatalf("err = %v, want ErrAuthorization", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refusal took %v", d)
	}
	_, err = memphis.Connect(b.Host, "nosuchuser", memphis.Password(b.Password), memphis.Port(b.Port))
	if !errors.Is(err, memphis.ErrAuthorization) {
		t.Fatalf("unknown user: err = %v, want ErrAuthorization", err)
	}
}

func TestConnectWithToken(t *testing.T) {
	b := testenv.Start(t, memphistest.WithToken("s3cret"))
	if b.Real {
		t.Skip("needs a broker in token mode; the real one under test uses passwords")
	}
	c, err := memphis.Connect(b.Host, "root", memphis.ConnectionToken("s3cret"), memphis.Port(b.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CreateStation(testenv.Name(t, "tok")); err != nil {
		t.Fatalf("create station in token mode: %v", err)
	}
	_, err = memphis.Connect(b.Host, "root", memphis.ConnectionToken("nope"), memphis.Port(b.Port))
	if !errors.Is(err, memphis.ErrAuthorization) {
		t.Fatalf("wrong token: err = %v, want ErrAuthorization", err)
	}
}

func TestConnectUnreachableHostFailsWithinTimeout(t *testing.T) {
	start := time.Now()
	_, err := memphis.Connect("127.0.0.1", "root", memphis.Password("memphis"), memphis.Port(1),
		memphis.Timeout(500*time.Millisecond))
	if err == nil {
		t.Fatal("connected to nothing")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestConnectContextCancelled(t *testing.T) {
	b := testenv.Start(t)
	ctx := testCtx(t, time.Minute)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := memphis.ConnectContext(cctx, b.Host, b.Username, credentials(b)...)
	if !errors.Is(err, memphis.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
}

func TestConnectFailoverAcrossHosts(t *testing.T) {
	b := testenv.Start(t)
	// The first host refuses; the SDK moves on to the next.
	hosts := "127.0.0.1:1," + b.Host
	c, err := memphis.Connect(hosts, b.Username, append(credentials(b), memphis.Timeout(time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CreateStation(testenv.Name(t, "fo")); err != nil {
		t.Fatal(err)
	}
}
