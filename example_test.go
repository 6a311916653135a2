package memphis_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/memphistest"
)

// exampleConn starts an in-process broker and connects to it; the examples
// below run against it, so the documentation is executed by `go test`.
func exampleConn() (*memphis.Conn, func()) {
	srv, err := memphistest.Start()
	if err != nil {
		panic(err)
	}
	conn, err := memphis.Connect(srv.Host(), srv.Username(),
		memphis.Password(srv.Password()), memphis.Port(srv.Port()))
	if err != nil {
		srv.Shutdown()
		panic(err)
	}
	return conn, func() { conn.Close(); srv.Shutdown() }
}

// Produce a message and consume it with a callback.
func Example() {
	conn, done := exampleConn()
	defer done()

	station, err := conn.CreateStation("greetings")
	if err != nil {
		fmt.Println(err)
		return
	}
	producer, err := station.CreateProducer("greeter")
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := producer.Produce([]byte("hello")); err != nil {
		fmt.Println(err)
		return
	}

	consumer, err := station.CreateConsumer("reader")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = consumer.ConsumeContext(ctx, func(msgs []*memphis.Msg, _ error, _ context.Context) {
		for _, m := range msgs {
			fmt.Printf("%s\n", m.Data())
			_ = m.Ack()
		}
		cancel()
	})
	// Output: hello
}

