package broker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// Idempotent produce for every SDK.
//
// The real broker's JetStream de-duplicates on the msg-id header; stock
// JetStream only on Nats-Msg-Id, which the official SDKs do not send. So
// every node maps a station's publish subject "<stream>.final" to
// "$memphis_ingest.<stream>", where the ingest de-duplicates on msg-id
// itself and republishes what is new to "<stream>.stored"; the stream's
// subject transform stores it back under "<stream>.final", so consumers and
// filters see the subject the real broker stores. The message is stored as
// the client sent it: consumers see the headers Memphis 1.4.4 would deliver.
//
// A message without msg-id keeps the client's reply subject, so its PubAck
// goes straight to the client. One with msg-id is stored with a reply
// subject of the ingest's own, so that the ingest learns its sequence
// before passing the PubAck on; a later copy inside the station's
// idempotency window is answered as JetStream answers a duplicate
// ({"stream":…,"seq":<first>,"duplicate": true}) and not stored. A copy
// that arrives while the first is still being stored waits for its verdict.
//
// The ingest subscribes only to streams of existing stations: a publish to
// a station that does not exist finds no subscriber, and the client gets
// NATS's "no responders" at once, as it does from the real broker.
const (
	// IngestPrefix starts the subject a station publish is mapped to; a
	// core NATS subscriber sees "<stream>.final" publishes there.
	IngestPrefix   = "$memphis_ingest."
	ingestQueue    = "memphis_ingest"
	storedSuffix   = ".stored"
	mappingDest    = IngestPrefix + "{{wildcard(1)}}"
	ingestConnName = "MEMPHIS INTERNAL INGEST"
	// ackPrefix starts the reply subjects of messages stored with a msg-id:
	// "$memphis_ingest_acks.<connection>.<token>".
	ackPrefix = "$memphis_ingest_acks."
	ackSID    = "acks"
	// inFlightLimit is how long a stored copy's PubAck is awaited before a
	// later copy is stored in its place (the first was lost with a node).
	inFlightLimit = 30 * time.Second
)

// addIngestMapping routes a node's station publishes through the ingest.
// It must be in place before clients connect: a connection notices an
// account's mappings only between reads.
func addIngestMapping(ns *server.Server) error {
	if err := ns.GlobalAccount().AddMapping(wire.ProduceSubject("*"), mappingDest); err != nil {
		return fmt.Errorf("broker: ingest mapping: %w", err)
	}
	return nil
}

// ingestTransform is the stream-side half: what the ingest republishes is
// stored under the subject the client published to.
func ingestTransform(stream string) (source, dest string) {
	return stream + storedSuffix, wire.ProduceSubject(stream)
}

// ingest holds one in-process connection per node, each subscribed (in one
// queue group, so a message is forwarded once, by the client's own node) to
// the ingest subject of every station stream.
//
// A disabled ingest (Config.DirectPublish) keeps no connections, so it
// forwards nothing.
type ingest struct {
	log        *slog.Logger
	user, pass string
	enabled    bool

	ids *dedupe // shared by every node's connection

	mu      sync.Mutex
	streams map[string]bool
	nodes   []*ingestConn // by node index; nil while a node is down
	dials   int           // connections made, naming each one's ack subjects
}

func newIngest(log *slog.Logger, user, pass string, nodes int, enabled bool) *ingest {
	return &ingest{log: log, user: user, pass: pass, enabled: enabled, ids: newDedupe(),
		streams: map[string]bool{}, nodes: make([]*ingestConn, nodes)}
}

