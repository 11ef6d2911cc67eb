// Package ports translates transports into use cases: the CampaignService gRPC API and the
// Prometheus metrics.
package ports

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	campaignsv1 "github.com/customertext/webhooks/libs/gen/customertext/campaigns/v1"
	"github.com/customertext/webhooks/libs/server"
	"github.com/customertext/webhooks/services/campaigns/internal/app"
	"github.com/customertext/webhooks/services/campaigns/internal/domain"
)

// GRPC serves CampaignService.
type GRPC struct {
	campaignsv1.UnimplementedCampaignServiceServer
	svc    *app.Service
	logger *slog.Logger
}

// NewGRPC returns the CampaignService implementation.
func NewGRPC(svc *app.Service, logger *slog.Logger) *GRPC {
	return &GRPC{svc: svc, logger: logger}
}

// CreateCampaign implements CampaignService.
func (g *GRPC) CreateCampaign(ctx context.Context, req *campaignsv1.CreateCampaignRequest) (*campaignsv1.CreateCampaignResponse, error) {
	c, err := g.svc.Create(ctx, req.GetAccountId(), req.GetName(), req.GetBody(), req.GetTargetGroups())
	if err != nil {
		return nil, g.status(ctx, "create campaign", err)
	}
	return &campaignsv1.CreateCampaignResponse{Campaign: campaignProto(c)}, nil
}

// SendCampaign implements CampaignService.
func (g *GRPC) SendCampaign(ctx context.Context, req *campaignsv1.SendCampaignRequest) (*campaignsv1.SendCampaignResponse, error) {
	c, err := g.svc.Send(ctx, req.GetAccountId(), req.GetId())
	if err != nil {
		return nil, g.status(ctx, "send campaign", err)
	}
	return &campaignsv1.SendCampaignResponse{Campaign: campaignProto(c)}, nil
}

// GetCampaign implements CampaignService.
func (g *GRPC) GetCampaign(ctx context.Context, req *campaignsv1.GetCampaignRequest) (*campaignsv1.GetCampaignResponse, error) {
	c, err := g.svc.Get(ctx, req.GetAccountId(), req.GetId())
	if err != nil {
		return nil, g.status(ctx, "get campaign", err)
	}
	return &campaignsv1.GetCampaignResponse{Campaign: campaignProto(c)}, nil
}

var states = map[domain.State]campaignsv1.CampaignState{
	domain.StateDraft:   campaignsv1.CampaignState_CAMPAIGN_STATE_DRAFT,
	domain.StateSending: campaignsv1.CampaignState_CAMPAIGN_STATE_SENDING,
	domain.StateSent:    campaignsv1.CampaignState_CAMPAIGN_STATE_SENT,
}

func campaignProto(c domain.Campaign) *campaignsv1.Campaign {
	return &campaignsv1.Campaign{
		Id: c.ID, AccountId: c.AccountID, Name: c.Name, Body: c.Body, TargetGroups: c.TargetGroups,
		State: states[c.State], Audience: int32(c.Audience), Sent: int32(c.Sent), Failed: int32(c.Failed),
		SkippedOptedOut: int32(c.Skipped), StartTime: ts(c.StartTime), FinishTime: ts(c.FinishTime),
	}
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// status maps use-case errors to gRPC status codes, in one place; the rest goes to the
// platform's rule (server.Status): UNAVAILABLE when a dependency is down, INTERNAL for bugs.
func (g *GRPC) status(ctx context.Context, op string, err error) error {
	switch {
	case errors.Is(err, domain.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, app.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	}
	return server.Status(ctx, g.logger, fmt.Errorf("%s: %w", op, err))
}
