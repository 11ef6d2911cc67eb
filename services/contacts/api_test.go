package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/customertext/webhooks/libs/auth"
	"github.com/customertext/webhooks/libs/event"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
)

func mustCreate(t *testing.T, svc *service, c *contactsv1.Contact) *contactsv1.Contact {
	t.Helper()
	resp, err := svc.client.CreateContact(testCtx(t), &contactsv1.CreateContactRequest{AccountId: account, Contact: c})
	if err != nil {
		t.Fatalf("CreateContact(%v): %v", c, err)
	}
	return resp.GetContact()
}

func wantCode(t *testing.T, err error, code codes.Code, msgPart string) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Fatalf("code = %v (%v), want %v", got, err, code)
	}
	if msg := status.Convert(err).Message(); !strings.Contains(msg, msgPart) {
		t.Errorf("message = %q, want it to contain %q", msg, msgPart)
	}
}

func TestContactLifecycle(t *testing.T) {
	ns := startNATS(t)
	svc := startService(t, ns.ClientURL())
	ctx := testCtx(t)

	jane := mustCreate(t, svc, &contactsv1.Contact{FirstName: "Jane", Phone: "+15551234567", Email: "jane@example.com", Groups: []string{"vip", "Customers"}})
	john := mustCreate(t, svc, &contactsv1.Contact{FirstName: "John", Phone: "+15551234568", Groups: []string{"customers"}})
	ann := mustCreate(t, svc, &contactsv1.Contact{FirstName: "Ann", Phone: "+15551234569"})

	t.Run("get returns what create returned", func(t *testing.T) {
		got, err := svc.client.GetContact(ctx, &contactsv1.GetContactRequest{AccountId: account, Id: jane.GetId()})
		if err != nil {
			t.Fatalf("GetContact: %v", err)
		}
		if diff := cmp.Diff(jane.String(), got.GetContact().String()); diff != "" {
			t.Errorf("contact mismatch (-create +get):\n%s", diff)
		}
		if want := []string{"Customers", "vip"}; !cmp.Equal(got.GetContact().GetGroups(), want) {
			t.Errorf("groups = %v, want %v", got.GetContact().GetGroups(), want)
		}
	})
	t.Run("a group named in another case keeps its first spelling", func(t *testing.T) {
		if want := []string{"Customers"}; !cmp.Equal(john.GetGroups(), want) {
			t.Errorf("john's groups = %v, want %v", john.GetGroups(), want)
		}
	})
	t.Run("another account sees nothing", func(t *testing.T) {
		_, err := svc.client.GetContact(ctx, &contactsv1.GetContactRequest{AccountId: "acct_2", Id: jane.GetId()})
		wantCode(t, err, codes.NotFound, "not found")
	})
	t.Run("duplicate phone in any format", func(t *testing.T) {
		_, err := svc.client.CreateContact(ctx, &contactsv1.CreateContactRequest{AccountId: account,
			Contact: &contactsv1.Contact{Phone: "(555) 123-4567"}})
		wantCode(t, err, codes.AlreadyExists, "phone")
	})
	t.Run("same phone in another account is fine", func(t *testing.T) {
		_, err := svc.client.CreateContact(ctx, &contactsv1.CreateContactRequest{AccountId: "acct_2",
			Contact: &contactsv1.Contact{Phone: "+15551234567"}})
		if err != nil {
			t.Fatalf("CreateContact in acct_2: %v", err)
		}
	})
	t.Run("list pages through every contact once", func(t *testing.T) {
		var ids []string
		token := ""
		for page := 0; page < 10; page++ {
			resp, err := svc.client.ListContacts(ctx, &contactsv1.ListContactsRequest{AccountId: account, PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatalf("ListContacts: %v", err)
			}
			if n := len(resp.GetContacts()); n > 2 {
				t.Fatalf("page has %d contacts, want at most 2", n)
			}
			for _, c := range resp.GetContacts() {
				ids = append(ids, c.GetId())
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		if want := []string{jane.GetId(), john.GetId(), ann.GetId()}; !cmp.Equal(ids, want) {
			t.Errorf("ids = %v, want %v", ids, want)
		}
	})
	t.Run("list filters by group ignoring case", func(t *testing.T) {
		resp, err := svc.client.ListContacts(ctx, &contactsv1.ListContactsRequest{AccountId: account, Group: "CUSTOMERS"})
		if err != nil {
			t.Fatalf("ListContacts: %v", err)
		}
		var names []string
		for _, c := range resp.GetContacts() {
			names = append(names, c.GetFirstName())
		}
		if want := []string{"Jane", "John"}; !cmp.Equal(names, want) {
			t.Errorf("members = %v, want %v", names, want)
		}
		if resp.GetNextPageToken() != "" {
			t.Errorf("next_page_token = %q, want empty on the last page", resp.GetNextPageToken())
		}
	})
	t.Run("bad page token", func(t *testing.T) {
		_, err := svc.client.ListContacts(ctx, &contactsv1.ListContactsRequest{AccountId: account, PageToken: "!!"})
		wantCode(t, err, codes.InvalidArgument, "page_token")
	})
	t.Run("update to a phone another contact has", func(t *testing.T) {
		_, err := svc.client.UpdateContact(ctx, &contactsv1.UpdateContactRequest{AccountId: account,
			Contact: &contactsv1.Contact{Id: john.GetId(), Phone: "+15551234567"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"phone"}}})
		wantCode(t, err, codes.AlreadyExists, "phone")
	})
	t.Run("update of a missing contact", func(t *testing.T) {
		_, err := svc.client.UpdateContact(ctx, &contactsv1.UpdateContactRequest{AccountId: account,
			Contact: &contactsv1.Contact{Id: "ct_missing", FirstName: "X"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"first_name"}}})
		wantCode(t, err, codes.NotFound, "not found")
	})
	t.Run("delete then get", func(t *testing.T) {
		if _, err := svc.client.DeleteContact(ctx, &contactsv1.DeleteContactRequest{AccountId: account, Id: ann.GetId()}); err != nil {
			t.Fatalf("DeleteContact: %v", err)
		}
		_, err := svc.client.GetContact(ctx, &contactsv1.GetContactRequest{AccountId: account, Id: ann.GetId()})
		wantCode(t, err, codes.NotFound, "not found")
		_, err = svc.client.DeleteContact(ctx, &contactsv1.DeleteContactRequest{AccountId: account, Id: ann.GetId()})
		wantCode(t, err, codes.NotFound, "not found")
		// The phone is free again.
		mustCreate(t, svc, &contactsv1.Contact{Phone: "+15551234569"})
	})
}

func TestInvalidInputChangesNothing(t *testing.T) {
	ns := startNATS(t)
	svc := startService(t, ns.ClientURL())
	ctx := testCtx(t)
	events := svc.readEvents(t, "events."+account+".>")
	existing := mustCreate(t, svc, &contactsv1.Contact{FirstName: "Jane", Phone: "+15551234567"})
	if got := events.next(); got.Data["contact_id"] != existing.GetId() {
		t.Fatalf("first event is for %v, want %s", got.Data["contact_id"], existing.GetId())
	}

	long := strings.Repeat("x", 101)
	create := func(c *contactsv1.Contact, mut ...func(*contactsv1.CreateContactRequest)) func() error {
		return func() error {
			req := &contactsv1.CreateContactRequest{AccountId: account, Contact: c}
			for _, m := range mut {
				m(req)
			}
			_, err := svc.client.CreateContact(ctx, req)
			return err
		}
	}
	update := func(c *contactsv1.Contact, paths ...string) func() error {
		return func() error {
			req := &contactsv1.UpdateContactRequest{AccountId: account, Contact: c}
			if paths != nil {
				req.UpdateMask = &fieldmaskpb.FieldMask{Paths: paths}
			}
			_, err := svc.client.UpdateContact(ctx, req)
			return err
		}
	}
	tests := []struct {
		name      string
		call      func() error
		wantField string
	}{
		{"missing account", func() error {
			_, err := svc.client.CreateContact(ctx, &contactsv1.CreateContactRequest{Contact: &contactsv1.Contact{Phone: "+15551230000"}})
			return err
		}, "account_id"},
		{"account with a subject wildcard", func() error {
			_, err := svc.client.ListContacts(ctx, &contactsv1.ListContactsRequest{AccountId: "acct.*"})
			return err
		}, "account_id"},
		{"missing contact", func() error {
			_, err := svc.client.CreateContact(ctx, &contactsv1.CreateContactRequest{AccountId: account})
			return err
		}, "contact"},
		{"missing phone", create(&contactsv1.Contact{FirstName: "A"}), "contact.phone"},
		{"letters for a phone", create(&contactsv1.Contact{Phone: "call me"}), "contact.phone"},
		{"too short a phone", create(&contactsv1.Contact{Phone: "+1555"}), "contact.phone"},
		{"unknown region", create(&contactsv1.Contact{Phone: "5551230000"}, func(r *contactsv1.CreateContactRequest) { r.DefaultRegion = "XX" }), "default_region"},
		{"bad email", create(&contactsv1.Contact{Phone: "+15551230000", Email: "jane@"}), "contact.email"},
		{"email with a display name", create(&contactsv1.Contact{Phone: "+15551230000", Email: "Jane <jane@example.com>"}), "contact.email"},
		{"long first name", create(&contactsv1.Contact{Phone: "+15551230000", FirstName: long}), "contact.first_name"},
		{"control character in last name", create(&contactsv1.Contact{Phone: "+15551230000", LastName: "Sm\x00ith"}), "contact.last_name"},
		{"group with a separator", create(&contactsv1.Contact{Phone: "+15551230000", Groups: []string{"a;b"}}), "contact.groups"},
		{"empty group", create(&contactsv1.Contact{Phone: "+15551230000", Groups: []string{" "}}), "contact.groups"},
		{"unknown source", create(&contactsv1.Contact{Phone: "+15551230000"}, func(r *contactsv1.CreateContactRequest) { r.Source = "web" }), "source"},
		{"keyword opt-in without keyword", create(&contactsv1.Contact{Phone: "+15551230000"}, func(r *contactsv1.CreateContactRequest) { r.Source = "keyword_optin" }), "keyword"},
		{"keyword without opt-in", create(&contactsv1.Contact{Phone: "+15551230000"}, func(r *contactsv1.CreateContactRequest) { r.Keyword = "JOIN" }), "keyword"},
		{"update without mask", update(&contactsv1.Contact{Id: existing.GetId(), FirstName: "B"}), "update_mask"},
		{"update with unknown path", update(&contactsv1.Contact{Id: existing.GetId(), OptedOut: true}, "opted_out"), "update_mask"},
		{"update with bad phone", update(&contactsv1.Contact{Id: existing.GetId(), Phone: "12"}, "phone"), "contact.phone"},
		{"update with bad email and a good name", update(&contactsv1.Contact{Id: existing.GetId(), FirstName: "B", Email: "nope"}, "first_name", "email"), "contact.email"},
		{"update without id", update(&contactsv1.Contact{FirstName: "B"}, "first_name"), "contact.id"},
		{"negative page size", func() error {
			_, err := svc.client.ListContacts(ctx, &contactsv1.ListContactsRequest{AccountId: account, PageSize: -1})
			return err
		}, "page_size"},
		{"group name too long", func() error {
			_, err := svc.client.CreateGroup(ctx, &contactsv1.CreateGroupRequest{AccountId: account, Name: strings.Repeat("g", 65)})
			return err
		}, "name"},
		{"add to no groups", func() error {
			_, err := svc.client.AddContactToGroups(ctx, &contactsv1.AddContactToGroupsRequest{AccountId: account, ContactId: existing.GetId()})
			return err
		}, "groups"},
		{"import without phone column", func() error {
			_, err := svc.client.ImportContacts(ctx, &contactsv1.ImportContactsRequest{AccountId: account, Csv: []byte("first_name\nJane\n")})
			return err
		}, "csv"},
		{"lookup of a non-number", func() error {
			_, err := svc.client.GetContactByPhone(ctx, &contactsv1.GetContactByPhoneRequest{AccountId: account, Phone: "abc"})
			return err
		}, "phone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tt.call(), codes.InvalidArgument, tt.wantField+":")
		})
	}

	t.Run("nothing changed", func(t *testing.T) {
		got, err := svc.client.GetContact(ctx, &contactsv1.GetContactRequest{AccountId: account, Id: existing.GetId()})
		if err != nil {
			t.Fatalf("GetContact: %v", err)
		}
		if diff := cmp.Diff(existing.String(), got.GetContact().String()); diff != "" {
			t.Errorf("contact changed (-before +after):\n%s", diff)
		}
		list, err := svc.client.ListContacts(ctx, &contactsv1.ListContactsRequest{AccountId: account})
		if err != nil {
			t.Fatalf("ListContacts: %v", err)
		}
		if n := len(list.GetContacts()); n != 1 {
			t.Errorf("account has %d contacts, want 1", n)
		}
		groups, err := svc.client.ListGroups(ctx, &contactsv1.ListGroupsRequest{AccountId: account})
		if err != nil {
			t.Fatalf("ListGroups: %v", err)
		}
		if n := len(groups.GetGroups()); n != 0 {
			t.Errorf("account has %d groups, want 0", n)
		}
		// Events are published in commit order: the next one must be this marker's.
		marker := mustCreate(t, svc, &contactsv1.Contact{Phone: "+15551239999"})
		if got := events.next(); got.Env.Event != event.NewContact || got.Data["contact_id"] != marker.GetId() {
			t.Errorf("next event = %s for %v, want new_contact for the marker %s", got.Env.Event, got.Data["contact_id"], marker.GetId())
		}
	})
}

