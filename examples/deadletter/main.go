// Dead letters: messages a consumer gives up on — explicitly with
// DeadLetter, or by failing them more than MaxMsgDeliveries times (poison
// messages) — are kept by the broker and copied to the station's
// dead-letter station, which is an ordinary station you can consume.
//
//	go run ./examples/deadletter
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

	dls, err := conn.CreateStation("example-payments-dls")
	if err != nil {
		log.Fatal(err)
	}
	defer dls.Destroy()
	station, err := conn.CreateStation("example-payments",
		memphis.DlsStation("example-payments-dls"), memphis.SendPoisonMsgToDls(true))
	if err != nil {
		log.Fatal(err)
	}
	defer station.Destroy()

	producer, err := station.CreateProducer("payments")
	if err != nil {
		log.Fatal(err)
	}
	for _, body := range []string{"malformed payment", "payment the service keeps failing"} {
		if err := producer.Produce([]byte(body)); err != nil {
			log.Fatal(err)
		}
	}

	// After MaxMsgDeliveries failed deliveries a message is poison.
	consumer, err := station.CreateConsumer("payment-service", memphis.MaxMsgDeliveries(2))
	if err != nil {
		log.Fatal(err)
	}
	defer consumer.Destroy()
	err = consumer.Consume(func(msgs []*memphis.Msg, err error, _ context.Context) {
		if err != nil {
			log.Printf("consume: %v", err) // a background failure, with no messages
			return
		}
		for _, m := range msgs {
			if string(m.Data()) == "malformed payment" {
				fmt.Printf("dead-lettering %q\n", m.Data())
				_ = m.DeadLetter("cannot parse the amount") // not redelivered
				continue
			}
			n, _ := m.DeliveryCount()
			fmt.Printf("failing %q (delivery %d)\n", m.Data(), n)
			_ = m.Nack() // redelivered at once, until it is poison
		}
	})
	if err != nil {
		log.Fatal(err)
	}
	defer consumer.StopConsume()

	// The broker copies both to the dead-letter station, with headers saying
	// where they came from and why.
	reader, err := dls.CreateConsumer("dls-reader")
	if err != nil {
		log.Fatal(err)
	}
	defer reader.Destroy()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := 0
	for msg, err := range reader.Messages(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		h := msg.GetHeaders()
		fmt.Printf("dead letter from station %q (%s): %s\n", h["station"], h["type"], msg.Data())
		_ = msg.Ack()
		if got++; got == 2 {
			break
		}
	}
	if got < 2 {
		log.Fatalf("got %d of 2 dead letters", got)
	}
}
