package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/customertext/webhooks/libs/event"
	eventsv1 "github.com/customertext/webhooks/libs/gen/customertext/events/v1"
	"github.com/customertext/webhooks/libs/sms"
	"github.com/customertext/webhooks/services/campaigns/internal/domain"
)

// SenderConfig tunes a Sender.
type SenderConfig struct {
	// Concurrency bounds the provider calls in flight per campaign (default 8).
	Concurrency int
	// ScanInterval is how often SENDING campaigns are looked for, besides at start and when a
	// send starts (default 30 s). It picks up campaigns whose sender crashed or failed.
	ScanInterval time.Duration
	// BatchSize is how many pending recipients are read at a time (default 500).
	BatchSize int
	// MaxCampaigns bounds the campaigns sent at once by this process (default 4); each holds a
	// database connection for its lock, so this must stay well below the pool size.
	MaxCampaigns int
}

// Sender sends campaigns in state SENDING. It owns every goroutine it starts; Run returns only
// after they have stopped. Several replicas may run: a PostgreSQL advisory lock gives each
// campaign to one of them, and the provider's idempotency key covers the rest.
type Sender struct {
	store    Store
	contacts Contacts
	provider sms.Provider
	metrics  Metrics
	logger   *slog.Logger
	cfg      SenderConfig
	now      func() time.Time
	wake     chan struct{}

	mu       sync.Mutex
	inflight map[string]bool
	// waiting: a campaign was left for lack of a free slot; a release wakes Run.
	waiting bool
}

// NewSender builds a sender.
func NewSender(store Store, contacts Contacts, provider sms.Provider, metrics Metrics, logger *slog.Logger, cfg SenderConfig) *Sender {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = 30 * time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.MaxCampaigns <= 0 {
		cfg.MaxCampaigns = 4
	}
	return &Sender{store: store, contacts: contacts, provider: provider, metrics: metrics,
		logger: logger.With("component", "campaign_sender"), cfg: cfg, now: time.Now,
		wake: make(chan struct{}, 1), inflight: map[string]bool{}}
}

// Wake makes Run look for SENDING campaigns now.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run sends (and, after a crash, resumes) SENDING campaigns until ctx ends, then waits for the
// sends in flight to stop; their unsent recipients stay pending for the next run.
func (s *Sender) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(s.cfg.ScanInterval)
	defer t.Stop()
	for {
		refs, err := s.store.Sending(ctx)
		if err != nil && ctx.Err() == nil {
			s.logger.Warn("look for sending campaigns", "error", err)
		}
		for _, ref := range refs {
			if !s.claim(ref.ID) {
				continue
			}
			wg.Go(func() {
				defer s.release(ref.ID)
				if err := s.SendOne(ctx, ref); err != nil && ctx.Err() == nil {
					s.logger.Warn("campaign send interrupted; it will be resumed", "campaign_id", ref.ID, "error", err)
				}
			})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-t.C:
		}
	}
}

func (s *Sender) claim(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight[id] {
		return false
	}
	if len(s.inflight) >= s.cfg.MaxCampaigns {
		s.waiting = true
		return false
	}
	s.inflight[id] = true
	return true
}

func (s *Sender) release(id string) {
	s.mu.Lock()
	delete(s.inflight, id)
	wake := s.waiting
	s.waiting = false
	s.mu.Unlock()
	if wake {
		// A slot is free for a campaign left waiting. Only then: waking after every release
		// would spin on a campaign that keeps failing (contacts down) instead of waiting for
		// the next scan.
		s.Wake()
	}
}

// SendOne sends one SENDING campaign to its whole audience and emits campaign_sent. It is safe
// to call again after any failure: resolved recipients are not resolved again, recorded ones
// are not sent again, and a recipient whose result was not recorded is sent again with the same
// idempotency key, which the provider deduplicates.
func (s *Sender) SendOne(ctx context.Context, ref Ref) error {
	unlock, ok, err := s.store.Lock(ctx, ref.ID)
	if err != nil {
		return err
	}
	if !ok {
		return nil // another replica is sending it
	}
	defer unlock()
	c, err := s.store.Get(ctx, ref.AccountID, ref.ID)
	if err != nil {
		return err
	}
	if c.State != domain.StateSending {
		return nil
	}
	resolved, err := s.store.AudienceResolved(ctx, c.ID)
	if err != nil {
		return err
	}
	if !resolved {
		if err := s.resolveAudience(ctx, c); err != nil {
			return err
		}
	}
	for {
		batch, err := s.store.Pending(ctx, c.ID, s.cfg.BatchSize)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			break
		}
		if err := s.sendBatch(ctx, c, batch); err != nil {
			return err
		}
	}
	done, finished, err := s.store.Finish(ctx, c.ID, s.now().UTC(), campaignSent)
	if err != nil {
		return fmt.Errorf("finish campaign: %w", err)
	}
	if finished {
		s.metrics.CampaignSent()
		s.logger.Info("campaign sent", "campaign_id", c.ID, "audience", done.Audience, "sent", done.Sent,
			"failed", done.Failed, "skipped_opted_out", done.Skipped)
	}
	return nil
}

