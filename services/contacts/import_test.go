package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"

	"github.com/customertext/webhooks/libs/event"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	"github.com/customertext/webhooks/libs/streams"
)

func TestImportContacts(t *testing.T) {
	ns := startNATS(t)
	svc := startService(t, ns.ClientURL())
	ctx := testCtx(t)
	events := svc.readEvents(t, streams.EventSubject(account, event.NewContact))
	existing := mustCreate(t, svc, &contactsv1.Contact{Phone: "+15559990000"})
	if got := events.next(); got.Data["contact_id"] != existing.GetId() {
		t.Fatalf("first event for %v, want %s", got.Data["contact_id"], existing.GetId())
	}

	csv := "\ufeffPhone, First_Name,last_name,email,groups,notes\n" + // 1
		"+15551234567,Jane,Smith,jane@example.com,customers; Events,x\n" + // 2
		"abc,Bad,Phone,,,\n" + // 3
		"+15551234568,Bad,Email,not-an-email,,\n" + // 4
		"(555) 999-0000,Already,There,,ghost,\n" + // 5: its group must not be created
		"555.123.4567,Jane,Again,,,\n" + // 6
		"+15551234569,\"Ann\n" + // 7: a quoted newline inside a name
		"Marie\",X,,,\n" + // 8
		"555-123-4570,Bob\n" // 9: short row, missing columns are empty
	resp, err := svc.client.ImportContacts(ctx, &contactsv1.ImportContactsRequest{AccountId: account, Csv: []byte(csv)})
	if err != nil {
		t.Fatalf("ImportContacts: %v", err)
	}
	if resp.GetImported() != 2 {
		t.Errorf("imported = %d, want 2", resp.GetImported())
	}
	type rowErr struct {
		Line   int32
		Reason string
	}
	var gotErrs []rowErr
	for _, e := range resp.GetErrors() {
		gotErrs = append(gotErrs, rowErr{e.GetLine(), e.GetReason()})
	}
	wantErrs := []rowErr{
		{3, `phone: "abc" is not a phone number`},
		{4, "email: is not a valid address (want name@example.com)"},
		{5, "duplicate phone"},
		{6, "duplicate phone (same as line 2)"},
		{7, "first_name: contains a control character"},
	}
	if diff := cmp.Diff(wantErrs, gotErrs); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}

	wantData := []map[string]any{
		{"first_name": "Jane", "last_name": "Smith", "phone": "+15551234567", "email": "jane@example.com",
			"groups": []any{"customers", "Events"}, "source": "import", "keyword": ""},
		{"first_name": "Bob", "last_name": "", "phone": "+15551234570", "email": "",
			"groups": []any{}, "source": "import", "keyword": ""},
	}
	for i, want := range wantData {
		got := events.next()
		checkEnvelope(t, got, event.NewContact)
		c, err := svc.client.GetContactByPhone(ctx, &contactsv1.GetContactByPhoneRequest{AccountId: account, Phone: want["phone"].(string)})
		if err != nil {
			t.Fatalf("row %d: GetContactByPhone: %v", i, err)
		}
		want["contact_id"] = c.GetContact().GetId()
		if diff := cmp.Diff(want, got.Data); diff != "" {
			t.Errorf("row %d: new_contact data mismatch (-want +got):\n%s", i, diff)
		}
	}

	t.Run("rejected rows create no groups", func(t *testing.T) {
		resp, err := svc.client.ListGroups(ctx, &contactsv1.ListGroupsRequest{AccountId: account})
		if err != nil {
			t.Fatalf("ListGroups: %v", err)
		}
		var names []string
		for _, g := range resp.GetGroups() {
			names = append(names, g.GetName())
		}
		if want := []string{"customers", "Events"}; !cmp.Equal(names, want) {
			t.Errorf("groups = %v, want %v", names, want)
		}
	})
	t.Run("a file that is not usable imports nothing", func(t *testing.T) {
		for _, bad := range []string{"", "first_name\nJane\n", "phone,phone\n+15551112222,+15551112223\n"} {
			_, err := svc.client.ImportContacts(ctx, &contactsv1.ImportContactsRequest{AccountId: account, Csv: []byte(bad)})
			wantCode(t, err, codes.InvalidArgument, "csv:")
		}
	})
	t.Run("metrics count imports and rejected rows", func(t *testing.T) {
		_, body := svc.adminGet(t, "/metrics")
		for _, want := range []string{"contacts_imported_total 2", "contacts_import_row_errors_total 5", `contacts_created_total{source="import"} 2`} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	})
}

func TestImportCLI(t *testing.T) {
	ns := startNATS(t)
	svc := startService(t, ns.ClientURL())
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatalf("write %s: %v", p, err)
		}
		return p
	}
	getenv := func(k string) string {
		if k == "SERVICE_TOKEN" {
			return testToken
		}
		return ""
	}
	tests := []struct {
		name     string
		args     []string
		wantOut  string
		wantErr  string
		wantRows int
	}{
		{
			name:     "all rows good",
			args:     []string{"-file", write("good.csv", "phone,first_name\n+15551234567,Jane\n+15551234568,John\n")},
			wantOut:  "imported 2\n",
			wantRows: 2,
		},
		{
			name:     "bad rows are printed and fail the command",
			args:     []string{"-file", write("mixed.csv", "phone,first_name\n+15551234567,Again\nnope,X\n+15551234569,Ann\n")},
			wantOut:  "imported 1\nline 2: duplicate phone\nline 3: phone: \"nope\" is not a phone number\n",
			wantErr:  "2 rows rejected",
			wantRows: 3,
		},
		{
			name:     "missing file",
			args:     []string{"-file", filepath.Join(dir, "absent.csv")},
			wantErr:  "open csv",
			wantRows: 3,
		},
		{
			name:     "missing account",
			args:     []string{"-file", filepath.Join(dir, "good.csv"), "-account", ""},
			wantErr:  "-account is required",
			wantRows: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			args := append([]string{"import", "-account", account, "-grpc-addr", svc.grpcAddr}, tt.args...)
			err := run(testCtx(t), args, getenv, &out)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("run import: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("run import error = %v, want it to contain %q", err, tt.wantErr)
			}
			if out.String() != tt.wantOut {
				t.Errorf("output = %q, want %q", out.String(), tt.wantOut)
			}
			list, err := svc.client.ListContacts(testCtx(t), &contactsv1.ListContactsRequest{AccountId: account})
			if err != nil {
				t.Fatalf("ListContacts: %v", err)
			}
			if n := len(list.GetContacts()); n != tt.wantRows {
				t.Errorf("account has %d contacts, want %d", n, tt.wantRows)
			}
		})
	}
}
