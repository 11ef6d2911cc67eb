// Package identity is the one rule for identifiers that travel inside NATS subjects, headers
// and Nats-Msg-Id values: account, webhook, event and delivery ids.
//
// An identifier is 1 to MaxLen bytes (MaxDeliveryLen for a delivery id) of ASCII letters,
// digits, '_' and '-'. That alphabet is a subset of what a NATS subject token may hold (no '.',
// '*', '>', whitespace or control characters), of what a header value may hold, and needs no
// escaping in a Nats-Msg-Id; the bound keeps the longest subject built from ids
// (deliveries.ready.<lane>.<delivery id>) far below the server's 4 KiB control line, which a
// client that exceeds it loses its connection over.
//
// Every service checks an id where it enters (an API request, an event off the EVENTS stream, a
// job off DELIVERIES, a record off ATTEMPTS) and refuses or terminates anything else.
package identity

import (
	"errors"
	"fmt"
)

// MaxLen is the longest account, webhook or event id, in bytes.
const MaxLen = 64

// MaxDeliveryLen is the longest delivery id: a prefix ("del_" or "test_"), an event id and a
// webhook id joined by '_'.
const MaxDeliveryLen = len("test_") + MaxLen + 1 + MaxLen

// ErrInvalid is wrapped by every error of this package.
var ErrInvalid = errors.New("invalid identifier")

// Reasons name why an id was refused: a small, fixed set, fit for a metric label.
const (
	ReasonEmpty   = "empty"
	ReasonTooLong = "too_long"
	ReasonBadChar = "bad_char"
)

// Error says which id was refused and why.
type Error struct {
	// Field names the id ("account_id", "event_id", ...).
	Field string
	// Reason is one of ReasonEmpty, ReasonTooLong, ReasonBadChar.
	Reason string
	// Len is the refused id's length in bytes; the id itself is not kept (it may be huge).
	Len int
	max int
}

func (e *Error) Error() string {
	switch e.Reason {
	case ReasonEmpty:
		return e.Field + ": required"
	case ReasonTooLong:
		return fmt.Sprintf("%s: %d bytes, at most %d allowed", e.Field, e.Len, e.max)
	default:
		return e.Field + ": only ASCII letters, digits, '_' and '-' are allowed"
	}
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *Error) Unwrap() error { return ErrInvalid }

// Check validates id as a field of at most maxLen bytes.
func Check(field, id string, maxLen int) error {
	switch {
	case id == "":
		return &Error{Field: field, Reason: ReasonEmpty, max: maxLen}
	case len(id) > maxLen:
		return &Error{Field: field, Reason: ReasonTooLong, Len: len(id), max: maxLen}
	}
	for i := 0; i < len(id); i++ {
		if !allowed(id[i]) {
			return &Error{Field: field, Reason: ReasonBadChar, Len: len(id), max: maxLen}
		}
	}
	return nil
}

func allowed(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// Account validates an account id.
func Account(id string) error { return Check("account_id", id, MaxLen) }

// Webhook validates a webhook id.
func Webhook(id string) error { return Check("webhook_id", id, MaxLen) }

// Event validates an event id.
func Event(id string) error { return Check("event_id", id, MaxLen) }

// Delivery validates a delivery id.
func Delivery(id string) error { return Check("delivery_id", id, MaxDeliveryLen) }

// Reason returns the reason of an error of this package, or "" for any other error.
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}
