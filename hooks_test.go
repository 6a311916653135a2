package memphis_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
)

// hookRecorder is a hook implementing every hook interface: it keeps what it
// saw, and wakes waiters on every event.
type hookRecorder struct {
	mu       sync.Mutex
	events   []string // "connect", "disconnect", "reconnect", "closed", "new consumer", "consumer closed"
	starts   []*memphis.ProduceRecord
	ends     []produceEnd
	messages []consumed
	handled  []handledBatch
	settles  []settled
	errs     []error // every failure a hook saw: produce, consume and connect
	news     chan struct{}

	// Optional behaviour, set before use.
	onStart func(r *memphis.ProduceRecord)
	onEnd   func(r *memphis.ProduceRecord, err error)
	onNew   func(c *memphis.Consumer)
	onClose func(c *memphis.Consumer)
}

type produceEnd struct {
	r   *memphis.ProduceRecord
	ack memphis.PubAck
	d   time.Duration
	err error
}

type consumed struct {
	c   *memphis.Consumer
	m   *memphis.Msg
	ctx context.Context // what the hook was given
}

type handledBatch struct {
	msgs []*memphis.Msg
	d    time.Duration
}

type settled struct {
	m   *memphis.Msg
	s   memphis.Settle
	err error
}

func newHookRecorder() *hookRecorder { return &hookRecorder{news: make(chan struct{}, 1)} }

func (r *hookRecorder) record(fn func()) {
	r.mu.Lock()
	fn()
	r.mu.Unlock()
	select {
	case r.news <- struct{}{}:
	default:
	}
}

// await blocks until cond (run under the lock) holds or d passes.
func (r *hookRecorder) await(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	awaitNews(t, &r.mu, r.news, d, "the hooks to see "+what, cond)
}

type hookKey string

func (r *hookRecorder) OnConnect(c *memphis.Conn, err error) {
	r.record(func() {
		r.events = append(r.events, "connect")
		if err != nil {
			r.errs = append(r.errs, err)
		}
	})
}

func (r *hookRecorder) OnDisconnect(c *memphis.Conn, err error) {
	r.record(func() { r.events = append(r.events, "disconnect") })
}

func (r *hookRecorder) OnReconnect(c *memphis.Conn) {
	r.record(func() { r.events = append(r.events, "reconnect") })
}

func (r *hookRecorder) OnConnClosed(c *memphis.Conn) {
	r.record(func() { r.events = append(r.events, "closed") })
}

func (r *hookRecorder) OnProduceStart(p *memphis.ProduceRecord) {
	// Mark the record's context, so that OnProduceEnd can check it gets the
	// context this hook left.
	p.Context = context.WithValue(p.Context, hookKey("start"), p)
	if r.onStart != nil {
		r.onStart(p)
	}
	r.record(func() { r.starts = append(r.starts, p) })
}

func (r *hookRecorder) OnProduceEnd(p *memphis.ProduceRecord, ack memphis.PubAck, d time.Duration, err error) {
	if r.onEnd != nil {
		r.onEnd(p, err)
	}
	r.record(func() {
		r.ends = append(r.ends, produceEnd{p, ack, d, err})
		if err != nil {
			r.errs = append(r.errs, err)
		}
	})
}

func (r *hookRecorder) OnNewConsumer(c *memphis.Consumer) {
	if r.onNew != nil {
		r.onNew(c)
	}
	r.record(func() { r.events = append(r.events, "new consumer") })
}

func (r *hookRecorder) OnConsumerClosed(c *memphis.Consumer) {
	if r.onClose != nil {
		r.onClose(c)
	}
	r.record(func() { r.events = append(r.events, "consumer closed") })
}

func (r *hookRecorder) OnConsumeMessage(ctx context.Context, c *memphis.Consumer, m *memphis.Msg) context.Context {
	r.record(func() { r.messages = append(r.messages, consumed{c, m, ctx}) })
	return context.WithValue(ctx, hookKey("msg"), m)
}

func (r *hookRecorder) OnConsumeHandled(c *memphis.Consumer, msgs []*memphis.Msg, d time.Duration) {
	msgs = slices.Clone(msgs)
	r.record(func() { r.handled = append(r.handled, handledBatch{msgs, d}) })
}