// Connect with a user and password. A broker in connection-token mode takes
// memphis.ConnectionToken instead of memphis.Password.
func ExampleConnect() {
	srv, err := memphistest.Start() // in-process; a real broker listens on memphis.DefaultPort
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown()

	conn, err := memphis.Connect(srv.Host(), "root",
		memphis.Password("memphis"),
		memphis.Port(srv.Port()),
		memphis.Timeout(5*time.Second), // each dial; default DefaultTimeout
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	fmt.Println(conn.IsConnected())
	// Output: true
}

// Create a station with options. Names are lower-cased, and creating a
// station that exists returns it unchanged.
func ExampleConn_CreateStation() {
	conn, done := exampleConn()
	defer done()

	station, err := conn.CreateStation("Orders",
		memphis.PartitionsNumber(3),
		memphis.RetentionTypeOpt(memphis.Messages), memphis.RetentionVal(1000),
		memphis.StorageTypeOpt(memphis.Memory),
		memphis.IdempotencyWindow(time.Minute),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(station.Name)

	_, err = conn.CreateStation("orders") // exists: not an error
	fmt.Println(err)
	// Output:
	// orders
	// <nil>
}

// Sync produce (the default) returns once the broker stored the message. A
// MsgId makes a retry safe: the broker drops a second message with the same
// id inside the station's idempotency window.
func ExampleProducer_Produce() {
	conn, done := exampleConn()
	defer done()

	producer, err := conn.CreateProducer("payments", "checkout")
	if err != nil {
		fmt.Println(err)
		return
	}
	var hdrs memphis.Headers
	_ = hdrs.Add("trace-id", "4bf92f35")
	for range 2 { // a retry
		err := producer.Produce([]byte("charge 42"), memphis.MsgId("charge-42"), memphis.MsgHeaders(hdrs))
		if err != nil {
			fmt.Println(err)
			return
		}
	}

	msgs, err := conn.FetchMessages("payments", "ledger", memphis.FetchBatchMaxWaitTime(100*time.Millisecond))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range msgs {
		fmt.Printf("%s trace-id=%s\n", m.Data(), m.GetHeaders()["trace-id"])
		_ = m.Ack()
	}
	// Output: charge 42 trace-id=4bf92f35
}

func ExampleProducer_Produce_async() {
	conn, done := exampleConn()
	defer done()

	p, err := conn.CreateProducer("metrics", "collector",
		memphis.ProducerErrorHandler(func(_ *memphis.Producer, err error) {
			fmt.Println("lost:", err) // every failed async produce ends here
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range 100 {
		if err := p.Produce([]byte(fmt.Sprint(i)), memphis.AsyncProduce()); err != nil {
			fmt.Println(err)
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fmt.Println(p.Flush(ctx))
	// Output: <nil>
}

// Consume runs in the background and calls the handler with batches, never
// concurrently with itself; StopConsume waits for the running call.
func ExampleConsumer_Consume() {
	conn, done := exampleConn()
	defer done()

	for _, s := range []string{"a", "b", "c"} {
		if err := conn.Produce("tasks", "planner", []byte(s), nil, nil); err != nil {
			fmt.Println(err)
			return
		}
	}
	consumer, err := conn.CreateConsumer("tasks", "worker", memphis.ConsumerGroup("workers"))
	if err != nil {
		fmt.Println(err)
		return
	}
	seen := make(chan struct{})
	n := 0
	err = consumer.Consume(func(msgs []*memphis.Msg, err error, _ context.Context) {
		if err != nil { // a background failure, with no messages
			fmt.Println(err)
			return
		}
		for _, m := range msgs {
			fmt.Printf("%s\n", m.Data())
			_ = m.Ack()
			if n++; n == 3 {
				close(seen)
			}
		}
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	select {
	case <-seen:
	case <-time.After(10 * time.Second):
		fmt.Println("timed out")
	}
	consumer.StopConsume()
	// Output:
	// a
	// b
	// c
}

// Messages is an iterator: range over it until you break or ctx ends.
func ExampleConsumer_Messages() {
	conn, done := exampleConn()
	defer done()

	for _, s := range []string{"x", "y"} {
		if err := conn.Produce("events", "emitter", []byte(s), nil, nil); err != nil {
			fmt.Println(err)
			return
		}
	}
	consumer, err := conn.CreateConsumer("events", "reader")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	for msg, err := range consumer.Messages(ctx) {
		if err != nil { // the failure that ended consuming
			fmt.Println(err)
			break
		}
		fmt.Printf("%s\n", msg.Data())
		_ = msg.Ack()
		if n++; n == 2 {
			break // unhandled buffered messages go back to the group
		}
	}
	// Output:
	// x
	// y
}

func ExampleConsumer_Fetch() {
	conn, done := exampleConn()
	defer done()

	p, err := conn.CreateProducer("jobs", "scheduler")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, job := range []string{"a", "b", "c"} {
		if err := p.Produce([]byte(job)); err != nil {
			fmt.Println(err)
			return
		}
	}
	c, err := conn.CreateConsumer("jobs", "worker", memphis.BatchMaxWaitTime(100*time.Millisecond))
	if err != nil {
		fmt.Println(err)
		return
	}
	msgs, err := c.Fetch(10, false) // up to 10 messages, no prefetch
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range msgs {
		seq, _ := m.GetSequenceNumber()
		fmt.Printf("%d: %s\n", seq, m.Data())
		_ = m.Ack()
	}
	// Output:
	// 1: a
	// 2: b
	// 3: c
}

// FetchMessages needs no consumer of your own: it creates one on first use
// and reuses it on later calls with the same station and consumer name.
func ExampleConn_FetchMessages() {
	conn, done := exampleConn()
	defer done()

	for i := 1; i <= 5; i++ {
		if err := conn.Produce("logs", "app", []byte(fmt.Sprintf("line %d", i)), nil, nil); err != nil {
			fmt.Println(err)
			return
		}
	}
	for range 2 {
		msgs, err := conn.FetchMessages("logs", "shipper",
			memphis.FetchBatchSize(3),
			memphis.FetchBatchMaxWaitTime(100*time.Millisecond))
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, m := range msgs {
			_ = m.Ack()
		}
		fmt.Println(len(msgs), "messages")
	}
	// Output:
	// 3 messages
	// 2 messages
}

func ExampleHeaders() {
	var h memphis.Headers // the zero value is ready to use
	fmt.Println(h.Add("trace-id", "4bf92f35"))
	err := h.Add("$memphis_producedBy", "me")
	fmt.Println(errors.Is(err, memphis.ErrReservedHeader))
	// Output:
	// <nil>
	// true
}

func ExamplePartitionForKey() {
	// Every message with this key goes to one partition, the one the Go and
	// Python SDKs pick for it too.
	fmt.Println(memphis.PartitionForKey("customer-42", []int{1, 2, 3}))
	// Output: 1
}

// Bad input is refused before anything is sent, with an error that
// errors.Is matches.
func ExampleConn_CreateStation_errors() {
	conn, done := exampleConn()
	defer done()

	_, err := conn.CreateStation("no spaces allowed")
	fmt.Println(errors.Is(err, memphis.ErrInvalidName))
	// Output: true
}

// Every error is an *OpError naming the call and the station, wrapping a
// sentinel that errors.Is matches.
func ExampleOpError() {
	conn, done := exampleConn()
	defer done()

	station, err := conn.CreateStation("sharded", memphis.PartitionsNumber(3))
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := station.CreateProducer("router")
	if err != nil {
		fmt.Println(err)
		return
	}
	err = p.Produce([]byte("x"), memphis.ProducerPartitionNumber(7))

	var opErr *memphis.OpError
	if errors.As(err, &opErr) {
		fmt.Println(opErr.Op, opErr.Station)
	}
	fmt.Println(errors.Is(err, memphis.ErrPartitionNotFound))
	// Output:
	// produce sharded
	// true
}
