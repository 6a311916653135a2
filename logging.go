package memphis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// logSummaryInterval is how long repeats of a logged failure are counted
// before one line sums them up.
const logSummaryInterval = 10 * time.Second

// logLimiter keeps a connection's log readable when failures come in
// storms (an outage fails every async produce): the first failure of a
// kind from one source (a producer, a consumer, the connection itself) is
// logged at once; repeats are counted, and every logSummaryInterval one
// line reports how many there were and the last of them. A source that
// stays quiet for a whole interval starts afresh: its next failure is
// logged at once again.
//
// Only logging is limited: every failure still reaches its handler, Flush
// or Destroy as before.
//
// Its timer is its only goroutine, and only while it fires; close stops
// it, waits for a firing in progress and logs what was still being
// counted.
type logLimiter struct {
	log      *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	windows map[logKey]*logWindow
	timer   *time.Timer
	armed   bool // the timer is set and its firing not yet begun
	closed  bool
	firing  sync.WaitGroup // counts the armed timer and a firing in progress
}

// logKey is what repeats have in common: the source, the message and the
// kind of failure.
type logKey struct {
	source any // *Producer, *Consumer, or nil for the connection
	msg    string
	kind   string
}

// logWindow counts one key's repeats until end.
type logWindow struct {
	end   time.Time
	level slog.Level
	noun  string // what failed, plural, for the summary: "async produces"
	attrs []any
	count int   // repeats since the window began
	last  error // the last repeat
}

func newLogLimiter(log *slog.Logger, interval time.Duration) *logLimiter {
	return &logLimiter{log: log, interval: interval, windows: map[logKey]*logWindow{}}
}

// failure logs err at level with msg and attrs, unless a failure of the
// same kind from the same source was logged less than an interval ago: then
// it is counted for the summary, which names the failures by noun ("async
// produces failed").
func (l *logLimiter) failure(level slog.Level, source any, msg, noun string, err error, attrs ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	key := logKey{source: source, msg: msg, kind: failureKind(err)}
	l.mu.Lock()
	if w := l.windows[key]; w != nil && !l.closed {
		w.count++
		w.last = err
		l.mu.Unlock()
		return
	}
	if !l.closed {
		l.windows[key] = &logWindow{end: time.Now().Add(l.interval), level: level, noun: noun, attrs: attrs}
		l.armLocked(l.interval)
	}
	l.mu.Unlock()
	l.log.Log(context.Background(), level, msg, append(attrs, "err", err)...)
}

// armLocked makes the timer fire within d, if it is not set already.
func (l *logLimiter) armLocked(d time.Duration) {
	if l.armed {
		return
	}
	l.armed = true
	l.firing.Add(1)
	if l.timer == nil {
		l.timer = time.AfterFunc(d, l.fire)
	} else {
		l.timer.Reset(d)
	}
}

// fire logs the summaries of the windows that ended, starts a new window
// for each that counted repeats, and closes those that counted none.
func (l *logLimiter) fire() {
	defer l.firing.Done()
	now := time.Now()
	l.mu.Lock()
	l.armed = false
	if l.closed {
		l.mu.Unlock()
		return
	}
	var due []logWindow
	var next time.Time
	for k, w := range l.windows {
		if w.end.After(now) {
			if next.IsZero() || w.end.Before(next) {
				next = w.end
			}
			continue
		}
		if w.count == 0 {
			delete(l.windows, k)
			continue
		}
		due = append(due, *w)
		w.count, w.last, w.end = 0, nil, now.Add(l.interval)
		if next.IsZero() || w.end.Before(next) {
			next = w.end
		}
	}
	if !next.IsZero() {
		l.armLocked(max(time.Until(next), time.Millisecond))
	}
	l.mu.Unlock()
	l.summarize(due)
}

// close stops the timer, waits for a firing in progress and logs the
// repeats still being counted. Later failures are logged one by one.
func (l *logLimiter) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	if l.armed && l.timer.Stop() {
		l.armed = false
		l.firing.Done()
	}
	var due []logWindow
	for _, w := range l.windows {
		if w.count > 0 {
			due = append(due, *w)
		}
	}
	l.windows = nil
	l.mu.Unlock()
	l.firing.Wait()
	l.summarize(due)
}

func (l *logLimiter) summarize(windows []logWindow) {
	for _, w := range windows {
		msg := fmt.Sprintf("memphis: %d more %s in the last %v", w.count, w.noun, l.interval)
		l.log.Log(context.Background(), w.level, msg, append(w.attrs, "count", w.count, "err", w.last)...)
	}
}

// failureKind names err's kind: the first sentinel it matches (most
// specific first), else its broker's text, else its own text.
func failureKind(err error) string {
	kinds := [...]error{
		ErrConnClosed, ErrConnectionLost, ErrMaxPending, ErrTimeout, ErrStationNotFound,
		ErrStationUnreachable, ErrConsumerNotFound, ErrPartitionNotFound, ErrNoServers,
		ErrAuthorization, ErrTLS, ErrMessageTooLarge, ErrSchemaValidation, ErrInvalidMessage,
	}
	for _, k := range kinds {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	var be *BrokerError
	if errors.As(err, &be) {
		return be.Text
	}
	// A network error names the connection's addresses, which differ
	// from one connection to the next; the kind is what happened.
	var ne *net.OpError
	if errors.As(err, &ne) && ne.Err != nil {
		return ne.Op + ": " + ne.Err.Error()
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// minLevel passes only records of at least min to its handler.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(attrs), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
