// Quickstart: create a station, produce three messages, consume them.
//
//	go run ./examples/quickstart
//
// With MEMPHIS_HOST unset it starts an in-process broker for the run, so it
// needs nothing but Go. Set MEMPHIS_HOST (and MEMPHIS_USER, MEMPHIS_PASSWORD
// or MEMPHIS_TOKEN, MEMPHIS_PORT) to use a real Memphis broker instead.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/examples/internal/env"
)

const want = 3

func main() {
	conn, closeAll, err := env.Connect()
	if err != nil {
		log.Fatal(err)
	}
	defer closeAll()

	// A station holds messages. Creating one that exists is not an error.
	station, err := conn.CreateStation("quickstart")
	if err != nil {
		log.Fatal(err)
	}

	// Produce waits for the broker to store the message (sync by default).
	producer, err := station.CreateProducer("greeter")
	if err != nil {
		log.Fatal(err)
	}
	for i := 1; i <= want; i++ {
		if err := producer.Produce([]byte(fmt.Sprintf("hello #%d", i))); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("produced: hello #%d\n", i)
	}

	// ConsumeUntil calls the handler with batches of messages until ctx
	// ends; the handler cancels it once it has seen all three.
	consumer, err := station.CreateConsumer("reader")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	received := 0
	err = consumer.ConsumeUntil(ctx, func(msgs []*memphis.Msg, err error, _ context.Context) {
		if err != nil {
			// A background failure, delivered with no messages.
			log.Printf("consume: %v", err)
			return
		}
		for _, m := range msgs {
			fmt.Printf("consumed: %s\n", m.Data())
			if err := m.Ack(); err != nil {
				log.Print(err)
			}
			received++
		}
		if received >= want {
			cancel()
		}
	})
	// ConsumeUntil returns ctx's error when ctx ends, or the failure that
	// stopped it.
	if received < want {
		log.Fatalf("consumed %d of %d messages: %v", received, want, err)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}

	// Clean up, so the example can run again against a real broker.
	if err := consumer.Destroy(); err != nil {
		log.Print(err)
	}
	if err := station.Destroy(); err != nil {
		log.Print(err)
	}
	fmt.Println("done")
}
