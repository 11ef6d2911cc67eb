package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/customertext/webhooks/libs/event"
	eventsv1 "github.com/customertext/webhooks/libs/gen/customertext/events/v1"
	"github.com/customertext/webhooks/libs/sms"
	"github.com/customertext/webhooks/services/messaging/internal/domain"
)

// Inbound is an inbound SMS as the carrier reported it.
type Inbound struct {
	From       string
	To         string
	Body       string
	MessageSid string
}

// InboundResult says what handling a message did.
type InboundResult struct {
	// Duplicate: the MessageSid had already been handled; nothing was done.
	Duplicate bool
	Kind      domain.Kind
	MessageID string
	ContactID string
}

// Verifier checks the request's carrier signature against the number's token.
type Verifier func(token string) bool

const maxSidChars = 64

// HandleInbound handles one inbound SMS: it finds the account by the To number, checks the
// signature with verify, finds or creates the sender's contact, applies an opt-out, opt-in or
// keyword, sends the reply and records the events (inbound_message, contact_opt_out,
// keyword_opt_in). It is idempotent per MessageSid, so carriers may retry freely.
func (s *Service) HandleInbound(ctx context.Context, in Inbound, verify Verifier) (InboundResult, error) {
	to, err := domain.NormalizePhone("To", in.To, s.region)
	if err != nil {
		return InboundResult{}, err
	}
	num, err := s.store.NumberByPhone(ctx, to)
	if errors.Is(err, ErrNotFound) {
		return InboundResult{}, ErrUnknownNumber
	}
	if err != nil {
		return InboundResult{}, fmt.Errorf("find number: %w", err)
	}
	if !verify(num.CarrierToken) {
		s.metrics.SignatureFailure()
		return InboundResult{}, ErrBadSignature
	}
	from, err := domain.NormalizePhone("From", in.From, s.region)
	if err != nil {
		return InboundResult{}, err
	}
	if err := domain.ValidateBody("Body", in.Body); err != nil {
		return InboundResult{}, err
	}
	sid := strings.TrimSpace(in.MessageSid)
	if sid == "" || utf8.RuneCountInString(sid) > maxSidChars || !utf8.ValidString(sid) {
		return InboundResult{}, fmt.Errorf("MessageSid: required, at most %d characters: %w", maxSidChars, domain.ErrInvalid)
	}
	acct := num.AccountID
	done, err := s.store.InboundDone(ctx, acct, sid)
	if err != nil {
		return InboundResult{}, fmt.Errorf("check duplicate: %w", err)
	}
	if done {
		return InboundResult{Duplicate: true}, nil
	}

	keywords, err := s.store.Keywords(ctx, acct)
	if err != nil {
		return InboundResult{}, fmt.Errorf("load keywords: %w", err)
	}
	intent := domain.Classify(in.Body, keywords)
	contact, created, err := s.findOrCreateContact(ctx, acct, from, intent)
	if err != nil {
		return InboundResult{}, err
	}
	msgID, err := uuid.NewV7()
	if err != nil {
		return InboundResult{}, fmt.Errorf("message id: %w", err)
	}
	rec, err := s.store.BeginInbound(ctx, InboundRecord{
		AccountID: acct, MessageSid: sid, MessageID: "msg_" + msgID.String(), ContactID: contact.ID,
		From: from, To: to, Body: in.Body, Kind: intent.Kind, Word: intent.Word,
		ContactCreated: created, ReceivedAt: s.now().UTC(),
	})
	if err != nil {
		return InboundResult{}, fmt.Errorf("journal inbound: %w", err)
	}

	reply, err := s.apply(ctx, &rec, contact, intent)
	if err != nil {
		return InboundResult{}, err
	}
	if reply != "" {
		if _, err := s.provider.Send(ctx, sms.Message{AccountID: acct, From: to, To: from, Body: reply,
			IdempotencyKey: "reply:" + acct + ":" + sid}); err != nil {
			return InboundResult{}, fmt.Errorf("send reply: %w", err)
		}
		s.metrics.ReplySent()
	}

	events, err := inboundEvents(rec, intent)
	if err != nil {
		return InboundResult{}, err
	}
	completed, err := s.store.CompleteInbound(ctx, acct, sid, events)
	if err != nil {
		return InboundResult{}, fmt.Errorf("complete inbound: %w", err)
	}
	if !completed {
		return InboundResult{Duplicate: true}, nil
	}
	s.metrics.Inbound(rec.Kind)
	return InboundResult{Kind: rec.Kind, MessageID: rec.MessageID, ContactID: rec.ContactID}, nil
}