// attach connects to node i and subscribes every known stream there.
func (g *ingest) attach(i int, ns *server.Server) error {
	if !g.enabled {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	streams := make([]string, 0, len(g.streams))
	for s := range g.streams {
		streams = append(streams, s)
	}
	g.dials++
	c, err := dialIngest(ns, g.log, g.user, g.pass, streams, g.ids, ackPrefix+strconv.Itoa(g.dials)+".")
	if err != nil {
		return fmt.Errorf("broker: ingest connection to node %d: %w", i, err)
	}
	if old := g.nodes[i]; old != nil {
		old.close()
	}
	g.nodes[i] = c
	return nil
}

// detach closes node i's connection, before the node stops.
func (g *ingest) detach(i int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c := g.nodes[i]; c != nil {
		c.close()
		g.nodes[i] = nil
	}
}

// close detaches every node.
func (g *ingest) close() {
	for i := range g.nodes {
		g.detach(i)
	}
}

// add starts forwarding the streams' publishes on every node, dropping a
// msg-id seen within window. When it returns, a client on any node that
// publishes to them is served.
func (g *ingest) add(window time.Duration, streams ...string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range streams {
		g.streams[s] = true
		g.ids.track(s, window)
	}
	for i, c := range g.nodes {
		if c == nil {
			continue
		}
		if err := c.subscribe(streams...); err != nil {
			return fmt.Errorf("broker: ingest on node %d: %w", i, err)
		}
	}
	return nil
}

// remove stops forwarding the streams' publishes.
func (g *ingest) remove(streams ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range streams {
		delete(g.streams, s)
		g.ids.forget(s)
	}
	for _, c := range g.nodes {
		if c != nil {
			c.unsubscribe(streams...)
		}
	}
}

// ingestConn is a minimal NATS client on a node's in-process pipe. It
// speaks the protocol itself, not through nats.go, so that a forwarded
// message's header block is copied as bytes instead of being parsed into a
// map and encoded again, and so that forwards are written in batches: the
// ingest then adds a fraction of what a publish costs the node anyway.
type ingestConn struct {
	ns         *server.Server
	log        *slog.Logger
	user, pass string
	ids        *dedupe
	acks       string // this connection's ack subject prefix

	// pending are the msg-id copies being stored, by the token ending their
	// reply subject; only the read loop uses them.
	pending   map[uint64]pendingStore
	nextToken uint64

	wmu     sync.Mutex // guards conn, w, scratch, sids, nextSID, pongs, closed
	conn    net.Conn
	w       *bufio.Writer
	scratch []byte            // a protocol line being written
	sids    map[string]uint64 // ingest subscription per stream
	nextSID uint64
	pongs   []chan struct{}
	closed  bool

	done chan struct{} // closed when the read loop has ended
}

const (
	ingestBufSize      = 64 << 10
	ingestFlushTimeout = 10 * time.Second
	ingestRedialWait   = 50 * time.Millisecond
)

// errIngestClosed ends a wait for the broker on a connection that closed.
var errIngestClosed = errors.New("ingest connection closed")

func dialIngest(ns *server.Server, log *slog.Logger, user, pass string, streams []string, ids *dedupe, acks string) (*ingestConn, error) {
	c := &ingestConn{ns: ns, log: log, user: user, pass: pass, ids: ids, acks: acks, pending: map[uint64]pendingStore{},
		sids: map[string]uint64{}, done: make(chan struct{})}
	for _, s := range streams {
		c.nextSID++
		c.sids[s] = c.nextSID
	}
	r, err := c.dial() // sends the SUBs
	if err != nil {
		return nil, err
	}
	go c.run(r)
	if err := c.flush(); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// dial opens the pipe and completes the handshake; subscriptions already
// recorded are sent again (after the node dropped the connection).
func (c *ingestConn) dial() (*bufio.Reader, error) {
	conn, err := c.ns.InProcessConn()
	if err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(conn, ingestBufSize)
	w := bufio.NewWriterSize(conn, ingestBufSize)
	connect, _ := json.Marshal(map[string]any{ // a map of plain values always marshals
		"verbose": false, "pedantic": false, "headers": true, "no_responders": true,
		"protocol": 1, "lang": "go", "name": ingestConnName, "user": c.user, "pass": c.pass,
	})
	_ = conn.SetDeadline(time.Now().Add(ingestFlushTimeout))
	err = c.handshake(r, w, connect)
	_ = conn.SetDeadline(time.Time{})
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		conn.Close()
		return nil, errIngestClosed
	}
	w.WriteString("SUB " + c.acks + "* " + ackSID + "\r\n")
	for stream, sid := range c.sids {
		writeSub(w, stream, sid)
	}
	if err := w.Flush(); err != nil {
		conn.Close()
		return nil, err
	}
	c.conn, c.w = conn, w
	return r, nil
}

func (c *ingestConn) handshake(r *bufio.Reader, w *bufio.Writer, connect []byte) error {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("INFO ")) {
		return fmt.Errorf("unexpected greeting %q", line)
	}
	w.WriteString("CONNECT ")
	w.Write(connect)
	w.WriteString("\r\nPING\r\n")
	if err := w.Flush(); err != nil {
		return err
	}
	for {
		line, err := r.ReadSlice('\n')
		switch {
		case err != nil:
			return err
		case bytes.HasPrefix(line, []byte("PONG")):
			return nil
		case bytes.HasPrefix(line, []byte("-ERR")):
			return fmt.Errorf("refused: %s", bytes.TrimSpace(line))
		}
	}
}

