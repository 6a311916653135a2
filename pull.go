package memphis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// This file is the pull engine behind Consume, Messages, Fetch and
// FetchMessages: it speaks JetStream's pull protocol directly on a core
// NATS connection, so that one implementation serves the one-shot fetch and
// the continuous loop, with full control of batching, idle pauses and
// recovery after reconnects.

// pull runs the pull protocol for one partition until the run stops. It
// keeps up to depth messages requested: when half of them or fewer are
// outstanding it asks for the rest, so the next messages are on their way
// while the handler works. depth adapts (see adaptDepth). After a pull that
// expired empty it waits PullInterval.
func (r *consumeRun) pull(partition int) {
	defer r.pullers.Done()
	c := r.c
	size := c.opts.BatchSize
	expires := c.opts.BatchMaxTimeToWait
	stream := wire.StreamName(c.st.intern, partition)
	subject := nextSubject(stream, c.durable)
	nc := c.conn.nc
	inbox := nc.NewInbox()
	// Sized for everything that can be outstanding, so nats.go never has to
	// drop a message for a full channel: two requests' worth, since after a
	// reconnect (or a request thought lost) the puller asks again while the
	// old request may still be served, by a cluster's stream leader say;
	// the old one has expired by the time the timer could make it three.
	depth := pullDepth(size)
	ch := make(chan *nats.Msg, 2*maxPullDepth(size)+32)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		r.fail(mapNATSErr(err))
		return
	}
	defer closeInbox(sub, ch)

	var (
		outstanding int
		received    int  // messages since the last pull request
		idle        bool // the last request expired without a message
		lastErr     string
		reconnect   = c.conn.reconnectSignal()
		timer       = time.NewTimer(time.Hour)
	)
	defer timer.Stop()
	report := func(err error) {
		if err.Error() != lastErr { // one report per streak of the same failure
			lastErr = err.Error()
			r.report(err)
		}
	}
	pause := func(d time.Duration) bool {
		if d <= 0 {
			return true
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-reconnect:
			reconnect = c.conn.reconnectSignal()
			return true
		case <-r.stop:
			return false
		}
	}
	for {
		if outstanding <= depth/2 && c.conn.out.down.Load() {
			// Pulls sent now would wait in nats.go's buffer and all be
			// answered at once after the reconnect, with more messages than
			// the inbox holds. The reconnect starts pulling again.
			select {
			case <-reconnect:
				reconnect = c.conn.reconnectSignal()
				outstanding, idle = 0, false
			case <-r.stop:
				return
			}
			continue
		}
		if outstanding <= depth/2 {
			if idle && !pause(c.opts.PullInterval) {
				return
			}
			idle = false
			n := depth - outstanding
			if err := c.sendPull(subject, inbox, n, expires); err != nil {
				if errors.Is(err, nats.ErrConnectionClosed) {
					r.connGone()
					return
				}
				report(mapNATSErr(err))
				if !pause(c.opts.PullInterval) {
					return
				}
				continue
			}
			outstanding += n
			received = 0
			timer.Reset(expires + lostPullMargin(expires))
		}
		select {
		case m := <-ch:
			// Take everything already here, up to a batch, and hand it over
			// at once: one hand-off per batch, not per message.
			var batch []*Msg
			failed, failure := false, ""
		gather:
			for {
				status, pending, desc := classify(m)
				switch status {
				case statusMsg:
					// Below zero it would be a request an old one is still
					// serving; asking for more than depth would overrun ch.
					outstanding = max(0, outstanding-1)
					received++
					if batch == nil {
						batch = make([]*Msg, 0, size)
					}
					batch = append(batch, newMsg(m, c, partition))
				case statusHeartbeat:
				case statusExpired:
					outstanding = max(0, outstanding-pending)
					if pending == 0 {
						outstanding = 0
					}
					idle = received == 0
				case statusNoStream, statusConflict:
					outstanding = 0
					failed, failure = true, desc
					break gather
				}
				if len(batch) == size {
					break gather
				}
				select {
				case m = <-ch:
				default:
					break gather
				}
			}
			if len(batch) > 0 {
				lastErr = ""
				timer.Reset(expires + lostPullMargin(expires))
				awaited := r.waiting.Load() // the handler side was idle, waiting for this
				blocked := false
				select {
				case r.out <- batch:
				default:
					blocked = true
					select {
					case r.out <- batch:
					case <-r.stop:
						nakAll(batch)
						return
					}
				}
				depth = adaptDepth(depth, size, awaited, blocked, batch[len(batch)-1].raw.Reply,
					time.Duration(r.nsPerMsg.Load()), c.opts.MaxAckTime)
			}
			if failed {
				err := c.diagnose(r.stopCtx, stream, failure)
				if errors.Is(err, ErrStationUnreachable) {
					r.fail(err)
					return
				}
				if errors.Is(err, ErrConnClosed) {
					// The connection closed while the pull was explained:
					// the same end as a pull that can not be sent.
					r.connGone()
					return
				}
				report(err)
				idle = true
			}
		case <-timer.C:
			// No reply at all to what we asked for, not even the status that
			// ends an expired pull: the request was lost (a broker restart, a
			// dropped route), or the durable is gone, which Memphis 1.4.4
			// does not answer (docs/protocol.md#quirk-pull-missing-durable-silent).
			// Ask which, and ask again.
			outstanding = 0
			if err := c.diagnose(r.stopCtx, stream, "no reply to a pull"); errors.Is(err, ErrStationUnreachable) {
				r.fail(err)
				return
			}
		case <-reconnect:
			// Pull requests die with the old connection.
			reconnect = c.conn.reconnectSignal()
			outstanding = 0
			idle = false
		case <-r.stop:
			return
		}
	}
}

