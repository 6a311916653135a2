package otelmemphis

import (
	"context"
	"errors"

	"github.com/memphisdev/memphis.go"
)

// errorTypes maps the SDK's sentinels to error.type values, most specific
// first: a produce whose context was cancelled wraps ErrTimeout and
// context.Canceled, and is "canceled".
var errorTypes = []struct {
	err  error
	name string
}{
	{context.Canceled, "canceled"},
	{memphis.ErrSchemaValidation, "schema_validation"},
	{memphis.ErrConnectionLost, "connection_lost"},
	{memphis.ErrMaxPending, "max_pending"},
	{memphis.ErrTimeout, "timeout"},
	{memphis.ErrConnClosed, "connection_closed"},
	{memphis.ErrStationNotFound, "station_not_found"},
	{memphis.ErrStationUnreachable, "station_unreachable"},
	{memphis.ErrPartitionNotFound, "partition_not_found"},
	{memphis.ErrMessageTooLarge, "message_too_large"},
	{memphis.ErrInvalidMessage, "invalid_message"},
	{memphis.ErrReservedHeader, "reserved_header"},
	{memphis.ErrInvalidName, "invalid_name"},
	{memphis.ErrInvalidOption, "invalid_option"},
	{memphis.ErrProducerDestroyed, "producer_destroyed"},
	{memphis.ErrConsumerDestroyed, "consumer_destroyed"},
	{memphis.ErrConsumerNotFound, "consumer_not_found"},
	{memphis.ErrAlreadyConsuming, "already_consuming"},
	{memphis.ErrNotSupported, "not_supported"},
	{memphis.ErrAuthorization, "authorization"},
	{memphis.ErrNoServers, "no_servers"},
	{memphis.ErrSchemaNotFound, "schema_not_found"},
	{memphis.ErrInvalidSchema, "invalid_schema"},
	{context.DeadlineExceeded, "timeout"},
}

// ErrorType is the error.type attribute this package gives a failure: the
// kind of SDK error it is, such as "timeout", "connection_lost",
// "station_not_found", "schema_validation" or "invalid_option" (the
// sentinel's name in snake case, without Err), "canceled" for a cancelled
// context, "broker" for another error the broker answered with, and
// "_OTHER" for anything else. It is "" for a nil error.
func ErrorType(err error) string {
	if err == nil {
		return ""
	}
	for _, e := range errorTypes {
		if errors.Is(err, e.err) {
			return e.name
		}
	}
	var be *memphis.BrokerError
	if errors.As(err, &be) {
		return "broker"
	}
	return "_OTHER"
}
