package memphis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestBrokerErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		text string
		want error
	}{
		{"Station  does not exist", ErrStationNotFound},
		{"memphis: Station orders does not exist", ErrStationNotFound},
		{"station orders does not exist", ErrStationNotFound},
		{"Schema nosuch does not exist", ErrSchemaNotFound},
		{"Station schema-x does not exist", ErrStationNotFound},
		{"Consumer c at station s does not exist", ErrConsumerNotFound},
		{"Only alphanumeric and the '_', '-', '.' characters are allowed in Station", ErrInvalidName},
		{"Station name can not be empty", ErrInvalidName},
		{"user does not exist", ErrAuthorization},
		{"User ghost does not exist", ErrAuthorization},
		{"your json schema is invalid", ErrInvalidSchema},
		{`invalid input value for enum enum_type: "xml"`, ErrInvalidSchema},
		{"consumer creation options can't contain both startConsumeFromSequence and lastMessages", ErrInvalidOption},
		{"station can not be created, probably since replicas count is larger than the cluster size", ErrInvalidOption},
	} {
		err := opErr("op", "st", newBrokerError(tc.text))
		if !errors.Is(err, tc.want) {
			t.Errorf("%q: not %v", tc.text, tc.want)
		}
		var be *BrokerError
		if !errors.As(err, &be) || be.Text != tc.text {
			t.Errorf("%q: broker text lost: %v", tc.text, err)
		}
		if !strings.HasPrefix(err.Error(), "memphis: op st: broker: ") || !strings.HasSuffix(err.Error(), tc.text) {
			t.Errorf("message %q should be prefixed once and end with the broker's text", err)
		}
	}
}

func TestOpErrorWrapsContextAndSentinels(t *testing.T) {
	err := opErr("produce", "orders", fmt.Errorf("%w: %w", ErrTimeout, context.DeadlineExceeded))
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v should match ErrTimeout and DeadlineExceeded", err)
	}
	if got := err.Error(); got != "memphis: produce orders: timeout: context deadline exceeded" {
		t.Errorf("message = %q", got)
	}
	se := &SchemaError{Schema: "s", SchemaType: "json", Err: errors.New("missing field")}
	if !errors.Is(opErr("produce", "x", se), ErrSchemaValidation) {
		t.Error("SchemaError should match ErrSchemaValidation")
	}
}
