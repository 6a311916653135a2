package memphis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// This file is the pull engine behind Consume, Messages, Fetch and
// FetchMessages: it speaks JetStream's pull protocol directly on a core
// NATS connection, so that one implementation serves the one-shot fetch and
// the continuous loop, with full control of batching, idle pauses and
// recovery after reconnects.

// JetStream error codes the engine acts on.
const (
	jsErrConsumerNotFound = 10014
	jsErrStreamNotFound   = 10059
)

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

// jsAPIError is the error object of a JetStream API reply.
type jsAPIError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (c *Conn) jsAPI(ctx context.Context, subject string, body []byte, out any) (*jsAPIError, error) {
	ctx, cancel := c.requestCtx(ctx)
	defer cancel()
	if err := c.awaitUp(ctx); err != nil {
		return nil, err
	}
	m, err := c.nc.RequestWithContext(ctx, subject, body)
	if err != nil {
		return nil, mapNATSErr(err)
	}
	var resp struct {
		Error *jsAPIError `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return nil, fmt.Errorf("bad JetStream reply %q: %w", m.Data, err)
	}
	if resp.Error != nil {
		return resp.Error, nil
	}
	if out != nil {
		if err := json.Unmarshal(m.Data, out); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// consumerExists asks JetStream whether a durable exists on a stream.
func (c *Conn) consumerExists(ctx context.Context, stream, durable string) (bool, error) {
	apiErr, err := c.jsAPI(ctx, "$JS.API.CONSUMER.INFO."+stream+"."+durable, nil, nil)
	switch {
	case err != nil:
		return false, err
	case apiErr == nil:
		return true, nil
	case apiErr.ErrCode == jsErrConsumerNotFound || apiErr.ErrCode == jsErrStreamNotFound:
		return false, nil
	}
	return false, newBrokerError(fmt.Sprintf("%s (%d)", apiErr.Description, apiErr.ErrCode))
}

// streamLastSeq returns the last sequence number stored in a stream.
func (c *Conn) streamLastSeq(ctx context.Context, stream string) (uint64, error) {
	var info struct {
		State struct {
			LastSeq uint64 `json:"last_seq"`
		} `json:"state"`
	}
	apiErr, err := c.jsAPI(ctx, "$JS.API.STREAM.INFO."+stream, nil, &info)
	if err != nil {
		return 0, err
	}
	if apiErr != nil {
		if apiErr.ErrCode == jsErrStreamNotFound {
			return 0, fmt.Errorf("%w: no stream %s", ErrStationNotFound, stream)
		}
		return 0, newBrokerError(fmt.Sprintf("%s (%d)", apiErr.Description, apiErr.ErrCode))
	}
	return info.State.LastSeq, nil
}

// createDurable creates a consumer group's durable on one partition stream
// with the configuration the broker gives its durables (PROTOCOL §7.2).
func (c *Conn) createDurable(ctx context.Context, stream, durable string, o ConsumerOpts, startSeq uint64) error {
	maxDeliver := o.MaxMsgDeliveries
	if maxDeliver > MaxMsgDeliveriesLimit {
		maxDeliver = MaxMsgDeliveriesLimit
	}
	body, _ := json.Marshal(map[string]any{
		"stream_name": stream,
		"config": map[string]any{
			"durable_name":    durable,
			"deliver_policy":  "by_start_sequence",
			"opt_start_seq":   startSeq,
			"ack_policy":      "explicit",
			"ack_wait":        int64(o.MaxAckTime),
			"max_deliver":     maxDeliver,
			"filter_subject":  wire.ProduceSubject(stream),
			"replay_policy":   "instant",
			"max_ack_pending": -1,
		},
	})
	apiErr, err := c.jsAPI(ctx, "$JS.API.CONSUMER.DURABLE.CREATE."+stream+"."+durable, body, nil)
	if err != nil {
		return err
	}
	if apiErr != nil {
		return newBrokerError(fmt.Sprintf("%s (%d)", apiErr.Description, apiErr.ErrCode))
	}
	return nil
}
