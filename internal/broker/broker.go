// Package broker is an in-process Memphis broker: Memphis's SDK-facing
// control plane (stations, producers, consumers, schemas, dead letters) on
// top of an embedded, stock nats-server with JetStream. It speaks the
// protocol of Memphis 1.4.4 as docs/protocol.md records it, so any Memphis
// SDK works against it unchanged; memphistest is its public face.
//
// Where the real broker has a bug (docs/protocol.md#quirks), this broker
// implements the documented intent; each such place cites the quirk's anchor
// in docs/protocol.md or says what the real broker does instead.
//
// Layout: broker.go owns the servers, authentication and the control-plane
// connection; state.go the registry and its persistence; stations.go,
// clients.go (producers and consumers), schemas.go and dls.go the request
// handlers.
package broker

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of Config.
const (
	// DefaultUsername and DefaultPassword are the login of a fresh Memphis
	// broker: user root, password memphis.
	DefaultUsername = "root"
	DefaultPassword = "memphis"
	// DefaultMaxPayload is the largest message the broker accepts, as the
	// Memphis docker deployment configures it (8 MiB).
	DefaultMaxPayload = 8 << 20
	// startTimeout bounds how long a node may take to accept connections.
	startTimeout = 10 * time.Second
	// portAttempts is how many sets of fresh ports a first start tries.
	portAttempts = 3
)

// Config configures a Broker. The zero value is a single-node broker on a
// free loopback port in user/password mode with the default root login,
// storing in a temporary directory removed at Shutdown.
type Config struct {
	// Host is the interface to listen on; default 127.0.0.1.
	Host string
	// Port is the client port of the first node; 0 picks a free port.
	Port int
	// Users maps Memphis user names to passwords; default root/memphis.
	// In token mode the passwords are unused but the names still are the
	// users a connection name may claim.
	Users map[string]string
	// Token switches the broker to connection-token mode
	// (docs/protocol.md#auth-token-mode).
	Token string
	// StoreDir is where JetStream and the control plane keep their state.
	// Empty means a temporary directory that Shutdown removes. A broker
	// restarted on the same directory finds its stations again.
	StoreDir string
	// MaxPayload is the largest message accepted; default DefaultMaxPayload.
	MaxPayload int32
	// Nodes is the number of JetStream cluster nodes in this process;
	// default 1 (no cluster).
	Nodes int
	// Logger receives the broker's own log lines; default discards them.
	Logger *slog.Logger
	// Hook, when set, sees every control request before it is handled.
	Hook Hook
	// TLS, when set, makes every node serve TLS only on its client port,
	// with this configuration (certificates, and ClientAuth
	// tls.RequireAndVerifyClientCert with ClientCAs for mutual TLS). The
	// broker's own connections are in-process and bypass it.
	TLS *tls.Config
	// Advertise is, per node, the client address ("host:port") a node of
	// a cluster tells clients about, in place of its own: the address of a
	// proxy in front of it. Default: its own address.
	Advertise []string
	// DirectPublish sends station publishes straight to their streams,
	// skipping the ingest (ingest.go). Publishes then cost what they cost
	// on stock JetStream, but only Nats-Msg-Id de-duplicates: this SDK sends
	// it, the official Node.js and Python SDKs do not. Default false: the
	// ingest de-duplicates on msg-id too, as the real broker does.
	DirectPublish bool
}

// HookAction says how the broker answers one intercepted control request.
// The zero value lets the request through unchanged.
type HookAction struct {
	// Delay holds the request this long before it is handled (or answered
	// with Reply, or dropped).
	Delay time.Duration
	// Drop sends no reply at all, as a broker that lost the request.
	Drop bool
	// Reply, when non-nil, is sent instead of handling the request.
	Reply []byte
}

// Hook inspects a control request (subject and body) and decides how it is
// answered. It runs on the request's own goroutine and may block.
type Hook func(subject string, body []byte) HookAction

// Broker is a running in-process Memphis broker. Its methods are safe for
// concurrent use.
type Broker struct {
	cfg      Config
	log      *slog.Logger
	ownStore bool // the store directory is ours to remove
	internal struct{ user, pass string }

	hookMu sync.RWMutex
	hook   Hook

	// life serializes Start, Restart, Shutdown and node changes.
	life    sync.Mutex
	ports   []int
	running bool
	// pickPort finds a free port (freePort; a test hands out a busy one),
	// and readyWait bounds how long a node may take to accept connections
	// (startTimeout).
	pickPort  func(host string) (int, error)
	readyWait time.Duration

	// nodesMu guards nodes apart from life, so that request handlers can
	// list connections while Shutdown (holding life) waits for them.
	nodesMu sync.RWMutex
	nodes   []*server.Server

	cp     *controlPlane // nil while stopped
	ingest *ingest       // nil while stopped
}

