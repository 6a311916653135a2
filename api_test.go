package memphis_test

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
)

// apiFunc is one exported function or method of the package.
type apiFunc struct {
	key        string // "Conn.CreateStation", or "Connect"
	recv, name string
	takesCtx   bool // its first parameter is a context.Context
	returnsErr bool // it returns an error, or an iterator of them
	optionCtor bool // it builds an option (returns an ...Opt or Option)
}

// exportedAPI reads the package's exported functions and methods (of
// exported types) from its source.
func exportedAPI(t *testing.T) []apiFunc {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var api []apiFunc
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || !fn.Name.IsExported() {
				continue
			}
			a := apiFunc{key: fn.Name.Name, name: fn.Name.Name}
			if fn.Recv != nil {
				a.recv = strings.TrimPrefix(types.ExprString(fn.Recv.List[0].Type), "*")
				if !ast.IsExported(a.recv) {
					continue
				}
				a.key = a.recv + "." + a.name
			}
			if ps := fn.Type.Params.List; len(ps) > 0 && types.ExprString(ps[0].Type) == "context.Context" {
				a.takesCtx = true
			}
			if fn.Type.Results != nil {
				for _, r := range fn.Type.Results.List {
					s := types.ExprString(r.Type)
					a.returnsErr = a.returnsErr || s == "error" || strings.HasSuffix(s, ", error]")
					a.optionCtor = a.optionCtor || s == "Option" || strings.HasSuffix(s, "Opt")
				}
			}
			api = append(api, a)
		}
	}
	slices.SortFunc(api, func(a, b apiFunc) int { return strings.Compare(a.key, b.key) })
	return api
}

// noWait lists the exported calls that take no context and have no
// context form, each with the reason it needs none: none of them waits on
// the network.
var noWait = map[string]string{
	"PartitionForKey":                          "computes",
	"Conn.GetPartitionFromKey":                 "computes, from what the connection knows",
	"Conn.ValidatePartitionNumber":             "checks what the connection knows",
	"DefaultConsumerErrHandler":                "logs",
	"DefaultErrHandler":                        "logs; deprecated",
	"GetStationDefaultOptions":                 "returns the defaults",
	"Headers.All":                              "local",
	"Msg.Headers":                              "local",
	"RoundRobinProducerConsumerGenerator.Next": "computes",
	"Conn.AttachSchema":                        "deprecated: EnforceSchemaContext is its context form",
	"Conn.ConnectionID":                        "reads state",
	"Conn.IsConnected":                         "reads state",
	"Consumer.Partitions":                      "reads state",
	"Consumer.SetContext":                      "sets state",
	"Consumer.Station":                         "reads state",
	"Consumer.StopConsume":                     "waits for the running handler, not for the network",
	"Msg.Context":                              "local",
	"Msg.GetHeader":                            "local",
	"ProduceRecord.Header":                     "local",
	"ProduceRecord.SetHeader":                  "local",
	"Settle.String":                            "local",
	"Consumer.Consume":                         "returns at once; ConsumeUntil is its blocking form, with a context",
	"Headers.Add":                              "local",
	"Headers.Get":                              "local",
	"Headers.Len":                              "local",
	"Headers.New":                              "local",
	"Msg.Ack":                                  "publishes without waiting for an answer",
	"Msg.Nack":                                 "publishes without waiting for an answer",
	"Msg.Delay":                                "publishes without waiting for an answer",
	"Msg.DeadLetter":                           "publishes without waiting for an answer",
	"Msg.Data":                                 "local",
	"Msg.DataDeserialized":                     "local",
	"Msg.DeliveryCount":                        "local",
	"Msg.GetHeaders":                           "local",
	"Msg.GetSequenceNumber":                    "local",
	"Msg.GetTimeSent":                          "local",
	"Msg.IsResent":                             "local",
	"Msg.Partition":                            "local",
	"Producer.Stations":                        "reads state",
	"BrokerError.Error":                        "an error's text",
	"BrokerError.Is":                           "an error's identity",
	"OpError.Error":                            "an error's text",
	"OpError.Unwrap":                           "an error's cause",
	"SchemaError.Error":                        "an error's text",
	"SchemaError.Is":                           "an error's identity",
	"SchemaError.Unwrap":                       "an error's cause",
	"Conn.Format":                              "formats, with secrets redacted",
	"Conn.LogValue":                            "formats, with secrets redacted",
	"Options.Format":                           "formats, with secrets redacted",
	"Options.LogValue":                         "formats, with secrets redacted",
	"RetentionType.String":                     "a name",
	"StorageType.String":                       "a name",
}

// TestEveryCallThatWaitsHasAContextForm: "a context.Context on every call
// that waits". Every exported call either takes a context, has a form
// named ...Context that does, or is listed in noWait with the reason it
// does not wait on the network; read from the source, so a new call can
// not slip by.
func TestEveryCallThatWaitsHasAContextForm(t *testing.T) {
	api := exportedAPI(t)
	byKey := map[string]apiFunc{}
	for _, f := range api {
		byKey[f.key] = f
	}
	for _, f := range api {
		if f.takesCtx || f.optionCtor {
			continue
		}
		twin, hasTwin := byKey[f.key+"Context"]
		_, listed := noWait[f.key]
		switch {
		case hasTwin && !twin.takesCtx:
			t.Errorf("%sContext does not take a context first", f.key)
		case hasTwin && listed:
			t.Errorf("%s has a context form; drop it from noWait", f.key)
		case !hasTwin && !listed:
			t.Errorf("%s takes no context and has no %sContext: add one, or say in noWait why it does not wait", f.key, f.key)
		}
	}
	for key := range noWait {
		if _, ok := byKey[key]; !ok {
			t.Errorf("noWait lists %s, which is not an exported call", key)
		}
	}
}