func (r *hookRecorder) OnConsumeSettle(c *memphis.Consumer, m *memphis.Msg, s memphis.Settle, err error) {
	r.record(func() { r.settles = append(r.settles, settled{m, s, err}) })
}

func (r *hookRecorder) OnConsumeError(c *memphis.Consumer, err error) {
	r.record(func() { r.errs = append(r.errs, err) })
}

func (r *hookRecorder) count(event string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e == event {
			n++
		}
	}
	return n
}

// sawKind reports whether a hook saw a failure matching want since mark
// (an index into errs).
func (r *hookRecorder) sawKind(mark int, want error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, err := range r.errs[mark:] {
		if errors.Is(err, want) {
			return true
		}
	}
	return false
}

func (r *hookRecorder) errMark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errs)
}

// Compile-time proof that hookRecorder is every kind of hook.
var _ interface {
	memphis.HookConnect
	memphis.HookDisconnect
	memphis.HookReconnect
	memphis.HookConnClosed
	memphis.HookProduceStart
	memphis.HookProduceEnd
	memphis.HookNewConsumer
	memphis.HookConsumerClosed
	memphis.HookConsumeMessage
	memphis.HookConsumeHandled
	memphis.HookConsumeSettle
	memphis.HookConsumeError
} = (*hookRecorder)(nil)

func TestHooksRefuseValueThatIsNoHook(t *testing.T) {
	b := testenv.Start(t)
	_, err := memphis.Connect(b.Host, b.Username, append(credentials(b), memphis.Hooks(struct{}{}))...)
	if !errors.Is(err, memphis.ErrInvalidOption) || !strings.Contains(err.Error(), "struct {}") {
		t.Fatalf("err = %v, want ErrInvalidOption naming the type", err)
	}
	// nil hooks are skipped, like nil options.
	c := connect(t, b, memphis.Hooks(nil))
	if !c.IsConnected() {
		t.Fatal("not connected")
	}
}

