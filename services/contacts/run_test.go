package main

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/customertext/webhooks/libs/event"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	"github.com/customertext/webhooks/libs/streams"
)

const account = "acct_1"

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkEnvelope asserts the envelope fields every event must carry.
func checkEnvelope(t *testing.T, got received, wantType string) {
	t.Helper()
	if got.Env.Event != wantType {
		t.Errorf("event = %q, want %q", got.Env.Event, wantType)
	}
	if got.Env.AccountID != account {
		t.Errorf("account_id = %q, want %q", got.Env.AccountID, account)
	}
	if want := streams.EventSubject(account, wantType); got.Subject != want {
		t.Errorf("subject = %q, want %q", got.Subject, want)
	}
	if !strings.HasPrefix(got.Env.EventID, "evt_") {
		t.Errorf("event_id = %q, want evt_<uuid>", got.Env.EventID)
	}
	if id := got.Header.Get("Nats-Msg-Id"); id != got.Env.EventID {
		t.Errorf("Nats-Msg-Id = %q, want the event id %q", id, got.Env.EventID)
	}
	ts, err := time.Parse(time.RFC3339Nano, got.Env.Timestamp)
	if err != nil || !strings.HasSuffix(got.Env.Timestamp, "Z") {
		t.Errorf("timestamp = %q, want RFC 3339 UTC (err %v)", got.Env.Timestamp, err)
	}
	if age := time.Since(ts); age < 0 || age > 10*time.Minute {
		t.Errorf("timestamp %s is %s from now, want recent", ts, age)
	}
	if got.Env.Test {
		t.Errorf("test = true, want false")
	}
}

// checkCatalogShape asserts that the event's data has exactly the fields of the catalog sample
// of its type, the schema the subscription service publishes.
func checkCatalogShape(t *testing.T, got received) {
	t.Helper()
	for _, spec := range event.Catalog() {
		if spec.Name != got.Env.Event {
			continue
		}
		env, err := event.New(account, spec.Sample, time.Now())
		if err != nil {
			t.Fatalf("catalog sample %s: %v", spec.Name, err)
		}
		var sample map[string]any
		if err := json.Unmarshal(env.Data, &sample); err != nil {
			t.Fatalf("decode catalog sample: %v", err)
		}
		if diff := cmp.Diff(slices.Sorted(maps.Keys(sample)), slices.Sorted(maps.Keys(got.Data))); diff != "" {
			t.Errorf("%s data fields differ from the catalog (-catalog +published):\n%s", spec.Name, diff)
		}
		return
	}
	t.Errorf("event type %q is not in the catalog", got.Env.Event)
}

