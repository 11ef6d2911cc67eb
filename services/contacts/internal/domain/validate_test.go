package domain

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, region string
		want        string
		wantErr     bool
	}{
		{raw: "+15551234567", region: "US", want: "+15551234567"},
		{raw: "(555) 123-4567", region: "US", want: "+15551234567"},
		{raw: "1-555-123-4567", region: "US", want: "+15551234567"},
		{raw: "  555.123.4567 ", region: "US", want: "+15551234567"},
		{raw: "+1 202 456 1111", region: "GB", want: "+12024561111"},
		{raw: "020 7946 0958", region: "GB", want: "+442079460958"},
		{raw: "+44 (0)20 7946 0958", region: "US", want: "+442079460958"},
		{raw: "06 12 34 56 78", region: "FR", want: "+33612345678"},
		{raw: "", region: "US", wantErr: true},
		{raw: "call me", region: "US", wantErr: true},
		{raw: "+1555", region: "US", wantErr: true},
		{raw: "12", region: "US", wantErr: true},
		{raw: "+999 1234 5678", region: "US", wantErr: true},
		{raw: "+1555123456789012", region: "US", wantErr: true},
		{raw: strings.Repeat("5", MaxPhoneLen+1), region: "US", wantErr: true},
		{raw: "\xff\xfe", region: "US", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.raw+"/"+tt.region, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizePhone(tt.raw, tt.region)
			if tt.wantErr {
				var ie *InvalidError
				if !errors.As(err, &ie) || ie.Field != "phone" {
					t.Fatalf("NormalizePhone(%q) = %q, %v; want an InvalidError on phone", tt.raw, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizePhone(%q, %s) = %q, %v; want %q", tt.raw, tt.region, got, err, tt.want)
			}
		})
	}
}

// FuzzNormalizePhone checks that any input either fails with an InvalidError or yields an E.164
// number that is stable: normalising it again gives itself, whatever the default region.
func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{"+15551234567", "(555) 123-4567", "020 7946 0958", "+44 (0)20 7946 0958", "abc", "", "+", "00", "1-800-FLOWERS", "+1 555 123 4567 ext. 89", "tel:+1-555-123-4567"} {
		f.Add(s, "US")
		f.Add(s, "GB")
	}
	f.Fuzz(func(t *testing.T, raw, region string) {
		if r, err := NewRegion(region); err == nil {
			region = r
		} else {
			region = DefaultRegion
		}
		got, err := NormalizePhone(raw, region)
		if err != nil {
			var ie *InvalidError
			if !errors.As(err, &ie) || ie.Field != "phone" {
				t.Fatalf("NormalizePhone(%q) error %v is not an InvalidError on phone", raw, err)
			}
			return
		}
		if !strings.HasPrefix(got, "+") || len(got) < 3 || len(got) > 16 {
			t.Fatalf("NormalizePhone(%q) = %q, not E.164", raw, got)
		}
		for _, r := range got[1:] {
			if r < '0' || r > '9' {
				t.Fatalf("NormalizePhone(%q) = %q, not E.164", raw, got)
			}
		}
		for _, other := range []string{region, "US", "DE"} {
			again, err := NormalizePhone(got, other)
			if err != nil || again != got {
				t.Fatalf("NormalizePhone(%q, %s) = %q, %v; want the fixed point %q", got, other, again, err, got)
			}
		}
	})
}

