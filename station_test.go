package memphis_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/internal/testenv"
)

func TestCreateStationWithEveryOption(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	dls := testenv.Name(t, "dls")
	name := testenv.Name(t, "St")
	s, err := c.CreateStation(name,
		memphis.RetentionTypeOpt(memphis.Messages),
		memphis.RetentionVal(100),
		memphis.StorageTypeOpt(memphis.Memory),
		memphis.Replicas(1),
		memphis.IdempotencyWindow(3*time.Minute),
		memphis.SendPoisonMsgToDls(true),
		memphis.SendSchemaFailedMsgToDls(false),
		memphis.TieredStorageEnabled(false),
		memphis.PartitionsNumber(3),
		memphis.DlsStation(dls),
	)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != strings.ToLower(name) {
		t.Errorf("Name = %q, want the lower-cased name", s.Name)
	}
	// Creating it again is not an error and keeps the first configuration.
	if _, err := c.CreateStation(name, memphis.PartitionsNumber(5)); err != nil {
		t.Fatalf("create again: %v", err)
	}
	p, err := s.CreateProducer("p")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Produce([]byte("x"), memphis.ProducerPartitionNumber(3)); err != nil {
		t.Fatalf("partition 3 of 3: %v", err)
	}
	if err := p.Produce([]byte("x"), memphis.ProducerPartitionNumber(4)); !errors.Is(err, memphis.ErrPartitionNotFound) {
		t.Fatalf("partition 4 of 3: %v, want ErrPartitionNotFound", err)
	}
	if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := s.Destroy(); err != nil {
		t.Fatalf("destroying twice: %v", err)
	}
	if dlsStation, err := c.CreateStation(dls); err == nil {
		_ = dlsStation.Destroy()
	}
}

func TestCreateStationRejectsBadInputLocally(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	for name, tc := range map[string]struct {
		name string
		opts []memphis.StationOpt
		want error
	}{
		"empty name":          {"", nil, memphis.ErrInvalidName},
		"bad characters":      {"a b!", nil, memphis.ErrInvalidName},
		"hash":                {"a#b", nil, memphis.ErrInvalidName},
		"too long":            {strings.Repeat("a", 129), nil, memphis.ErrInvalidName},
		"leading dot":         {".abc", nil, memphis.ErrInvalidName},
		"negative partitions": {"ok", []memphis.StationOpt{memphis.PartitionsNumber(-2)}, memphis.ErrInvalidOption},
		"negative retention":  {"ok", []memphis.StationOpt{memphis.RetentionVal(-1)}, memphis.ErrInvalidOption},
		"window too long":     {"ok", []memphis.StationOpt{memphis.IdempotencyWindow(2 * time.Hour)}, memphis.ErrInvalidOption},
		"replicas 7":          {"ok", []memphis.StationOpt{memphis.Replicas(7)}, memphis.ErrInvalidOption},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.CreateStation(tc.name, tc.opts...); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// 128 characters is allowed.
	long := testenv.Name(t, "l")
	long += strings.Repeat("a", 128-len(long))
	s, err := c.CreateStation(long)
	if err != nil {
		t.Fatalf("128 characters: %v", err)
	}
	_ = s.Destroy()
}

func TestBrokerErrorsKeepTheirText(t *testing.T) {
	b := testenv.Start(t)
	c := connect(t, b)
	// Replicas beyond a single node's size are refused by the broker itself.
	_, err := c.CreateStation(testenv.Name(t, "rep"), memphis.Replicas(3))
	var be *memphis.BrokerError
	if !errors.As(err, &be) || !strings.Contains(be.Text, "replicas") {
		t.Fatalf("err = %v, want the broker's replica error", err)
	}
	if !errors.Is(err, memphis.ErrInvalidOption) {
		t.Errorf("%v should match ErrInvalidOption", err)
	}
}
