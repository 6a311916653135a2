// Quickstart: create a station, produce a few messages, consume them.
//
//	go run ./examples/quickstart
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

	station, err := conn.CreateStation("quickstart")
	if err != nil {
		log.Fatal(err)
	}
	producer, err := station.CreateProducer("greeter")
	if err != nil {
		log.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if err := producer.Produce([]byte(fmt.Sprintf("hello #%d", i))); err != nil {
			log.Fatal(err)
		}
	}

	consumer, err := station.CreateConsumer("reader")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	received := 0
	err = consumer.ConsumeContext(ctx, func(msgs []*memphis.Msg, _ error, _ context.Context) {
		for _, m := range msgs {
			fmt.Printf("consumed: %s\n", m.Data())
			if err := m.Ack(); err != nil {
				log.Print(err)
			}
			received++
		}
		if received >= 3 {
			cancel()
		}
	})
	if received < 3 {
		log.Fatalf("consumed %d of 3 messages: %v", received, err)
	}
	// Clean up so the example can run again against a real broker.
	if err := consumer.Destroy(); err != nil {
		log.Print(err)
	}
	if err := station.Destroy(); err != nil {
		log.Print(err)
	}
	fmt.Println("done")
}