// TestEveryContextFormHonoursItsContext: each call that takes a context
// gives up at once when it is already done, with an error errors.Is matches
// to context.Canceled, before it asks anything of the broker (Messages
// yields nothing). Calls that wait only when there is something to wait
// for (Flush, CloseContext) are given an acknowledgement that never comes.
func TestEveryContextFormHonoursItsContext(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	name := testenv.Name(t, "ctx")
	s, err := c.CreateStation(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Destroy() })
	p := mustProducer(t, c, name, "p")
	cons := mustConsumer(t, c, name, "c")
	done, cancel := context.WithCancel(context.Background())
	cancel()
	ok := []byte("ok")

	cases := map[string]func() error{
		"ConnectContext": func() error {
			_, err := memphis.ConnectContext(done, b.Host, b.Username, credentials(b)...)
			return err
		},
		"Conn.CloseContext": func() error { return stalled(t).conn.CloseContext(done) },
		"Conn.CreateConsumerContext": func() error {
			_, err := c.CreateConsumerContext(done, name, "c2")
			return err
		},
		"Conn.CreateMultiStationProducerContext": func() error {
			_, err := c.CreateMultiStationProducerContext(done, []string{name}, "p2")
			return err
		},
		"Conn.CreateProducerContext": func() error {
			_, err := c.CreateProducerContext(done, name, "p2")
			return err
		},
		"Conn.CreateSchemaContext": func() error {
			return c.CreateSchemaContext(done, "ctx-schema", memphis.SchemaTypeJSON, "testdata/schemas/person.json")
		},
		"Conn.CreateStationContext": func() error {
			_, err := c.CreateStationContext(done, name)
			return err
		},
		"Conn.DetachSchemaContext":  func() error { return c.DetachSchemaContext(done, name) },
		"Conn.EnforceSchemaContext": func() error { return c.EnforceSchemaContext(done, "ctx-schema", name) },
		"Conn.FetchMessagesContext": func() error {
			_, err := c.FetchMessagesContext(done, name, "f")
			return err
		},
		"Conn.ProduceContext": func() error { return c.ProduceContext(done, name, "p", ok, nil, nil) },
		"Conn.ProduceToStations": func() error {
			return c.ProduceToStations(done, []string{name}, "p", ok, nil, nil)
		},
		"Consumer.ConsumeUntil": func() error {
			return cons.ConsumeUntil(done, func([]*memphis.Msg, error, context.Context) {})
		},
		"Consumer.DestroyContext": func() error {
			return mustConsumer(t, c, name, "c3").DestroyContext(done)
		},
		"Consumer.Lag": func() error {
			_, err := cons.Lag(done)
			return err
		},
		"Consumer.FetchContext": func() error {
			_, err := cons.FetchContext(done, 1, false)
			return err
		},
		"Consumer.Messages": func() error {
			for m, err := range cons.Messages(done) {
				t.Errorf("Messages with a done context yielded %v, %v", m, err)
			}
			return context.Canceled // what ending at once means here
		},
		"Producer.DestroyContext": func() error {
			return mustProducer(t, c, name, "p3").DestroyContext(done)
		},
		"Producer.Flush": func() error { return stalled(t).producer.Flush(done) },
		"Producer.ProduceAsync": func() error {
			return p.ProduceAsync(done, ok, func(memphis.PubAck, error) { t.Error("done called for a refused produce") })
		},
		"Producer.ProduceContext": func() error { return p.ProduceContext(done, ok) },
		"Station.CreateConsumerContext": func() error {
			_, err := s.CreateConsumerContext(done, "c4")
			return err
		},
		"Station.CreateProducerContext": func() error {
			_, err := s.CreateProducerContext(done, "p4")
			return err
		},
		"Station.DestroyContext": func() error { return s.DestroyContext(done) },
	}
	for _, f := range exportedAPI(t) {
		if f.key == "Consumer.SetContext" {
			continue // keeps a context for the handler; waits for nothing
		}
		if f.takesCtx && cases[f.key] == nil {
			t.Errorf("%s takes a context but has no case here", f.key)
		}
	}
	keys := make([]string, 0, len(cases))
	for k := range cases {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		t.Run(key, func(t *testing.T) {
			start := time.Now()
			err := cases[key]()
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want one matching context.Canceled", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v with a done context", d)
			}
		})
	}
}

// stalledConn is a connection with a producer whose async produce is
// never acknowledged (see blackhole).
type stalledConn struct {
	b        *testenv.Broker
	conn     *memphis.Conn
	producer *memphis.Producer
}

func stalled(t *testing.T, opts ...memphis.Option) stalledConn {
	t.Helper()
	return stalledOn(t, testenv.Start(t), opts...)
}

func stalledOn(t *testing.T, b *testenv.Broker, opts ...memphis.Option) stalledConn {
	t.Helper()
	c := connect(t, b, append([]memphis.Option{memphis.Logger(discardLogger()), memphis.CloseTimeout(100 * time.Millisecond)}, opts...)...)
	p, msgs := blackhole(t, b, c)
	if err := p.Produce([]byte("never acked"), memphis.AsyncProduce(), memphis.AckWaitSec(60)); err != nil {
		t.Fatal(err)
	}
	within(t, msgs, 10*time.Second, "the stalled produce") // sent, and held
	return stalledConn{b: b, conn: c, producer: p}
}
