// Tracing: one message traced from the code that produces it to the
// handler that consumes it, with OpenTelemetry, and a snapshot of the
// metrics.
//
//	cd otelmemphis && go run ./example
//
// It prints every span as it ends (the stdout trace exporter), then the
// metrics (the stdout metric exporter), then how the spans hang together:
// the request span that produced the message, the producer span under it,
// the consumer span under that one, across the broker, and the handler's
// own span under the consumer span, all in one trace.
//
// With MEMPHIS_HOST unset it starts an in-process broker for the run, so it
// needs nothing but Go; set MEMPHIS_HOST (and MEMPHIS_USER,
// MEMPHIS_PASSWORD or MEMPHIS_TOKEN, MEMPHIS_PORT) to use a real Memphis
// broker instead.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/memphistest"
	"github.com/memphisdev/memphis.go/otelmemphis"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(out io.Writer) error {
	ctx := context.Background()

	// Spans are printed as they end and kept, to show how they relate.
	spanOut, err := stdouttrace.New(stdouttrace.WithWriter(out), stdouttrace.WithPrettyPrint())
	if err != nil {
		return err
	}
	kept := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spanOut), sdktrace.WithSpanProcessor(kept))
	defer func() { _ = tp.Shutdown(ctx) }()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(ctx) }()

	// The hooks: every produce, consumed message and connection event of
	// the connection is traced and measured.
	tel := otelmemphis.New(otelmemphis.TracerProvider(tp), otelmemphis.MeterProvider(mp))
	defer func() { _ = tel.Close() }()
	conn, closeAll, err := connect(out, memphis.Hooks(tel))
	if err != nil {
		return err
	}
	defer closeAll()

	station, err := conn.CreateStation("tracing")
	if err != nil {
		return err
	}
	producer, err := station.CreateProducer("checkout")
	if err != nil {
		return err
	}
	consumer, err := station.CreateConsumer("billing")
	if err != nil {
		return err
	}

	// The application's own span, say an HTTP request, produces the
	// message: the producer span is its child, and its context travels in
	// the message's traceparent header.
	tracer := tp.Tracer("example")
	reqCtx, request := tracer.Start(ctx, "POST /orders")
	err = producer.ProduceContext(reqCtx, []byte(`{"order":1}`))
	request.End()
	if err != nil {
		return err
	}

	// The handler starts its spans under each message's context, so they
	// join the producer's trace.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var header string
	err = consumer.ConsumeUntil(cctx, func(msgs []*memphis.Msg, err error, _ context.Context) {
		if err != nil {
			log.Printf("consume: %v", err)
			return
		}
		for _, m := range msgs {
			header = m.GetHeaders()["traceparent"]
			_, span := tracer.Start(m.Context(), "bill order")
			span.End()
			if err := m.Ack(); err != nil {
				log.Print(err)
			}
		}
		cancel()
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if header == "" {
		return errors.New("no message was consumed")
	}

	// A snapshot of the metrics (the consumer lag gauge included).
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		return err
	}
	metricOut, err := stdoutmetric.New(stdoutmetric.WithWriter(out), stdoutmetric.WithPrettyPrint())
	if err != nil {
		return err
	}
	if err := metricOut.Export(ctx, &rm); err != nil {
		return err
	}

	fmt.Fprintf(out, "\nthe message carried traceparent %s\n", header)
	if err := describe(out, kept.Ended(), request.SpanContext().TraceID()); err != nil {
		return err
	}
	if err := consumer.Destroy(); err != nil {
		log.Print(err)
	}
	if err := station.Destroy(); err != nil {
		log.Print(err)
	}
	fmt.Fprintln(out, "done")
	return nil
}

// describe prints the spans as a tree, checking that they are one trace.
func describe(out io.Writer, spans []sdktrace.ReadOnlySpan, id trace.TraceID) error {
	children := map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	var root sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanContext().TraceID() != id {
			return fmt.Errorf("span %q is in trace %v, not the request's %v", s.Name(), s.SpanContext().TraceID(), id)
		}
		if !s.Parent().IsValid() {
			root = s
			continue
		}
		children[s.Parent().SpanID()] = append(children[s.Parent().SpanID()], s)
	}
	if root == nil {
		return errors.New("no root span")
	}
	fmt.Fprintf(out, "trace %v:\n", id)
	n := 0
	var walk func(s sdktrace.ReadOnlySpan, depth int)
	walk = func(s sdktrace.ReadOnlySpan, depth int) {
		n++
		fmt.Fprintf(out, "%*s%s (%v)\n", 2+2*depth, "", s.Name(), s.SpanKind())
		for _, c := range children[s.SpanContext().SpanID()] {
			walk(c, depth+1)
		}
	}
	walk(root, 0)
	if n != 4 {
		return fmt.Errorf("%d spans in the trace, want 4 (request, send, process, bill)", n)
	}
	return nil
}

// connect connects to the broker at MEMPHIS_HOST, or to an in-process one
// started for the run, and returns a function that closes both.
func connect(out io.Writer, opts ...memphis.Option) (*memphis.Conn, func(), error) {
	host := os.Getenv("MEMPHIS_HOST")
	if host == "" {
		srv, err := memphistest.Start()
		if err != nil {
			return nil, nil, fmt.Errorf("starting the in-process broker: %w", err)
		}
		c, err := memphis.Connect(srv.Host(), srv.Username(),
			append([]memphis.Option{memphis.Port(srv.Port()), memphis.Password(srv.Password())}, opts...)...)
		if err != nil {
			srv.Shutdown()
			return nil, nil, err
		}
		fmt.Fprintf(out, "using an in-process broker on %s:%d (set MEMPHIS_HOST to use another)\n", srv.Host(), srv.Port())
		return c, func() { c.Close(); srv.Shutdown() }, nil
	}
	base := []memphis.Option{}
	if p := os.Getenv("MEMPHIS_PORT"); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil {
			return nil, nil, fmt.Errorf("MEMPHIS_PORT: %w", err)
		}
		base = append(base, memphis.Port(port))
	}
	if tok := os.Getenv("MEMPHIS_TOKEN"); tok != "" {
		base = append(base, memphis.ConnectionToken(tok))
	} else {
		base = append(base, memphis.Password(getenv("MEMPHIS_PASSWORD", "memphis")))
	}
	c, err := memphis.Connect(host, getenv("MEMPHIS_USER", "root"), append(base, opts...)...)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(out, "using the broker at %s\n", host)
	return c, c.Close, nil
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
