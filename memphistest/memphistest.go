// Package memphistest runs a Memphis-compatible broker inside a Go process,
// so services that use memphis.go can be tested without Docker, PostgreSQL
// or a real Memphis deployment.
//
// The broker is a stock NATS JetStream server (embedded nats-server) with
// Memphis's SDK-facing control plane on top: stations, producers, consumers,
// schemas and dead letters behave as on Memphis 1.4.4, including its error
// texts. Any Memphis SDK works against it unchanged: the server de-duplicates
// on Memphis's msg-id header, which the official Node.js and Python SDKs
// send, as well as on JetStream's Nats-Msg-Id (see WithDirectPublish).
//
//	func TestOrders(t *testing.T) {
//		srv := memphistest.NewServer(t)
//		conn, err := memphis.Connect(srv.Host(), srv.Username(),
//			memphis.Password(srv.Password()), memphis.Port(srv.Port()))
//		...
//	}
//
// Beyond a real broker it can restart in place (Restart), run a three-node
// JetStream cluster (WithCluster), re-send dead letters on demand
// (ResendDeadLetters), intercept control requests (Intercept) to test
// error paths, inject network faults between clients and itself
// (WithFaults, Proxy) and serve TLS with certificates made for it
// (WithTLS).
package memphistest

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go/internal/broker"
)

// Default login of a new server: the real broker's root user.
const (
	// DefaultUsername is the user a server accepts unless WithUser is given.
	DefaultUsername = broker.DefaultUsername
	// DefaultPassword is DefaultUsername's password.
	DefaultPassword = broker.DefaultPassword
)

// Server is an in-process Memphis broker. Its methods are safe for
// concurrent use.
type Server struct {
	b       *broker.Broker
	user    string
	pass    string
	proxies []*Proxy // one per node, with WithFaults
	tls     *TLS     // with WithTLS
}

type config struct {
	b      broker.Config
	user   string
	pass   string
	faults bool
	tls    *tlsOptions
}

// Option configures a Server.
type Option func(*config)

// WithToken puts the server in connection-token mode: clients connect with
// memphis.ConnectionToken(token) instead of a password. Default: user and
// password mode.
func WithToken(token string) Option { return func(c *config) { c.b.Token = token } }

// WithUser sets the login the server accepts (default root / memphis).
// Call it more than once to add users; the first is the one Username and
// Password return.
func WithUser(username, password string) Option {
	return func(c *config) {
		if c.user == "" {
			c.user, c.pass = username, password
		}
		if c.b.Users == nil {
			c.b.Users = map[string]string{}
		}
		c.b.Users[username] = password
	}
}

// WithPort listens on a fixed client port instead of a free one.
func WithPort(port int) Option { return func(c *config) { c.b.Port = port } }

// WithHost listens on another interface than 127.0.0.1.
func WithHost(host string) Option { return func(c *config) { c.b.Host = host } }

// WithStorageDir keeps the server's state (messages, stations, schemas) in
// dir, which outlives the server. Default: a temporary directory removed on
// Shutdown.
func WithStorageDir(dir string) Option { return func(c *config) { c.b.StoreDir = dir } }

// WithMaxPayload sets the largest message the server accepts (default
// 8 MiB, as the Memphis deployment configures it).
func WithMaxPayload(bytes int32) Option { return func(c *config) { c.b.MaxPayload = bytes } }

// WithCluster runs a JetStream cluster of n nodes in the process (default
// one node, no cluster). Stations may then have up to n replicas, and
// StopNode shuts one node down to test failover.
func WithCluster(n int) Option { return func(c *config) { c.b.Nodes = n } }

// WithDirectPublish sends station publishes straight to their streams
// instead of through the server's msg-id ingest, which de-duplicates on
// the msg-id header other Memphis SDKs send, as the real broker does, at
// the cost of a detour through the server for every publish. This SDK sends both headers and de-duplicates
// either way; the benchmarks use this option to measure against bare
// JetStream. Default: through the ingest.
func WithDirectPublish() Option { return func(c *config) { c.b.DirectPublish = true } }

// WithLogger sends the server's log lines to l (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.b.Logger = l } }

// WithFaults puts a fault-injecting Proxy in front of each node's client
// port. Host, Port, Ports and URL then name the proxies, so clients reach
// the server through them, and Faults (NodeFaults in a cluster) injects
// the faults. The server's own connections bypass the proxies. Default:
// clients connect to the server directly.
func WithFaults() Option { return func(c *config) { c.faults = true } }

// Start starts a server outside a test (examples, the dev broker command).
// Call Shutdown when done.
func Start(opts ...Option) (*Server, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.user == "" {
		c.user, c.pass = DefaultUsername, DefaultPassword
	}
	s := &Server{user: c.user}
	if c.b.Token == "" {
		s.pass = c.pass
	}
	host := c.b.Host
	if host == "" {
		host = "127.0.0.1"
	}
	if c.tls != nil {
		m, cfg, err := newTLS(host, *c.tls)
		if err != nil {
			return nil, fmt.Errorf("memphistest: %w", err)
		}
		s.tls, c.b.TLS = m, cfg
	}
	if c.faults {
		// The proxies' ports are needed first: a node of a cluster
		// advertises them to clients in place of its own.
		for range max(c.b.Nodes, 1) {
			p, err := listenProxy(host)
			if err != nil {
				s.closeProxies()
				return nil, err
			}
			s.proxies = append(s.proxies, p)
			c.b.Advertise = append(c.b.Advertise, p.Addr())
		}
	}
	b, err := broker.New(c.b)
	if err != nil {
		s.closeProxies()
		return nil, fmt.Errorf("memphistest: %w", err)
	}
	s.b = b
	for i, p := range s.proxies {
		p.start(net.JoinHostPort(host, strconv.Itoa(b.Ports()[i])))
	}
	return s, nil
}

