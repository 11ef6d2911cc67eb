// Package ports translates transports into use cases: the MessagingService gRPC API and the
// carriers' inbound-SMS HTTP endpoint.
package ports

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	messagingv1 "github.com/customertext/webhooks/libs/gen/customertext/messaging/v1"
	"github.com/customertext/webhooks/libs/server"
	"github.com/customertext/webhooks/services/messaging/internal/app"
	"github.com/customertext/webhooks/services/messaging/internal/domain"
)

// GRPC serves MessagingService.
type GRPC struct {
	messagingv1.UnimplementedMessagingServiceServer
	svc    *app.Service
	logger *slog.Logger
}

// NewGRPC returns the MessagingService implementation.
func NewGRPC(svc *app.Service, logger *slog.Logger) *GRPC {
	return &GRPC{svc: svc, logger: logger}
}

// RegisterNumber implements MessagingService. The token is never echoed or logged.
func (g *GRPC) RegisterNumber(ctx context.Context, req *messagingv1.RegisterNumberRequest) (*messagingv1.RegisterNumberResponse, error) {
	if err := g.svc.RegisterNumber(ctx, req.GetAccountId(), req.GetPhoneNumber(), req.GetCarrierAuthToken()); err != nil {
		return nil, g.status(ctx, "register number", err)
	}
	return &messagingv1.RegisterNumberResponse{}, nil
}

// CreateKeyword implements MessagingService.
func (g *GRPC) CreateKeyword(ctx context.Context, req *messagingv1.CreateKeywordRequest) (*messagingv1.CreateKeywordResponse, error) {
	if req.GetKeyword() == nil {
		return nil, status.Error(codes.InvalidArgument, "keyword: required")
	}
	k, err := g.svc.CreateKeyword(ctx, req.GetAccountId(), req.GetKeyword().GetKeyword(), req.GetKeyword().GetGroups(), req.GetKeyword().GetReply())
	if err != nil {
		return nil, g.status(ctx, "create keyword", err)
	}
	return &messagingv1.CreateKeywordResponse{Keyword: keywordProto(k)}, nil
}

// ListKeywords implements MessagingService.
func (g *GRPC) ListKeywords(ctx context.Context, req *messagingv1.ListKeywordsRequest) (*messagingv1.ListKeywordsResponse, error) {
	ks, err := g.svc.ListKeywords(ctx, req.GetAccountId())
	if err != nil {
		return nil, g.status(ctx, "list keywords", err)
	}
	resp := &messagingv1.ListKeywordsResponse{}
	for _, k := range ks {
		resp.Keywords = append(resp.Keywords, keywordProto(k))
	}
	return resp, nil
}

// ListSentMessages implements MessagingService.
func (g *GRPC) ListSentMessages(ctx context.Context, req *messagingv1.ListSentMessagesRequest) (*messagingv1.ListSentMessagesResponse, error) {
	ms, err := g.svc.ListSentMessages(ctx, req.GetAccountId(), req.GetTo())
	if err != nil {
		return nil, g.status(ctx, "list sent messages", err)
	}
	resp := &messagingv1.ListSentMessagesResponse{}
	for _, m := range ms {
		resp.Messages = append(resp.Messages, &messagingv1.SentMessage{
			Id: m.ID, AccountId: m.AccountID, From: m.From, To: m.To, Body: m.Body, SendTime: timestamppb.New(m.SendTime),
		})
	}
	return resp, nil
}

func keywordProto(k domain.Keyword) *messagingv1.Keyword {
	return &messagingv1.Keyword{Keyword: k.Word, Groups: k.Groups, Reply: k.Reply}
}

// status maps use-case errors to gRPC status codes, in one place; the rest goes to the
// platform's rule (server.Status): UNAVAILABLE when a dependency is down, INTERNAL for bugs.
func (g *GRPC) status(ctx context.Context, op string, err error) error {
	switch {
	case errors.Is(err, domain.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, app.ErrAlreadyExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, app.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	}
	return server.Status(ctx, g.logger, fmt.Errorf("%s: %w", op, err))
}
