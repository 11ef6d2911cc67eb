// Package ports translates the ContactService gRPC API to the use cases in app, and the use
// cases' errors to gRPC status codes (in one place: toStatus).
package ports

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	"github.com/customertext/webhooks/libs/server"
	"github.com/customertext/webhooks/services/contacts/internal/app"
	"github.com/customertext/webhooks/services/contacts/internal/domain"
)

// GRPC implements contactsv1.ContactServiceServer.
type GRPC struct {
	contactsv1.UnimplementedContactServiceServer
	app    *app.Service
	logger *slog.Logger
}

// NewGRPC returns the gRPC handlers of svc.
func NewGRPC(svc *app.Service, logger *slog.Logger) *GRPC {
	return &GRPC{app: svc, logger: logger}
}

// CreateContact implements contactsv1.ContactServiceServer.
func (g *GRPC) CreateContact(ctx context.Context, req *contactsv1.CreateContactRequest) (*contactsv1.CreateContactResponse, error) {
	if req.GetContact() == nil {
		return nil, status.Error(codes.InvalidArgument, "contact: is required")
	}
	c, err := g.app.CreateContact(ctx, app.CreateContact{
		AccountID: req.GetAccountId(),
		Contact:   input(req.GetContact()),
		Region:    req.GetDefaultRegion(),
		Source:    req.GetSource(),
		Keyword:   req.GetKeyword(),
	})
	if err != nil {
		return nil, g.toStatus(ctx, err)
	}
	return &contactsv1.CreateContactResponse{Contact: toProto(c)}, nil
}

// GetContact implements contactsv1.ContactServiceServer.
func (g *GRPC) GetContact(ctx context.Context, req *contactsv1.GetContactRequest) (*contactsv1.GetContactResponse, error) {
	c, err := g.app.GetContact(ctx, req.GetAccountId(), req.GetId())
	if err != nil {
		return nil, g.toStatus(ctx, err)
	}
	return &contactsv1.GetContactResponse{Contact: toProto(c)}, nil
}

