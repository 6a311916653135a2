package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// controlPlane answers the Memphis control subjects on one internal
// connection. Each request is handled on a goroutine of its own (so a hook
// may delay one without holding up the others); mu serializes what they do
// to the registry and to JetStream, as the real broker's database does.
type controlPlane struct {
	b      *Broker
	nc     *nats.Conn
	js     jetstream.JetStream
	ingest *ingest

	mu  sync.Mutex // guards reg
	reg *registry

	subjects []string // the request subjects answered

	runMu   sync.Mutex // guards closed and wg.Add
	closed  bool
	wg      sync.WaitGroup
	closing chan struct{}
}

// subjAdvisoryMaxDeliveries is where JetStream reports a message that ran
// out of deliveries (PROTOCOL §8.1).
const subjAdvisoryMaxDeliveries = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>"

func startControlPlane(b *Broker, g *ingest) (*controlPlane, error) {
	reg, err := loadRegistry(b.cfg.StoreDir)
	if err != nil {
		return nil, err
	}
	nc, js, err := b.dialInternal()
	if err != nil {
		return nil, err
	}
	cp := &controlPlane{b: b, nc: nc, js: js, ingest: g, reg: reg, closing: make(chan struct{})}
	for _, st := range reg.Stations {
		if err := cp.ensureTransforms(st); err != nil {
			nc.Close()
			return nil, err
		}
		if err := g.add(st.idempotencyWindow(), st.streams()...); err != nil {
			nc.Close()
			return nil, err
		}
		cp.seedMsgIDs(st)
	}
	requests := map[string]func([]byte) []byte{
		wire.SubjStationCreations:     cp.createStation,
		wire.SubjStationDestructions:  cp.destroyStation,
		wire.SubjProducerCreations:    cp.createProducer,
		wire.SubjProducerDestructions: cp.destroyProducer,
		wire.SubjConsumerCreations:    cp.createConsumer,
		wire.SubjConsumerDestructions: cp.destroyConsumer,
		wire.SubjSchemaCreations:      cp.createSchema,
		wire.SubjSchemaAttachments:    cp.attachSchema,
		wire.SubjSchemaDetachments:    cp.detachSchema,
	}
	for subj, h := range requests {
		cp.subjects = append(cp.subjects, subj)
		group := "memphis_" + strings.TrimPrefix(subj, "$memphis_") + "_listeners_group"
		if _, err := nc.QueueSubscribe(subj, group, func(m *nats.Msg) { cp.serve(m, h) }); err != nil {
			nc.Close()
			return nil, fmt.Errorf("broker: subscribe %s: %w", subj, err)
		}
	}
	events := map[string]func([]byte){
		wire.SubjNackedDLS:        cp.onNackedDLS,
		wire.SubjSchemaverseDLS:   cp.onSchemaverseDLS,
		wire.SubjPMAcks:           cp.onPMAck,
		subjAdvisoryMaxDeliveries: cp.onMaxDeliveries,
	}
	for subj, h := range events {
		if _, err := nc.Subscribe(subj, func(m *nats.Msg) { cp.track(func() { h(m.Data) }) }); err != nil {
			nc.Close()
			return nil, fmt.Errorf("broker: subscribe %s: %w", subj, err)
		}
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("broker: control plane: %w", err)
	}
	return cp, nil
}

// track runs fn on a goroutine that close waits for; after close it drops fn.
func (cp *controlPlane) track(fn func()) {
	cp.runMu.Lock()
	defer cp.runMu.Unlock()
	if cp.closed {
		return
	}
	cp.wg.Add(1)
	go func() {
		defer cp.wg.Done()
		defer func() {
			// A bug in one handler must not take the broker down (the real
			// one crashes on a bad dead-letter report, Q13; this one won't).
			if r := recover(); r != nil {
				cp.b.log.Error("broker: handler panic", "panic", r)
			}
		}()
		fn()
	}()
}

// close stops taking requests, waits for those being handled and closes
// the connection.
func (cp *controlPlane) close() {
	cp.runMu.Lock()
	cp.closed = true
	cp.runMu.Unlock()
	close(cp.closing)
	cp.wg.Wait()
	cp.nc.Close()
}

// serve answers one control request, letting the hook intervene first.
func (cp *controlPlane) serve(m *nats.Msg, handle func([]byte) []byte) {
	body := requestBody(m)
	cp.track(func() {
		if hook := cp.b.currentHook(); hook != nil {
			act := hook(m.Subject, body)
			if act.Delay > 0 {
				t := time.NewTimer(act.Delay)
				select {
				case <-t.C:
				case <-cp.closing:
					t.Stop()
					return
				}
			}
			if act.Drop {
				return
			}
			if act.Reply != nil {
				cp.respond(m, act.Reply)
				return
			}
		}
		cp.respond(m, handle(body))
	})
}

func (cp *controlPlane) respond(m *nats.Msg, reply []byte) {
	if m.Reply == "" {
		return
	}
	if err := m.Respond(reply); err != nil {
		cp.b.log.Warn("broker: reply not sent", "subject", m.Subject, "err", err)
	}
}

// requestBody is what the real broker's JSON decoder sees: the raw message
// with any header block in front, unless the only header is the one NATS
// adds on service imports (PROTOCOL §2, Q18).
func requestBody(m *nats.Msg) []byte {
	for k := range m.Header {
		if k != "Nats-Request-Info" {
			var sb strings.Builder
			sb.WriteString("NATS/1.0\r\n")
			for k, vs := range m.Header {
				for _, v := range vs {
					sb.WriteString(k + ": " + v + "\r\n")
				}
			}
			sb.WriteString("\r\n")
			return append([]byte(sb.String()), m.Data...)
		}
	}
	return m.Data
}

// decode parses a request as the real broker does (Go's encoding/json,
// case-insensitive keys). Its type names are the broker's, and the broker's
// package is called server, so decoding errors read the same.
func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return errors.New(strings.Replace(err.Error(), "Go value of type broker.", "Go value of type server.", 1))
	}
	return nil
}

// text is a plain-text reply; success in that family is an empty body (nil).
func text(s string) []byte { return []byte(s) }

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed, marshalable reply types pass through here
	}
	return data
}

// jsErrorText renders a JetStream error as the real broker does:
// "<description> (<err_code>)".
func jsErrorText(err error) string {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return fmt.Sprintf("%s (%d)", apiErr.Description, apiErr.ErrorCode)
	}
	return err.Error()
}

// save persists the registry; cp.mu is held.
func (cp *controlPlane) save() {
	if err := cp.reg.save(cp.b.cfg.StoreDir); err != nil {
		cp.b.log.Error("broker: registry not saved", "err", err)
	}
}

// publishJSON sends a broker-originated update (schema updates, client updates).
func (cp *controlPlane) publishJSON(subject string, v any) {
	if err := cp.nc.Publish(subject, mustJSON(v)); err != nil {
		cp.b.log.Warn("broker: update not sent", "subject", subject, "err", err)
	}
}

// isActive reports whether a registration's connection is connected now:
// the real broker marks registrations inactive on disconnect and active
// again when the same connection name comes back (PROTOCOL §1.3, §1.5).
func isActive(live map[string]bool, connID string) bool { return live[connID] }
