// Consumer: the three ways to read a station — a Consume callback, a Go
// iterator, and one-shot Fetch — with acks and a delayed redelivery.
//
//	go run ./examples/consumer
//
// Runs against an in-process broker unless MEMPHIS_HOST is set.
package main

import (
	"context"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/examples/internal/env"
)

const total = 30

func main() {
	conn, closeAll, err := env.Connect()
	if err != nil {
		log.Fatal(err)
	}
	defer closeAll()

	station, err := conn.CreateStation("example-events")
	if err != nil {
		log.Fatal(err)
	}
	defer station.Destroy()
	producer, err := station.CreateProducer("events")
	if err != nil {
		log.Fatal(err)
	}
	for i := range total {
		if err := producer.Produce([]byte(fmt.Sprintf("event %d", i)), memphis.AsyncProduce()); err != nil {
			log.Fatal(err)
		}
	}
	if err := producer.Flush(context.Background()); err != nil {
		log.Fatal(err)
	}

	// 1. A callback. Each consumer group gets every message once; the
	// handler is never called concurrently with itself.
	callback, err := station.CreateConsumer("callback", memphis.ConsumerGroup("callback-group"))
	if err != nil {
		log.Fatal(err)
	}
	defer callback.Destroy()
	var seen atomic.Int32
	allSeen := make(chan struct{})
	err = callback.Consume(func(msgs []*memphis.Msg, err error, ctx context.Context) {
		if err != nil {
			log.Printf("consume: %v", err) // the consumer keeps going
			return
		}
		for _, m := range msgs {
			_ = m.Ack()
			if seen.Add(1) == total {
				close(allSeen)
			}
		}
	})
	if err != nil {
		log.Fatal(err)
	}
	select {
	case <-allSeen:
	case <-time.After(10 * time.Second):
		log.Fatalf("callback consumer saw %d of %d", seen.Load(), total)
	}
	callback.StopConsume() // returns after the running handler returns
	fmt.Printf("callback consumer: %d messages\n", seen.Load())

	// 2. An iterator: range over messages until the context ends or you break.
	iter, err := station.CreateConsumer("iterator", memphis.ConsumerGroup("iterator-group"))
	if err != nil {
		log.Fatal(err)
	}
	defer iter.Destroy()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	for msg, err := range iter.Messages(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		if n == 0 {
			// Delay asks for redelivery later; Nack for redelivery now.
			_ = msg.Delay(100 * time.Millisecond)
			n++
			continue
		}
		_ = msg.Ack()
		if n++; n == total+1 { // the delayed message came back
			break
		}
	}
	fmt.Printf("iterator consumer: %d deliveries (one delayed and redelivered)\n", n)

	// 3. One-shot fetches, starting from a chosen sequence.
	fetcher, err := station.CreateConsumer("fetcher", memphis.ConsumerGroup("fetch-group"),
		memphis.StartConsumeFromSeq(11), memphis.BatchMaxWaitTime(time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer fetcher.Destroy()
	msgs, err := fetcher.Fetch(100, false)
	if err != nil {
		log.Fatal(err)
	}
	if len(msgs) == 0 {
		log.Fatal("fetch from sequence 11: no messages")
	}
	for _, m := range msgs {
		_ = m.Ack()
	}
	first, _ := msgs[0].GetSequenceNumber()
	fmt.Printf("fetch from sequence 11: %d messages, first is %d (%s)\n", len(msgs), first, msgs[0].Data())
}
