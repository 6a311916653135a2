package memphis

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Hook observes what a connection does: produces, consumed messages and
// connection events. A hook is any value implementing one or more of the
// Hook… interfaces below; give hooks to Connect with the Hooks option.
// Connect sorts them by interface once, so a connection without hooks (or
// without hooks of a kind) pays one length check where an event happens.
//
// Hooks are called synchronously, on the goroutine where the event happens
// (each interface says which), with no SDK lock held, so a hook may call
// SDK methods: those running with a consume loop's handler or a
// connection handler may stop or close what they observe, as the handler
// may. OnProduceEnd must not wait for a produce (a sync Produce, Flush): it
// runs where acknowledgements arrive. Hooks of one kind run in the order
// they were given, and may run concurrently with each other for different
// events: they must be safe for concurrent use. A hook that blocks holds up what it observes
// (OnProduceEnd, for instance, runs where the connection receives every
// produce's acknowledgement), and a hook that panics crashes the program:
// both are the hook's responsibility, not the SDK's. Keep hooks fast; hand
// slow work to a goroutine of your own.
//
// The errors hooks receive are the causes: the error a call returns (or a
// handler receives) wraps the same error inside an *OpError, so errors.Is
// matches the same sentinels.
//
// Package github.com/memphisdev/memphis.go/otelmemphis (a module of its
// own) builds OpenTelemetry tracing and metrics on these hooks.
type Hook any

// HookConnect is called when Connect (or ConnectContext) ends, on its
// caller's goroutine: with the new connection, or with a nil *Conn and the
// reason it failed (options that do not validate, credentials, no broker
// reachable, the context).
type HookConnect interface {
	OnConnect(c *Conn, err error)
}

// HookDisconnect is called when the connection to the broker drops, or is
// closed (err is then nil), on nats.go's callback goroutine.
type HookDisconnect interface {
	OnDisconnect(c *Conn, err error)
}

// HookReconnect is called when the connection is re-established after a
// drop, on nats.go's callback goroutine.
type HookReconnect interface {
	OnReconnect(c *Conn)
}

// HookConnClosed is called once the connection is closed for good (by
// Close, or because reconnecting gave up), on nats.go's callback goroutine;
// it may run after Close returned.
type HookConnClosed interface {
	OnConnClosed(c *Conn)
}

// HookProduceStart is called for every message a producer sends to a
// station (once per station for a multi-station producer), on the
// producing goroutine, after the message was validated and encoded and its
// partition chosen, and before it waits for room among pending produces
// and is sent. The hook may add headers with r.SetHeader and replace
// r.Context to carry state to HookProduceEnd.
//
// A produce refused before that point (bad options, an unknown partition,
// a message the schema rejects, a destroyed producer, a closed connection,
// a done context) is reported too: OnProduceStart sees what is known (the
// partition may be 0 and the size 0), headers it sets are not sent, and
// OnProduceEnd follows at once with the reason. So is a Conn.Produce whose
// options are refused before its cached producer is made, under the names
// it was given. (A Conn.Produce whose station argument is of no station
// type produces to no station, and is not reported.)
type HookProduceStart interface {
	OnProduceStart(r *ProduceRecord)
}

// HookProduceEnd is called exactly once for every produce HookProduceStart
// saw, when its outcome is decided: the broker's acknowledgement (ack,
// with err nil) or the failure (err, with a zero ack). d is the time since the produce started,
// waiting for room among pending produces included.
//
// It runs before the outcome is delivered (Produce returns, the done
// callback or error handler runs), on the goroutine that decided it: the
// connection's acknowledgement subscription (nats.go's delivery goroutine
// for it) for the broker's answers, the ack janitor for timeouts, nats.go's
// callback goroutine for produces failed by a disconnect, Close's caller
// for those failed by Close, and the producing goroutine for produces that
// failed to be sent or whose context ended first.
type HookProduceEnd interface {
	OnProduceEnd(r *ProduceRecord, ack PubAck, d time.Duration, err error)
}

// HookNewConsumer is called when a consumer has been created
// (CreateConsumer, or the first FetchMessages of a station and name), on
// the creating goroutine.
type HookNewConsumer interface {
	OnNewConsumer(c *Consumer)
}

// HookConsumerClosed is called once when a consumer stops for good:
// Destroy, or Close of its connection, on the goroutine that called it.
type HookConsumerClosed interface {
	OnConsumerClosed(c *Consumer)
}

