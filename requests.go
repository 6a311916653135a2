package memphis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
)

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
		if err := c.awaitUp(rctx); err != nil {
			cancel()
			return nil, err
		}
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
	if err := apply(&o, options); err != nil {
		return ctx, err
	}
	if o.TimeoutRetries < 0 {
		return ctx, invalidf("timeout retries %d is negative", o.TimeoutRetries)
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

// publishJSON sends a fire-and-forget report to the broker.
func (c *Conn) publishJSON(subject string, v any) {
	data, err := json.Marshal(v)
	if err == nil {
		err = c.nc.Publish(subject, data)
	}
	if err != nil {
		c.log.Warn("memphis: report not sent", "subject", subject, "err", err)
	}
}