func (s *Server) closeProxies() {
	for _, p := range s.proxies {
		p.Close()
	}
}

// NewServer starts a server for one test and shuts it down when the test
// ends. A server that cannot start fails the test.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := Start(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// Host is the address to pass to memphis.Connect.
func (s *Server) Host() string { return s.b.Host() }

// Port is the client port (memphis.Port) of the first node; with
// WithFaults, the port of the proxy in front of it.
func (s *Server) Port() int { return s.Ports()[0] }

// Ports are the client ports of every node of a cluster; with WithFaults,
// the ports of the proxies in front of them.
func (s *Server) Ports() []int {
	if s.proxies == nil {
		return s.b.Ports()
	}
	ports := make([]int, len(s.proxies))
	for i, p := range s.proxies {
		ports[i] = p.Port()
	}
	return ports
}

// URL is the NATS URL of the first node (through its proxy with
// WithFaults), for plain nats.go clients.
func (s *Server) URL() string {
	return "nats://" + net.JoinHostPort(s.Host(), strconv.Itoa(s.Port()))
}

// Faults is the proxy in front of the server (the first node of a
// cluster), to inject network faults; nil without WithFaults.
func (s *Server) Faults() *Proxy { return s.NodeFaults(0) }

// NodeFaults is the proxy in front of node i of a cluster; nil without
// WithFaults or for a node that does not exist.
func (s *Server) NodeFaults(i int) *Proxy {
	if i < 0 || i >= len(s.proxies) {
		return nil
	}
	return s.proxies[i]
}

// Username is the user to connect as.
func (s *Server) Username() string { return s.user }

// Password is the user's password, empty in token mode.
func (s *Server) Password() string { return s.pass }

// Token is the connection token, empty in password mode.
func (s *Server) Token() string { return s.b.Token() }

// Shutdown stops the server, and the proxies in front of it. It is safe
// to call more than once.
func (s *Server) Shutdown() {
	s.closeProxies()
	s.b.Shutdown()
}

// Restart stops the server and starts it again on the same port and
// storage, as a broker process restarted by its operator. Connected clients
// lose their connection and reconnect; stations, schemas and stored
// messages survive.
func (s *Server) Restart() error { return s.b.Restart() }

// StopNode shuts node i of a cluster down, leaving the others serving.
func (s *Server) StopNode(i int) error { return s.b.StopNode(i) }

// StartNode starts node i of a cluster again after StopNode.
func (s *Server) StartNode(i int) error { return s.b.StartNode(i) }

// StreamLeader is the node that leads a station partition's stream (name
// "<station>$<partition>"), or -1 when none does right now.
func (s *Server) StreamLeader(stream string) int { return s.b.StreamLeader(stream) }

// ResendDeadLetters re-sends a station's poison messages to the consumer
// groups they poisoned, as the Memphis UI's "resend" does. It returns how
// many were sent.
func (s *Server) ResendDeadLetters(station string) (int, error) {
	return s.b.ResendDeadLetters(station)
}

// DestroyStation removes a station as the Memphis UI does: its messages go,
// and every connected client is told at once with a remove_station client
// update. A destroy through an SDK tells nobody, on Memphis 1.4.4 as here;
// use this to test how a service copes with a station removed by an
// operator.
func (s *Server) DestroyStation(station string) error { return s.b.DestroyStation(station) }

// DeadLetter is one message kept in a station's dead-letter store.
type DeadLetter = broker.DeadLetter

// DeadLetters lists what a station's dead-letter store holds: poison
// messages and messages that failed the station's schema.
func (s *Server) DeadLetters(station string) []DeadLetter { return s.b.DeadLetters(station) }

// Request is a control request seen by an Intercept function: its subject
// (for example "$memphis_station_creations") and JSON body.
type Request struct {
	// Subject is the control subject the request was sent to.
	Subject string
	// Body is the request's JSON body as the client sent it.
	Body []byte
}

// Action says how the server answers an intercepted request. The zero
// Action lets the request through.
type Action struct {
	// Delay holds the request this long before handling it.
	Delay time.Duration
	// Drop answers nothing, as a broker that lost the request.
	Drop bool
	// Reply answers with these bytes instead of handling the request (the
	// real broker answers errors as plain text, or JSON {"error": ...} for
	// producer, consumer and schema creations).
	Reply []byte
}

// Intercept installs fn in front of the control plane: it sees every
// control request (station, producer, consumer and schema creations and
// destructions) and decides how it is answered. It replaces any earlier
// function; the returned func removes it.
func (s *Server) Intercept(fn func(Request) Action) (remove func()) {
	s.b.SetHook(func(subject string, body []byte) broker.HookAction {
		a := fn(Request{Subject: subject, Body: body})
		return broker.HookAction{Delay: a.Delay, Drop: a.Drop, Reply: a.Reply}
	})
	return func() { s.b.SetHook(nil) }
}

// String describes the server: where clients connect and as whom. The
// password and token are left out, so a server can be logged safely.
func (s *Server) String() string {
	return fmt.Sprintf("memphistest.Server %s:%d (user %s)", s.Host(), s.Port(), s.user)
}

// Format prints String, whatever the verb.
func (s *Server) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }
