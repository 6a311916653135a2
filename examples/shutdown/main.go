// Shutdown: a service that consumes until SIGINT/SIGTERM, then stops
// cleanly — the running handler finishes, unhandled messages go back to the
// broker at once, async produces are flushed, and the connection closes.
//
//	go run ./examples/shutdown            # stops after 3 s or on Ctrl-C
//
// Runs against an in-process broker unless MEMPHIS_HOST is set.
package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/examples/internal/env"
)

func main() {
	// The process ends on a signal, or after a few seconds so the example
	// finishes by itself.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	conn, closeAll, err := env.Connect(memphis.Logger(logger), memphis.CloseTimeout(5*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer closeAll() // flushes outstanding async produces, bounded by CloseTimeout

	station, err := conn.CreateStation("example-jobs")
	if err != nil {
		log.Fatal(err)
	}
	defer station.Destroy()
	producer, err := station.CreateProducer("scheduler")
	if err != nil {
		log.Fatal(err)
	}
	consumer, err := station.CreateConsumer("worker")
	if err != nil {
		log.Fatal(err)
	}

	// Produce in the background until shutdown.
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_ = producer.ProduceContext(ctx, []byte(fmt.Sprintf("job %d", i)), memphis.AsyncProduce())
			}
		}
	}()

	// ConsumeContext blocks until ctx ends; the handler gets a context that
	// ends with it, for the work it does.
	done := 0
	err = consumer.ConsumeContext(ctx, func(msgs []*memphis.Msg, err error, hctx context.Context) {
		if err != nil {
			logger.Warn("consume", "err", err)
			return
		}
		for _, m := range msgs {
			if hctx.Err() != nil {
				return // left unacked: redelivered to the group
			}
			_ = m.Ack()
			done++
		}
	})
	if err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
	fmt.Printf("shutting down after %d jobs\n", done)
	if err := consumer.Destroy(); err != nil {
		log.Print(err)
	}
}
