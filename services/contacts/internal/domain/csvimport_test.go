package domain

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseImport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		csv       string
		wantRows  []ImportRow
		wantErrs  []RowError
		wantField string // non-empty: the whole file is refused
	}{
		{
			name: "columns in any order, case and spacing",
			csv:  "Groups ,EMAIL,phone,Last_Name,first_name\nvip;Events,jane@example.com,555-123-4567,Smith,Jane\n",
			wantRows: []ImportRow{{Line: 2, Fields: Fields{FirstName: "Jane", LastName: "Smith", Phone: "+15551234567",
				Email: "jane@example.com", Groups: []string{"Events", "vip"}}}},
		},
		{
			name:     "phone only, blank lines skipped, CRLF",
			csv:      "phone\r\n+15551234567\r\n\r\n+15551234568\r\n",
			wantRows: []ImportRow{{Line: 2, Fields: Fields{Phone: "+15551234567", Groups: []string{}}}, {Line: 4, Fields: Fields{Phone: "+15551234568", Groups: []string{}}}},
		},
		{
			name:     "bad rows reported by line, good rows kept",
			csv:      "phone,email,groups\nnope,,\n+15551234567,x@,\n+15551234568,,a;;b\n+15551234568,,\n\"+1555\"\"1\",,\n",
			wantRows: []ImportRow{{Line: 4, Fields: Fields{Phone: "+15551234568", Groups: []string{"a", "b"}}}},
			wantErrs: []RowError{
				{Line: 2, Reason: `phone: "nope" is not a phone number`},
				{Line: 3, Reason: "email: is not a valid address (want name@example.com)"},
				{Line: 5, Reason: "duplicate phone (same as line 4)"},
				{Line: 6, Reason: `phone: "+1555\"1" is not a phone number`},
			},
		},
		{
			name:     "malformed quoting is a row error",
			csv:      "phone,first_name\n+15551234567,Ja\"ne\n+15551234568,John\n",
			wantRows: []ImportRow{{Line: 3, Fields: Fields{FirstName: "John", Phone: "+15551234568", Groups: []string{}}}},
			wantErrs: []RowError{{Line: 2, Reason: `malformed CSV: bare " in non-quoted-field`}},
		},
		{
			name:     "unknown columns ignored",
			csv:      "notes,phone\nhello,+15551234567\n",
			wantRows: []ImportRow{{Line: 2, Fields: Fields{Phone: "+15551234567", Groups: []string{}}}},
		},
		{name: "empty", csv: "", wantField: "csv"},
		{name: "no phone column", csv: "first_name,email\nJane,j@example.com\n", wantField: "csv"},
		{name: "phone column twice", csv: "phone,Phone\n1,2\n", wantField: "csv"},
		{name: "header only", csv: "phone\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rows, errs, err := ParseImport([]byte(tt.csv), "US")
			if tt.wantField != "" {
				var ie *InvalidError
				if !errors.As(err, &ie) || ie.Field != tt.wantField {
					t.Fatalf("ParseImport error = %v, want an InvalidError on %s", err, tt.wantField)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseImport: %v", err)
			}
			if diff := cmp.Diff(tt.wantRows, rows); diff != "" {
				t.Errorf("rows mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantErrs, errs); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseImportLimits(t *testing.T) {
	t.Parallel()
	big := "phone\n" + strings.Repeat("x\n", MaxImportBytes/2)
	if _, _, err := ParseImport([]byte(big), "US"); err == nil {
		t.Errorf("ParseImport of %d bytes: got nil error, want one", len(big))
	}
	many := "phone\n" + strings.Repeat("1\n", MaxImportRows+1)
	if _, _, err := ParseImport([]byte(many), "US"); err == nil || !strings.Contains(err.Error(), "rows") {
		t.Errorf("ParseImport of %d rows: got %v, want a row limit error", MaxImportRows+1, err)
	}
}

// FuzzParseImport checks that any input terminates and that every row is accounted for: each
// reported line is within the file, lines are increasing, good rows are valid and their phones
// unique.
func FuzzParseImport(f *testing.F) {
	for _, s := range []string{
		"phone,first_name,last_name,email,groups\n+15551234567,Jane,Smith,jane@example.com,a;b\n",
		"phone\n\"unterminated\n",
		"phone,first_name\n+15551234567,Ja\"ne\n555-123-4568,\"multi\nline\"\n",
		"\ufeffPHONE\r\n+442079460958\r\n",
		"groups,phone\n;;;,+15551234567\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, errs, err := ParseImport(data, "US")
		if err != nil {
			var ie *InvalidError
			if !errors.As(err, &ie) || ie.Field != "csv" {
				t.Fatalf("ParseImport error %v is not an InvalidError on csv", err)
			}
			return
		}
		lines := strings.Count(string(data), "\n") + 1
		last := 1
		for _, r := range rows {
			if r.Line <= last || r.Line > lines {
				t.Fatalf("row line %d out of order or outside 2..%d", r.Line, lines)
			}
			last = r.Line
			if _, err := NormalizePhone(r.Fields.Phone, "US"); err != nil {
				t.Fatalf("row %d phone %q does not normalise: %v", r.Line, r.Fields.Phone, err)
			}
		}
		seen := map[string]bool{}
		for _, r := range rows {
			if seen[r.Fields.Phone] {
				t.Fatalf("phone %s imported twice", r.Fields.Phone)
			}
			seen[r.Fields.Phone] = true
		}
		for _, e := range errs {
			if e.Line < 2 || e.Line > lines || e.Reason == "" {
				t.Fatalf("row error %+v outside 2..%d or without reason", e, lines)
			}
		}
	})
}
