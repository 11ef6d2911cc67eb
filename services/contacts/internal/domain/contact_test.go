package domain

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestApply(t *testing.T) {
	t.Parallel()
	cur := Contact{ID: "ct_1", FirstName: "Jane", LastName: "Smith", Phone: "+15551234567", Email: "jane@example.com", Groups: []string{"customers", "vip"}}
	tests := []struct {
		name        string
		f           Fields
		paths       []string
		wantChanged []string
		want        Contact
	}{
		{
			name:  "nothing in the mask changes",
			f:     Fields{FirstName: "Jane", Phone: "+15551234567", Groups: []string{"VIP", "Customers"}},
			paths: []string{FieldFirstName, FieldPhone, FieldGroups},
			want:  cur,
		},
		{
			name:  "fields outside the mask are kept",
			f:     Fields{FirstName: "Other", LastName: "Doe"},
			paths: []string{FieldLastName}, wantChanged: []string{FieldLastName},
			want: Contact{ID: "ct_1", FirstName: "Jane", LastName: "Doe", Phone: "+15551234567", Email: "jane@example.com", Groups: []string{"customers", "vip"}},
		},
		{
			name:  "clearing email and groups",
			f:     Fields{},
			paths: []string{FieldEmail, FieldGroups}, wantChanged: []string{FieldEmail, FieldGroups},
			want: Contact{ID: "ct_1", FirstName: "Jane", LastName: "Smith", Phone: "+15551234567"},
		},
		{
			name:  "every field, canonical order",
			f:     Fields{FirstName: "J", LastName: "S", Phone: "+15551234568", Email: "j@example.com", Groups: []string{"b", "A"}},
			paths: EditableFields(), wantChanged: EditableFields(),
			want: Contact{ID: "ct_1", FirstName: "J", LastName: "S", Phone: "+15551234568", Email: "j@example.com", Groups: []string{"A", "b"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, changed := cur.Apply(tt.f, tt.paths)
			if diff := cmp.Diff(tt.wantChanged, changed); diff != "" {
				t.Errorf("changed mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("contact mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewUpdateMask(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		paths   []string
		want    []string
		wantErr bool
	}{
		{name: "canonical order, deduplicated", paths: []string{"groups", "first_name", "groups"}, want: []string{"first_name", "groups"}},
		{name: "star means all", paths: []string{"*"}, want: EditableFields()},
		{name: "empty", paths: nil, wantErr: true},
		{name: "unknown path", paths: []string{"first_name", "opted_out"}, wantErr: true},
		{name: "output-only path", paths: []string{"id"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := NewUpdateMask(tt.paths)
			if tt.wantErr {
				var ie *InvalidError
				if !errors.As(err, &ie) || ie.Field != "update_mask" {
					t.Fatalf("NewUpdateMask(%v) = %v, %v; want an InvalidError on update_mask", tt.paths, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewUpdateMask(%v): %v", tt.paths, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mask mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseSource(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Source{"": SourceManual, "manual": SourceManual, "import": SourceImport,
		"keyword_optin": SourceKeywordOptIn, "inbound": SourceInbound} {
		if got, err := ParseSource(in); err != nil || got != want {
			t.Errorf("ParseSource(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"Manual", "web", "keyword_opt_in"} {
		if _, err := ParseSource(in); err == nil {
			t.Errorf("ParseSource(%q): got nil error, want one", in)
		}
	}
}

func TestWithPrefix(t *testing.T) {
	t.Parallel()
	err := WithPrefix("contact.", Invalid("phone", "is required"))
	if got, want := err.Error(), "contact.phone: is required"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := WithPrefix("contact.", ErrNotFound); !errors.Is(got, ErrNotFound) {
		t.Errorf("WithPrefix changed a non-validation error: %v", got)
	}
}
