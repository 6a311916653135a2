package memphis

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	acks     *acker
	hooks    *hooks // nil without hooks

	// mu guards the fields below. Lock order: Conn.mu, then a Producer's or
	// Consumer's own mutex; no user callback runs while it is held.
	mu        sync.Mutex
	closed    bool
	producers map[clientKey]*Producer // cache of Conn.Produce
	consumers map[clientKey]*Consumer // cache of FetchMessages
	live      map[*Consumer]struct{}  // every consumer not yet destroyed, for Close
	stations  map[string]*stationState
	// reconnected is closed and replaced on every reconnect, to wake pull loops.
	reconnected chan struct{}

	updatesSub *nats.Subscription
	// sendNotification: the broker wants schema failures reported as
	// notifications too (PROTOCOL §10).
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
	for _, o := range options {
		if o == nil {
			continue
		}
		if err := o(&opts); err != nil {
			return nil, opErr("connect", "", fmt.Errorf("%w: %w", ErrInvalidOption, err))
		}
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
		producers:   make(map[clientKey]*Producer),
		consumers:   make(map[clientKey]*Consumer),
		live:        make(map[*Consumer]struct{}),
		stations:    make(map[string]*stationState),
		reconnected: make(chan struct{}),
	}
	if c.log == nil {
		// Failures nobody else hears about (async produces without an
		// error handler) must never vanish; routine news stays quiet.
		c.log = slog.New(minLevel{slog.Default().Handler(), slog.LevelWarn})
	}
	id, err := newUUID()
	if err != nil {
		return nil, opErr("connect", "", err)
	}
	c.connID, c.ConnId = id, id
	c.acks = newAcker(c)
	if err := c.dial(ctx); err != nil {
		return nil, opErr("connect", "", err)
	}
	if err := c.acks.start(); err != nil {
		c.nc.Close()
		return nil, opErr("connect", "", err)
	}
	sub, err := c.nc.Subscribe(wire.SubjClientUpdates, c.onClientUpdate)
	if err != nil {
		c.acks.stop()
		c.nc.Close()
		return nil, opErr("connect", "", err)
	}
	c.updatesSub = sub
	c.log.Debug("memphis: connected", "server", c.nc.ConnectedUrl(), "connection_id", c.connID)
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
		Timeout:           DefaultTimeout,
		RequestTimeout:    DefaultRequestTimeout,
		MaxPending:        DefaultMaxPending,
		CloseTimeout:      DefaultCloseTimeout,
	}
}

func (o *Options) validate() error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
	}
	switch {
	case strings.TrimSpace(o.Host) == "":
		return invalid("a host is required")
	case o.Username == "":
		return invalid("a username is required")
	case (o.Password == "") == (o.ConnectionToken == ""):
		return invalid("give exactly one of Password and ConnectionToken")
	case o.Port <= 0 || o.Port > 65535:
		return invalid("port %d is out of range", o.Port)
	case o.AccountId < 0:
		return invalid("account id %d is negative", o.AccountId)
	case o.ReconnectInterval < 0:
		return invalid("reconnect interval %v is negative", o.ReconnectInterval)
	case o.Timeout <= 0:
		return invalid("timeout %v must be positive", o.Timeout)
	case o.RequestTimeout <= 0:
		return invalid("request timeout %v must be positive", o.RequestTimeout)
	case o.MaxPending <= 0:
		return invalid("max pending %d must be positive", o.MaxPending)
	case o.CloseTimeout < 0:
		return invalid("close timeout %v is negative", o.CloseTimeout)
	}
	t := o.TLSOpts
	if o.TLSConfig == nil && (t.TlsCert != "" || t.TlsKey != "" || t.CaFile != "") &&
		(t.TlsCert == "" || t.TlsKey == "" || t.CaFile == "") {
		return invalid("Tls needs the certificate, the key and the CA file")
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
		return nil, fmt.Errorf("%w: loading TLS key pair: %w", ErrInvalidOption, err)
	}
	ca, err := os.ReadFile(t.CaFile)
	if err != nil {
		return nil, fmt.Errorf("%w: reading CA file: %w", ErrInvalidOption, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%w: no certificate found in CA file %s", ErrInvalidOption, t.CaFile)
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
		return fmt.Errorf("%w: no host in %q", ErrInvalidOption, o.Host)
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
		c.log.Log(context.Background(), level, "memphis: disconnected", "err", err)
		// Acknowledgements of produces in flight are lost with the connection.
		lost := ErrConnectionLost
		if err != nil {
			lost = fmt.Errorf("%w: %w", ErrConnectionLost, err)
		}
		c.acks.failAll(lost)
		if h := c.hooks; h != nil {
			h.disconnected(c, err)
		}
		if fn := c.opts.DisconnectHandler; fn != nil {
			fn(c, err)
		}
	}
	nopts.ReconnectedCB = func(nc *nats.Conn) {
		c.log.Info("memphis: reconnected", "server", nc.ConnectedUrl())
		c.mu.Lock()
		close(c.reconnected)
		c.reconnected = make(chan struct{})
		c.mu.Unlock()
		if h := c.hooks; h != nil {
			h.reconnected(c)
		}
		if fn := c.opts.ReconnectHandler; fn != nil {
			fn(c)
		}
	}
	nopts.ClosedCB = func(*nats.Conn) {
		if h := c.hooks; h != nil {
			h.closed(c)
		}
		if fn := c.opts.ClosedHandler; fn != nil {
			fn(c)
		}
	}
	if o.ConnectionToken != "" {
		nopts.Token = o.ConnectionToken
		nc, err := connectCtx(ctx, nopts)
		if err != nil {
			return mapConnectErr(err)
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
		return mapConnectErr(err)
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

func mapConnectErr(err error) error {
	switch {
	case errors.Is(err, nats.ErrAuthorization), strings.Contains(strings.ToLower(err.Error()), "authorization violation"):
		return fmt.Errorf("%w: %w", ErrAuthorization, err)
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	case errors.Is(err, nats.ErrNoServers):
		return fmt.Errorf("%w: %w", ErrNoServers, err)
	}
	return err
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
// them). Close is idempotent.
func (c *Conn) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
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
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.CloseTimeout)
	if err := c.acks.flush(ctx, nil); err != nil {
		c.log.Warn("memphis: closing with unacknowledged async produces", "err", err)
	}
	cancel()
	c.acks.stop()
	c.nc.Close()
}

func (c *Conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// reconnectSignal returns a channel closed at the next reconnect.
func (c *Conn) reconnectSignal() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reconnected
}

// requestCtx applies the default request timeout when ctx has no deadline.
func (c *Conn) requestCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.opts.RequestTimeout)
}

