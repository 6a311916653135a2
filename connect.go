package memphis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// Conn is a connection to a Memphis broker. It is safe for concurrent use.
// Create it with Connect and release it with Close.
type Conn struct {
	// ConnId is the id this connection registers its producers and
	// consumers under, as in 1.x. The SDK keeps its own copy, so writing to
	// it changes nothing; ConnectionID returns the same id.
	ConnId string

	opts     Options
	nc       *nats.Conn
	connID   string
	username string
	log      *slog.Logger
	logs     *logLimiter // failures that may come in storms are logged through it
	acks     *acker
	out      *outbox // publishes made while the connection is down
	hooks    *hooks  // nil without hooks

	// mu guards the fields below. Lock order: Conn.mu, then a Producer's or
	// Consumer's own mutex; no user callback runs while it is held.
	mu        sync.Mutex
	closed    bool
	optsPool  sync.Pool              // of *ProduceOpts, see produceOptions
	producers clientCache[*Producer] // the cache of Conn.Produce
	consumers clientCache[*Consumer] // the cache of FetchMessages
	live      map[*Consumer]struct{} // every consumer not yet destroyed, for Close
	stations  map[string]*stationState
	// reconnected is closed and replaced on every reconnect, to wake pull loops.
	reconnected chan struct{}

	updatesSub *nats.Subscription
	// nats.go calls the connection's callbacks (and so DisconnectHandler,
	// ReconnectHandler, ClosedHandler) on a goroutine of its own, the last
	// of them, ClosedCB, after nc.Close returns. closedCB is closed when
	// ClosedCB has run, so Close can return after it; handlers counts the
	// connection handlers running there, so that a Close called from one
	// does not wait for itself.
	closedCB   chan struct{}
	closedOnce sync.Once
	handlers   inUser
	// sendNotification: the broker wants schema failures reported as
	// notifications too (docs/protocol.md#notifications).
	sendNotification atomic.Bool
}

// Connect connects to the broker at host as username. Exactly one of
// Password or ConnectionToken must be given. It is ConnectContext with
// context.Background.
func Connect(host, username string, options ...Option) (*Conn, error) {
	return ConnectContext(context.Background(), host, username, options...)
}

// ConnectContext connects to the broker at host as username; ctx bounds the
// whole connection attempt. host may carry an http(s):// prefix and a port,
// and may list several hosts of a cluster separated by commas.
func ConnectContext(ctx context.Context, host, username string, options ...Option) (_ *Conn, err error) {
	opts := defaultOptions()
	opts.Host, opts.Username = host, username
	if err := apply(&opts, options); err != nil {
		return nil, opErr("connect", "", err)
	}
	h, err := newHooks(opts.Hooks)
	if err != nil {
		return nil, opErr("connect", "", err)
	}
	var c *Conn
	if h != nil {
		defer func() {
			if err != nil {
				c = nil
			}
			h.connected(c, cause(err))
		}()
	}
	if err := opts.validate(); err != nil {
		return nil, opErr("connect", "", err)
	}
	c = &Conn{
		opts:        opts,
		username:    username,
		log:         opts.Logger,
		hooks:       h,
		live:        make(map[*Consumer]struct{}),
		stations:    make(map[string]*stationState),
		reconnected: make(chan struct{}),
		closedCB:    make(chan struct{}),
	}
	c.optsPool.New = func() any { return new(ProduceOpts) }
	if c.log == nil {
		// Failures nobody else hears about (async produces without an
		// error handler) must never vanish; routine news stays quiet.
		c.log = slog.New(minLevel{slog.Default().Handler(), slog.LevelWarn})
	}
	c.logs = newLogLimiter(c.log, logSummaryInterval)
	id, err := newUUID()
	if err != nil {
		return nil, opErr("connect", "", err)
	}
	c.connID, c.ConnId = id, id
	c.acks = newAcker(c)
	c.out = newOutbox(c)
	if err := c.dial(ctx); err != nil {
		c.logs.close()
		return nil, opErr("connect", "", err)
	}
	if err := c.acks.start(); err != nil {
		c.nc.Close()
		c.logs.close()
		return nil, opErr("connect", "", err)
	}
	sub, err := c.nc.Subscribe(wire.SubjClientUpdates, c.onClientUpdate)
	if err != nil {
		c.acks.stop()
		c.nc.Close()
		c.logs.close()
		return nil, opErr("connect", "", err)
	}
	c.updatesSub = sub
	c.out.start()
	c.log.Debug("memphis: connected", "server", c.nc.ConnectedUrlRedacted(), "connection_id", c.connID)
	return c, nil
}