// errNotReady: a node started but never accepted connections.
var errNotReady = errors.New("not ready")

// New starts a broker.
func New(cfg Config) (*Broker, error) { return newBroker(cfg, freePort, startTimeout) }

func newBroker(cfg Config, pickPort func(host string) (int, error), readyWait time.Duration) (*Broker, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if len(cfg.Users) == 0 {
		cfg.Users = map[string]string{DefaultUsername: DefaultPassword}
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.Nodes <= 0 {
		cfg.Nodes = 1
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Broker{cfg: cfg, log: log, hook: cfg.Hook, pickPort: pickPort, readyWait: readyWait}
	if b.cfg.StoreDir == "" {
		dir, err := os.MkdirTemp("", "memphis-broker-")
		if err != nil {
			return nil, fmt.Errorf("broker: store directory: %w", err)
		}
		b.cfg.StoreDir, b.ownStore = dir, true
	}
	b.internal.user = "$memphis_internal"
	b.internal.pass = randomHex(16)
	if cfg.Port > 0 {
		// nats-server reports a busy port only in its log; say it plainly.
		l, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
		if err != nil {
			b.removeStore()
			return nil, fmt.Errorf("broker: port %d: %w", cfg.Port, err)
		}
		l.Close()
	}
	b.life.Lock()
	defer b.life.Unlock()
	// A port found free can be taken before its node binds it (by another
	// process's listener, or as the local port of an outgoing connection),
	// and nats-server then never becomes ready, saying why only in its log.
	// So a first start tries fresh ports again; a restart keeps its ports,
	// which clients know.
	for attempt := 1; ; attempt++ {
		err := b.allocatePorts()
		if err == nil {
			err = b.start()
		}
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, errNotReady) || attempt == portAttempts {
			b.removeStore()
			return nil, err
		}
		b.log.Warn("broker: a node did not start; trying other ports", "err", err)
		b.ports = nil
		if b.ownStore {
			// Nothing was kept yet; the other nodes' cluster state from
			// this attempt would only slow the next one's election.
			for i := range b.cfg.Nodes {
				_ = os.RemoveAll(filepath.Join(b.cfg.StoreDir, "node-"+strconv.Itoa(i)))
			}
		}
	}
}

func randomHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(buf)
}