func TestGroupsAndMessagingRPCs(t *testing.T) {
	ns := startNATS(t)
	svc := startService(t, ns.ClientURL())
	ctx := testCtx(t)
	events := svc.readEvents(t, "events."+account+".>")
	c := mustCreate(t, svc, &contactsv1.Contact{FirstName: "Jane", Phone: "+15551234567"})

	t.Run("create and list groups", func(t *testing.T) {
		for _, name := range []string{"vip", "Events"} {
			resp, err := svc.client.CreateGroup(ctx, &contactsv1.CreateGroupRequest{AccountId: account, Name: name})
			if err != nil {
				t.Fatalf("CreateGroup(%s): %v", name, err)
			}
			if resp.GetGroup().GetId() == "" || resp.GetGroup().GetName() != name {
				t.Errorf("group = %v, want an id and name %q", resp.GetGroup(), name)
			}
		}
		_, err := svc.client.CreateGroup(ctx, &contactsv1.CreateGroupRequest{AccountId: account, Name: "VIP"})
		wantCode(t, err, codes.AlreadyExists, "name")
		resp, err := svc.client.ListGroups(ctx, &contactsv1.ListGroupsRequest{AccountId: account})
		if err != nil {
			t.Fatalf("ListGroups: %v", err)
		}
		var names []string
		for _, g := range resp.GetGroups() {
			names = append(names, g.GetName())
		}
		if want := []string{"Events", "vip"}; !cmp.Equal(names, want) {
			t.Errorf("groups = %v, want %v", names, want)
		}
	})
	t.Run("get by phone in any format", func(t *testing.T) {
		for _, phone := range []string{"+15551234567", "555-123-4567", "1 (555) 123 4567"} {
			resp, err := svc.client.GetContactByPhone(ctx, &contactsv1.GetContactByPhoneRequest{AccountId: account, Phone: phone})
			if err != nil {
				t.Fatalf("GetContactByPhone(%s): %v", phone, err)
			}
			if resp.GetContact().GetId() != c.GetId() {
				t.Errorf("GetContactByPhone(%s) = %s, want %s", phone, resp.GetContact().GetId(), c.GetId())
			}
		}
		_, err := svc.client.GetContactByPhone(ctx, &contactsv1.GetContactByPhoneRequest{AccountId: account, Phone: "+15550000000"})
		wantCode(t, err, codes.NotFound, "not found")
	})
	t.Run("set opt-out is idempotent", func(t *testing.T) {
		for i, tc := range []struct {
			optedOut, wantChanged bool
		}{{true, true}, {true, false}, {false, true}, {false, false}, {true, true}} {
			resp, err := svc.client.SetOptOut(ctx, &contactsv1.SetOptOutRequest{AccountId: account, ContactId: c.GetId(), OptedOut: tc.optedOut})
			if err != nil {
				t.Fatalf("step %d: SetOptOut: %v", i, err)
			}
			if resp.GetChanged() != tc.wantChanged || resp.GetContact().GetOptedOut() != tc.optedOut {
				t.Errorf("step %d: changed=%v opted_out=%v, want changed=%v opted_out=%v", i,
					resp.GetChanged(), resp.GetContact().GetOptedOut(), tc.wantChanged, tc.optedOut)
			}
		}
		got, err := svc.client.GetContact(ctx, &contactsv1.GetContactRequest{AccountId: account, Id: c.GetId()})
		if err != nil || !got.GetContact().GetOptedOut() {
			t.Errorf("GetContact = %v, %v; want opted out", got.GetContact(), err)
		}
		_, err = svc.client.SetOptOut(ctx, &contactsv1.SetOptOutRequest{AccountId: account, ContactId: "ct_none", OptedOut: true})
		wantCode(t, err, codes.NotFound, "not found")
	})
	t.Run("add to groups creates missing ones and is idempotent", func(t *testing.T) {
		tests := []struct {
			groups    []string
			wantAdded []string
			wantAll   []string
		}{
			{[]string{"events", "Newsletter"}, []string{"Events", "Newsletter"}, []string{"Events", "Newsletter"}},
			{[]string{"EVENTS", "vip"}, []string{"vip"}, []string{"Events", "Newsletter", "vip"}},
			{[]string{"vip"}, nil, []string{"Events", "Newsletter", "vip"}},
		}
		for i, tt := range tests {
			resp, err := svc.client.AddContactToGroups(ctx, &contactsv1.AddContactToGroupsRequest{AccountId: account, ContactId: c.GetId(), Groups: tt.groups})
			if err != nil {
				t.Fatalf("step %d: AddContactToGroups: %v", i, err)
			}
			if diff := cmp.Diff(tt.wantAdded, resp.GetAdded()); diff != "" {
				t.Errorf("step %d: added mismatch (-want +got):\n%s", i, diff)
			}
			if diff := cmp.Diff(tt.wantAll, resp.GetContact().GetGroups()); diff != "" {
				t.Errorf("step %d: groups mismatch (-want +got):\n%s", i, diff)
			}
		}
		_, err := svc.client.AddContactToGroups(ctx, &contactsv1.AddContactToGroupsRequest{AccountId: account, ContactId: "ct_none", Groups: []string{"x"}})
		wantCode(t, err, codes.NotFound, "not found")
	})
	t.Run("none of these emitted an event", func(t *testing.T) {
		if got := events.next(); got.Data["contact_id"] != c.GetId() || got.Env.Event != event.NewContact {
			t.Fatalf("first event = %s for %v, want new_contact for %s", got.Env.Event, got.Data["contact_id"], c.GetId())
		}
		marker := mustCreate(t, svc, &contactsv1.Contact{Phone: "+15551239999"})
		if got := events.next(); got.Data["contact_id"] != marker.GetId() {
			t.Errorf("next event = %s for %v, want new_contact for the marker %s", got.Env.Event, got.Data["contact_id"], marker.GetId())
		}
	})
}

