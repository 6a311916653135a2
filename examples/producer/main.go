// Producer: the ways to produce — sync, async with a completion barrier,
// headers, idempotent message ids, and the connection's producer cache.
//
//	go run ./examples/producer
//
// Runs against an in-process broker unless MEMPHIS_HOST is set.
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/examples/internal/env"
)

func main() {
	conn, closeAll, err := env.Connect()
	if err != nil {
		log.Fatal(err)
	}
	defer closeAll()

	station, err := conn.CreateStation("example-orders", memphis.IdempotencyWindow(time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	defer station.Destroy()

	// Async failures are never dropped: they reach this handler.
	producer, err := station.CreateProducer("order-service",
		memphis.ProducerErrorHandler(func(_ *memphis.Producer, err error) {
			log.Printf("async produce failed: %v", err)
		}))
	if err != nil {
		log.Fatal(err)
	}
	defer producer.Destroy()

	// A sync produce returns once the broker has stored the message.
	hdrs := memphis.Headers{}
	if err := hdrs.Add("source", "example"); err != nil {
		log.Fatal(err)
	}
	if err := producer.Produce([]byte(`{"order":1}`), memphis.MsgHeaders(hdrs)); err != nil {
		log.Fatal(err)
	}
	fmt.Println("order 1: sync produce with a header, stored")

	// The same MsgId twice inside the idempotency window is stored once.
	for range 2 {
		if err := producer.Produce([]byte(`{"order":2}`), memphis.MsgId("order-2")); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("order 2: produced twice with one MsgId")

	// Async produces return at once; Flush waits for every ack.
	for i := 3; i <= 100; i++ {
		if err := producer.Produce([]byte(fmt.Sprintf(`{"order":%d}`, i)), memphis.AsyncProduce()); err != nil {
			log.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := producer.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("orders 3-100: async produces, all acknowledged after Flush")

	// A promise per message when you need each outcome.
	done := make(chan error, 1)
	err = producer.ProduceAsync(ctx, []byte(`{"order":101}`), func(ack memphis.PubAck, err error) {
		if err == nil {
			fmt.Printf("order 101 stored as sequence %d\n", ack.Sequence)
		}
		done <- err
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := <-done; err != nil {
		log.Fatal(err)
	}

	// Conn.Produce creates and caches the producer on first use.
	err = conn.Produce("example-orders", "order-service-2", []byte(`{"order":102}`),
		[]memphis.ProducerOpt{}, []memphis.ProduceOpt{})
	if err != nil {
		log.Fatal(err)
	}

	msgs, err := conn.FetchMessages("example-orders", "auditor", memphis.FetchBatchSize(200), memphis.FetchBatchMaxWaitTime(time.Second))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("the station holds %d messages (103 produces, one duplicate dropped)\n", len(msgs))
}