// HookConsumeMessage is called for every message right before the
// application gets it: before the handler call that receives it (Consume,
// ConsumeUntil, on the goroutine that calls the handler), before the
// iterator yields it (Messages, on the loop's goroutine), or before Fetch
// returns it (on Fetch's caller). Messages that were buffered but never
// handed out are not reported.
//
// ctx carries the values (not the deadline or cancellation: the message
// may outlive the call) of the context the message is received under — the
// handler's context for Consume, the iterator's for Messages, Fetch's for
// Fetch — or what an earlier hook returned. The hook returns the context to
// attach to the message, ctx itself or one derived from it; m.Context
// returns it to handler code.
type HookConsumeMessage interface {
	OnConsumeMessage(ctx context.Context, c *Consumer, m *Msg) context.Context
}

// HookConsumeHandled is called when the application is done with a batch
// it was handed: after each handler call of Consume and ConsumeUntil
// returns, with the messages of that call, and after each iteration of a
// Messages loop, with its one message. d is how long the handler (or the
// loop body) took. It runs on the same goroutine as the handler. Fetch has
// no such moment.
type HookConsumeHandled interface {
	OnConsumeHandled(c *Consumer, msgs []*Msg, d time.Duration)
}

// HookConsumeSettle is called after every Ack, Nack, Delay and DeadLetter
// of a message, on the goroutine that called it, with what was asked and
// the error the call returns (as its cause), if any.
type HookConsumeSettle interface {
	OnConsumeSettle(c *Consumer, m *Msg, s Settle, err error)
}

// HookConsumeError is called for every failure of consuming: a background
// failure of Consume, ConsumeUntil or Messages (on the goroutine that
// pulls the partition, before it is handed to the error handler or the
// handler), a Fetch that fails (on Fetch's caller), and a Consume,
// ConsumeUntil or Messages that can not start (on its caller).
type HookConsumeError interface {
	OnConsumeError(c *Consumer, err error)
}

// Settle is what the application decided about a consumed message.
type Settle int

// What a message can be settled with.
const (
	// SettleAck: Msg.Ack.
	SettleAck Settle = iota + 1
	// SettleNack: Msg.Nack.
	SettleNack
	// SettleDelay: Msg.Delay.
	SettleDelay
	// SettleDeadLetter: Msg.DeadLetter.
	SettleDeadLetter
)

// String is "ack", "nack", "delay" or "dead_letter".
func (s Settle) String() string {
	switch s {
	case SettleAck:
		return "ack"
	case SettleNack:
		return "nack"
	case SettleDelay:
		return "delay"
	case SettleDeadLetter:
		return "dead_letter"
	}
	return fmt.Sprintf("Settle(%d)", int(s))
}

// ProduceRecord is one produce to one station, as the produce hooks see
// it. The SDK makes one per produce and never reuses it, so a hook may keep
// it; its exported fields are the hooks' to read and (Context) write.
type ProduceRecord struct {
	// Context starts as the produce call's context. A hook may replace it,
	// typically with a context derived from it, to carry state from
	// OnProduceStart to OnProduceEnd (a span, a start time). The SDK does
	// not use it: the call's own context still bounds the produce.
	Context context.Context
	// Station is the station's name as registered (lower-cased).
	Station string
	// Partition is the partition the message goes to (0 on a station
	// without partitions, or when the produce was refused before one was
	// chosen).
	Partition int
	// Producer is the producer's name as registered.
	Producer string
	// Size is the payload's size in bytes as sent, after schema encoding
	// (0 when the produce was refused before it was encoded).
	Size int
	// MsgID is the message id given with MsgId, or "".
	MsgID string
	// Async is true when the produce does not wait for its acknowledgement
	// (AsyncProduce, ProduceAsync).
	Async bool

	header nats.Header // the message's header block
	owned  bool        // header was made for this message alone
	sent   bool        // OnProduceStart returned: too late to set headers
	start  time.Time
}

