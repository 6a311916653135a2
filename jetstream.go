package memphis

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/memphisdev/memphis.go/internal/wire"
)

// This file holds the JetStream API calls the SDK makes itself, beside the
// Memphis control plane: looking up and creating a group's durable on a
// partition stream, and reading a stream's last sequence.

// JetStream error codes the engine acts on.
const (
	jsErrConsumerNotFound = 10014
	jsErrStreamNotFound   = 10059
)

// jsAPIError is the error object of a JetStream API reply or publish
// acknowledgement.
type jsAPIError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

// brokerError keeps JetStream's words and its error code, which tells one
// failure from another where the words are alike.
func (e *jsAPIError) brokerError() *BrokerError {
	return newBrokerError(fmt.Sprintf("%s (%d)", e.Description, e.ErrCode))
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
	return false, apiErr.brokerError()
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
		return 0, apiErr.brokerError()
	}
	return info.State.LastSeq, nil
}

// createDurable creates a consumer group's durable on one partition stream
// with the configuration the broker gives its durables (docs/protocol.md#consumer-durables).
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
		return apiErr.brokerError()
	}
	return nil
}
