package memphis

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors that callers branch on with errors.Is. Every error the SDK
// returns, or hands to a callback, is an *OpError wrapping one of these (or
// a context or nats.go error, or a *BrokerError or *SchemaError that matches
// one), so both the kind and the broker's own words are kept. A call that
// fails on several stations joins their *OpErrors.
var (
	// ErrInvalidName: a station, producer, consumer, group or schema name breaks
	// the broker's naming rules. Checked before anything is sent.
	ErrInvalidName = errors.New("memphis: invalid name")
	// ErrInvalidOption: an option value is out of range or options conflict.
	ErrInvalidOption = errors.New("memphis: invalid option")
	// ErrInvalidMessage: the message's Go type cannot be produced to the station.
	ErrInvalidMessage = errors.New("memphis: unsupported message type")
	// ErrMessageTooLarge: the message and its headers exceed the broker's max payload.
	ErrMessageTooLarge = errors.New("memphis: message too large")
	// ErrReservedHeader: a header key starts with the reserved "$memphis" prefix.
	ErrReservedHeader = errors.New("memphis: header keys can not start with $memphis")
	// ErrStationNotFound: the station does not exist (or no longer does).
	ErrStationNotFound = errors.New("memphis: station not found")
	// ErrStationUnreachable: a consumer's station or durable consumer is gone
	// from the broker, so nothing more can be consumed from it.
	ErrStationUnreachable = errors.New("memphis: station unreachable")
	// ErrConsumerNotFound: the broker answered that the consumer is not
	// registered. Destroying a consumer that is already gone succeeds
	// instead, so Memphis 1.4.4 gives it to no call of this SDK today; it
	// names such an answer from any request that gets one.
	ErrConsumerNotFound = errors.New("memphis: consumer not found")
	// ErrSchemaNotFound: the schema does not exist.
	ErrSchemaNotFound = errors.New("memphis: schema not found")
	// ErrInvalidSchema: the broker refused a schema's content or type.
	ErrInvalidSchema = errors.New("memphis: invalid schema")
	// ErrSchemaValidation: a message does not match its station's schema. The
	// error is a *SchemaError carrying the validator's reason.
	ErrSchemaValidation = errors.New("memphis: schema validation failed")
	// ErrPartitionNotFound: a partition number is not one of the station's.
	ErrPartitionNotFound = errors.New("memphis: partition not found")
	// ErrAuthorization: the broker refused the credentials or the user.
	ErrAuthorization = errors.New("memphis: authorization violation")
	// ErrNoServers: no broker could be reached at the given hosts and port.
	ErrNoServers = errors.New("memphis: no broker reachable")
	// ErrTLS: the TLS handshake with the broker failed: its certificate is
	// not signed by a trusted CA or not issued for the host, the broker
	// refused the client certificate or asked for one that was not given,
	// or one side wants TLS and the other does not. The x509 or tls error
	// underneath is wrapped too.
	ErrTLS = errors.New("memphis: TLS handshake failed")
	// ErrTimeout: the broker did not answer in time, or a context ended while
	// the call waited for the broker or the connection; the context's own
	// error (context.DeadlineExceeded, context.Canceled) is wrapped too then.
	ErrTimeout = errors.New("memphis: timeout")
	// ErrConnClosed: the connection was closed by Close, or gave up
	// reconnecting after MaxReconnect attempts.
	ErrConnClosed = errors.New("memphis: connection closed")
	// ErrConnectionLost: the connection dropped while a produce awaited its
	// acknowledgement, so whether the broker stored it is unknown.
	ErrConnectionLost = errors.New("memphis: connection lost before acknowledgement")
	// ErrMaxPending: MaxPending produces (sync and async alike) await
	// acknowledgement and none completed within the wait allowed.
	ErrMaxPending = errors.New("memphis: too many pending produces")
	// ErrProducerDestroyed: the producer was destroyed.
	ErrProducerDestroyed = errors.New("memphis: producer destroyed")
	// ErrConsumerDestroyed: the consumer was destroyed.
	ErrConsumerDestroyed = errors.New("memphis: consumer destroyed")
	// ErrAlreadyConsuming: Consume was called on a consumer that is consuming.
	ErrAlreadyConsuming = errors.New("memphis: consumer is already consuming")
	// ErrNotSupported: the action does not apply to this message, e.g. delaying
	// a message the broker re-sent from the dead-letter station.
	ErrNotSupported = errors.New("memphis: not supported")
)