// findOrCreateContact returns the sender's contact, creating it (source inbound, or
// keyword_optin when the message is a keyword) when the account has none.
func (s *Service) findOrCreateContact(ctx context.Context, accountID, phone string, intent domain.Intent) (Contact, bool, error) {
	c, err := s.contacts.ByPhone(ctx, accountID, phone)
	if err == nil {
		return c, false, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Contact{}, false, fmt.Errorf("find contact: %w", err)
	}
	source, keyword := "inbound", ""
	var groups []string
	if intent.Kind == domain.KindKeyword {
		// Created in the keyword's groups, so that new_contact carries the groups the contact
		// joins (apply adds them again, idempotently, for a contact that already existed).
		source, keyword, groups = "keyword_optin", intent.Word, intent.Keyword.Groups
	}
	c, err = s.contacts.Create(ctx, accountID, phone, source, keyword, groups)
	if errors.Is(err, ErrAlreadyExists) {
		// Another message from the same new sender won the race.
		c, err = s.contacts.ByPhone(ctx, accountID, phone)
		if err != nil {
			return Contact{}, false, fmt.Errorf("find contact after create race: %w", err)
		}
		return c, false, nil
	}
	if err != nil {
		return Contact{}, false, fmt.Errorf("create contact: %w", err)
	}
	return c, true, nil
}

// apply performs the message's effect on the contact and returns the reply to send ("" for
// none). The opt-state change is journaled at once so that a retry after a crash still
// confirms it and emits its event.
func (s *Service) apply(ctx context.Context, rec *InboundRecord, contact Contact, intent domain.Intent) (string, error) {
	switch rec.Kind {
	case domain.KindOptOut, domain.KindOptIn:
		optOut := rec.Kind == domain.KindOptOut
		changed, err := s.contacts.SetOptOut(ctx, rec.AccountID, rec.ContactID, optOut)
		if err != nil {
			return "", fmt.Errorf("set opt-out: %w", err)
		}
		if changed && !rec.OptChanged {
			if err := s.store.MarkOptChanged(ctx, rec.AccountID, rec.MessageSid); err != nil {
				return "", fmt.Errorf("journal opt change: %w", err)
			}
			rec.OptChanged = true
		}
		switch {
		case !rec.OptChanged:
			return "", nil // already in that state: no second confirmation
		case optOut:
			return domain.ReplyOptOut, nil
		default:
			return domain.ReplyOptIn, nil
		}
	case domain.KindHelp:
		return domain.ReplyHelp, nil
	case domain.KindKeyword:
		updated, err := s.contacts.AddToGroups(ctx, rec.AccountID, rec.ContactID, intent.Keyword.Groups)
		if err != nil {
			return "", fmt.Errorf("add contact to keyword groups: %w", err)
		}
		if updated.OptedOut || contact.OptedOut {
			return "", nil // never text an opted-out contact
		}
		return intent.Keyword.Reply, nil
	}
	return "", nil
}

// inboundEvents builds the events of a handled message.
func inboundEvents(rec InboundRecord, intent domain.Intent) ([]event.Envelope, error) {
	payloads := []proto.Message{&eventsv1.InboundMessage{
		MessageId: rec.MessageID, ContactId: rec.ContactID, From: rec.From, To: rec.To, Body: rec.Body,
	}}
	switch {
	case rec.Kind == domain.KindOptOut && rec.OptChanged:
		payloads = append(payloads, &eventsv1.ContactOptOut{
			ContactId: rec.ContactID, Phone: rec.From, Keyword: rec.Word, MessageId: rec.MessageID,
		})
	case rec.Kind == domain.KindKeyword:
		payloads = append(payloads, &eventsv1.KeywordOptIn{
			ContactId: rec.ContactID, Phone: rec.From, Keyword: rec.Word,
			Groups: intent.Keyword.Groups, NewContact: rec.ContactCreated,
		})
	}
	out := make([]event.Envelope, 0, len(payloads))
	for _, p := range payloads {
		env, err := event.New(rec.AccountID, p, rec.ReceivedAt)
		if err != nil {
			return nil, fmt.Errorf("build event: %w", err)
		}
		out = append(out, env)
	}
	return out, nil
}