// subscribe adds the streams' ingest subscriptions and waits until the
// node has them.
func (c *ingestConn) subscribe(streams ...string) error {
	c.wmu.Lock()
	for _, s := range streams {
		if _, ok := c.sids[s]; ok {
			continue
		}
		c.nextSID++
		c.sids[s] = c.nextSID
		writeSub(c.w, s, c.nextSID)
	}
	c.wmu.Unlock()
	return c.flush()
}

func (c *ingestConn) unsubscribe(streams ...string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, s := range streams {
		if sid, ok := c.sids[s]; ok {
			delete(c.sids, s)
			c.w.WriteString("UNSUB ")
			c.w.WriteString(strconv.FormatUint(sid, 10))
			c.w.WriteString("\r\n")
		}
	}
	if err := c.w.Flush(); err != nil {
		c.log.Debug("broker: ingest unsubscribe", "err", err) // the node is going away
	}
}

// writeSub queues a SUB; the writer's lock is held.
func writeSub(w *bufio.Writer, stream string, sid uint64) {
	w.WriteString("SUB " + IngestPrefix + stream + " " + ingestQueue + " " + strconv.FormatUint(sid, 10) + "\r\n")
}

// flush sends a PING and waits for its PONG: the node has then processed
// everything written before it.
func (c *ingestConn) flush() error {
	pong := make(chan struct{})
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return errIngestClosed
	}
	c.w.WriteString("PING\r\n")
	c.pongs = append(c.pongs, pong)
	err := c.w.Flush()
	c.wmu.Unlock()
	if err != nil {
		return err
	}
	t := time.NewTimer(ingestFlushTimeout)
	defer t.Stop()
	select {
	case <-pong:
		return nil
	case <-c.done:
		return errIngestClosed
	case <-t.C:
		return errors.New("ingest: no PONG from the node")
	}
}

// close ends the connection and waits for its read loop.
func (c *ingestConn) close() {
	c.wmu.Lock()
	c.closed = true
	conn := c.conn
	c.wmu.Unlock()
	conn.Close()
	<-c.done
}

// run reads from the node until close, dialing again when the node drops
// the connection (it closes a client that falls too far behind).
func (c *ingestConn) run(r *bufio.Reader) {
	defer close(c.done)
	for {
		err := c.serve(r)
		c.wmu.Lock()
		closed := c.closed
		c.pongs = nil // their PINGs died with the connection
		c.wmu.Unlock()
		// Their PubAcks died too; the copies held behind them are stored
		// when a later copy finds the first one stale.
		clear(c.pending)
		if closed {
			return
		}
		c.log.Warn("broker: ingest connection lost; dialing again", "err", err)
		for {
			time.Sleep(ingestRedialWait)
			if r, err = c.dial(); err == nil {
				break
			}
			c.wmu.Lock()
			closed := c.closed
			c.wmu.Unlock()
			if closed {
				return
			}
		}
	}
}

