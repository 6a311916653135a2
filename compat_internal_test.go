package memphis

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
)

// A message the broker re-sent from the dead-letter station has no stream
// position: 1.x made one up (0, the current time); this SDK says so.
func TestResentMessageHasNoStreamPosition(t *testing.T) {
	m := &Msg{raw: &nats.Msg{Subject: "s", Data: []byte("x")}, resent: true}
	if _, err := m.GetSequenceNumber(); !errors.Is(err, ErrNotSupported) {
		t.Errorf("GetSequenceNumber: %v, want ErrNotSupported", err)
	}
	if _, err := m.GetTimeSent(); !errors.Is(err, ErrNotSupported) {
		t.Errorf("GetTimeSent: %v, want ErrNotSupported", err)
	}
}

func TestRoundRobinGeneratorSurvivesItsFields(t *testing.T) {
	if newRoundRobinGenerator(nil) != nil {
		t.Error("a generator over no partitions")
	}
	g := newRoundRobinGenerator([]int{4, 7})
	g.Current = -3 // 1.x code may write any field
	if got := g.Next(); got != 4 {
		t.Errorf("Next after a bad Current = %d, want 4", got)
	}
	g.Partitions = nil
	if got := g.Next(); got != 0 {
		t.Errorf("Next over no partitions = %d, want 0", got)
	}
}
