package memphis

import (
	"errors"
	"testing"
	"time"
)

// Connect checks its options before it dials, so these fail fast with no broker.
func TestConnectRejectsBadOptions(t *testing.T) {
	for name, opts := range map[string][]Option{
		"no credentials":    nil,
		"both credentials":  {Password("p"), ConnectionToken("t")},
		"bad port":          {Password("p"), Port(0)},
		"negative interval": {Password("p"), ReconnectInterval(-time.Second)},
		"zero timeout":      {Password("p"), Timeout(0)},
		"zero max pending":  {Password("p"), MaxPending(0)},
		"half TLS":          {Password("p"), Tls("cert.pem", "", "")},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Connect("localhost", "root", opts...)
			if !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("err = %v, want ErrInvalidOption", err)
			}
			if c != nil {
				t.Fatal("a connection was returned")
			}
		})
	}
	if _, err := Connect("", "root", Password("p")); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("empty host: %v", err)
	}
}

func TestServerURLs(t *testing.T) {
	o := defaultOptions()
	o.Host = "https://a.example.com/, b:7000 ,http://c"
	got := o.serverURLs()
	want := []string{"nats://a.example.com:6666", "nats://b:7000", "nats://c:6666"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("url %d = %s, want %s", i, got[i], want[i])
		}
	}
}

func TestConsumerOptionValidation(t *testing.T) {
	for name, mod := range map[string]func(*ConsumerOpts){
		"batch 0":           func(o *ConsumerOpts) { o.BatchSize = 0 },
		"batch 5001":        func(o *ConsumerOpts) { o.BatchSize = 5001 },
		"negative interval": func(o *ConsumerOpts) { o.PullInterval = -1 },
		"wait under 1ms":    func(o *ConsumerOpts) { o.BatchMaxTimeToWait = time.Microsecond },
		"zero deliveries":   func(o *ConsumerOpts) { o.MaxMsgDeliveries = 0 },
		"start seq 0":       func(o *ConsumerOpts) { o.StartConsumeFromSequence = 0 },
		"last -2":           func(o *ConsumerOpts) { o.LastMessages = -2 },
		"seq and last":      func(o *ConsumerOpts) { o.StartConsumeFromSequence = 5; o.LastMessages = 3 },
	} {
		o := defaultConsumerOpts()
		mod(&o)
		if err := o.validate(); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: err = %v, want ErrInvalidOption", name, err)
		}
	}
	o := defaultConsumerOpts()
	if err := o.validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestStationOptionValidation(t *testing.T) {
	base := func() StationOpts {
		return StationOpts{RetentionType: DefaultRetentionType, RetentionVal: DefaultRetentionValue,
			StorageType: DefaultStorageType, Replicas: DefaultReplicas, IdempotencyWindow: DefaultIdempotencyWindow,
			PartitionsNumber: DefaultPartitionsNumber}
	}
	for name, mod := range map[string]func(*StationOpts){
		"retention 0":           func(o *StationOpts) { o.RetentionVal = 0 },
		"retention type 9":      func(o *StationOpts) { o.RetentionType = 9 },
		"storage type 5":        func(o *StationOpts) { o.StorageType = 5 },
		"replicas 0":            func(o *StationOpts) { o.Replicas = 0 },
		"replicas 6":            func(o *StationOpts) { o.Replicas = 6 },
		"window negative":       func(o *StationOpts) { o.IdempotencyWindow = -time.Second },
		"window 50ms":           func(o *StationOpts) { o.IdempotencyWindow = 50 * time.Millisecond },
		"window 25h":            func(o *StationOpts) { o.IdempotencyWindow = 25 * time.Hour },
		"window over retention": func(o *StationOpts) { o.RetentionVal = 10; o.IdempotencyWindow = 20 * time.Second },
		"partitions 0":          func(o *StationOpts) { o.PartitionsNumber = 0 },
		"partitions 10001":      func(o *StationOpts) { o.PartitionsNumber = 10001 },
		"bad dls station":       func(o *StationOpts) { o.DlsStation = "bad name!" },
	} {
		o := base()
		mod(&o)
		err := o.validate()
		if !errors.Is(err, ErrInvalidOption) && !errors.Is(err, ErrInvalidName) {
			t.Errorf("%s: err = %v, want ErrInvalidOption or ErrInvalidName", name, err)
		}
	}
	o := base()
	o.RetentionType, o.RetentionVal = AckBased, 0
	if err := o.validate(); err != nil {
		t.Errorf("ack based ignores the value: %v", err)
	}
}