// minPullDepth is how many messages a puller keeps requested at least,
// whatever the batch size: with the default batch of 10 a round trip per
// 10 messages would cap throughput well below what JetStream delivers.
const minPullDepth = 64

// pullDepth is where a puller's depth starts and the least it falls to:
// two batches, and at least minPullDepth. It bounds what waits in the SDK
// while a slow handler works: pullDepth + BatchSize messages of a
// partition, all within MaxAckTime as long as the handler handles a batch
// in MaxAckTime*BatchSize/pullDepth.
func pullDepth(batchSize int) int { return max(2*batchSize, minPullDepth) }

// maxPullDepth is the most a puller keeps requested: eight times its
// starting depth (512 messages with the default batch size), about what
// nats.go's own pull consumer keeps requested.
func maxPullDepth(batchSize int) int { return 8 * pullDepth(batchSize) }

// adaptDepth sets a puller's depth after it hands over a batch.
//
// It doubles, up to maxPullDepth, when the handler side was idle waiting
// for the batch (awaited) while the broker holds more messages for the
// group than are requested: the handler is faster than one pull's round
// trip, and a deeper request keeps deliveries from waiting for it. It
// halves, down to pullDepth, when the batch had to wait for the handler
// (blocked). And it never holds more than the handler, at its measured
// pace per message, gets through in a quarter of MaxAckTime (but at least
// pullDepth), so what waits in the SDK is acknowledged in time; until the
// pace is known it stays as it is.
//
// reply is the last message's ack subject, which carries the count of
// messages pending for the group.
func adaptDepth(depth, batchSize int, awaited, blocked bool, reply string, perMsg, maxAckTime time.Duration) int {
	if perMsg <= 0 {
		return depth // the handler's pace is not known yet
	}
	switch {
	case blocked:
		depth /= 2
	case awaited:
		if pending, ok := ackPending(reply); ok && pending > depth {
			depth *= 2
		}
	}
	limit := min(maxPullDepth(batchSize), int(maxAckTime/4/perMsg))
	return max(min(depth, limit), pullDepth(batchSize))
}

// ackPending reads the count of messages pending for the group from a
// JetStream ack subject: token 8 of the v1 form
// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>, or
// token 10 of the v2 form, which adds a domain and an account hash after
// ACK and may end with a random token.
func ackPending(reply string) (int, bool) {
	var tokens [12]string
	n := 0
	for t := range strings.SplitSeq(reply, ".") {
		if n == len(tokens) {
			break
		}
		tokens[n] = t
		n++
	}
	var tok string
	switch {
	case n == 9:
		tok = tokens[8]
	case n >= 11:
		tok = tokens[10]
	default:
		return 0, false
	}
	pending, err := strconv.Atoi(tok)
	return pending, err == nil
}

// pullRequest is the body of $JS.API.CONSUMER.MSG.NEXT.
type pullRequest struct {
	Batch   int   `json:"batch"`
	Expires int64 `json:"expires,omitempty"` // nanoseconds
	NoWait  bool  `json:"no_wait,omitempty"`
}

func nextSubject(stream, durable string) string {
	return "$JS.API.CONSUMER.MSG.NEXT." + stream + "." + durable
}

// sendPull asks for up to batch messages, delivered to inbox until expires.
func (c *Consumer) sendPull(subject, inbox string, batch int, expires time.Duration) error {
	data, _ := json.Marshal(pullRequest{Batch: batch, Expires: int64(expires)})
	return c.conn.nc.PublishRequest(subject, inbox, data)
}

// pullStatus classifies a message on a pull inbox.
type pullStatus int