func TestNewRegion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "", want: "US"},
		{in: "gb", want: "GB"},
		{in: "FR", want: "FR"},
		{in: "XX", wantErr: true},
		{in: "USA", wantErr: true},
		{in: "ZZ", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := NewRegion(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("NewRegion(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
	if !phonenumbers.GetSupportedRegions()["GB"] {
		t.Fatalf("GB is not a supported region, the table above is wrong")
	}
}

func TestTextValidators(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fn      func(string) (string, error)
		in      string
		want    string
		wantErr bool
	}{
		{"name trimmed", func(s string) (string, error) { return NewName("first_name", s) }, "  Jane ", "Jane", false},
		{"name empty", func(s string) (string, error) { return NewName("first_name", s) }, "", "", false},
		{"name unicode", func(s string) (string, error) { return NewName("first_name", s) }, "Zoë 李", "Zoë 李", false},
		{"name at the limit", func(s string) (string, error) { return NewName("first_name", s) }, strings.Repeat("é", MaxNameLen), strings.Repeat("é", MaxNameLen), false},
		{"name too long", func(s string) (string, error) { return NewName("first_name", s) }, strings.Repeat("é", MaxNameLen+1), "", true},
		{"name with newline", func(s string) (string, error) { return NewName("first_name", s) }, "Ann\nMarie", "", true},
		{"name with bidi override", func(s string) (string, error) { return NewName("first_name", s) }, "Ann\u202eeiraM", "", true},
		{"name invalid utf-8", func(s string) (string, error) { return NewName("first_name", s) }, "\xc3", "", true},
		{"email ok", NewEmail, "jane@example.com", "jane@example.com", false},
		{"email empty", NewEmail, "", "", false},
		{"email without domain", NewEmail, "jane@", "", true},
		{"email without at", NewEmail, "jane", "", true},
		{"email with display name", NewEmail, "Jane <jane@example.com>", "", true},
		{"email too long", NewEmail, strings.Repeat("a", 250) + "@x.io", "", true},
		{"group ok", func(s string) (string, error) { return NewGroupName("name", s) }, " VIP ", "VIP", false},
		{"group empty", func(s string) (string, error) { return NewGroupName("name", s) }, "  ", "", true},
		{"group separator", func(s string) (string, error) { return NewGroupName("name", s) }, "a;b", "", true},
		{"group too long", func(s string) (string, error) { return NewGroupName("name", s) }, strings.Repeat("g", MaxGroupNameLen+1), "", true},
		{"account ok", NewAccountID, "acct_1-A", "acct_1-A", false},
		{"account empty", NewAccountID, "", "", true},
		{"account with a dot", NewAccountID, "acct.1", "", true},
		{"account with a wildcard", NewAccountID, "acct>", "", true},
		{"account too long", NewAccountID, strings.Repeat("a", MaxAccountIDLen+1), "", true},
		{"keyword ok", NewKeyword, " JOIN ", "JOIN", false},
		{"keyword empty", NewKeyword, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.fn(tt.in)
			if tt.wantErr {
				var ie *InvalidError
				if !errors.As(err, &ie) {
					t.Fatalf("got %q, %v; want an InvalidError", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestNewGroupNames(t *testing.T) {
	t.Parallel()
	got, err := NewGroupNames("groups", []string{"vip", " Events", "VIP", "customers"})
	if err != nil {
		t.Fatalf("NewGroupNames: %v", err)
	}
	if want := "customers,Events,vip"; strings.Join(got, ",") != want {
		t.Errorf("got %v, want %s", got, want)
	}
	if _, err := NewGroupNames("groups", make([]string, MaxGroups+1)); err == nil {
		t.Errorf("got nil error for %d groups, want one", MaxGroups+1)
	}
}

// FuzzNewName checks that an accepted name is trimmed, valid UTF-8, bounded and free of control
// characters, and that validating it again changes nothing.
func FuzzNewName(f *testing.F) {
	for _, s := range []string{"Jane", " Zoë ", "Ann\nMarie", "\x00", "\u202e", strings.Repeat("x", 101)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := NewName("first_name", in)
		if err != nil {
			return
		}
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > MaxNameLen || strings.TrimSpace(got) != got {
			t.Fatalf("NewName(%q) = %q: not trimmed, valid and bounded", in, got)
		}
		if strings.ContainsFunc(got, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("NewName(%q) = %q contains a control character", in, got)
		}
		if again, err := NewName("first_name", got); err != nil || again != got {
			t.Fatalf("NewName(%q) = %q, %v; want a fixed point", got, again, err)
		}
	})
}