// request sends a control-plane request and returns the reply body. A
// request that timed out is sent again as many times as the TimeoutRetry
// count ctx carries (see withTimeoutRetries), while ctx lasts.
func (c *Conn) request(ctx context.Context, subject string, body any) ([]byte, error) {
	if c.isClosed() {
		return nil, ErrConnClosed
	}
	data, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	retries, _ := ctx.Value(timeoutRetriesKey{}).(int)
	for attempt := 0; ; attempt++ {
		rctx, cancel := c.requestCtx(ctx)
		msg, err := c.nc.RequestWithContext(rctx, subject, data)
		cancel()
		if err == nil {
			return msg.Data, nil
		}
		timedOut := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
		if !timedOut || attempt >= retries || ctx.Err() != nil {
			return nil, mapNATSErr(err)
		}
		c.log.Debug("memphis: request timed out; sending it again", "subject", subject, "attempt", attempt+2)
	}
}

// timeoutRetriesKey carries a 1.x TimeoutRetry count in a context from the
// call that took it down to request, through calls that take a context and
// nothing else.
type timeoutRetriesKey struct{}

func withTimeoutRetries(ctx context.Context, retries int) context.Context {
	if retries <= 0 {
		return ctx
	}
	return context.WithValue(ctx, timeoutRetriesKey{}, retries)
}

// requestOptionsContext applies 1.x RequestOpts to ctx.
func requestOptionsContext(ctx context.Context, options []RequestOpt) (context.Context, error) {
	var o RequestOpts
	for _, opt := range options {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return ctx, fmt.Errorf("%w: %w", ErrInvalidOption, err)
		}
	}
	if o.TimeoutRetries < 0 {
		return ctx, fmt.Errorf("%w: timeout retries %d is negative", ErrInvalidOption, o.TimeoutRetries)
	}
	return withTimeoutRetries(ctx, o.TimeoutRetries), nil
}

// requestText sends a request whose reply is empty on success and plain
// error text otherwise. Texts containing any of ignore count as success.
func (c *Conn) requestText(ctx context.Context, subject string, body any, ignore ...string) error {
	reply, err := c.request(ctx, subject, body)
	if err != nil {
		return err
	}
	if len(reply) == 0 {
		return nil
	}
	text := string(reply)
	for _, s := range ignore {
		if strings.Contains(text, s) {
			return nil
		}
	}
	return newBrokerError(text)
}

func mapNATSErr(err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	case errors.Is(err, nats.ErrConnectionClosed):
		return fmt.Errorf("%w: %w", ErrConnClosed, err)
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("%w: the broker did not answer: %w", ErrTimeout, err)
	}
	return err
}

// onClientUpdate applies the broker's client updates (PROTOCOL §11).
func (c *Conn) onClientUpdate(m *nats.Msg) {
	var u wire.ClientUpdate
	if err := json.Unmarshal(m.Data, &u); err != nil {
		c.log.Warn("memphis: bad client update", "err", err)
		return
	}
	switch u.Type {
	case wire.UpdateSchemaverseToDLS:
		if b, ok := u.Update.(bool); ok {
			c.mu.Lock()
			st := c.stations[u.StationName]
			c.mu.Unlock()
			if st != nil {
				st.schemaverseToDLS.Store(b)
			}
		}
	case wire.UpdateSendNotification:
		if b, ok := u.Update.(bool); ok {
			c.sendNotification.Store(b)
		}
	case wire.UpdateRemoveStation:
		c.forgetStation(u.StationName)
	}
}

// forgetStation drops cached producers and consumers of a station the broker
// removed, so that the next Conn.Produce or FetchMessages creates new ones.
func (c *Conn) forgetStation(intern string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.producers {
		if k.station == intern {
			delete(c.producers, k)
		}
	}
	for k := range c.consumers {
		if k.station == intern {
			delete(c.consumers, k)
		}
	}
}

// clientKey names a cached producer or consumer: its station's internal
// name and its own name, lower-cased. (Joined into one string they could
// collide: station "a" with "b_c" and station "a_b" with "c".)
type clientKey struct{ station, name string }

func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

func randomSuffix() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", b), nil
}

// minLevel passes only records of at least min to its handler.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(attrs), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