// ListContacts implements contactsv1.ContactServiceServer.
func (g *GRPC) ListContacts(ctx context.Context, req *contactsv1.ListContactsRequest) (*contactsv1.ListContactsResponse, error) {
	cs, next, err := g.app.ListContacts(ctx, app.ListContacts{
		AccountID: req.GetAccountId(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(), Group: req.GetGroup(),
	})
	if err != nil {
		return nil, g.toStatus(ctx, err)
	}
	resp := &contactsv1.ListContactsResponse{NextPageToken: next, Contacts: make([]*contactsv1.Contact, len(cs))}
	for i, c := range cs {
		resp.Contacts[i] = toProto(c)
	}
	return resp, nil
}

// UpdateContact implements contactsv1.ContactServiceServer.
func (g *GRPC) UpdateContact(ctx context.Context, req *contactsv1.UpdateContactRequest) (*contactsv1.UpdateContactResponse, error) {
	if req.GetContact() == nil {
		return nil, status.Error(codes.InvalidArgument, "contact: is required")
	}
	c, changed, err := g.app.UpdateContact(ctx, app.UpdateContact{
		AccountID: req.GetAccountId(),
		ID:        req.GetContact().GetId(),
		Contact:   input(req.GetContact()),
		Mask:      req.GetUpdateMask().GetPaths(),
		Region:    req.GetDefaultRegion(),
	})
	if err != nil {
		return nil, g.toStatus(ctx, err)
	}
	return &contactsv1.UpdateContactResponse{Contact: toProto(c), ChangedFields: changed}, nil
}

// DeleteContact implements contactsv1.ContactServiceServer.
func (g *GRPC) DeleteContact(ctx context.Context, req *contactsv1.DeleteContactRequest) (*contactsv1.DeleteContactResponse, error) {
	if err := g.app.DeleteContact(ctx, req.GetAccountId(), req.GetId()); err != nil {
		return nil, g.toStatus(ctx, err)
	}
	return &contactsv1.DeleteContactResponse{}, nil
}

// CreateGroup implements contactsv1.ContactServiceServer.
func (g *GRPC) CreateGroup(ctx context.Context, req *contactsv1.CreateGroupRequest) (*contactsv1.CreateGroupResponse, error) {
	grp, err := g.app.CreateGroup(ctx, req.GetAccountId(), req.GetName())
	if err != nil {
		return nil, g.toStatus(ctx, err)
	}
	return &contactsv1.CreateGroupResponse{Group: &contactsv1.Group{Id: grp.ID, Name: grp.Name}}, nil
}

// ListGroups implements contactsv1.ContactServiceServer.
func (g *GRPC) ListGroups(ctx context.Context, req *contactsv1.ListGroupsRequest) (*contactsv1.ListGroupsResponse, error) {
	gs, err := g.app.ListGroups(ctx, req.GetAccountId())
	if err != nil {
		return nil, g.toStatus(ctx, err)
	}
	resp := &contactsv1.ListGroupsResponse{Groups: make([]*contactsv1.Group, len(gs))}
	for i, grp := range gs {
		resp.Groups[i] = &contactsv1.Group{Id: grp.ID, Name: grp.Name}
	}
	return resp, nil
}

// ImportContacts implements contactsv1.ContactServiceServer.
func (g *GRPC) ImportContacts(ctx context.Context, req *contactsv1.ImportContactsRequest) (*contactsv1.ImportContactsResponse, error) {
	res, err := g.app.ImportContacts(ctx, req.GetAccountId(), req.GetCsv(), req.GetDefaultRegion())
	if err != nil {
		return nil, g.toStatus(ctx, err)
	}
	resp := &contactsv1.ImportContactsResponse{Imported: int32(res.Imported), Errors: make([]*contactsv1.ImportError, len(res.Errors))}
	for i, e := range res.Errors {
		resp.Errors[i] = &contactsv1.ImportError{Line: int32(e.Line), Reason: e.Reason}
	}
	return resp, nil
}

// GetContactByPhone implements contactsv1.ContactServiceServer.
func (g *GRPC) GetContactByPhone(ctx context.Context, req *contactsv1.GetContactByPhoneRequest) (*contactsv1.GetContactByPhoneResponse, error) {
	c, err := g.app.GetContactByPhone(ctx, req.GetAccountId(), req.GetPhone(), req.GetDefaultRegion())
	if err != nil {
		return nil, g.toStatus(ctx, err)
	}
	return &contactsv1.GetContactByPhoneResponse{Contact: toProto(c)}, nil
}

// SetOptOut implements contactsv1.ContactServiceServer.
func (g *GRPC) SetOptOut(ctx context.Context, req *contactsv1.SetOptOutRequest) (*contactsv1.SetOptOutResponse, error) {
	c, changed, err := g.app.SetOptOut(ctx, req.GetAccountId(), req.GetContactId(), req.GetOptedOut())
	if err != nil {
		return nil, g.toStatus(ctx, err)
	}
	return &contactsv1.SetOptOutResponse{Contact: toProto(c), Changed: changed}, nil
}

// AddContactToGroups implements contactsv1.ContactServiceServer.
func (g *GRPC) AddContactToGroups(ctx context.Context, req *contactsv1.AddContactToGroupsRequest) (*contactsv1.AddContactToGroupsResponse, error) {
	c, added, err := g.app.AddContactToGroups(ctx, req.GetAccountId(), req.GetContactId(), req.GetGroups())
	if err != nil {
		return nil, g.toStatus(ctx, err)
	}
	return &contactsv1.AddContactToGroupsResponse{Contact: toProto(c), Added: added}, nil
}

// toStatus maps a use case error to a gRPC status; the rest goes to the platform's rule
// (server.Status): UNAVAILABLE when a dependency is down, INTERNAL without details for bugs.
func (g *GRPC) toStatus(ctx context.Context, err error) error {
	var invalid *domain.InvalidError
	switch {
	case errors.As(err, &invalid):
		return status.Error(codes.InvalidArgument, invalid.Error())
	case errors.Is(err, domain.ErrNotFound):
		return status.Error(codes.NotFound, "contact not found")
	case errors.Is(err, domain.ErrDuplicatePhone):
		return status.Error(codes.AlreadyExists, "phone: another contact of the account has this phone")
	case errors.Is(err, domain.ErrGroupExists):
		return status.Error(codes.AlreadyExists, "name: the account already has a group of this name")
	}
	return server.Status(ctx, g.logger, err)
}

func input(c *contactsv1.Contact) domain.ContactInput {
	return domain.ContactInput{
		FirstName: c.GetFirstName(), LastName: c.GetLastName(), Phone: c.GetPhone(), Email: c.GetEmail(),
		Groups: c.GetGroups(), OptedOut: c.GetOptedOut(),
	}
}

func toProto(c domain.Contact) *contactsv1.Contact {
	return &contactsv1.Contact{
		Id: c.ID, AccountId: c.AccountID, FirstName: c.FirstName, LastName: c.LastName, Phone: c.Phone,
		Email: c.Email, Groups: c.Groups, OptedOut: c.OptedOut,
		CreateTime: timestamppb.New(c.CreateTime), UpdateTime: timestamppb.New(c.UpdateTime),
	}
}