// serve handles what the node sends until the connection fails.
func (c *ingestConn) serve(r *bufio.Reader) error {
	var (
		m          msgLine
		buf, names []byte
	)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		switch {
		case bytes.HasPrefix(line, []byte("HMSG ")), bytes.HasPrefix(line, []byte("MSG ")):
			if !m.parse(line) {
				return fmt.Errorf("malformed %q", line)
			}
			// The line lives in r's buffer, which reading the payload reuses.
			names = append(append(names[:0], m.subject...), m.reply...)
			m.subject, m.reply = names[:len(m.subject)], names[len(m.subject):]
			if cap(buf) < m.total+2 {
				buf = make([]byte, m.total+2)
			}
			buf = buf[:m.total+2]
			if _, err := io.ReadFull(r, buf); err != nil {
				return err
			}
			c.wmu.Lock()
			if bytes.HasPrefix(m.subject, []byte(ackPrefix)) {
				c.onStored(&m, buf[:m.total])
			} else {
				c.onPublish(&m, buf[:m.total], time.Now())
			}
			c.wmu.Unlock()
		case bytes.HasPrefix(line, []byte("PING")):
			c.wmu.Lock()
			_, err = c.w.WriteString("PONG\r\n")
			c.wmu.Unlock()
			if err != nil {
				return err
			}
		case bytes.HasPrefix(line, []byte("PONG")):
			c.wmu.Lock()
			if len(c.pongs) > 0 {
				close(c.pongs[0])
				c.pongs = c.pongs[1:]
			}
			c.wmu.Unlock()
		case bytes.HasPrefix(line, []byte("-ERR")):
			c.log.Warn("broker: ingest", "err", string(bytes.TrimSpace(line)))
		}
		// Forwards go out in batches: when nothing more is waiting.
		if r.Buffered() == 0 {
			c.wmu.Lock()
			err = c.w.Flush()
			c.wmu.Unlock()
			if err != nil {
				return err
			}
		}
	}
}

// msgLine is a parsed "MSG subject sid [reply] size" or
// "HMSG subject sid [reply] hdrlen total" line.
type msgLine struct {
	subject, reply []byte
	hdrLen, total  int
}

func (m *msgLine) parse(line []byte) bool {
	hdr := line[0] == 'H'
	var args [6][]byte
	n := 0
	for f := range bytes.FieldsSeq(line) {
		if n == len(args) {
			return false
		}
		args[n] = f
		n++
	}
	nums := 1
	if hdr {
		nums = 2
	}
	// verb, subject, sid, [reply], numbers
	switch n - nums {
	case 3:
		m.reply = nil
	case 4:
		m.reply = args[3]
	default:
		return false
	}
	m.subject = args[1]
	var ok bool
	if m.total, ok = atoi(args[n-1]); !ok {
		return false
	}
	m.hdrLen = 0
	if hdr {
		if m.hdrLen, ok = atoi(args[n-2]); !ok || m.hdrLen > m.total {
			return false
		}
	}
	return bytes.HasPrefix(m.subject, []byte(IngestPrefix)) || bytes.HasPrefix(m.subject, []byte(ackPrefix))
}

// atoi parses a protocol size: decimal digits only.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	n := 0
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int(d-'0')
	}
	return n, true
}

// pendingStore is a msg-id copy on its way into its stream.
type pendingStore struct {
	stream string
	entry  *idEntry
	reply  []byte // the client's, for the PubAck
}

// onPublish handles a client's publish (msg holds its header block and
// payload); c.wmu is held.
func (c *ingestConn) onPublish(m *msgLine, msg []byte, now time.Time) {
	stream := m.subject[len(IngestPrefix):]
	hdr, payload := msg[:m.hdrLen], msg[m.hdrLen:]
	id := headerValue(hdr, wire.HdrMsgID)
	if id == nil {
		c.forward(stream, m.reply, hdr, payload)
		return
	}
	e, seq, verdict := c.ids.admit(string(stream), string(id), now, m.reply, msg, m.hdrLen)
	switch verdict {
	case storeFirst:
		c.storeFirst(string(stream), e, m.reply, hdr, payload)
	case duplicate:
		c.answerDuplicate(stream, m.reply, seq)
	case held:
		// Answered when the first copy's verdict comes.
	case untracked:
		c.forward(stream, m.reply, hdr, payload)
	}
}

// storeFirst sends a msg-id copy to its stream with a reply subject of the
// ingest's own; c.wmu is held.
func (c *ingestConn) storeFirst(stream string, e *idEntry, reply, hdr, payload []byte) {
	c.nextToken++
	c.pending[c.nextToken] = pendingStore{stream: stream, entry: e, reply: append([]byte(nil), reply...)}
	c.forward([]byte(stream), strconv.AppendUint([]byte(c.acks), c.nextToken, 10), hdr, payload)
}

