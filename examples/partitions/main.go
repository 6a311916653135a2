// Partitions: a station split in partitions, messages routed by key (the
// same murmur3 routing as every Memphis SDK), by number, or round-robin,
// and consumers reading one partition or all of them.
//
//	go run ./examples/partitions
//
// Runs against an in-process broker unless MEMPHIS_HOST is set.
package main

import (
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

	station, err := conn.CreateStation("example-partitioned", memphis.PartitionsNumber(3))
	if err != nil {
		log.Fatal(err)
	}
	defer station.Destroy()
	producer, err := station.CreateProducer("router")
	if err != nil {
		log.Fatal(err)
	}

	// Every message with one key lands on one partition, in order.
	for i := range 3 {
		msg := []byte(fmt.Sprintf("customer-42 event %d", i))
		if err := producer.Produce(msg, memphis.ProducerPartitionKey("customer-42")); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("key customer-42 routes to partition %d\n", memphis.PartitionForKey("customer-42", []int{1, 2, 3}))

	// Or choose the partition yourself; numbers start at 1.
	if err := producer.Produce([]byte("to partition 2"), memphis.ProducerPartitionNumber(2)); err != nil {
		log.Fatal(err)
	}
	// A partition the station doesn't have is refused before anything is sent.
	err = producer.Produce([]byte("nowhere"), memphis.ProducerPartitionNumber(7))
	fmt.Printf("partition 7: %v\n", err)

	// Without a key or number, messages go round-robin.
	for i := range 6 {
		if err := producer.Produce([]byte(fmt.Sprintf("spread %d", i))); err != nil {
			log.Fatal(err)
		}
	}

	consumer, err := station.CreateConsumer("reader", memphis.BatchMaxWaitTime(500*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	defer consumer.Destroy()
	for _, p := range consumer.Partitions() {
		msgs, err := consumer.Fetch(100, false, memphis.ConsumerPartitionNumber(p))
		if err != nil {
			log.Fatal(err)
		}
		for _, m := range msgs {
			_ = m.Ack()
		}
		fmt.Printf("partition %d holds %d messages\n", p, len(msgs))
	}
}
