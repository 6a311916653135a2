// Shutdown: a service that produces and consumes until SIGINT or SIGTERM,
// then stops in order — the running handler finishes, messages it did not
// get to go back to the broker at once, outstanding async produces are
// flushed, and the connection closes.
//
//	go run ./examples/shutdown            # stops after 3 s, or on Ctrl-C
//
// Runs against an in-process broker unless MEMPHIS_HOST is set.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/examples/internal/env"
)

func main() {
	// The service runs until a signal arrives, or for three seconds so the
	// example ends by itself.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()

	// The SDK logs through slog; here only warnings and errors, to stderr.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	conn, closeAll, err := env.Connect(memphis.Logger(logger), memphis.CloseTimeout(5*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer closeAll()

	station, err := conn.CreateStation("example-jobs")
	if err != nil {
		log.Fatal(err)
	}
	producer, err := station.CreateProducer("scheduler",
		memphis.ProducerErrorHandler(func(_ *memphis.Producer, err error) {
			logger.Error("async produce failed", "err", err)
		}))
	if err != nil {
		log.Fatal(err)
	}
	consumer, err := station.CreateConsumer("worker")
	if err != nil {
		log.Fatal(err)
	}

	// Produce in the background until shutdown.
	var wg sync.WaitGroup
	wg.Add(1)
	produced := 0
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				err := producer.ProduceContext(ctx, []byte(fmt.Sprintf("job %d", produced)), memphis.AsyncProduce())
				switch {
				case err == nil:
					produced++
				case ctx.Err() == nil:
					logger.Error("produce", "err", err)
				}
			}
		}
	}()

	// ConsumeUntil blocks until ctx ends. The handler's context ends with
	// it, so long work can stop early.
	handled := 0
	err = consumer.ConsumeUntil(ctx, func(msgs []*memphis.Msg, err error, hctx context.Context) {
		if err != nil {
			logger.Warn("consume", "err", err)
			return
		}
		for _, m := range msgs {
			if hctx.Err() != nil {
				return // left unacked: the broker hands it to the group again
			}
			_ = m.Ack()
			handled++
		}
	})
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		log.Fatal(err) // a failure ended consuming, not the shutdown
	}
	fmt.Println("shutdown requested; the handler has returned")

	// Stop producing, then wait for the broker's ack of every async produce.
	wg.Wait()
	flushCtx, cancelFlush := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelFlush()
	if err := producer.Flush(flushCtx); err != nil {
		log.Print(err)
	}
	fmt.Printf("produced %d jobs, handled %d\n", produced, handled)

	// Remove what the example created; a long-lived service would keep its
	// producers and consumers registered and just close the connection.
	if err := consumer.Destroy(); err != nil {
		log.Print(err)
	}
	if err := producer.Destroy(); err != nil {
		log.Print(err)
	}
	if err := station.Destroy(); err != nil {
		log.Print(err)
	}
	closeAll() // idempotent; the deferred call then does nothing
	fmt.Println("connection closed")
}