// OpError is the error every SDK call returns: which operation failed, on
// which station, and why. Unwrap gives the cause, so errors.Is matches the
// sentinels above, context errors and nats.go errors underneath.
type OpError struct {
	// Op names the failed call, e.g. "create station" or "produce".
	Op string
	// Station is the station involved, if any.
	Station string
	// Err is the cause.
	Err error
}

// Error reads "memphis: <op> <station>: <cause>", the cause without its own
// "memphis: " prefix.
func (e *OpError) Error() string {
	var b strings.Builder
	b.WriteString("memphis: ")
	b.WriteString(e.Op)
	if e.Station != "" {
		b.WriteString(" ")
		b.WriteString(e.Station)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "memphis: "))
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// BrokerError is an error the broker answered with. Text is the broker's own
// words; Is matches the sentinel the text maps to (for example
// ErrStationNotFound for "Station orders does not exist").
type BrokerError struct {
	// Text is the broker's error text, unchanged.
	Text string
	kind error
}

// Error reads "memphis: broker: " followed by the broker's text.
func (e *BrokerError) Error() string { return "memphis: broker: " + e.Text }

// Is reports whether the broker's text means target.
func (e *BrokerError) Is(target error) bool { return e.kind != nil && e.kind == target }

// newBrokerError classifies a broker error text. The broker's texts differ in
// case between handlers (docs/protocol.md#quirk-error-text-case), so matching is case-insensitive.
func newBrokerError(text string) *BrokerError {
	t := strings.ToLower(text)
	var kind error
	switch {
	case strings.Contains(t, "only alphanumeric"), strings.Contains(t, "name can not"),
		strings.Contains(t, "should be under"):
		kind = ErrInvalidName
	case strings.HasPrefix(t, "schema ") && strings.Contains(t, "does not exist"):
		kind = ErrSchemaNotFound
	case strings.HasPrefix(t, "consumer ") && strings.Contains(t, "does not exist"):
		kind = ErrConsumerNotFound
	case strings.Contains(t, "station") && strings.Contains(t, "does not exist"):
		kind = ErrStationNotFound
	case strings.Contains(t, "user") && strings.Contains(t, "does not exist"),
		strings.Contains(t, "authorization violation"), strings.Contains(t, "not allowed"):
		kind = ErrAuthorization
	case strings.Contains(t, "is invalid"), strings.Contains(t, "invalid input value for enum"),
		strings.Contains(t, "already exist with type"):
		kind = ErrInvalidSchema
	case strings.Contains(t, "partition"):
		kind = ErrInvalidOption
	case strings.Contains(t, "can not"), strings.Contains(t, "cannot"), strings.Contains(t, "can't"),
		strings.Contains(t, "has to be"), strings.Contains(t, "min value"), strings.Contains(t, "can be one of"),
		strings.Contains(t, "probably since replicas"):
		kind = ErrInvalidOption
	}
	return &BrokerError{Text: text, kind: kind}
}

// SchemaError is a message that failed its station's schema. It matches
// ErrSchemaValidation and unwraps to the validator's reason.
type SchemaError struct {
	// Schema is the schema's name.
	Schema string
	// SchemaType is protobuf, json, graphql or avro.
	SchemaType string
	// Err is the validator's reason.
	Err error
}

// Error names the schema, its type and the validator's reason.
func (e *SchemaError) Error() string {
	return "memphis: schema validation failed against " + e.SchemaType + " schema " + e.Schema + ": " + e.Err.Error()
}

// Is makes errors.Is(err, ErrSchemaValidation) true.
func (e *SchemaError) Is(target error) bool { return target == ErrSchemaValidation }

// Unwrap returns the validator's reason.
func (e *SchemaError) Unwrap() error { return e.Err }

// invalidf is an ErrInvalidOption saying what is wrong; format may wrap a
// cause with %w.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

func opErr(op, station string, err error) error {
	if err == nil {
		return nil
	}
	return &OpError{Op: op, Station: station, Err: err}
}

// joinErrs joins the failures of one call that acted on several stations
// (or produces). A single failure comes back as it is, so the *OpError of a
// one-station call is the error itself, not wrapped in a join; errors.Is
// and errors.As see through a join of several.
func joinErrs(errs []error) error {
	var kept []error
	for _, err := range errs {
		if err != nil {
			kept = append(kept, err)
		}
	}
	switch len(kept) {
	case 0:
		return nil
	case 1:
		return kept[0]
	}
	return errors.Join(kept...)
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