func TestCreateContactPublishesNewContact(t *testing.T) {
	ns := startNATS(t)
	svc := startService(t, ns.ClientURL())
	events := svc.readEvents(t, streams.EventSubject(account, event.NewContact))

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	tests := []struct {
		name     string
		req      *contactsv1.CreateContactRequest
		wantData map[string]any
	}{
		{
			name: "manual by default, phone normalised",
			req: &contactsv1.CreateContactRequest{AccountId: account, Contact: &contactsv1.Contact{
				FirstName: "Jane", LastName: "Smith", Phone: "(555) 123-4567", Email: "jane@example.com",
				Groups: []string{"customers", "Events"},
			}},
			wantData: map[string]any{"first_name": "Jane", "last_name": "Smith", "phone": "+15551234567",
				"email": "jane@example.com", "groups": []any{"customers", "Events"}, "source": "manual", "keyword": ""},
		},
		{
			name: "keyword opt-in carries the keyword",
			req: &contactsv1.CreateContactRequest{AccountId: account, Source: "keyword_optin", Keyword: "JOIN",
				Contact: &contactsv1.Contact{Phone: "+44 20 7946 0958"}},
			wantData: map[string]any{"first_name": "", "last_name": "", "phone": "+442079460958",
				"email": "", "groups": []any{}, "source": "keyword_optin", "keyword": "JOIN"},
		},
		{
			name: "inbound with a region",
			req: &contactsv1.CreateContactRequest{AccountId: account, Source: "inbound", DefaultRegion: "GB",
				Contact: &contactsv1.Contact{Phone: "020 7946 0959"}},
			wantData: map[string]any{"first_name": "", "last_name": "", "phone": "+442079460959",
				"email": "", "groups": []any{}, "source": "inbound", "keyword": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(testCtx(t), "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
			resp, err := svc.client.CreateContact(ctx, tt.req)
			if err != nil {
				t.Fatalf("CreateContact: %v", err)
			}
			c := resp.GetContact()
			if c.GetId() == "" || c.GetAccountId() != account || c.GetCreateTime() == nil {
				t.Errorf("contact = %v, want id, account_id and create_time set", c)
			}
			got := events.next()
			checkEnvelope(t, got, event.NewContact)
			checkCatalogShape(t, got)
			want := map[string]any{"contact_id": c.GetId()}
			for k, v := range tt.wantData {
				want[k] = v
			}
			if diff := cmp.Diff(want, got.Data); diff != "" {
				t.Errorf("new_contact data mismatch (-want +got):\n%s", diff)
			}
			if tp := http.Header(got.Header).Get("traceparent"); !strings.Contains(tp, traceID) {
				t.Errorf("traceparent header = %q, want the caller's trace %s", tp, traceID)
			}
		})
	}
}

func TestUpdateContactPublishesContactUpdated(t *testing.T) {
	ns := startNATS(t)
	svc := startService(t, ns.ClientURL())
	ctx := testCtx(t)
	events := svc.readEvents(t, streams.EventSubject(account, event.ContactUpdated))

	created, err := svc.client.CreateContact(ctx, &contactsv1.CreateContactRequest{AccountId: account,
		Contact: &contactsv1.Contact{FirstName: "Jane", LastName: "Smith", Phone: "+15551234567", Groups: []string{"customers"}}})
	if err != nil {
		t.Fatalf("CreateContact: %v", err)
	}
	id := created.GetContact().GetId()

	tests := []struct {
		name        string
		contact     *contactsv1.Contact
		paths       []string
		wantChanged []string
		// wantData is the contact_updated data when something changed.
		wantData map[string]any
	}{
		{
			name:        "last name and email",
			contact:     &contactsv1.Contact{Id: id, LastName: "Doe", Email: "jane@example.com", FirstName: "ignored: not in mask"},
			paths:       []string{"last_name", "email"},
			wantChanged: []string{"last_name", "email"},
			wantData: map[string]any{"contact_id": id, "first_name": "Jane", "last_name": "Doe", "phone": "+15551234567",
				"email": "jane@example.com", "groups": []any{"customers"}, "changed_fields": []any{"last_name", "email"}},
		},
		{
			name:    "same values change nothing and emit nothing",
			contact: &contactsv1.Contact{Id: id, LastName: "Doe", Phone: "555-123-4567", Groups: []string{"CUSTOMERS"}},
			paths:   []string{"last_name", "phone", "groups"},
		},
		{
			name:        "groups and phone",
			contact:     &contactsv1.Contact{Id: id, Phone: "+15551234568", Groups: []string{"vip", "customers"}},
			paths:       []string{"groups", "phone"},
			wantChanged: []string{"phone", "groups"},
			wantData: map[string]any{"contact_id": id, "first_name": "Jane", "last_name": "Doe", "phone": "+15551234568",
				"email": "jane@example.com", "groups": []any{"customers", "vip"}, "changed_fields": []any{"phone", "groups"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := svc.client.UpdateContact(ctx, &contactsv1.UpdateContactRequest{AccountId: account,
				Contact: tt.contact, UpdateMask: &fieldmaskpb.FieldMask{Paths: tt.paths}})
			if err != nil {
				t.Fatalf("UpdateContact: %v", err)
			}
			if diff := cmp.Diff(tt.wantChanged, resp.GetChangedFields()); diff != "" {
				t.Errorf("changed_fields mismatch (-want +got):\n%s", diff)
			}
			if tt.wantData == nil {
				return // the next case's event proves none was emitted for this one
			}
			got := events.next()
			checkEnvelope(t, got, event.ContactUpdated)
			checkCatalogShape(t, got)
			if diff := cmp.Diff(tt.wantData, got.Data); diff != "" {
				t.Errorf("contact_updated data mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