// allocatePorts fixes every port once, so a restart comes back on the same
// addresses. A client port per node, and a route port per node in a cluster.
func (b *Broker) allocatePorts() error {
	n := b.cfg.Nodes
	want := n
	if n > 1 {
		want = 2 * n
	}
	for i := 0; i < want; i++ {
		if i == 0 && b.cfg.Port > 0 {
			b.ports = append(b.ports, b.cfg.Port)
			continue
		}
		p, err := b.pickPort(b.cfg.Host)
		if err != nil {
			return fmt.Errorf("broker: free port: %w", err)
		}
		b.ports = append(b.ports, p)
	}
	return nil
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start brings up every node and the control plane; b.life is held.
func (b *Broker) start() error {
	for i := 0; i < b.cfg.Nodes; i++ {
		ns, err := b.newNode(i)
		if err != nil {
			b.stopNodes()
			return err
		}
		b.setNode(-1, ns)
		go ns.Start()
	}
	for i, ns := range b.snapshotNodes() {
		if !ns.ReadyForConnections(b.readyWait) {
			b.stopNodes()
			return fmt.Errorf("broker: node %d %w within %v", i, errNotReady, b.readyWait)
		}
	}
	if err := b.awaitMetaLeader(); err != nil {
		b.stopNodes()
		return err
	}
	g := newIngest(b.log, b.internal.user, b.internal.pass, b.cfg.Nodes, !b.cfg.DirectPublish)
	for i, ns := range b.snapshotNodes() {
		if err := g.attach(i, ns); err != nil {
			g.close()
			b.stopNodes()
			return err
		}
	}
	cp, err := startControlPlane(b, g)
	if err != nil {
		g.close()
		b.stopNodes()
		return err
	}
	if err := b.awaitInterest(cp.subjects); err != nil {
		cp.close()
		g.close()
		b.stopNodes()
		return err
	}
	b.cp, b.ingest = cp, g
	b.running = true
	return nil
}

// clusterTimeout bounds how long a cluster may take to become usable.
const clusterTimeout = 30 * time.Second

// awaitCluster polls until cond holds; nats-server offers no events for
// cluster formation, so polling is the only way.
func (b *Broker) awaitCluster(what string, cond func() bool) error {
	if b.cfg.Nodes == 1 {
		return nil
	}
	deadline := time.Now().Add(clusterTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("broker: %s within %v", what, clusterTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// awaitMetaLeader waits until a cluster's JetStream meta leader is elected
// and knows every node as a current peer: before that, a stream with as
// many replicas as nodes can not be placed.
func (b *Broker) awaitMetaLeader() error {
	return b.awaitCluster("no JetStream leader saw every node", func() bool {
		for _, ns := range b.snapshotNodes() {
			if ns != nil && ns.JetStreamIsLeader() && len(ns.JetStreamClusterPeers()) == b.cfg.Nodes {
				return true
			}
		}
		return false
	})
}

// awaitInterest waits until every node knows the control plane listens to
// the request subjects, so that a client on any node gets an answer rather
// than "no responders".
func (b *Broker) awaitInterest(subjects []string) error {
	return b.awaitCluster("the control plane was not reachable from every node", func() bool {
		for _, ns := range b.snapshotNodes() {
			if ns == nil {
				continue
			}
			for _, s := range subjects {
				if !ns.GlobalAccount().SubscriptionInterest(s) {
					return false
				}
			}
		}
		return true
	})
}

// newNode makes node i, not yet started.
func (b *Broker) newNode(i int) (*server.Server, error) {
	ns, err := server.NewServer(b.nodeOptions(i))
	if err != nil {
		return nil, fmt.Errorf("broker: node %d: %w", i, err)
	}
	if !b.cfg.DirectPublish {
		if err := addIngestMapping(ns); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

func (b *Broker) nodeOptions(i int) *server.Options {
	o := &server.Options{
		ServerName:                 "memphis-" + strconv.Itoa(i),
		Host:                       b.cfg.Host,
		Port:                       b.ports[i],
		JetStream:                  true,
		StoreDir:                   filepath.Join(b.cfg.StoreDir, "node-"+strconv.Itoa(i)),
		MaxPayload:                 b.cfg.MaxPayload,
		NoLog:                      true,
		NoSigs:                     true,
		CustomClientAuthentication: authenticator{b},
		TLSConfig:                  b.cfg.TLS,
	}
	if b.cfg.TLS != nil {
		o.TLSTimeout = tlsTimeout.Seconds()
	}
	if i < len(b.cfg.Advertise) {
		o.ClientAdvertise = b.cfg.Advertise[i]
	}
	if b.cfg.Nodes > 1 {
		o.Cluster.Name = "memphis"
		o.Cluster.Host = b.cfg.Host
		o.Cluster.Port = b.ports[b.cfg.Nodes+i]
		for j := 0; j < b.cfg.Nodes; j++ {
			if j == i {
				continue
			}
			u := fmt.Sprintf("nats://%s:%d", b.cfg.Host, b.ports[b.cfg.Nodes+j])
			if r, err := url.Parse(u); err == nil {
				o.Routes = append(o.Routes, r)
			}
		}
	}
	return o
}

// stopNodes shuts every node down and waits for it; b.life is held.
func (b *Broker) stopNodes() {
	nodes := b.snapshotNodes()
	for _, ns := range nodes {
		if ns != nil {
			ns.Shutdown()
		}
	}
	for _, ns := range nodes {
		if ns != nil {
			ns.WaitForShutdown()
		}
	}
	b.nodesMu.Lock()
	b.nodes = nil
	b.nodesMu.Unlock()
}

// setNode replaces node i, or appends ns when i is -1.
func (b *Broker) setNode(i int, ns *server.Server) {
	b.nodesMu.Lock()
	defer b.nodesMu.Unlock()
	if i < 0 {
		b.nodes = append(b.nodes, ns)
		return
	}
	b.nodes[i] = ns
}

// runningNodes counts the nodes running now.
func (b *Broker) runningNodes() int {
	n := 0
	for _, ns := range b.snapshotNodes() {
		if ns != nil {
			n++
		}
	}
	return n
}

func (b *Broker) snapshotNodes() []*server.Server {
	b.nodesMu.RLock()
	defer b.nodesMu.RUnlock()
	return append([]*server.Server(nil), b.nodes...)
}

// Shutdown stops the broker and, unless a store directory was configured,
// removes its data. It may be called more than once.
func (b *Broker) Shutdown() {
	b.life.Lock()
	defer b.life.Unlock()
	b.stop()
	b.removeStore()
}

func (b *Broker) stop() {
	if !b.running {
		return
	}
	b.cp.close()
	b.ingest.close()
	b.cp, b.ingest = nil, nil
	b.stopNodes()
	b.running = false
}

func (b *Broker) removeStore() {
	if b.ownStore {
		_ = os.RemoveAll(b.cfg.StoreDir)
		b.ownStore = false
	}
}

// Restart stops every node and starts them again on the same ports and
// storage, as a broker process that was restarted. Connected clients see a
// disconnect and reconnect; stations, schemas and messages survive.
func (b *Broker) Restart() error {
	b.life.Lock()
	defer b.life.Unlock()
	b.stop()
	return b.start()
}

// StopNode shuts node i of a cluster down (the others keep serving), for
// failover tests. StartNode brings it back.
func (b *Broker) StopNode(i int) error {
	b.life.Lock()
	defer b.life.Unlock()
	nodes := b.snapshotNodes()
	if i < 0 || i >= len(nodes) || nodes[i] == nil {
		return fmt.Errorf("broker: no running node %d", i)
	}
	if len(nodes) == 1 {
		return errors.New("broker: StopNode needs a cluster; use Restart")
	}
	b.ingest.detach(i)
	nodes[i].Shutdown()
	nodes[i].WaitForShutdown()
	b.setNode(i, nil)
	return nil
}

// StartNode starts node i of a cluster again after StopNode.
func (b *Broker) StartNode(i int) error {
	b.life.Lock()
	defer b.life.Unlock()
	nodes := b.snapshotNodes()
	if i < 0 || i >= len(nodes) || nodes[i] != nil {
		return fmt.Errorf("broker: node %d is not stopped", i)
	}
	ns, err := b.newNode(i)
	if err != nil {
		return err
	}
	go ns.Start()
	if !ns.ReadyForConnections(b.readyWait) {
		ns.Shutdown()
		return fmt.Errorf("broker: node %d %w within %v", i, errNotReady, b.readyWait)
	}
	if err := b.ingest.attach(i, ns); err != nil {
		ns.Shutdown()
		return err
	}
	b.setNode(i, ns)
	return nil
}

// StreamLeader is the index of the node leading a stream's raft group, or
// -1 when unknown (a single node always leads: 0).
func (b *Broker) StreamLeader(stream string) int {
	nodes := b.snapshotNodes()
	if len(nodes) == 1 {
		return 0
	}
	for i, ns := range nodes {
		if ns == nil {
			continue
		}
		acc := ns.GlobalAccount()
		if ns.JetStreamIsStreamLeader(acc.Name, stream) {
			return i
		}
	}
	return -1
}

// SetHook replaces the control-request hook; nil removes it.
func (b *Broker) SetHook(h Hook) {
	b.hookMu.Lock()
	b.hook = h
	b.hookMu.Unlock()
}

func (b *Broker) currentHook() Hook {
	b.hookMu.RLock()
	defer b.hookMu.RUnlock()
	return b.hook
}

// Host is the address clients connect to.
func (b *Broker) Host() string { return b.cfg.Host }

// Port is the client port of the first node.
func (b *Broker) Port() int { return b.ports[0] }

// Ports are the client ports of every node.
func (b *Broker) Ports() []int { return append([]int(nil), b.ports[:b.cfg.Nodes]...) }

// URLs are the NATS URLs of every node.
func (b *Broker) URLs() []string {
	var out []string
	for _, p := range b.Ports() {
		out = append(out, fmt.Sprintf("nats://%s:%d", b.cfg.Host, p))
	}
	return out
}

// Token is the connection token, empty in user/password mode.
func (b *Broker) Token() string { return b.cfg.Token }

// StoreDir is where the broker keeps its state.
func (b *Broker) StoreDir() string { return b.cfg.StoreDir }

// ResendDeadLetters re-sends the stored poison messages of a station to the
// consumer groups they poisoned, as the real broker's UI does
// (docs/protocol.md#dls-resend). It returns how many messages were sent.
func (b *Broker) ResendDeadLetters(station string) (int, error) {
	b.life.Lock()
	cp := b.cp
	b.life.Unlock()
	if cp == nil {
		return 0, errors.New("broker: not running")
	}
	return cp.resendDeadLetters(station)
}

// DestroyStation removes a station as the Memphis UI does: its streams and
// registrations go, and every connected client gets a remove_station
// update, which an SDK destroy does not send.
func (b *Broker) DestroyStation(station string) error {
	b.life.Lock()
	cp := b.cp
	b.life.Unlock()
	if cp == nil {
		return errors.New("broker: not running")
	}
	return cp.destroyStationAsUI(station)
}

// DeadLetters lists the dead-letter records kept for a station.
func (b *Broker) DeadLetters(station string) []DeadLetter {
	b.life.Lock()
	cp := b.cp
	b.life.Unlock()
	if cp == nil {
		return nil
	}
	return cp.deadLetters(station)
}

// authenticator checks every client connection as the Memphis broker does
// (docs/protocol.md#auth-connect-checks) and places it in the global account.
type authenticator struct{ b *Broker }

func (a authenticator) Check(c server.ClientAuthentication) bool {
	o := c.GetOpts()
	b := a.b
	if o.Username == b.internal.user {
		return o.Password == b.internal.pass
	}
	parts := strings.Split(o.Name, "::")
	native := len(parts) == 2
	if len(parts) > 2 {
		return false // "missing username or connectionId"
	}
	var user string
	if b.cfg.Token != "" {
		if native {
			if o.Token != b.cfg.Token {
				return false
			}
		} else {
			// A plain NATS client sends "<user>::<token>".
			u, tok, ok := strings.Cut(o.Token, "::")
			if !ok || tok != b.cfg.Token {
				return false
			}
			user = u
		}
	} else {
		name, tenant, hasTenant := strings.Cut(o.Username, "$")
		if hasTenant && tenant != "1" {
			return false // only the global tenant exists
		}
		pass, ok := b.cfg.Users[name]
		if !ok || o.Password != pass {
			return false
		}
		user = name
	}
	if native {
		user = strings.ToLower(parts[1])
	}
	if user != "" {
		if _, ok := b.cfg.Users[user]; !ok {
			return false
		}
	}
	c.RegisterUser(&server.User{Username: o.Username})
	return true
}

// userExists reports whether a Memphis user of that exact name exists.
func (b *Broker) userExists(name string) bool {
	_, ok := b.cfg.Users[name]
	return ok
}

// tlsTimeout bounds a client's TLS handshake. nats-server's default of
// 2 s is short for a race-enabled test on a loaded machine.
const tlsTimeout = 5 * time.Second

// dialInternal opens the control plane's own connection to the nodes. It
// is in-process: it bypasses the client port, so that neither TLS nor a
// fault-injecting proxy in front of a node stands between the control
// plane and JetStream.
func (b *Broker) dialInternal() (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(strings.Join(b.URLs(), ","),
		nats.UserInfo(b.internal.user, b.internal.pass),
		nats.Name("MEMPHIS INTERNAL CONTROL PLANE"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond),
		nats.NoCallbacksAfterClientClose(),
		nats.SetCustomDialer(inProcessDialer{b}),
		nats.IgnoreDiscoveredServers(),
		// nats.go would print asynchronous errors to stderr.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			b.log.Warn("broker: control-plane connection", "err", err)
		}),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("broker: control-plane connection: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// inProcessDialer connects to the running node whose client port an
// address names, in-process.
type inProcessDialer struct{ b *Broker }

func (d inProcessDialer) Dial(_, address string) (net.Conn, error) {
	_, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	for i, ns := range d.b.snapshotNodes() {
		if ns != nil && strconv.Itoa(d.b.ports[i]) == port {
			return ns.InProcessConn()
		}
	}
	return nil, fmt.Errorf("broker: no running node listens on %s", address)
}

// liveConnectionIDs are the connection ids (the part before "::" of the
// connection name) of every client connected now, on any node.
func (b *Broker) liveConnectionIDs() map[string]bool {
	nodes := b.snapshotNodes()
	ids := map[string]bool{}
	for _, ns := range nodes {
		if ns == nil {
			continue
		}
		cz, err := ns.Connz(&server.ConnzOptions{Limit: 1 << 20})
		if err != nil {
			continue
		}
		for _, ci := range cz.Conns {
			if id, _, ok := strings.Cut(ci.Name, "::"); ok {
				ids[id] = true
			}
		}
	}
	return ids
}

// ctx bounds the control plane's JetStream calls as the real broker does.
func jsCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 40*time.Second)
}
