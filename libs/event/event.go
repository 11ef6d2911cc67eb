// Package event is the single source of truth for the six domain events: their wire names, the
// JSON envelope every publisher writes and every webhook carries, and the catalog with a sample
// payload of each type that the subscription service serves.
package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/customertext/webhooks/libs/gen/customertext/events/v1"
	"github.com/customertext/webhooks/libs/identity"
)

// The event type names: the "event" field of the wire contract.
const (
	NewContact     = "new_contact"
	ContactUpdated = "contact_updated"
	ContactOptOut  = "contact_opt_out"
	InboundMessage = "inbound_message"
	KeywordOptIn   = "keyword_opt_in"
	CampaignSent   = "campaign_sent"
)

// MaxBodyBytes bounds an encoded event: larger ones are refused at publish time.
const MaxBodyBytes = 64 << 10

// Envelope is the JSON body of an event on the EVENTS stream and of the webhook request.
type Envelope struct {
	Event     string          `json:"event"`
	EventID   string          `json:"event_id"`
	Timestamp string          `json:"timestamp"`
	AccountID string          `json:"account_id"`
	Test      bool            `json:"test,omitempty"`
	Data      json.RawMessage `json:"data"`
}

var dataJSON = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// TypeOf returns the event type name of a payload message.
func TypeOf(payload proto.Message) (string, error) {
	switch payload.(type) {
	case *eventsv1.NewContact:
		return NewContact, nil
	case *eventsv1.ContactUpdated:
		return ContactUpdated, nil
	case *eventsv1.ContactOptOut:
		return ContactOptOut, nil
	case *eventsv1.InboundMessage:
		return InboundMessage, nil
	case *eventsv1.KeywordOptIn:
		return KeywordOptIn, nil
	case *eventsv1.CampaignSent:
		return CampaignSent, nil
	}
	return "", fmt.Errorf("event type of %T: not an event payload", payload)
}

// New wraps payload in an envelope with a fresh, time-ordered event id.
func New(accountID string, payload proto.Message, at time.Time) (Envelope, error) {
	// The account id becomes a token of the event's subject (libs/identity).
	if err := identity.Account(accountID); err != nil {
		return Envelope{}, fmt.Errorf("new event: %w", err)
	}
	typ, err := TypeOf(payload)
	if err != nil {
		return Envelope{}, fmt.Errorf("new event: %w", err)
	}
	data, err := dataJSON.Marshal(payload)
	if err != nil {
		return Envelope{}, fmt.Errorf("new event: marshal %s: %w", typ, err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Envelope{}, fmt.Errorf("new event: id: %w", err)
	}
	return Envelope{
		Event:     typ,
		EventID:   "evt_" + id.String(),
		Timestamp: at.UTC().Format(time.RFC3339Nano),
		AccountID: accountID,
		Data:      data,
	}, nil
}

// Marshal encodes the envelope, refusing bodies over MaxBodyBytes.
func (e Envelope) Marshal() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("marshal event: %w", err)
	}
	if len(b) > MaxBodyBytes {
		return nil, fmt.Errorf("marshal event %s: %d bytes exceeds the %d byte limit", e.EventID, len(b), MaxBodyBytes)
	}
	return b, nil
}

// Parse decodes and validates an envelope.
func Parse(b []byte) (Envelope, error) {
	var e Envelope
	if len(b) > MaxBodyBytes {
		return e, fmt.Errorf("parse event: %d bytes exceeds the %d byte limit", len(b), MaxBodyBytes)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("parse event: %w", err)
	}
	switch {
	case !Known(e.Event):
		return e, fmt.Errorf("parse event: unknown event type %q", e.Event)
	case e.EventID == "":
		return e, errors.New("parse event: missing event_id")
	case e.AccountID == "":
		return e, errors.New("parse event: missing account_id")
	case len(e.Data) == 0 || e.Data[0] != '{':
		return e, errors.New("parse event: data must be an object")
	}
	if _, err := time.Parse(time.RFC3339Nano, e.Timestamp); err != nil {
		return e, fmt.Errorf("parse event: timestamp: %w", err)
	}
	return e, nil
}

// Time returns the event's timestamp.
func (e Envelope) Time() (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, e.Timestamp)
	if err != nil {
		return time.Time{}, fmt.Errorf("event time: %w", err)
	}
	return t, nil
}

// Spec describes one event type in the catalog.
type Spec struct {
	Name        string
	Description string
	// Sample is a representative payload.
	Sample proto.Message
}

// Catalog lists the six event types in a stable order.
func Catalog() []Spec {
	return []Spec{
		{NewContact, "A contact was added: import, manual entry, inbound message or keyword opt-in.", &eventsv1.NewContact{
			ContactId: "12345", FirstName: "Jane", LastName: "Smith", Phone: "+15551234567", Email: "jane@example.com",
			Groups: []string{"customers", "Events"}, Source: "keyword_optin", Keyword: "JOIN"}},
		{ContactUpdated, "A contact's information was modified; changed_fields names what changed.", &eventsv1.ContactUpdated{
			ContactId: "12345", FirstName: "Jane", LastName: "Doe", Phone: "+15551234567", Email: "jane@example.com",
			Groups: []string{"customers"}, ChangedFields: []string{"last_name"}}},
		{ContactOptOut, "A contact replied STOP (or another opt-out word) and will receive no more messages.", &eventsv1.ContactOptOut{
			ContactId: "12345", Phone: "+15551234567", Keyword: "STOP", MessageId: "msg_01"}},
		{InboundMessage, "A contact sent a message to the account's number.", &eventsv1.InboundMessage{
			MessageId: "msg_01", ContactId: "12345", From: "+15551234567", To: "+15557654321", Body: "What time do you open?"}},
		{KeywordOptIn, "A contact texted a keyword and joined its groups.", &eventsv1.KeywordOptIn{
			ContactId: "12345", Phone: "+15551234567", Keyword: "JOIN", Groups: []string{"Events"}, NewContact: true}},
		{CampaignSent, "A campaign finished sending to its whole audience.", &eventsv1.CampaignSent{
			CampaignId: "cmp_01", Name: "Spring sale", Audience: 1200, Sent: 1150, Failed: 10, SkippedOptedOut: 40,
			StartedAt: "2026-04-25T14:00:00Z", FinishedAt: "2026-04-25T14:03:10Z"}},
	}
}

// Known reports whether name is one of the six event types.
func Known(name string) bool {
	switch name {
	case NewContact, ContactUpdated, ContactOptOut, InboundMessage, KeywordOptIn, CampaignSent:
		return true
	}
	return false
}

// Sample returns a complete test envelope of the given type for the account, marked test.
func Sample(eventType, accountID string, at time.Time) (Envelope, error) {
	for _, s := range Catalog() {
		if s.Name != eventType {
			continue
		}
		e, err := New(accountID, s.Sample, at)
		if err != nil {
			return Envelope{}, err
		}
		e.Test = true
		return e, nil
	}
	return Envelope{}, fmt.Errorf("sample event: unknown event type %q", eventType)
}