// cause is what an *OpError wraps: hooks get the cause of a failure.
func cause(err error) error {
	var oe *OpError
	if errors.As(err, &oe) {
		return oe.Err
	}
	return err
}

func defaultOptions() Options {
	return Options{
		Port:              DefaultPort,
		AccountId:         DefaultAccountID,
		Reconnect:         DefaultReconnect,
		MaxReconnect:      DefaultMaxReconnect,
		ReconnectInterval: DefaultReconnectInterval,
		PingInterval:      DefaultPingInterval,
		MaxPingsOut:       DefaultMaxPingsOut,
		Timeout:           DefaultTimeout,
		RequestTimeout:    DefaultRequestTimeout,
		MaxPending:        DefaultMaxPending,
		CloseTimeout:      DefaultCloseTimeout,
	}
}

func (o *Options) validate() error {
	switch {
	case strings.TrimSpace(o.Host) == "":
		return invalidf("a host is required")
	case strings.Contains(o.Host, "@"):
		// nats.go would take credentials from the URL, and errors would
		// carry them; they belong in Password or ConnectionToken.
		return invalidf("host %q carries credentials: give them with Password or ConnectionToken", redactHosts(o.Host))
	case o.Username == "":
		return invalidf("a username is required")
	case (o.Password == "") == (o.ConnectionToken == ""):
		return invalidf("give exactly one of Password and ConnectionToken")
	case o.Port <= 0 || o.Port > 65535:
		return invalidf("port %d is out of range", o.Port)
	case o.AccountId < 0:
		return invalidf("account id %d is negative", o.AccountId)
	case o.ReconnectInterval < 0:
		return invalidf("reconnect interval %v is negative", o.ReconnectInterval)
	case o.PingInterval <= 0:
		return invalidf("ping interval %v must be positive", o.PingInterval)
	case o.MaxPingsOut < 1:
		return invalidf("max pings out %d must be at least 1", o.MaxPingsOut)
	case o.Timeout <= 0:
		return invalidf("timeout %v must be positive", o.Timeout)
	case o.RequestTimeout <= 0:
		return invalidf("request timeout %v must be positive", o.RequestTimeout)
	case o.MaxPending <= 0:
		return invalidf("max pending %d must be positive", o.MaxPending)
	case o.CloseTimeout < 0:
		return invalidf("close timeout %v is negative", o.CloseTimeout)
	}
	t := o.TLSOpts
	if o.TLSConfig == nil && (t.TlsCert != "" || t.TlsKey != "" || t.CaFile != "") &&
		(t.TlsCert == "" || t.TlsKey == "" || t.CaFile == "") {
		return invalidf("Tls needs the certificate, the key and the CA file")
	}
	return nil
}

// serverURLs turns the host option into nats URLs.
func (o *Options) serverURLs() []string {
	var urls []string
	for _, h := range strings.Split(o.Host, ",") {
		h = strings.TrimSpace(h)
		for _, p := range []string{"https://", "http://", "nats://", "tls://"} {
			h = strings.TrimPrefix(h, p)
		}
		h = strings.TrimSuffix(h, "/")
		if h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(h, strconv.Itoa(o.Port))
		}
		urls = append(urls, "nats://"+h)
	}
	return urls
}

