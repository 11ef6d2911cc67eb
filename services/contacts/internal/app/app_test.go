package app

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/customertext/webhooks/libs/event"
	"github.com/customertext/webhooks/services/contacts/internal/domain"
)

// fakeStore keeps contacts in memory; a transaction works on a copy that replaces the contacts
// only when fn succeeds, like a real commit.
type fakeStore struct {
	contacts map[string]domain.Contact
	events   []event.Envelope
	headers  []nats.Header
	writes   int
	failWith error
}

type fakeTx struct {
	s        *fakeStore
	contacts map[string]domain.Contact
	events   []event.Envelope
	headers  []nats.Header
	writes   int
}

func (s *fakeStore) InTx(_ context.Context, fn func(tx Tx) error) error {
	tx := &fakeTx{s: s, contacts: maps.Clone(s.contacts)}
	if err := fn(tx); err != nil {
		return err
	}
	if s.failWith != nil {
		return s.failWith
	}
	s.contacts, s.writes = tx.contacts, s.writes+tx.writes
	s.events, s.headers = append(s.events, tx.events...), append(s.headers, tx.headers...)
	return nil
}

func (s *fakeStore) Get(_ context.Context, _, id string) (domain.Contact, error) {
	c, ok := s.contacts[id]
	if !ok {
		return domain.Contact{}, domain.ErrNotFound
	}
	return c, nil
}

func (s *fakeStore) GetByPhone(context.Context, string, string) (domain.Contact, error) {
	return domain.Contact{}, domain.ErrNotFound
}

func (s *fakeStore) List(context.Context, string, string, string, int) ([]domain.Contact, error) {
	return nil, nil
}

func (s *fakeStore) ListGroups(context.Context, string) ([]domain.Group, error) { return nil, nil }

func (t *fakeTx) Insert(_ context.Context, c domain.Contact) (domain.Contact, error) {
	for _, o := range t.contacts {
		if o.Phone == c.Phone {
			return domain.Contact{}, domain.ErrDuplicatePhone
		}
	}
	t.contacts[c.ID] = c
	t.writes++
	return c, nil
}

func (t *fakeTx) ExistingPhones(context.Context, string, []string) (map[string]bool, error) {
	return nil, nil
}

func (t *fakeTx) GetForUpdate(_ context.Context, _, id string) (domain.Contact, error) {
	c, ok := t.contacts[id]
	if !ok {
		return domain.Contact{}, domain.ErrNotFound
	}
	return c, nil
}

func (t *fakeTx) Update(_ context.Context, c domain.Contact) (domain.Contact, error) {
	t.contacts[c.ID] = c
	t.writes++
	return c, nil
}

func (t *fakeTx) AddGroups(context.Context, string, string, []string) ([]string, error) {
	return nil, errors.New("not used")
}

func (t *fakeTx) Delete(_ context.Context, _, id string) error {
	delete(t.contacts, id)
	return nil
}

func (t *fakeTx) CreateGroup(context.Context, string, domain.Group) error { return nil }

func (t *fakeTx) AddEvent(_ context.Context, env event.Envelope, h nats.Header) error {
	t.events = append(t.events, env)
	t.headers = append(t.headers, h)
	return nil
}

func newService(t *testing.T, store *fakeStore) *Service {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	at := time.Date(2026, 4, 25, 14, 30, 0, 123456789, time.UTC)
	return New(Deps{
		Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: m,
		Inject: func(_ context.Context, h nats.Header) { h.Set("traceparent", "00-trace-span-01") },
		Now:    func() time.Time { return at },
	})
}

func TestCreateContactEmitsOneEventWithTraceHeaders(t *testing.T) {
	t.Parallel()
	store := &fakeStore{contacts: map[string]domain.Contact{}}
	svc := newService(t, store)
	c, err := svc.CreateContact(context.Background(), CreateContact{AccountID: "acct_1", Source: "keyword_optin", Keyword: "JOIN",
		Contact: domain.ContactInput{FirstName: " Jane ", Phone: "(555) 123-4567", Groups: []string{"b", "A"}}})
	if err != nil {
		t.Fatalf("CreateContact: %v", err)
	}
	if len(store.events) != 1 {
		t.Fatalf("%d events, want 1", len(store.events))
	}
	env := store.events[0]
	if env.Event != event.NewContact || env.AccountID != "acct_1" || env.Timestamp != "2026-04-25T14:30:00.123456Z" {
		t.Errorf("envelope = %+v, want new_contact for acct_1 at the (microsecond) creation time", env)
	}
	var data map[string]any
	if err := json.Unmarshal(env.Data, &data); err != nil {
		t.Fatalf("data: %v", err)
	}
	want := map[string]any{"contact_id": c.ID, "first_name": "Jane", "last_name": "", "phone": "+15551234567", "email": "",
		"groups": []any{"A", "b"}, "source": "keyword_optin", "keyword": "JOIN"}
	if diff := cmp.Diff(want, data); diff != "" {
		t.Errorf("data mismatch (-want +got):\n%s", diff)
	}
	if got := store.headers[0].Get("traceparent"); got != "00-trace-span-01" {
		t.Errorf("traceparent = %q, want the injected one", got)
	}
}

func TestUpdateContactWritesNothingWhenNothingChanges(t *testing.T) {
	t.Parallel()
	store := &fakeStore{contacts: map[string]domain.Contact{
		"ct_1": {ID: "ct_1", AccountID: "acct_1", FirstName: "Jane", Phone: "+15551234567", Groups: []string{"vip"}},
	}}
	svc := newService(t, store)
	c, changed, err := svc.UpdateContact(context.Background(), UpdateContact{AccountID: "acct_1", ID: "ct_1",
		Mask: []string{"first_name", "groups"}, Contact: domain.ContactInput{FirstName: "Jane ", Groups: []string{"VIP"}}})
	if err != nil {
		t.Fatalf("UpdateContact: %v", err)
	}
	if len(changed) != 0 || store.writes != 0 || len(store.events) != 0 {
		t.Errorf("changed=%v writes=%d events=%d, want none", changed, store.writes, len(store.events))
	}
	if c.FirstName != "Jane" {
		t.Errorf("returned first_name %q, want Jane", c.FirstName)
	}
}

func TestFailedCommitLeavesNoEvent(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	store := &fakeStore{contacts: map[string]domain.Contact{}, failWith: boom}
	svc := newService(t, store)
	_, err := svc.CreateContact(context.Background(), CreateContact{AccountID: "acct_1", Contact: domain.ContactInput{Phone: "+15551234567"}})
	if !errors.Is(err, boom) {
		t.Fatalf("CreateContact error = %v, want it to wrap %v", err, boom)
	}
	if len(store.contacts) != 0 || len(store.events) != 0 {
		t.Errorf("contacts=%d events=%d after a failed commit, want 0 and 0", len(store.contacts), len(store.events))
	}
}
