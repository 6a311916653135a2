// Package testenv gives every test suite of the module its broker: the
// broker named by MEMPHIS_HOST when it is set (Memphis 1.4.4, or
// cmd/memphis-devbroker), or else an in-process one from memphistest.
// Suites written against it run on all three; where Memphis 1.4.4 behaves
// differently on purpose or by a bug, a test asks Kind and names the quirk.
package testenv

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go/internal/broker"
	"github.com/memphisdev/memphis.go/memphistest"
)

// Kind says which broker a suite talks to.
type Kind int

const (
	// InProcess is a memphistest server in the test's own process.
	InProcess Kind = iota
	// DevBroker is this module's broker in another process
	// (cmd/memphis-devbroker) at MEMPHIS_HOST: it behaves as InProcess, but
	// the test can not reach into it.
	DevBroker
	// Memphis is a real Memphis broker at MEMPHIS_HOST (1.4.4), with its
	// quirks.
	Memphis
)

func (k Kind) String() string {
	switch k {
	case InProcess:
		return "in-process broker"
	case DevBroker:
		return "dev broker"
	case Memphis:
		return "Memphis"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Broker is what a test needs to reach a broker.
type Broker struct {
	Host     string
	Port     int
	Username string
	Password string // empty in token mode
	Token    string // empty in password mode
	// AccountID is the NATS account of the user (1 unless MEMPHIS_ACCOUNT_ID says otherwise).
	AccountID int
	// Real is true when the broker is the one at MEMPHIS_HOST (Kind is
	// DevBroker or Memphis): the test can not restart or intercept it.
	Real bool
	// Kind is which broker this is; see IsMemphis.
	Kind Kind
	// Server is the in-process broker, nil when Real.
	Server *memphistest.Server
}

// Start returns the broker a test runs against. With options, the test needs
// a broker configured its own way (token mode, storage, restarts), which only
// the in-process broker can give, so one is started even when MEMPHIS_HOST is
// set.
func Start(t testing.TB, opts ...memphistest.Option) *Broker {
	t.Helper()
	if host := os.Getenv("MEMPHIS_HOST"); host != "" && len(opts) == 0 {
		return real(t, host)
	}
	s := memphistest.NewServer(t, opts...)
	return &Broker{
		Host: s.Host(), Port: s.Port(), Username: s.Username(),
		Password: s.Password(), Token: s.Token(), AccountID: 1, Server: s,
	}
}

// Local starts an in-process broker even when MEMPHIS_HOST is set, for tests
// that restart or intercept the broker.
func Local(t testing.TB, opts ...memphistest.Option) *Broker {
	t.Helper()
	s := memphistest.NewServer(t, opts...)
	return &Broker{
		Host: s.Host(), Port: s.Port(), Username: s.Username(),
		Password: s.Password(), Token: s.Token(), AccountID: 1, Server: s,
	}
}

func real(t testing.TB, host string) *Broker {
	b := &Broker{Host: host, Port: 6666, Username: getenv("MEMPHIS_USER", "root"), AccountID: 1, Real: true, Kind: Memphis}
	if p := os.Getenv("MEMPHIS_PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("MEMPHIS_PORT: %v", err)
		}
		b.Port = n
	}
	if a := os.Getenv("MEMPHIS_ACCOUNT_ID"); a != "" {
		n, err := strconv.Atoi(a)
		if err != nil {
			t.Fatalf("MEMPHIS_ACCOUNT_ID: %v", err)
		}
		b.AccountID = n
	}
	if tok := os.Getenv("MEMPHIS_TOKEN"); tok != "" {
		b.Token = tok
	} else {
		b.Password = getenv("MEMPHIS_PASSWORD", "memphis")
	}
	b.Kind = b.identify(t)
	return b
}

// identify tells the dev broker from a real Memphis broker by the NATS
// version the server reports: the dev broker embeds the nats-server this
// module is built with, Memphis 1.4.4 its own fork of 2.10.7.
func (b *Broker) identify(t testing.TB) Kind {
	t.Helper()
	nc := b.NATS(t)
	defer nc.Close()
	if nc.ConnectedServerVersion() == server.VERSION {
		return DevBroker
	}
	return Memphis
}

// IsMemphis reports whether the broker is a real Memphis broker, whose
// known bugs and quirks a test expects instead of this module's behaviour.
func (b *Broker) IsMemphis() bool { return b.Kind == Memphis }

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// URL is the NATS URL of the broker.
func (b *Broker) URL() string { return fmt.Sprintf("nats://%s:%d", b.Host, b.Port) }

// NATS opens a plain nats.go connection authenticated as the broker's
// user, closed when the test ends. A connection name of the form
// "<id>::<user>" is what the real broker expects of its clients.
func (b *Broker) NATS(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	base := []nats.Option{nats.Name(strconv.FormatInt(time.Now().UnixNano(), 36) + "::" + b.Username)}
	if b.Token != "" {
		// A client whose name carries "::" sends the bare token (PROTOCOL §1.2).
		base = append(base, nats.Token(b.Token))
	} else {
		base = append(base, nats.UserInfo(fmt.Sprintf("%s$%d", b.Username, b.AccountID), b.Password))
	}
	nc, err := nats.Connect(b.URL(), append(base, opts...)...)
	if err != nil {
		t.Fatalf("nats connect to %s: %v", b.URL(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

var seq atomic.Int64

// Name returns a station-safe name unique to this test run, starting with
// prefix, so suites can share one long-lived real broker.
func Name(t testing.TB, prefix string) string {
	n := seq.Add(1)
	s := fmt.Sprintf("%s-%s-%d", prefix, strconv.FormatInt(time.Now().UnixNano()%1e9, 36), n)
	return strings.ToLower(s)
}

// PublishSubjects are where a core NATS subscriber sees what clients
// publish to a station's stream: "<stream>.final" on the real broker, and
// the ingest subject on the in-process one, which maps station publishes
// there to de-duplicate them (internal/broker/ingest.go).
func PublishSubjects(stream string) []string {
	return []string{stream + ".final", broker.IngestPrefix + stream}
}

// IsStationPublish reports whether a subject seen by a core NATS subscriber
// carries a publish to a station, on either broker.
func IsStationPublish(subject string) bool {
	return strings.HasSuffix(subject, ".final") || strings.HasPrefix(subject, broker.IngestPrefix)
}