func TestAuthAndAdmin(t *testing.T) {
	ns := startNATS(t)
	svc := startService(t, ns.ClientURL())
	ctx := testCtx(t)
	mustCreate(t, svc, &contactsv1.Contact{Phone: "+15551234567"})

	for _, tt := range []struct {
		name  string
		creds []grpc.DialOption
	}{
		{"no credential", nil},
		{"wrong credential", []grpc.DialOption{grpc.WithPerRPCCredentials(auth.Bearer("wrong"))}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := grpc.NewClient(svc.grpcAddr, append(tt.creds, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
			if err != nil {
				t.Fatalf("client: %v", err)
			}
			defer conn.Close()
			_, err = contactsv1.NewContactServiceClient(conn).ListContacts(ctx, &contactsv1.ListContactsRequest{AccountId: account})
			wantCode(t, err, codes.Unauthenticated, "credential")
		})
	}
	t.Run("healthz", func(t *testing.T) {
		if code, _ := svc.adminGet(t, "/healthz"); code != 200 {
			t.Errorf("GET /healthz = %d, want 200", code)
		}
	})
	t.Run("readyz", func(t *testing.T) {
		waitFor(t, "readyz 200", func() error {
			if code, body := svc.adminGet(t, "/readyz"); code != 200 {
				return status.Errorf(codes.Unavailable, "%d %s", code, body)
			}
			return nil
		})
	})
	t.Run("metrics", func(t *testing.T) {
		waitFor(t, "outbox published metric", func() error {
			_, body := svc.adminGet(t, "/metrics")
			for _, want := range []string{
				`contacts_created_total{source="manual"} 1`,
				`outbox_published_total{schema="contacts"} 1`,
				"contacts_updated_total 0",
				"contacts_imported_total 0",
				"contacts_import_row_errors_total 0",
				"contacts_nats_connected 1",
			} {
				if !strings.Contains(body, want) {
					return status.Errorf(codes.NotFound, "metrics lack %q", want)
				}
			}
			if strings.Contains(body, account) || strings.Contains(body, testToken) {
				return status.Errorf(codes.Internal, "metrics name an account or the token")
			}
			return nil
		})
	})
	t.Run("the token is never logged", func(t *testing.T) {
		if strings.Contains(svc.logs.String(), testToken) {
			t.Errorf("logs contain the service token")
		}
	})
}