func (o *Options) tlsConfig() (*tls.Config, error) {
	if o.TLSConfig != nil {
		return o.TLSConfig, nil
	}
	t := o.TLSOpts
	if t.TlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.TlsCert, t.TlsKey)
	if err != nil {
		return nil, invalidf("loading TLS key pair: %w", err)
	}
	ca, err := os.ReadFile(t.CaFile)
	if err != nil {
		return nil, invalidf("reading CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, invalidf("no certificate found in CA file %s", t.CaFile)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// dial opens the NATS connection the way Memphis SDKs do: the client name
// "<connection id>::<user>", and in password mode the NATS user
// "<user>$<account>", falling back to the bare user name for brokers that
// predate accounts.
func (c *Conn) dial(ctx context.Context) error {
	o := &c.opts
	urls := o.serverURLs()
	if len(urls) == 0 {
		return invalidf("no host in %q", o.Host)
	}
	tlsCfg, err := o.tlsConfig()
	if err != nil {
		return err
	}
	nopts := nats.GetDefaultOptions()
	nopts.Servers = urls
	nopts.Name = c.connID + "::" + c.username
	nopts.AllowReconnect = o.Reconnect
	nopts.MaxReconnect = o.MaxReconnect
	nopts.ReconnectWait = o.ReconnectInterval
	nopts.PingInterval = o.PingInterval
	nopts.MaxPingsOut = o.MaxPingsOut
	nopts.Timeout = o.Timeout
	nopts.NoRandomize = true
	if tlsCfg != nil {
		nopts.Secure = true
		nopts.TLSConfig = tlsCfg
	}
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d < nopts.Timeout {
			nopts.Timeout = max(d, time.Millisecond)
		}
	}
	nopts.DisconnectedErrCB = func(_ *nats.Conn, err error) {
		level := slog.LevelWarn
		if err == nil {
			level = slog.LevelInfo // closed on purpose
		}
		// From now on publishes wait in the outbox, and calls that need the
		// connection wait for it (bounded by their contexts) rather than for
		// nats.go's lock, which its reconnect attempts hold.
		c.out.setDown(true)
		c.logs.failure(level, nil, "memphis: disconnected", "disconnects", err)
		// Acknowledgements of produces in flight are lost with the connection.
		lost := ErrConnectionLost
		if err != nil {
			lost = fmt.Errorf("%w: %w", ErrConnectionLost, err)
		}
		c.acks.failAll(lost)
		runUserCode(&c.handlers, func() {
			if h := c.hooks; h != nil {
				h.disconnected(c, err)
			}
			if fn := c.opts.DisconnectHandler; fn != nil {
				fn(c, opErr("connection", "", err))
			}
		})
	}
	// nats.go prints these to stderr unless told otherwise: write errors,
	// slow subscriptions, permission violations.
	nopts.AsyncErrorCB = func(_ *nats.Conn, sub *nats.Subscription, err error) {
		var attrs []any
		if sub != nil {
			attrs = append(attrs, "subject", sub.Subject)
		}
		c.logs.failure(slog.LevelWarn, nil, "memphis: connection error", "connection errors", err, attrs...)
	}
	nopts.ReconnectedCB = func(nc *nats.Conn) {
		c.log.Info("memphis: reconnected", "server", nc.ConnectedUrlRedacted())
		c.out.setDown(false) // before the signal: see awaitUp
		c.signalReconnect()
		runUserCode(&c.handlers, func() {
			if h := c.hooks; h != nil {
				h.reconnected(c)
			}
			if fn := c.opts.ReconnectHandler; fn != nil {
				fn(c)
			}
		})
	}
	nopts.ClosedCB = func(*nats.Conn) {
		defer c.closedOnce.Do(func() { close(c.closedCB) })
		// Closed for good (Close, or reconnecting gave up): whoever waits
		// for the connection goes on, to fail with ErrConnClosed.
		c.out.setGone()
		c.signalReconnect()
		if !c.isClosed() {
			gaveUp := fmt.Errorf("%w: reconnecting gave up after %d attempts (MaxReconnect)", ErrConnClosed, c.opts.MaxReconnect)
			c.log.Error("memphis: connection closed for good", "err", gaveUp)
			c.acks.failAll(gaveUp) // produces waiting in the outbox will never be sent
		}
		runUserCode(&c.handlers, func() {
			if h := c.hooks; h != nil {
				h.closed(c)
			}
			if fn := c.opts.ClosedHandler; fn != nil {
				fn(c)
			}
		})
	}
	if o.ConnectionToken != "" {
		nopts.Token = o.ConnectionToken
		nc, err := connectCtx(ctx, nopts)
		if err != nil {
			return mapConnectErr(err, tlsCfg != nil)
		}
		c.nc = nc
		return nil
	}
	nopts.User = c.username + "$" + strconv.Itoa(o.AccountId)
	nopts.Password = o.Password
	nc, err := connectCtx(ctx, nopts)
	if err != nil && errors.Is(err, nats.ErrAuthorization) {
		nopts.User = c.username
		nc, err = connectCtx(ctx, nopts)
	}
	if err != nil {
		return mapConnectErr(err, tlsCfg != nil)
	}
	c.nc = nc
	return nil
}

// connectCtx runs nats' blocking Connect under ctx. nats.go takes no context,
// so a cancelled ctx abandons the attempt and closes whatever it returns.
// A context that is done never yields a connection, even when the attempt
// finished at the same moment: select picks at random between ready cases.
func connectCtx(ctx context.Context, o nats.Options) (*nats.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := o.Connect()
		ch <- result{nc, err}
	}()
	select {
	case r := <-ch:
		if err := ctx.Err(); err != nil {
			if r.nc != nil {
				r.nc.Close()
			}
			return nil, fmt.Errorf("%w: %w", ErrTimeout, err)
		}
		return r.nc, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	}
}

