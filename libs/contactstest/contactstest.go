// Package contactstest is an in-memory ContactService served over real gRPC, for tests of the
// services that call contacts. It checks the service credential like the real service and
// records how each contact was created.
package contactstest

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/customertext/webhooks/libs/auth"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
)

// Created records one CreateContact call.
type Created struct {
	AccountID string
	Phone     string
	Source    string
	Keyword   string
	// Groups the contact was created in.
	Groups []string
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	contactsv1.UnimplementedContactServiceServer

	mu       sync.Mutex
	next     int
	contacts map[string]*contactsv1.Contact // by id
	created  []Created
	// failures makes the next n calls of a method (by short name) fail with UNAVAILABLE.
	failures map[string]int
}

// Start serves a fake on a random loopback port, requiring token, until the test ends.
func Start(t testing.TB, token string) (*Server, string) {
	t.Helper()
	s := &Server{contacts: map[string]*contactsv1.Contact{}, failures: map[string]int{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(auth.ServiceInterceptor(token), s.failInterceptor))
	contactsv1.RegisterContactServiceServer(gs, s)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(lis) }()
	t.Cleanup(func() { gs.Stop(); <-done })
	return s, lis.Addr().String()
}

func (s *Server) failInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	name := info.FullMethod[len("/customertext.contacts.v1.ContactService/"):]
	s.mu.Lock()
	fail := s.failures[name] > 0
	if fail {
		s.failures[name]--
	}
	s.mu.Unlock()
	if fail {
		return nil, status.Error(codes.Unavailable, "injected failure")
	}
	return handler(ctx, req)
}

// FailNext makes the next n calls of method (e.g. "SetOptOut") fail with UNAVAILABLE.
func (s *Server) FailNext(method string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[method] += n
}

// Add stores a contact directly and returns its id.
func (s *Server) Add(accountID, phone string, optedOut bool, groups ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.insert(accountID, phone)
	c.OptedOut = optedOut
	c.Groups = groups
	return c.Id
}

func (s *Server) insert(accountID, phone string) *contactsv1.Contact {
	s.next++
	c := &contactsv1.Contact{Id: "c" + strconv.Itoa(s.next), AccountId: accountID, Phone: phone}
	s.contacts[c.Id] = c
	return c
}

// Contact returns a copy of the account's contact with that phone.
func (s *Server) Contact(accountID, phone string) (*contactsv1.Contact, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byPhone(accountID, phone)
	if c == nil {
		return nil, false
	}
	return proto.CloneOf(c), true
}

// Created returns the CreateContact calls so far.
func (s *Server) Created() []Created {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.created)
}

func (s *Server) byPhone(accountID, phone string) *contactsv1.Contact {
	for _, c := range s.contacts {
		if c.AccountId == accountID && c.Phone == phone {
			return c
		}
	}
	return nil
}

func (s *Server) get(accountID, id string) (*contactsv1.Contact, error) {
	c, ok := s.contacts[id]
	if !ok || c.AccountId != accountID {
		return nil, status.Errorf(codes.NotFound, "contact %s not found", id)
	}
	return c, nil
}

// CreateContact implements ContactService.
func (s *Server) CreateContact(_ context.Context, req *contactsv1.CreateContactRequest) (*contactsv1.CreateContactResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	phone := req.GetContact().GetPhone()
	if req.GetAccountId() == "" || phone == "" {
		return nil, status.Error(codes.InvalidArgument, "account_id and contact.phone are required")
	}
	if s.byPhone(req.GetAccountId(), phone) != nil {
		return nil, status.Errorf(codes.AlreadyExists, "phone %s exists", phone)
	}
	c := s.insert(req.GetAccountId(), phone)
	c.Groups = req.GetContact().GetGroups()
	s.created = append(s.created, Created{AccountID: req.GetAccountId(), Phone: phone, Source: req.GetSource(), Keyword: req.GetKeyword(),
		Groups: req.GetContact().GetGroups()})
	return &contactsv1.CreateContactResponse{Contact: proto.CloneOf(c)}, nil
}

// GetContact implements ContactService.
func (s *Server) GetContact(_ context.Context, req *contactsv1.GetContactRequest) (*contactsv1.GetContactResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(req.GetAccountId(), req.GetId())
	if err != nil {
		return nil, err
	}
	return &contactsv1.GetContactResponse{Contact: proto.CloneOf(c)}, nil
}

// GetContactByPhone implements ContactService.
func (s *Server) GetContactByPhone(_ context.Context, req *contactsv1.GetContactByPhoneRequest) (*contactsv1.GetContactByPhoneResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byPhone(req.GetAccountId(), req.GetPhone())
	if c == nil {
		return nil, status.Errorf(codes.NotFound, "no contact with phone %s", req.GetPhone())
	}
	return &contactsv1.GetContactByPhoneResponse{Contact: proto.CloneOf(c)}, nil
}

// SetOptOut implements ContactService.
func (s *Server) SetOptOut(_ context.Context, req *contactsv1.SetOptOutRequest) (*contactsv1.SetOptOutResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(req.GetAccountId(), req.GetContactId())
	if err != nil {
		return nil, err
	}
	changed := c.OptedOut != req.GetOptedOut()
	c.OptedOut = req.GetOptedOut()
	return &contactsv1.SetOptOutResponse{Contact: proto.CloneOf(c), Changed: changed}, nil
}

// AddContactToGroups implements ContactService.
func (s *Server) AddContactToGroups(_ context.Context, req *contactsv1.AddContactToGroupsRequest) (*contactsv1.AddContactToGroupsResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(req.GetAccountId(), req.GetContactId())
	if err != nil {
		return nil, err
	}
	var added []string
	for _, g := range req.GetGroups() {
		if !slices.Contains(c.Groups, g) {
			c.Groups = append(c.Groups, g)
			added = append(added, g)
		}
	}
	return &contactsv1.AddContactToGroupsResponse{Contact: proto.CloneOf(c), Added: added}, nil
}

// ListContacts implements ContactService: ordered by id number, filtered by group, paged.
func (s *Server) ListContacts(_ context.Context, req *contactsv1.ListContactsRequest) (*contactsv1.ListContactsResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []*contactsv1.Contact
	for _, c := range s.contacts {
		if c.AccountId == req.GetAccountId() && (req.GetGroup() == "" || slices.Contains(c.Groups, req.GetGroup())) {
			all = append(all, c)
		}
	}
	num := func(c *contactsv1.Contact) int { n, _ := strconv.Atoi(c.Id[1:]); return n }
	slices.SortFunc(all, func(a, b *contactsv1.Contact) int { return num(a) - num(b) })
	start := 0
	if tok := req.GetPageToken(); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(all) {
			return nil, status.Error(codes.InvalidArgument, "page_token: invalid")
		}
		start = n
	}
	size := int(req.GetPageSize())
	if size <= 0 || size > 1000 {
		size = 100
	}
	end := min(start+size, len(all))
	resp := &contactsv1.ListContactsResponse{}
	for _, c := range all[start:end] {
		resp.Contacts = append(resp.Contacts, proto.CloneOf(c))
	}
	if end < len(all) {
		resp.NextPageToken = fmt.Sprint(end)
	}
	return resp, nil
}