// onStored handles the stream's answer to a msg-id copy: the PubAck goes on
// to the client, and the copies that waited for it are answered as
// duplicates, or, when storing failed, the next of them is stored instead;
// c.wmu is held.
func (c *ingestConn) onStored(m *msgLine, msg []byte) {
	token, err := strconv.ParseUint(string(m.subject[len(c.acks):]), 10, 64)
	if err != nil || !bytes.HasPrefix(m.subject, []byte(c.acks)) {
		return
	}
	p, ok := c.pending[token]
	if !ok {
		return
	}
	delete(c.pending, token)
	hdr, body := msg[:m.hdrLen], msg[m.hdrLen:]
	if len(p.reply) > 0 {
		c.forwardTo(p.reply, hdr, body)
	}
	seq := storedSeq(hdr, body)
	waiting, next := c.ids.resolve(p.stream, p.entry, seq, time.Now())
	for _, w := range waiting {
		c.answerDuplicate([]byte(p.stream), w.reply, seq)
	}
	if next != nil {
		c.storeFirst(p.stream, p.entry, next.reply, next.msg[:next.hdrLen], next.msg[next.hdrLen:])
	}
}

// storedSeq is the sequence a PubAck reports, 0 when it reports a failure
// (an error, or a status such as 503 no responders).
func storedSeq(hdr, body []byte) uint64 {
	if len(hdr) > 0 && !bytes.Equal(bytes.TrimSpace(hdr), []byte("NATS/1.0")) && bytes.HasPrefix(hdr, []byte("NATS/1.0 ")) {
		return 0
	}
	var ack struct {
		Seq   uint64          `json:"seq"`
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &ack) != nil || ack.Error != nil {
		return 0
	}
	return ack.Seq
}

// answerDuplicate replies as JetStream does to a message whose id it has
// stored already; c.wmu is held.
func (c *ingestConn) answerDuplicate(stream, reply []byte, seq uint64) {
	if len(reply) == 0 {
		return
	}
	body := fmt.Appendf(nil, `{"stream":%q,"seq":%d,"duplicate": true}`, stream, seq)
	c.forwardTo(reply, nil, body)
}

// forward publishes a message to "<stream>.stored"; c.wmu is held.
func (c *ingestConn) forward(stream, reply, hdr, payload []byte) {
	c.scratch = appendPub(c.scratch[:0], stream, storedSuffix, reply, len(hdr), len(hdr)+len(payload))
	c.w.Write(c.scratch)
	c.w.Write(hdr)
	c.w.Write(payload)
	c.w.WriteString("\r\n")
}

// forwardTo publishes hdr and body to subject, as they are; c.wmu is held.
func (c *ingestConn) forwardTo(subject, hdr, body []byte) {
	c.scratch = appendPub(c.scratch[:0], subject, "", nil, len(hdr), len(hdr)+len(body))
	c.w.Write(c.scratch)
	c.w.Write(hdr)
	c.w.Write(body)
	c.w.WriteString("\r\n")
}

// appendPub renders a PUB (or, with a header block, HPUB) line to
// subject+suffix.
func appendPub(out, subject []byte, suffix string, reply []byte, hdrLen, total int) []byte {
	if hdrLen > 0 {
		out = append(out, "HPUB "...)
	} else {
		out = append(out, "PUB "...)
	}
	out = append(out, subject...)
	out = append(out, suffix...)
	if len(reply) > 0 {
		out = append(out, ' ')
		out = append(out, reply...)
	}
	out = append(out, ' ')
	if hdrLen > 0 {
		out = strconv.AppendInt(out, int64(hdrLen), 10)
		out = append(out, ' ')
	}
	out = strconv.AppendInt(out, int64(total), 10)
	return append(out, "\r\n"...)
}

// headerValue finds a header by its exact name in a NATS header block
// ("NATS/1.0\r\nKey: value\r\n...\r\n"), nil when it is absent.
func headerValue(hdr []byte, key string) []byte {
	for rest := hdr; ; {
		i := bytes.Index(rest, []byte("\r\n"))
		if i < 0 {
			return nil
		}
		rest = rest[i+2:]
		if len(rest) > len(key) && string(rest[:len(key)]) == key && rest[len(key)] == ':' {
			v := rest[len(key)+1:]
			if j := bytes.Index(v, []byte("\r\n")); j >= 0 {
				v = v[:j]
			}
			return bytes.TrimSpace(v)
		}
	}
}