const (
	statusMsg       pullStatus = iota // a stream message
	statusExpired                     // 404/408: the request ended; Pending tells how much of it was unfilled
	statusHeartbeat                   // 100
	statusNoStream                    // 503: nobody serves the durable (station gone or broker not ready)
	statusConflict                    // 409: e.g. consumer deleted, leadership change
)

// classify reads a pull reply. For expired and conflict statuses it also
// returns how many requested messages will not come (0 if unknown).
func classify(m *nats.Msg) (pullStatus, int, string) {
	if len(m.Data) > 0 || m.Header == nil {
		return statusMsg, 0, ""
	}
	code := m.Header.Get("Status")
	if code == "" {
		return statusMsg, 0, ""
	}
	desc := m.Header.Get("Description")
	pending, _ := strconv.Atoi(m.Header.Get("Nats-Pending-Messages"))
	switch code {
	case "100":
		return statusHeartbeat, 0, desc
	case "404", "408":
		return statusExpired, pending, desc
	case "503":
		return statusNoStream, 0, desc
	}
	return statusConflict, pending, desc
}

// fetchOnce sends one pull request for batch messages of a partition and
// collects them until the batch is full, the request expires or ctx ends.
func (c *Consumer) fetchOnce(ctx context.Context, partition, batch int, expires time.Duration) ([]*Msg, error) {
	if err := c.conn.awaitUp(ctx); err != nil {
		return nil, err
	}
	stream := wire.StreamName(c.st.intern, partition)
	inbox := c.conn.nc.NewInbox()
	ch := make(chan *nats.Msg, batch+8)
	sub, err := c.conn.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, mapNATSErr(err)
	}
	defer closeInbox(sub, ch)
	if err := c.sendPull(nextSubject(stream, c.durable), inbox, batch, expires); err != nil {
		return nil, mapNATSErr(err)
	}
	// A reply lost with a dropped connection would leave us waiting; the
	// request's own expiry plus a margin bounds the wait.
	timer := time.NewTimer(expires + lostPullMargin(expires))
	defer timer.Stop()
	msgs := make([]*Msg, 0, batch)
	for len(msgs) < batch {
		select {
		case m := <-ch:
			st, _, desc := classify(m)
			switch st {
			case statusMsg:
				msgs = append(msgs, newMsg(m, c, partition))
			case statusHeartbeat:
			case statusExpired:
				return msgs, nil
			case statusNoStream, statusConflict:
				if len(msgs) > 0 {
					return msgs, nil
				}
				return nil, c.diagnose(ctx, stream, desc)
			}
		case <-timer.C:
			// Not even a status: see the same case in the pull loop.
			if len(msgs) == 0 {
				if err := c.diagnose(ctx, stream, "no reply to a pull"); errors.Is(err, ErrStationUnreachable) {
					return nil, err
				}
			}
			return msgs, nil
		case <-ctx.Done():
			nakAll(msgs)
			return nil, fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
		}
	}
	return msgs, nil
}

// inboxDrainTimeout bounds how long closing a pull inbox waits for the
// broker to confirm it stopped sending there.
const inboxDrainTimeout = 2 * time.Second

// closeInbox ends a pull inbox without losing messages: the broker may have
// sent some before it saw the unsubscribe, so the subscription is drained
// (nats.go keeps delivering until a round trip proves nothing more is on
// the way) and every message left is returned to the group with a nak, at
// once instead of after MaxAckTime.
func closeInbox(sub *nats.Subscription, ch chan *nats.Msg) {
	closed := sub.StatusChanged(nats.SubscriptionClosed)
	if sub.Drain() == nil {
		t := time.NewTimer(inboxDrainTimeout)
		select {
		case <-closed:
		case <-t.C:
		}
		t.Stop()
	}
	_ = sub.Unsubscribe()
	for {
		select {
		case m := <-ch:
			if st, _, _ := classify(m); st == statusMsg {
				_ = m.Nak()
			}
		default:
			return
		}
	}
}

func lostPullMargin(expires time.Duration) time.Duration {
	return max(time.Second, expires/2)
}

// diagnose explains why a pull got no messages but an error status: the
// station or its durable is gone (ErrStationUnreachable) or the broker is
// not serving it right now.
func (c *Consumer) diagnose(ctx context.Context, stream, desc string) error {
	found, err := c.conn.consumerExists(ctx, stream, c.durable)
	switch {
	case err != nil:
		return err
	case !found:
		return fmt.Errorf("%w: consumer group %s has no durable on %s", ErrStationUnreachable, c.group, stream)
	}
	if desc == "" {
		desc = "no responders"
	}
	return fmt.Errorf("%w: the broker did not serve the pull: %s", ErrTimeout, desc)
}
