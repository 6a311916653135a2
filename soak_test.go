package memphis_test

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
)

// TestSoak produces and consumes for MEMPHIS_SOAK (e.g. 10m; `make soak`)
// while consumers of one group are destroyed and replaced every few
// seconds, and checks that goroutines and heap stay flat and nothing
// acknowledged is lost. It is skipped unless MEMPHIS_SOAK is set: it is
// too long for every run.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("MEMPHIS_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set MEMPHIS_SOAK to a duration (make soak runs 10m)")
	}
	const churnEvery = 3 * time.Second
	sampleEvery := max(d/10, 5*time.Second)

	b := testenv.Start(t)
	c := connect(t, b)
	station := testenv.Name(t, "soak")
	// The in-process broker shares the heap being measured: a bounded
	// station keeps its share bounded too.
	if _, err := c.CreateStation(station, memphis.PartitionsNumber(4),
		memphis.RetentionTypeOpt(memphis.Messages), memphis.RetentionVal(20000)); err != nil {
		t.Fatal(err)
	}
	l := newLedger()
	p, err := c.CreateProducer(station, "p", memphis.ProducerErrorHandler(func(_ *memphis.Producer, err error) { l.handlerErr(err) }))
	if err != nil {
		t.Fatal(err)
	}
	newMember := func(i int) *memphis.Consumer {
		cons, err := c.CreateConsumer(station, fmt.Sprintf("m%d", i), memphis.ConsumerGroup("soakers"),
			memphis.ConsumerErrorHandler(func(_ *memphis.Consumer, err error) { l.handlerErr(err) }))
		if err != nil {
			t.Fatal(err)
		}
		if err := cons.Consume(l.handler); err != nil {
			t.Fatal(err)
		}
		return cons
	}
	// Two members: while one is replaced, the other keeps the group alive.
	members := []*memphis.Consumer{newMember(0), newMember(1)}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); produceLoop(p, l, stop) }()

	sample := func() (int, uint64) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapAlloc
	}
	// Let the first churn happen before the baseline: caches and pools
	// fill once.
	churn := time.NewTicker(churnEvery)
	defer churn.Stop()
	samples := time.NewTicker(sampleEvery)
	defer samples.Stop()
	end := time.NewTimer(d)
	defer end.Stop()
	var baseG int
	var baseH uint64
	next := 2
	for running := true; running; {
		select {
		case <-churn.C:
			old := members[0]
			old.StopConsume()
			if err := old.Destroy(); err != nil {
				t.Fatalf("destroy member: %v", err)
			}
			members = append(members[1:], newMember(next))
			next++
		case <-samples.C:
			l.prune()
			g, h := sample()
			if baseG == 0 && next > 4 { // after warm-up: pools and caches filled
				baseG, baseH = g, h
			}
			l.mu.Lock()
			t.Logf("goroutines %d, heap %d KiB, acknowledged %d, consumed %d, members created %d",
				g, h>>10, l.ackedN, l.gotN, next)
			l.mu.Unlock()
		case <-end.C:
			running = false
		}
	}
	for _, m := range members {
		m.StopConsume()
	}
	members = []*memphis.Consumer{newMember(next)} // one left to drain the rest
	checkBooks(t, p, l, stop, done)
	members[0].StopConsume()
	g, h := sample()
	t.Logf("end: goroutines %d (baseline %d), heap %d KiB (baseline %d KiB)", g, baseG, h>>10, baseH>>10)
	if baseG > 0 && g > baseG+20 {
		t.Errorf("goroutines grew from %d to %d", baseG, g)
	}
	if baseH > 0 && h > 2*baseH+16<<20 {
		t.Errorf("heap grew from %d KiB to %d KiB", baseH>>10, h>>10)
	}
}
