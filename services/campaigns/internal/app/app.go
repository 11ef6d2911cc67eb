// Package app holds campaigns' use cases: creating a campaign, starting its send, and the
// sender that resolves the audience, sends through the SMS provider with bounded concurrency,
// records each recipient's result and emits campaign_sent, resuming after a crash.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/customertext/webhooks/libs/event"
	"github.com/customertext/webhooks/services/campaigns/internal/domain"
)

// ErrNotFound: the account has no such campaign.
var ErrNotFound = errors.New("not found")

// Ref names a campaign.
type Ref struct {
	AccountID string
	ID        string
}

// Contact is what a send needs to know about a member of a target group.
type Contact struct {
	ID       string
	Phone    string
	OptedOut bool
}

// Recipient is one contact of a campaign's audience and its result.
type Recipient struct {
	ContactID string
	Phone     string
	Result    domain.Result
	MessageID string
	Error     string
}

// Contacts is the contacts service.
type Contacts interface {
	GroupMembers(ctx context.Context, accountID, group string) ([]Contact, error)
	// Get returns ErrNotFound when the contact no longer exists.
	Get(ctx context.Context, accountID, id string) (Contact, error)
}

// Store is campaigns' PostgreSQL schema.
type Store interface {
	Create(ctx context.Context, c domain.Campaign) error
	Get(ctx context.Context, accountID, id string) (domain.Campaign, error)
	StartSending(ctx context.Context, accountID, id string, now time.Time) (domain.Campaign, error)
	Sending(ctx context.Context) ([]Ref, error)
	Lock(ctx context.Context, id string) (unlock func(), ok bool, err error)
	AudienceResolved(ctx context.Context, id string) (bool, error)
	SaveAudience(ctx context.Context, id string, rs []Recipient) error
	Pending(ctx context.Context, id string, limit int) ([]Recipient, error)
	Record(ctx context.Context, id string, r Recipient) error
	Finish(ctx context.Context, id string, now time.Time, build func(domain.Campaign) (event.Envelope, error)) (domain.Campaign, bool, error)
}

// Metrics counts recipients by result; no per-account labels.
type Metrics interface {
	Recipient(result domain.Result)
	CampaignSent()
}

// Service is campaigns' application layer.
type Service struct {
	store  Store
	sender *Sender
	now    func() time.Time
}

// NewService wires the use cases; sender is woken when a send starts.
func NewService(store Store, sender *Sender) *Service {
	return &Service{store: store, sender: sender, now: time.Now}
}

// Create stores a draft campaign.
func (s *Service) Create(ctx context.Context, accountID, name, body string, groups []string) (domain.Campaign, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return domain.Campaign{}, fmt.Errorf("campaign id: %w", err)
	}
	c, err := domain.NewCampaign("cmp_"+id.String(), accountID, name, body, groups, s.now())
	if err != nil {
		return domain.Campaign{}, err
	}
	if err := s.store.Create(ctx, c); err != nil {
		return domain.Campaign{}, fmt.Errorf("create campaign: %w", err)
	}
	return c, nil
}

// Get returns a campaign.
func (s *Service) Get(ctx context.Context, accountID, id string) (domain.Campaign, error) {
	if err := requireRef(accountID, id); err != nil {
		return domain.Campaign{}, err
	}
	c, err := s.store.Get(ctx, accountID, id)
	if err != nil {
		return domain.Campaign{}, fmt.Errorf("get campaign: %w", err)
	}
	return c, nil
}

// Send starts sending a draft in the background and returns it in state SENDING. Sending a
// campaign that is already SENDING or SENT changes nothing and returns it as it is.
func (s *Service) Send(ctx context.Context, accountID, id string) (domain.Campaign, error) {
	if err := requireRef(accountID, id); err != nil {
		return domain.Campaign{}, err
	}
	c, err := s.store.StartSending(ctx, accountID, id, s.now().UTC())
	if err != nil {
		return domain.Campaign{}, fmt.Errorf("send campaign: %w", err)
	}
	if c.State == domain.StateSending {
		s.sender.Wake()
	}
	return c, nil
}

func requireRef(accountID, id string) error {
	if err := domain.ValidateAccountID(accountID); err != nil {
		return err
	}
	if id == "" {
		return fmt.Errorf("id: required: %w", domain.ErrInvalid)
	}
	return nil
}
