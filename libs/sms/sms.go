// Package sms is the boundary to SMS carriers: the Provider interface that services send
// through, and Sandbox, the default provider, which records messages in PostgreSQL and never
// touches the network.
package sms

import (
	"context"
	"errors"
	"time"
)

// MaxBodyChars is the longest body accepted, in characters (a 10-segment concatenated SMS).
const MaxBodyChars = 1600

// ErrInvalidMessage is wrapped by errors about a message the provider refuses outright; sending
// it again cannot succeed.
var ErrInvalidMessage = errors.New("invalid message")

// Message is one outgoing SMS.
type Message struct {
	AccountID string
	// From is the sending number (E.164); empty lets the provider pick the account's default.
	From string
	// To is the destination (E.164).
	To   string
	Body string
	// IdempotencyKey, when not empty, makes a repeated Send with the same key return the first
	// result without sending again.
	IdempotencyKey string
}

// Sent is a message the provider accepted.
type Sent struct {
	ID        string
	AccountID string
	From      string
	To        string
	Body      string
	SendTime  time.Time
	// Duplicate is true when the idempotency key had already been used and nothing was sent.
	Duplicate bool
}

// Provider sends SMS.
type Provider interface {
	Send(ctx context.Context, m Message) (Sent, error)
}