// SetHeader sets a header of the message, replacing any value the user
// gave for key, as propagation needs (a trace context injected into every
// message, say). Like Headers.Add it refuses keys reserved for the SDK
// (ErrReservedHeader) and empty keys (ErrInvalidOption); after
// OnProduceStart returned it fails with ErrNotSupported. The consumer sees
// the header in Msg.GetHeaders like any other.
func (r *ProduceRecord) SetHeader(key, value string) error {
	if err := checkHeaderKey(key); err != nil {
		return opErr("set header", r.Station, err)
	}
	if r.sent {
		return opErr("set header", r.Station, fmt.Errorf("%w: the message was sent; set headers in OnProduceStart", ErrNotSupported))
	}
	if !r.owned {
		// The block is shared by every produce of the producer without
		// headers of its own: copy it before writing. Values are shared,
		// never written to.
		h := make(nats.Header, len(r.header)+2)
		for k, v := range r.header {
			h[k] = v
		}
		r.header, r.owned = h, true
	}
	r.header[key] = []string{value}
	return nil
}

// headerBlock is the header block to send: the one hooks wrote to, if a
// record was made.
func (r *ProduceRecord) headerBlock(hdr nats.Header) nats.Header {
	if r == nil {
		return hdr
	}
	return r.header
}

// Header returns the first value of a header the message carries (one the
// user gave, or one a hook set), or "". The SDK's own headers are not
// shown.
func (r *ProduceRecord) Header(key string) string {
	if isHiddenHeader(key) {
		return ""
	}
	if v := r.header[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Context returns the context hooks attached to the message when it was
// handed to the application (see HookConsumeMessage): with OpenTelemetry
// hooks, one carrying the message's consumer span, under which handler
// code starts its own spans so that they join the producer's trace. It is
// context.Background when no hook attached one. It carries values only: no
// deadline and no cancellation.
func (m *Msg) Context() context.Context {
	if m.ctx == nil {
		return context.Background()
	}
	return m.ctx
}

// hooks are a connection's hooks, sorted by interface at Connect so that
// every event asks only whether its slice is empty.
type hooks struct {
	onConnect        []HookConnect
	onDisconnect     []HookDisconnect
	onReconnect      []HookReconnect
	onConnClosed     []HookConnClosed
	onProduceStart   []HookProduceStart
	onProduceEnd     []HookProduceEnd
	onNewConsumer    []HookNewConsumer
	onConsumerClosed []HookConsumerClosed
	onConsumeMessage []HookConsumeMessage
	onConsumeHandled []HookConsumeHandled
	onConsumeSettle  []HookConsumeSettle
	onConsumeError   []HookConsumeError
}

// newHooks sorts hooks by interface; nil hooks are skipped. It returns nil
// when there is none, so that a connection without hooks tests one nil
// pointer per event. A value that implements no hook interface is refused:
// it is certainly a mistake (a value where a pointer was meant, say).
func newHooks(hs []Hook) (*hooks, error) {
	h := &hooks{}
	n := 0
	for _, x := range hs {
		if x == nil {
			continue
		}
		found := false
		if v, ok := x.(HookConnect); ok {
			h.onConnect, found = append(h.onConnect, v), true
		}
		if v, ok := x.(HookDisconnect); ok {
			h.onDisconnect, found = append(h.onDisconnect, v), true
		}
		if v, ok := x.(HookReconnect); ok {
			h.onReconnect, found = append(h.onReconnect, v), true
		}
		if v, ok := x.(HookConnClosed); ok {
			h.onConnClosed, found = append(h.onConnClosed, v), true
		}
		if v, ok := x.(HookProduceStart); ok {
			h.onProduceStart, found = append(h.onProduceStart, v), true
		}
		if v, ok := x.(HookProduceEnd); ok {
			h.onProduceEnd, found = append(h.onProduceEnd, v), true
		}
		if v, ok := x.(HookNewConsumer); ok {
			h.onNewConsumer, found = append(h.onNewConsumer, v), true
		}
		if v, ok := x.(HookConsumerClosed); ok {
			h.onConsumerClosed, found = append(h.onConsumerClosed, v), true
		}
		if v, ok := x.(HookConsumeMessage); ok {
			h.onConsumeMessage, found = append(h.onConsumeMessage, v), true
		}
		if v, ok := x.(HookConsumeHandled); ok {
			h.onConsumeHandled, found = append(h.onConsumeHandled, v), true
		}
		if v, ok := x.(HookConsumeSettle); ok {
			h.onConsumeSettle, found = append(h.onConsumeSettle, v), true
		}
		if v, ok := x.(HookConsumeError); ok {
			h.onConsumeError, found = append(h.onConsumeError, v), true
		}
		if !found {
			return nil, fmt.Errorf("%w: hook %T implements no hook interface", ErrInvalidOption, x)
		}
		n++
	}
	if n == 0 {
		return nil, nil
	}
	return h, nil
}

func (h *hooks) connected(c *Conn, err error) {
	for _, x := range h.onConnect {
		x.OnConnect(c, err)
	}
}

func (h *hooks) disconnected(c *Conn, err error) {
	for _, x := range h.onDisconnect {
		x.OnDisconnect(c, err)
	}
}

func (h *hooks) reconnected(c *Conn) {
	for _, x := range h.onReconnect {
		x.OnReconnect(c)
	}
}

func (h *hooks) closed(c *Conn) {
	for _, x := range h.onConnClosed {
		x.OnConnClosed(c)
	}
}

// produceStart makes the record of one produce and runs the start hooks;
// nil when no produce hook is set. hdr is the message's header block, owned
// if it was made for this message alone (so hooks may write to it).
func (h *hooks) produceStart(ctx context.Context, producer, station string, partition, size int,
	o *ProduceOpts, hdr nats.Header, owned bool) *ProduceRecord {
	if len(h.onProduceStart) == 0 && len(h.onProduceEnd) == 0 {
		return nil
	}
	r := &ProduceRecord{Context: ctx, Station: station, Partition: partition, Producer: producer, Size: size,
		MsgID: o.MsgId, Async: o.AsyncProduce, header: hdr, owned: owned, start: time.Now()}
	for _, x := range h.onProduceStart {
		x.OnProduceStart(r)
	}
	r.sent = true
	return r
}

// produceEnd runs the end hooks of a started produce (r nil: none started).
func (h *hooks) produceEnd(r *ProduceRecord, ack PubAck, err error) {
	if r == nil {
		return
	}
	d := time.Since(r.start)
	if err != nil {
		ack = PubAck{}
	}
	for _, x := range h.onProduceEnd {
		x.OnProduceEnd(r, ack, d, err)
	}
}

// produceRefused reports a produce to one station refused before it was
// sent: a start and, at once, its end.
func (h *hooks) produceRefused(ctx context.Context, producer, station string, partition int, o *ProduceOpts, err error) {
	r := h.produceStart(ctx, producer, station, partition, 0, o, nil, false)
	h.produceEnd(r, PubAck{}, err)
}

// refusedAll reports a produce refused before any station was tried (its
// options), once for each of the producer's stations.
func (h *hooks) refusedAll(ctx context.Context, p *Producer, o *ProduceOpts, err error) {
	for _, t := range p.targets {
		h.produceRefused(ctx, p.name, t.name, 0, o, err)
	}
}

func (h *hooks) consumerCreated(c *Consumer) {
	for _, x := range h.onNewConsumer {
		x.OnNewConsumer(c)
	}
}

func (h *hooks) consumerClosed(c *Consumer) {
	for _, x := range h.onConsumerClosed {
		x.OnConsumerClosed(c)
	}
}

// consumeMessages runs the message hooks on messages about to be handed to
// the application under ctx, and attaches what they return.
func (h *hooks) consumeMessages(c *Consumer, msgs []*Msg, ctx context.Context) {
	if len(h.onConsumeMessage) == 0 || len(msgs) == 0 {
		return
	}
	if ctx.Done() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	for _, m := range msgs {
		mctx := ctx
		for _, x := range h.onConsumeMessage {
			if next := x.OnConsumeMessage(mctx, c, m); next != nil {
				mctx = next
			}
		}
		m.ctx = mctx
	}
}

// fetched reports the outcome of a Fetch: its messages, or its failure.
func (h *hooks) fetched(c *Consumer, msgs []*Msg, ctx context.Context, err error) {
	if err != nil {
		h.consumeFailed(c, err)
		return
	}
	h.consumeMessages(c, msgs, ctx)
}

func (h *hooks) consumeHandled(c *Consumer, msgs []*Msg, d time.Duration) {
	for _, x := range h.onConsumeHandled {
		x.OnConsumeHandled(c, msgs, d)
	}
}

func (h *hooks) settled(m *Msg, s Settle, err error) {
	for _, x := range h.onConsumeSettle {
		x.OnConsumeSettle(m.cons, m, s, err)
	}
}

func (h *hooks) consumeFailed(c *Consumer, err error) {
	for _, x := range h.onConsumeError {
		x.OnConsumeError(c, err)
	}
}
