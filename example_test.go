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
	msgs, err := c.Fetch(10, false)
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
	// Every Memphis SDK routes a key to the same partition.
	fmt.Println(memphis.PartitionForKey("customer-42", []int{1, 2, 3}))
	// Output: 1
}

func ExampleConn_CreateStation_errors() {
	conn, done := exampleConn()
	defer done()

	_, err := conn.CreateStation("no spaces allowed")
	fmt.Println(errors.Is(err, memphis.ErrInvalidName))
	// Output: true
}