// mapConnectErr gives a failed connection attempt its sentinel. tlsOn:
// the attempt used TLS.
func mapConnectErr(err error, tlsOn bool) error {
	switch {
	case isTLSErr(err):
		return fmt.Errorf("%w: %w", ErrTLS, err)
	case tlsOn && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF)):
		// With TLS 1.3 the client's handshake is over before the broker
		// checks the client certificate; a broker that refuses it closes
		// the connection, and the client's first write or read fails.
		return fmt.Errorf("%w: the broker closed the connection after the TLS handshake, as a broker that requires a client certificate does when none, or one it does not trust, is given: %w", ErrTLS, err)
	case errors.Is(err, nats.ErrAuthorization), strings.Contains(strings.ToLower(err.Error()), "authorization violation"):
		return fmt.Errorf("%w: %w", ErrAuthorization, err)
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	case errors.Is(err, nats.ErrNoServers):
		return fmt.Errorf("%w: %w", ErrNoServers, err)
	}
	return err
}

// isTLSErr reports whether a connection attempt failed in TLS: the
// broker's certificate did not verify, the broker refused the client's
// (a TLS alert), or only one side wanted TLS.
func isTLSErr(err error) bool {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		record    tls.RecordHeaderError
		alert     tls.AlertError
		op        *net.OpError
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &verify), errors.As(err, &record), errors.As(err, &alert):
		return true
	case errors.As(err, &op) && op.Op == "remote error": // an alert from the broker
		return true
	case errors.Is(err, nats.ErrSecureConnWanted), errors.Is(err, nats.ErrSecureConnRequired):
		return true
	}
	return false
}

// IsConnected reports whether the connection to the broker is up now.
func (c *Conn) IsConnected() bool { return c.nc != nil && c.nc.IsConnected() }

// ConnectionID is the id this connection registers its producers and
// consumers under on the broker.
func (c *Conn) ConnectionID() string { return c.connID }

// Close stops every consumer of the connection, waits up to CloseTimeout for
// outstanding asynchronous produces and their callbacks (all but the one
// running, when called from a callback), and closes the connection. From
// the moment it starts, new produces fail with ErrConnClosed. Producers
// and consumers stay registered on the broker (use Destroy to remove
// them). Produces still unacknowledged when the wait ends fail with
// ErrConnClosed, and Close logs a warning about them. Close is idempotent.
// It is CloseContext with a context that ends after CloseTimeout
// (DefaultCloseTimeout).
func (c *Conn) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.CloseTimeout)
	defer cancel()
	if err := c.CloseContext(ctx); err != nil {
		c.log.Warn("memphis: closing with unacknowledged async produces", "err", err)
	}
}

// CloseContext is Close with ctx, instead of CloseTimeout, bounding the
// wait for outstanding asynchronous produces and for the connection's
// handlers (DisconnectHandler, ClosedHandler), which have run when it
// returns unless ctx ended first. It returns an *OpError wrapping
// ErrTimeout and ctx's error if ctx ended before the produces were
// acknowledged (those then fail with ErrConnClosed); it logs nothing.
// Stopping the consumers waits for their running handlers whatever ctx
// says. Closing a closed connection returns nil.
func (c *Conn) CloseContext(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.acks.closing.Store(true)
	consumers := make([]*Consumer, 0, len(c.live))
	for cons := range c.live {
		consumers = append(consumers, cons)
	}
	c.mu.Unlock()
	for _, cons := range consumers {
		cons.StopConsume()
		cons.release()
	}
	err := c.acks.flush(ctx, nil)
	c.acks.stop()
	c.out.stop()
	c.logs.close()
	c.nc.Close()
	if !c.handlers.nestedIn() {
		// So that no callback of this connection runs after Close.
		select {
		case <-c.closedCB:
		case <-ctx.Done():
		}
	}
	return opErr("close", "", err)
}

func (c *Conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// signalReconnect wakes whoever waits for the connection to come back.
func (c *Conn) signalReconnect() {
	c.mu.Lock()
	close(c.reconnected)
	c.reconnected = make(chan struct{})
	c.mu.Unlock()
}

// reconnectSignal returns a channel closed at the next reconnect.
func (c *Conn) reconnectSignal() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reconnected
}
