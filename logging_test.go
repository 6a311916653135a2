package memphis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lines records log lines and signals each one.
type lines struct {
	mu   sync.Mutex
	got  []string
	news chan struct{}
}

func (l *lines) Enabled(context.Context, slog.Level) bool { return true }
func (l *lines) Handle(_ context.Context, r slog.Record) error {
	s := r.Message
	r.Attrs(func(a slog.Attr) bool { s += " " + a.Key + "=" + a.Value.String(); return true })
	l.mu.Lock()
	l.got = append(l.got, s)
	l.mu.Unlock()
	l.news <- struct{}{}
	return nil
}
func (l *lines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *lines) WithGroup(string) slog.Handler      { return l }

// next waits for the next line.
func (l *lines) next(t *testing.T) string {
	t.Helper()
	select {
	case <-l.news:
	case <-time.After(5 * time.Second):
		t.Fatal("no line logged")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.got[len(l.got)-1]
}

func (l *lines) none(t *testing.T) {
	t.Helper()
	select {
	case <-l.news:
		l.mu.Lock()
		defer l.mu.Unlock()
		t.Fatalf("logged %q", l.got[len(l.got)-1])
	default:
	}
}

func TestLogLimiterFoldsRepeats(t *testing.T) {
	rec := &lines{news: make(chan struct{}, 100)}
	const interval = 500 * time.Millisecond
	l := newLogLimiter(slog.New(rec), interval)
	defer l.close()
	p1, p2 := &Producer{}, &Producer{}
	fail := func(p *Producer, err error) {
		l.failure(slog.LevelError, p, "memphis: async produce failed", "async produces failed", err, "producer", "p")
	}
	timeout := func(i int) error { return fmt.Errorf("%w: attempt %d", ErrTimeout, i) }

	fail(p1, timeout(0))
	if got := rec.next(t); !strings.Contains(got, "memphis: async produce failed") || !strings.Contains(got, "attempt 0") {
		t.Fatalf("first failure: %q", got)
	}
	for i := 1; i <= 5; i++ {
		fail(p1, timeout(i))
	}
	rec.none(t) // repeats wait for the summary
	// Another kind, and another source, are news.
	fail(p1, fmt.Errorf("%w: gone", ErrConnectionLost))
	if got := rec.next(t); !strings.Contains(got, "gone") {
		t.Fatalf("another kind: %q", got)
	}
	fail(p2, timeout(9))
	if got := rec.next(t); !strings.Contains(got, "attempt 9") {
		t.Fatalf("another producer: %q", got)
	}
	got := rec.next(t) // the summary, after the interval
	want := fmt.Sprintf("memphis: 5 more async produces failed in the last %v producer=p count=5", interval)
	if !strings.HasPrefix(got, want) || !strings.Contains(got, "attempt 5") {
		t.Fatalf("summary %q, want %q with the last error", got, want)
	}
	// A whole quiet interval closes the window: the next failure is news.
	time.Sleep(3 * interval) // the window ends by time, with nothing to log
	rec.none(t)
	fail(p1, timeout(10))
	if got := rec.next(t); !strings.Contains(got, "attempt 10") || strings.Contains(got, "more") {
		t.Fatalf("after a quiet interval: %q", got)
	}
}

func TestLogLimiterCloseLogsWhatItCounted(t *testing.T) {
	rec := &lines{news: make(chan struct{}, 100)}
	l := newLogLimiter(slog.New(rec), time.Hour)
	err := errors.New("boom")
	for range 4 {
		l.failure(slog.LevelError, nil, "memphis: connection error", "connection errors", err)
	}
	rec.next(t)
	l.close()
	if got := rec.next(t); !strings.HasPrefix(got, "memphis: 3 more connection errors in the last 1h0m0s count=3 err=boom") {
		t.Fatalf("at close: %q", got)
	}
	l.close() // idempotent
	l.failure(slog.LevelError, nil, "memphis: connection error", "connection errors", err)
	l.failure(slog.LevelError, nil, "memphis: connection error", "connection errors", err)
	rec.next(t)
	rec.next(t) // after close, each failure is logged
}

// A logger that drops the level counts nothing.
func TestLogLimiterQuietLogger(t *testing.T) {
	rec := &lines{news: make(chan struct{}, 100)}
	l := newLogLimiter(slog.New(minLevel{rec, slog.LevelError}), time.Millisecond)
	l.failure(slog.LevelWarn, nil, "memphis: disconnected", "disconnects", errors.New("EOF"))
	l.close()
	rec.none(t)
}

func TestFailureKind(t *testing.T) {
	for _, tc := range []struct {
		a, b error
		same bool
	}{
		{fmt.Errorf("%w: one", ErrTimeout), opErr("produce", "s", fmt.Errorf("%w: two", ErrTimeout)), true},
		{ErrTimeout, ErrConnectionLost, false},
		{newBrokerError("maximum messages exceeded"), newBrokerError("maximum messages exceeded"), true},
		{errors.New("a"), errors.New("b"), false},
	} {
		if got := failureKind(tc.a) == failureKind(tc.b); got != tc.same {
			t.Errorf("%v and %v: same kind %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}