// resolveAudience writes one recipient per distinct member of the target groups: skipped when
// opted out, pending otherwise.
func (s *Sender) resolveAudience(ctx context.Context, c domain.Campaign) error {
	seen := map[string]bool{}
	var rs []Recipient
	for _, g := range c.TargetGroups {
		members, err := s.contacts.GroupMembers(ctx, c.AccountID, g)
		if err != nil {
			return fmt.Errorf("resolve audience: %w", err)
		}
		for _, m := range members {
			if seen[m.ID] {
				continue
			}
			seen[m.ID] = true
			r := Recipient{ContactID: m.ID, Phone: m.Phone, Result: domain.ResultPending}
			if m.OptedOut {
				r.Result = domain.ResultSkipped
			}
			rs = append(rs, r)
		}
	}
	if err := s.store.SaveAudience(ctx, c.ID, rs); err != nil {
		return fmt.Errorf("save audience: %w", err)
	}
	for _, r := range rs {
		if r.Result == domain.ResultSkipped {
			s.metrics.Recipient(domain.ResultSkipped)
		}
	}
	return nil
}

// sendBatch sends to pending recipients, Concurrency at a time, recording each result.
func (s *Sender) sendBatch(ctx context.Context, c domain.Campaign, batch []Recipient) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.Concurrency)
	for _, r := range batch {
		g.Go(func() error {
			// The audience was resolved when the send started; a contact may have opted out
			// (or been deleted) since, and an opted-out contact is never texted.
			current, err := s.contacts.Get(gctx, c.AccountID, r.ContactID)
			switch {
			case errors.Is(err, ErrNotFound):
				return s.record(gctx, c.ID, Recipient{ContactID: r.ContactID, Result: domain.ResultFailed, Error: "contact deleted before sending"})
			case err != nil:
				return fmt.Errorf("check contact %s: %w", r.ContactID, err) // stays pending
			case current.OptedOut:
				return s.record(gctx, c.ID, Recipient{ContactID: r.ContactID, Result: domain.ResultSkipped})
			}
			sent, err := s.send(gctx, sms.Message{AccountID: c.AccountID, To: r.Phone, Body: c.Body,
				IdempotencyKey: c.ID + ":" + r.ContactID})
			switch {
			case err == nil:
				r.Result, r.MessageID = domain.ResultSent, sent.ID
			case gctx.Err() != nil:
				return fmt.Errorf("send to %s: %w", r.ContactID, gctx.Err()) // stays pending
			default:
				r.Result, r.Error = domain.ResultFailed, truncate(err.Error(), 500)
			}
			return s.record(gctx, c.ID, r)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// sendAttempts bounds the provider calls for one recipient: a refused message fails at once,
// other errors are retried (the idempotency key makes a retry safe) before counting as failed.
const sendAttempts = 3

func (s *Sender) send(ctx context.Context, m sms.Message) (sms.Sent, error) {
	wait := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		sent, err := s.provider.Send(ctx, m)
		if err == nil || errors.Is(err, sms.ErrInvalidMessage) || attempt == sendAttempts || ctx.Err() != nil {
			return sent, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return sms.Sent{}, ctx.Err()
		case <-t.C:
		}
		wait *= 2
	}
}

func (s *Sender) record(ctx context.Context, campaignID string, r Recipient) error {
	if err := s.store.Record(ctx, campaignID, r); err != nil {
		return err
	}
	s.metrics.Recipient(r.Result)
	return nil
}

// truncate keeps at most n runes of s (error texts go into a text column).
func truncate(s string, n int) string {
	r := []rune(strings.ToValidUTF8(s, "?"))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n])
}

// campaignSent builds the campaign_sent event of a finished campaign.
func campaignSent(c domain.Campaign) (event.Envelope, error) {
	env, err := event.New(c.AccountID, &eventsv1.CampaignSent{
		CampaignId: c.ID, Name: c.Name, Audience: int32(c.Audience), Sent: int32(c.Sent), Failed: int32(c.Failed),
		SkippedOptedOut: int32(c.Skipped), StartedAt: c.StartTime.Format(time.RFC3339Nano),
		FinishedAt: c.FinishTime.Format(time.RFC3339Nano),
	}, c.FinishTime)
	if err != nil {
		return event.Envelope{}, fmt.Errorf("build campaign_sent: %w", err)
	}
	return env, nil
}
