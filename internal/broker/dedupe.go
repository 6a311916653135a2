package broker

import (
	"sync"
	"time"
)

// dedupe remembers, per stream, the msg-ids stored within the station's
// idempotency window and the sequence each was stored at: what the real
// broker's JetStream keeps for its msg-id header.
type dedupe struct {
	mu      sync.Mutex
	streams map[string]*idWindow
}

type idWindow struct {
	window time.Duration
	ids    map[string]*idEntry
	order  []*idEntry // by arrival; entries leave from the front as they expire
}

// idEntry is one msg-id of a stream.
type idEntry struct {
	id  string
	seq uint64    // where it was stored; 0 while the first copy is on its way
	at  time.Time // when it was stored, or sent while on its way
	// waiting are the copies that came while the first was on its way.
	waiting []*heldCopy
}

// heldCopy is a copy of a message kept until the first copy's verdict.
type heldCopy struct {
	reply  []byte
	msg    []byte // header block and payload
	hdrLen int
}

// verdict says what the ingest does with a copy of a message with a msg-id.
type verdict int

const (
	storeFirst verdict = iota // new: store it
	duplicate                 // stored already: answer with the first's sequence
	held                      // the first copy is on its way: wait for it
	untracked                 // not a station stream the ingest knows: store it
)

func newDedupe() *dedupe { return &dedupe{streams: map[string]*idWindow{}} }

// track starts remembering a stream's ids for window (the window of a
// stream already tracked is updated).
func (d *dedupe) track(stream string, window time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if w := d.streams[stream]; w != nil {
		w.window = window
		return
	}
	d.streams[stream] = &idWindow{window: window, ids: map[string]*idEntry{}}
}

// forget drops a stream's ids (its station was destroyed).
func (d *dedupe) forget(stream string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.streams, stream)
}

// seed records an id stored before the broker started, at time at.
func (d *dedupe) seed(stream, id string, seq uint64, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.streams[stream]
	if w == nil || w.ids[id] != nil {
		return
	}
	e := &idEntry{id: id, seq: seq, at: at}
	w.ids[id] = e
	w.order = append(w.order, e)
}

// admit decides about one copy of a message with a msg-id that arrived at
// now. A held copy is kept (reply and msg are copied); a duplicate comes
// with the first copy's sequence.
func (d *dedupe) admit(stream, id string, now time.Time, reply, msg []byte, hdrLen int) (*idEntry, uint64, verdict) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.streams[stream]
	if w == nil {
		return nil, 0, untracked
	}
	w.expire(now)
	e := w.ids[id]
	switch {
	case e == nil:
		e = &idEntry{id: id, at: now}
		w.ids[id] = e
		w.order = append(w.order, e)
		return e, 0, storeFirst
	case e.seq > 0:
		return e, e.seq, duplicate
	case now.Sub(e.at) > inFlightLimit:
		// The first copy's answer was lost (its node went down): this copy
		// takes its place, and those waiting wait for it.
		e.at = now
		return e, 0, storeFirst
	}
	e.waiting = append(e.waiting, &heldCopy{
		reply: append([]byte(nil), reply...), msg: append([]byte(nil), msg...), hdrLen: hdrLen})
	return e, 0, held
}

// resolve records the verdict on e's first copy: stored at seq, or failed
// (seq 0). Stored, it returns the copies to answer as duplicates; failed,
// the next waiting copy to store instead (nil when none waits, and the id
// is forgotten).
func (d *dedupe) resolve(stream string, e *idEntry, seq uint64, now time.Time) (duplicates []*heldCopy, next *heldCopy) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if seq > 0 {
		e.seq, e.at = seq, now
		duplicates, e.waiting = e.waiting, nil
		return duplicates, nil
	}
	if len(e.waiting) > 0 {
		next, e.waiting = e.waiting[0], e.waiting[1:]
		e.at = now
		return nil, next
	}
	if w := d.streams[stream]; w != nil && w.ids[e.id] == e {
		delete(w.ids, e.id)
	}
	return nil, nil
}

// expire forgets the ids stored longer ago than the window, and those whose
// first copy never got an answer; d.mu is held.
func (w *idWindow) expire(now time.Time) {
	n := 0
	for _, e := range w.order {
		stale := e.seq == 0 && now.Sub(e.at) > inFlightLimit
		if !stale && (e.seq == 0 || now.Sub(e.at) < w.window) {
			break
		}
		if w.ids[e.id] == e {
			delete(w.ids, e.id)
		}
		n++
	}
	if n > 0 {
		w.order = w.order[n:]
	}
}
