package memphis

import (
	"context"
	"fmt"
	"sync"
)

// clientKey names a cached producer or consumer: its station's internal
// name and its own name, lower-cased. (Joined into one string they could
// collide: station "a" with "b_c" and station "a_b" with "c".)
type clientKey struct{ station, name string }

// clientCache keeps the clients that Conn.Produce (producers) and
// Conn.FetchMessages (consumers) create on first use, one per station and
// name. Concurrent first uses of one key wait for a single creation, so
// the broker never gets a second registration that nobody would use.
// Only those two calls fill it; CreateProducer and CreateConsumer hand
// their clients to the caller alone.
type clientCache[T cacheable] struct {
	mu sync.Mutex
	m  map[clientKey]*cacheEntry[T]
}

// cacheable is a cached client: usable is false once it was destroyed or
// released, and the cache then makes a new one.
type cacheable interface {
	comparable
	usable() bool
}

type cacheEntry[T any] struct {
	ready chan struct{} // closed when the creation ended
	v     T
	err   error
}

// get returns the client cached under key, calling create when there is
// none or it is no longer usable. A caller that finds a creation under way
// waits for it, bounded by ctx (its error then names op and station); if
// that creation failed, it tries itself.
func (cc *clientCache[T]) get(ctx context.Context, key clientKey, op, station string, create func() (T, error)) (T, error) {
	for {
		cc.mu.Lock()
		e := cc.m[key]
		if e == nil {
			if cc.m == nil {
				cc.m = make(map[clientKey]*cacheEntry[T])
			}
			e = &cacheEntry[T]{ready: make(chan struct{})}
			cc.m[key] = e
			cc.mu.Unlock()
			e.v, e.err = create()
			if e.err != nil {
				cc.drop(key, e)
			}
			close(e.ready)
			return e.v, e.err
		}
		cc.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			var zero T
			return zero, opErr(op, station, fmt.Errorf("%w: %w", ErrTimeout, ctx.Err()))
		}
		if e.err == nil && e.v.usable() {
			return e.v, nil
		}
		cc.drop(key, e)
	}
}

// drop removes key's entry if it is still e.
func (cc *clientCache[T]) drop(key clientKey, e *cacheEntry[T]) {
	cc.mu.Lock()
	if cc.m[key] == e {
		delete(cc.m, key)
	}
	cc.mu.Unlock()
}

// remove forgets v, which is being released.
func (cc *clientCache[T]) remove(v T) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for k, e := range cc.m {
		if isReady(e.ready) && e.err == nil && e.v == v {
			delete(cc.m, k)
		}
	}
}

// forgetStation drops every client of a station that was destroyed.
func (cc *clientCache[T]) forgetStation(intern string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for k := range cc.m {
		if k.station == intern {
			delete(cc.m, k)
		}
	}
}

func isReady(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
