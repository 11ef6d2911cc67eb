package index

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/streams"
)

// Source is the subscription service's WebhookConfigService as the syncer uses it.
type Source interface {
	ListWebhookConfigs(ctx context.Context, in *webhooksv1.ListWebhookConfigsRequest) (*webhooksv1.ListWebhookConfigsResponse, error)
	GetWebhookConfig(ctx context.Context, in *webhooksv1.GetWebhookConfigRequest) (*webhooksv1.GetWebhookConfigResponse, error)
}

// ClientSource adapts the generated gRPC client to Source.
type ClientSource struct {
	Client webhooksv1.WebhookConfigServiceClient
}

// ListWebhookConfigs implements Source.
func (c ClientSource) ListWebhookConfigs(ctx context.Context, in *webhooksv1.ListWebhookConfigsRequest) (*webhooksv1.ListWebhookConfigsResponse, error) {
	return c.Client.ListWebhookConfigs(ctx, in)
}

// GetWebhookConfig implements Source.
func (c ClientSource) GetWebhookConfig(ctx context.Context, in *webhooksv1.GetWebhookConfigRequest) (*webhooksv1.GetWebhookConfigResponse, error) {
	return c.Client.GetWebhookConfig(ctx, in)
}

// SyncConfig tunes a Syncer.
type SyncConfig struct {
	// ResyncInterval between full listings; default 30 s.
	ResyncInterval time.Duration
	// PageSize of a listing; default 500.
	PageSize int32
	// CallTimeout bounds one RPC; default 10 s.
	CallTimeout time.Duration
}

// Syncer keeps an Index current: a full listing at start and every ResyncInterval, and a fresh
// read of one webhook whenever its change notification arrives on core NATS.
type Syncer struct {
	idx    *Index
	src    Source
	nc     *nats.Conn
	logger *slog.Logger
	cfg    SyncConfig
}

// NewSyncer builds a syncer.
func NewSyncer(idx *Index, src Source, nc *nats.Conn, logger *slog.Logger, cfg SyncConfig) *Syncer {
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 30 * time.Second
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 500
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	return &Syncer{idx: idx, src: src, nc: nc, logger: logger.With("component", "index"), cfg: cfg}
}

// Run subscribes to change notifications, loads the index (retrying until it succeeds) and then
// resyncs periodically until ctx ends.
func (s *Syncer) Run(ctx context.Context) error {
	// Subscribe before the first listing so no change made during it is missed.
	notes := make(chan *nats.Msg, 4096)
	sub, err := s.nc.ChanSubscribe(streams.WebhookChangesPrefix+"*", notes)
	if err != nil {
		return fmt.Errorf("subscribe to webhook changes: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	backoff := 250 * time.Millisecond
	for {
		err := s.Resync(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		s.logger.Warn("initial webhook load failed; retrying", "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
	s.logger.Info("webhook index loaded", "webhooks", s.idx.Len())

	tick := time.NewTicker(s.cfg.ResyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := s.Resync(ctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("webhook resync failed; keeping the current index", "error", err)
			}
		case m := <-notes:
			id := strings.TrimPrefix(m.Subject, streams.WebhookChangesPrefix)
			if _, _, err := s.Refresh(ctx, id); err != nil && ctx.Err() == nil {
				// The periodic resync converges anyway.
				s.logger.Warn("refresh webhook after change notification failed", "webhook_id", id, "error", err)
			}
		}
	}
}

// Resync lists every webhook and replaces the index with the listing.
func (s *Syncer) Resync(ctx context.Context) error {
	started := time.Now()
	var all []Webhook
	token := ""
	for {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
		resp, err := s.src.ListWebhookConfigs(cctx, &webhooksv1.ListWebhookConfigsRequest{PageSize: s.cfg.PageSize, PageToken: token})
		cancel()
		if err != nil {
			return fmt.Errorf("list webhook configs: %w", err)
		}
		for _, c := range resp.GetConfigs() {
			w, err := FromProto(c)
			if err != nil {
				s.logger.Warn("skipping invalid webhook config", "webhook_id", c.GetId(), "error", err)
				continue
			}
			all = append(all, w)
		}
		token = resp.GetNextPageToken()
		if token == "" {
			break
		}
	}
	s.idx.Replace(all, started)
	return nil
}

// Refresh reads one webhook from the source and applies it: stored when found (unless the
// index holds a newer version), removed when the source answers NOT_FOUND. It returns the
// webhook as the index now holds it.
func (s *Syncer) Refresh(ctx context.Context, id string) (Webhook, bool, error) {
	if id == "" {
		return Webhook{}, false, errors.New("refresh webhook: empty id")
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	resp, err := s.src.GetWebhookConfig(cctx, &webhooksv1.GetWebhookConfigRequest{Id: id})
	if status.Code(err) == codes.NotFound {
		s.idx.Remove(id)
		return Webhook{}, false, nil
	}
	if err != nil {
		return Webhook{}, false, fmt.Errorf("get webhook config %s: %w", id, err)
	}
	w, err := FromProto(resp.GetConfig())
	if err != nil {
		return Webhook{}, false, fmt.Errorf("refresh webhook: %w", err)
	}
	s.idx.Upsert(w)
	got, ok := s.idx.Get(id)
	return got, ok, nil
}

// Lookup returns the webhook from the index, asking the source when this replica has not heard
// of it yet (a job fanned out by a replica whose index was ahead). found is false when the
// source does not know the webhook either.
func (s *Syncer) Lookup(ctx context.Context, id string) (w Webhook, found bool, err error) {
	if w, ok := s.idx.Get(id); ok {
		return w, true, nil
	}
	if s.idx.Deleted(id) {
		return Webhook{}, false, nil
	}
	return s.Refresh(ctx, id)
}