// TestHooksProduce: every produce, sync, async and with a callback, is
// seen starting and ending once, with its station, partition, size and
// context; headers set by a hook reach the consumer; the user's headers
// are not written to.
func TestHooksProduce(t *testing.T) {
	b := testenv.Start(t)
	rec := newHookRecorder()
	rec.onStart = func(r *memphis.ProduceRecord) {
		if err := r.SetHeader("hook-header", "set by "+r.Producer); err != nil {
			t.Errorf("SetHeader: %v", err)
		}
		if err := r.SetHeader("$memphis_producedBy", "me"); !errors.Is(err, memphis.ErrReservedHeader) {
			t.Errorf("SetHeader of a reserved key: %v, want ErrReservedHeader", err)
		}
		if err := r.SetHeader("", "v"); !errors.Is(err, memphis.ErrInvalidOption) {
			t.Errorf("SetHeader of an empty key: %v, want ErrInvalidOption", err)
		}
	}
	rec.onEnd = func(r *memphis.ProduceRecord, _ error) {
		if err := r.SetHeader("late", "v"); !errors.Is(err, memphis.ErrNotSupported) {
			t.Errorf("SetHeader after the send: %v, want ErrNotSupported", err)
		}
		if r.Context.Value(hookKey("start")) != r {
			t.Errorf("OnProduceEnd did not get the context OnProduceStart left")
		}
	}
	c := connect(t, b, memphis.Hooks(rec))
	station := testenv.Name(t, "hooks-produce")
	if _, err := c.CreateStation(station, memphis.PartitionsNumber(2)); err != nil {
		t.Fatal(err)
	}
	p := mustProducer(t, c, station, "hp")

	var user memphis.Headers
	if err := user.Add("hook-header", "the user's"); err != nil {
		t.Fatal(err)
	}
	if err := user.Add("other", "kept"); err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), hookKey("caller"), "yes")
	if err := p.ProduceContext(ctx, []byte("sync"), memphis.MsgHeaders(user), memphis.ProducerPartitionNumber(2)); err != nil {
		t.Fatal(err)
	}
	if err := p.Produce([]byte("async!"), memphis.AsyncProduce(), memphis.MsgId("id-1")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	if err := p.ProduceAsync(ctx, []byte("callback"), func(_ memphis.PubAck, err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(testCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := user.Get("hook-header"); got != "the user's" {
		t.Errorf("the user's Headers were written to: hook-header = %q", got)
	}

	rec.await(t, 5*time.Second, "three produces end", func() bool { return len(rec.ends) == 3 })
	rec.mu.Lock()
	starts, ends := slices.Clone(rec.starts), slices.Clone(rec.ends)
	rec.mu.Unlock()
	if len(starts) != 3 {
		t.Fatalf("%d starts, want 3", len(starts))
	}
	wantSize := map[int]bool{4: false, 6: true, 8: true} // payload size → async
	for _, e := range ends {
		r := e.r
		if e.err != nil {
			t.Errorf("produce of %d bytes failed: %v", r.Size, e.err)
		}
		async, ok := wantSize[r.Size]
		if !ok || r.Async != async {
			t.Errorf("record: size %d async %v; want sizes 4 (sync), 6 and 8 (async)", r.Size, r.Async)
		}
		if r.Station != station || r.Producer != "hp" {
			t.Errorf("record names station %q producer %q, want %q, hp", r.Station, r.Producer, station)
		}
		if r.Partition < 1 || r.Partition > 2 || e.ack.Partition != r.Partition || e.ack.Sequence == 0 {
			t.Errorf("record partition %d, ack %+v", r.Partition, e.ack)
		}
		if e.d <= 0 {
			t.Errorf("duration %v, want > 0", e.d)
		}
		if r.Size == 4 {
			if r.Partition != 2 {
				t.Errorf("sync produce went to partition %d, want 2", r.Partition)
			}
			if r.Context.Value(hookKey("caller")) != "yes" {
				t.Error("the record's context does not derive from the produce call's")
			}
			if r.Header("other") != "kept" || r.Header("hook-header") != "set by hp" {
				t.Errorf("record headers: other=%q hook-header=%q", r.Header("other"), r.Header("hook-header"))
			}
		}
		if r.Size == 6 && r.MsgID != "id-1" {
			t.Errorf("MsgID = %q, want id-1", r.MsgID)
		}
	}

	// The consumer sees the hook's header, and the user's other one.
	cons := mustConsumer(t, c, station, "hc", memphis.BatchMaxWaitTime(100*time.Millisecond))
	msgs := fetchAll(t, cons, 3, 10*time.Second)
	for _, m := range msgs {
		h := m.GetHeaders()
		if h["hook-header"] != "set by hp" || m.GetHeader("hook-header") != "set by hp" {
			t.Errorf("message %q: hook-header = %q (GetHeader %q), want the hook's value", m.Data(), h["hook-header"], m.GetHeader("hook-header"))
		}
		if m.GetHeader("$memphis_producedBy") != "" {
			t.Error("GetHeader shows the SDK's own header")
		}
		if string(m.Data()) == "sync" && h["other"] != "kept" {
			t.Errorf("the user's other header was lost: %v", h)
		}
	}
}

// TestHooksConsume: each message is reported before the application gets
// it, under the receiving call's context, and the context the hook returns
// is the message's; handler calls and settlements are reported.
func TestHooksConsume(t *testing.T) {
	b := testenv.Start(t)
	rec := newHookRecorder()
	c := connect(t, b, memphis.Hooks(rec))
	station := testenv.Name(t, "hooks-consume")
	if _, err := c.CreateStation(station, memphis.PartitionsNumber(3)); err != nil {
		t.Fatal(err)
	}
	p := mustProducer(t, c, station, "p")
	produceN(t, p, 6, "m")

	// Consume: the handler sees the context the hook attached.
	cons := mustConsumer(t, c, station, "consume", memphis.BatchSize(2))
	cons.SetContext(context.WithValue(context.Background(), hookKey("handler"), "consume"))
	// m1 is nacked once (and comes again), m2 delayed past the test; the
	// others are acknowledged: five acks in all.
	acks := 0
	allIn := make(chan struct{})
	err := cons.Consume(func(msgs []*memphis.Msg, err error, _ context.Context) {
		if err != nil {
			t.Errorf("handler err: %v", err)
			return
		}
		for _, m := range msgs {
			ctx := m.Context()
			if ctx.Value(hookKey("msg")) != m || ctx.Value(hookKey("handler")) != "consume" {
				t.Errorf("m.Context() is not what the hook attached under the handler's context")
			}
			n, _ := m.DeliveryCount()
			switch {
			case string(m.Data()) == "m1" && n == 1:
				_ = m.Nack()
			case string(m.Data()) == "m2":
				_ = m.Delay(time.Hour)
			default:
				_ = m.Ack()
				if acks++; acks == 5 {
					close(allIn)
				}
			}
		}
		time.Sleep(time.Millisecond) // a handler that takes time
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-allIn:
	case <-time.After(20 * time.Second):
		t.Fatal("the handler did not acknowledge 5 messages")
	}
	cons.StopConsume()
	rec.mu.Lock()
	if len(rec.messages) < 7 {
		t.Errorf("OnConsumeMessage saw %d messages, want at least 7 (six and m1 again)", len(rec.messages))
	}
	handledMsgs := 0
	for _, hb := range rec.handled {
		handledMsgs += len(hb.msgs)
		if hb.d < time.Millisecond {
			t.Errorf("handler duration %v, want at least the 1ms it slept", hb.d)
		}
	}
	if handledMsgs != len(rec.messages) {
		t.Errorf("OnConsumeHandled covered %d messages, OnConsumeMessage saw %d", handledMsgs, len(rec.messages))
	}
	kinds := map[memphis.Settle]int{}
	for _, s := range rec.settles {
		kinds[s.s]++
		if s.err != nil {
			t.Errorf("%v failed: %v", s.s, s.err)
		}
	}
	if kinds[memphis.SettleAck] == 0 || kinds[memphis.SettleNack] == 0 || kinds[memphis.SettleDelay] == 0 {
		t.Errorf("settlements seen: %v, want acks, nacks and delays", kinds)
	}
	rec.messages, rec.handled, rec.settles = nil, nil, nil
	rec.mu.Unlock()

	// Fetch: the message's context keeps Fetch's values but not its
	// cancellation, and a dead letter is reported.
	fcons := mustConsumer(t, c, station, "fetch", memphis.BatchMaxWaitTime(100*time.Millisecond))
	fctx, cancel := context.WithCancel(context.WithValue(context.Background(), hookKey("handler"), "fetch"))
	msgs, err := fcons.FetchContext(fctx, 6, false)
	cancel()
	if err != nil || len(msgs) == 0 {
		t.Fatalf("fetch: %d messages, %v", len(msgs), err)
	}
	for _, m := range msgs {
		ctx := m.Context()
		if ctx.Value(hookKey("handler")) != "fetch" || ctx.Value(hookKey("msg")) != m {
			t.Error("a fetched message's context lacks Fetch's values or the hook's")
		}
		if ctx.Err() != nil || ctx.Done() != nil {
			t.Errorf("a fetched message's context ends with Fetch's: %v", ctx.Err())
		}
	}
	if err := msgs[0].DeadLetter("bad"); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs[1:] {
		_ = m.Ack()
	}
	rec.mu.Lock()
	if len(rec.messages) != len(msgs) || len(rec.handled) != 0 {
		t.Errorf("Fetch of %d: OnConsumeMessage saw %d, OnConsumeHandled %d (want none)", len(msgs), len(rec.messages), len(rec.handled))
	}
	if len(rec.settles) == 0 || rec.settles[0].s != memphis.SettleDeadLetter || rec.settles[0].m != msgs[0] {
		t.Errorf("the dead letter was not reported first: %+v", rec.settles)
	}
	rec.messages, rec.handled, rec.settles = nil, nil, nil
	rec.mu.Unlock()

	// Messages: one report per message, the loop body's time as handled.
	produceN(t, p, 2, "it")
	icons := mustConsumer(t, c, station, "iter", memphis.StartConsumeFromSeq(1))
	ictx, icancel := context.WithCancel(context.WithValue(context.Background(), hookKey("handler"), "iter"))
	defer icancel()
	n := 0
	for m, err := range icons.Messages(ictx) {
		if err != nil {
			t.Fatal(err)
		}
		if m.Context().Value(hookKey("handler")) != "iter" {
			t.Error("an iterated message's context lacks the iterator's values")
		}
		_ = m.Ack()
		if n++; n == 8 {
			break
		}
	}
	rec.mu.Lock()
	if len(rec.messages) != 8 || len(rec.handled) != 8 {
		t.Errorf("8 iterations: OnConsumeMessage saw %d, OnConsumeHandled %d", len(rec.messages), len(rec.handled))
	}
	for i, hb := range rec.handled {
		if len(hb.msgs) != 1 || hb.msgs[0] != rec.messages[i].m {
			t.Errorf("iteration %d: handled %d messages, not the one reported", i, len(hb.msgs))
		}
	}
	rec.mu.Unlock()

	// Without a hook attaching one, a message's context is Background.
	plain := mustConsumer(t, connect(t, b), station, "plain", memphis.BatchMaxWaitTime(100*time.Millisecond))
	pm, err := plain.Fetch(1, false)
	if err != nil || len(pm) != 1 {
		t.Fatalf("fetch without hooks: %d, %v", len(pm), err)
	}
	if pm[0].Context() != context.Background() {
		t.Error("a message no hook saw has a context other than Background")
	}
}

// TestHooksConsumerLifecycleAndNoLocks: hooks run without SDK locks, so
// they may call back into the SDK — here the consumer's own Lag, which
// takes the consumer's lock and sends requests.
func TestHooksConsumerLifecycleAndNoLocks(t *testing.T) {
	b := testenv.Start(t)
	rec := newHookRecorder()
	lagErrs := make(chan error, 2)
	rec.onNew = func(c *memphis.Consumer) {
		_, err := c.Lag(context.Background())
		lagErrs <- err
	}
	rec.onClose = func(c *memphis.Consumer) {
		_, err := c.Lag(context.Background())
		lagErrs <- err
	}
	c := connect(t, b, memphis.Hooks(rec))
	cons := mustConsumer(t, c, testenv.Name(t, "hooks-life"), "c")
	if err := <-lagErrs; err != nil {
		t.Errorf("Lag inside OnNewConsumer: %v", err)
	}
	if err := cons.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := <-lagErrs; !errors.Is(err, memphis.ErrConsumerDestroyed) {
		t.Errorf("Lag inside OnConsumerClosed: %v, want ErrConsumerDestroyed", err)
	}
	_ = cons.Destroy() // idempotent: no second report
	if n, m := rec.count("new consumer"), rec.count("consumer closed"); n != 1 || m != 1 {
		t.Errorf("new consumer reported %d times, closed %d times; want 1 and 1", n, m)
	}
}

// TestHooksConnectionEvents: connect, disconnect, reconnect and closed.
func TestHooksConnectionEvents(t *testing.T) {
	b := testenv.Local(t)
	rec := newHookRecorder()
	c, err := memphis.Connect(b.Host, b.Username, append(credentials(b), memphis.Hooks(rec),
		memphis.ReconnectInterval(50*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	if rec.count("connect") != 1 {
		t.Fatalf("events %v, want a connect", rec.events)
	}
	if err := b.Server.Restart(); err != nil {
		t.Fatal(err)
	}
	rec.await(t, 20*time.Second, "a disconnect and a reconnect", func() bool {
		return slices.Contains(rec.events, "disconnect") && slices.Contains(rec.events, "reconnect")
	})
	c.Close()
	rec.await(t, 10*time.Second, "the connection closed", func() bool { return slices.Contains(rec.events, "closed") })

	// A connect that fails is reported with its reason.
	mark := rec.errMark()
	_, err = memphis.Connect(b.Host, b.Username, memphis.Port(b.Port), memphis.Password("wrong"), memphis.Hooks(rec))
	if !errors.Is(err, memphis.ErrAuthorization) || !rec.sawKind(mark, memphis.ErrAuthorization) {
		t.Errorf("connect with a wrong password: %v; hooks saw it: %v", err, rec.sawKind(mark, memphis.ErrAuthorization))
	}
}

// TestHooksSeeBadInput runs the bad-input table's produce, consume, fetch
// and connect rows with hooks: every failure they provoke reaches a hook,
// with the same kind. (Rows that create or destroy stations, producers,
// consumers or schemas are control-plane calls, which hooks do not see.)
func TestHooksSeeBadInput(t *testing.T) {
	b := testenv.Start(t)
	rec := newHookRecorder()
	hook := memphis.Hooks(rec)
	conn := connect(t, b, hook)
	e := newBadEnv(t, b, conn, testenv.Name(t, "hooks-bad"))
	e.connect = func(host, user string, opts ...memphis.Option) (*memphis.Conn, error) {
		return memphis.Connect(host, user, append(opts, hook)...)
	}
	covered := 0
	for _, tc := range badInputs() {
		if !hooked(tc.name) {
			continue
		}
		covered++
		t.Run(tc.name, func(t *testing.T) {
			mark := rec.errMark()
			if err := tc.call(e); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !rec.sawKind(mark, tc.want) {
				t.Errorf("no hook saw a failure matching %v", tc.want)
			}
		})
	}
	if covered < 20 {
		t.Errorf("only %d bad inputs are produce, consume or connect calls", covered)
	}
}

// hooked reports whether a bad-input row is a call hooks observe.
func hooked(name string) bool {
	switch name {
	case "produce/reserved header", "produce/empty header key": // Headers.Add, not a produce
		return false
	case "connect/hook implementing no hook interface": // the hooks themselves are refused
		return false
	case "produce/conn station of another type": // names no station to produce to
		return false
	}
	for _, p := range []string{"connect/", "produce/", "fetch/", "consume/"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// sawFailures checks that the hooks saw every kind of failure a load run
// reported to its callers and handlers, at least as often.
func (r *hookRecorder) sawFailures(t *testing.T, l *ledger) {
	t.Helper()
	kinds := []error{memphis.ErrConnectionLost, memphis.ErrTimeout, memphis.ErrNoServers, memphis.ErrStationNotFound,
		memphis.ErrConnClosed, memphis.ErrStationUnreachable, memphis.ErrMaxPending}
	kindOf := func(err error) string {
		for _, k := range kinds {
			if errors.Is(err, k) {
				return k.Error()
			}
		}
		return "other: " + err.Error()
	}
	want, got := map[string]int{}, map[string]int{}
	l.mu.Lock()
	for _, err := range append(slices.Clone(l.failed), l.handled...) {
		want[kindOf(err)]++
	}
	l.mu.Unlock()
	r.mu.Lock()
	for _, err := range r.errs {
		got[kindOf(err)]++
	}
	r.mu.Unlock()
	for k, n := range want {
		if got[k] < n {
			t.Errorf("callers and handlers got %d failures of kind %q, hooks saw %d", n, k, got[k])
		}
	}
	t.Logf("failures by kind: reported %v, seen by hooks %v", want, got)
}

// TestHooksProduceEndOnceUnderLoad: with async produces in flight from
// several goroutines, every start has exactly one end.
func TestHooksProduceEndOnceUnderLoad(t *testing.T) {
	b := testenv.Start(t)
	rec := newHookRecorder()
	c := connect(t, b, memphis.Hooks(rec), memphis.MaxPending(8))
	p := mustProducer(t, c, testenv.Name(t, "hooks-load"), "p")
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				_ = p.Produce([]byte(fmt.Sprintf("%d-%d", g, i)), memphis.AsyncProduce())
			}
		}()
	}
	wg.Wait()
	if err := p.Flush(testCtx(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	ended := map[*memphis.ProduceRecord]int{}
	for _, e := range rec.ends {
		ended[e.r]++
	}
	if len(rec.starts) != 200 {
		t.Errorf("%d starts, want 200", len(rec.starts))
	}
	for _, s := range rec.starts {
		if ended[s] != 1 {
			t.Fatalf("a produce ended %d times", ended[s])
		}
	}
}
