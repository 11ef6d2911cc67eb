package domain

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/customertext/webhooks/libs/ssrf"
)

func TestValidateURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		url      string
		insecure bool
		wantErr  string
	}{
		{name: "https", url: "https://hooks.zapier.com/hooks/catch/1/abc"},
		{name: "https with port and query", url: "https://example.com:8443/x?y=1"},
		{name: "http refused", url: "http://example.com/x", wantErr: "must use https"},
		{name: "http when insecure allowed", url: "http://example.com:8080/x", insecure: true},
		{name: "metadata address", url: "http://169.254.169.254/latest", insecure: true, wantErr: "reserved address"},
		{name: "loopback", url: "https://127.0.0.1/x", wantErr: "reserved address"},
		{name: "private", url: "https://10.1.2.3/x", wantErr: "reserved address"},
		{name: "unspecified", url: "https://0.0.0.0/x", wantErr: "reserved address"},
		{name: "ipv6 loopback", url: "https://[::1]:8443/x", wantErr: "reserved address"},
		{name: "ipv6 link-local with zone", url: "https://[fe80::1%25eth0]/x", wantErr: "reserved address"},
		{name: "6to4 relay anycast", url: "https://192.88.99.1/x", wantErr: "reserved address"},
		{name: "public literal", url: "https://8.8.8.8/x"},
		{name: "empty", url: "", wantErr: "is required"},
		{name: "relative", url: "example.com/x", wantErr: "absolute"},
		{name: "ftp", url: "ftp://example.com", wantErr: "https"},
		{name: "mailto opaque", url: "mailto:a@b.c", wantErr: "absolute"},
		{name: "user info", url: "https://u:p@example.com/", wantErr: "user information"},
		{name: "user only", url: "https://u@example.com/", wantErr: "user information"},
		{name: "no host", url: "https:///x", wantErr: "host"},
		{name: "too long", url: "https://e.com/" + strings.Repeat("x", MaxURLLength), wantErr: "longer than"},
		{name: "tab", url: "https://e.com/\tx", wantErr: "control"},
		{name: "newline", url: "https://e.com/\nx", wantErr: "control"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Policy{AllowInsecureHTTP: tt.insecure}.ValidateURL(tt.url, "url")
			checkErr(t, err, "url", tt.wantErr)
		})
	}
}

func TestValidateURLAllowList(t *testing.T) {
	t.Parallel()
	allow, err := ssrf.ParseAllowList("127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	p := Policy{AllowInsecureHTTP: true, Guard: ssrf.New(allow)}
	if err := p.ValidateURL("http://127.0.0.1:8080/x", "url"); err != nil {
		t.Errorf("allow-listed loopback: %v", err)
	}
	checkErr(t, p.ValidateURL("http://10.0.0.1/x", "url"), "url", "reserved address")
}

func TestSameOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"https://a.example.com/x", "https://a.example.com/y?z=1", true},
		{"https://a.example.com/x", "https://A.EXAMPLE.com:443/x", true},
		{"http://a.example.com/x", "http://a.example.com:80/x", true},
		{"https://a.example.com/x", "https://b.example.com/x", false},
		{"https://a.example.com/x", "https://a.example.com:8443/x", false},
		{"https://a.example.com/x", "http://a.example.com/x", false},
		{"https://a.example.com/x", "https://a.example.com.evil.net/x", false},
	}
	for _, tt := range tests {
		if got := SameOrigin(tt.a, tt.b); got != tt.want {
			t.Errorf("SameOrigin(%q, %q): got %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestValidateTimeout(t *testing.T) {
	t.Parallel()
	for d, ok := range map[time.Duration]bool{
		0: true, time.Second: true, 30 * time.Second: true, 10 * time.Second: true,
		-time.Second: false, 31 * time.Second: false, 500 * time.Millisecond: false, 1500 * time.Millisecond: false,
	} {
		if got := ValidateTimeout(d, "timeout_seconds") == nil; got != ok {
			t.Errorf("ValidateTimeout(%s): got ok=%v, want %v", d, got, ok)
		}
	}
}

func checkErr(t *testing.T, err error, field, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("got %v, want no error", err)
		}
		return
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want a ValidationError containing %q", err, want)
	}
	if ve.Field != field || !strings.Contains(ve.Reason, want) {
		t.Errorf("got field %q reason %q, want field %q reason containing %q", ve.Field, ve.Reason, field, want)
	}
}

func TestValidateAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		auth      Auth
		wantField string
		wantErr   string
	}{
		{name: "none", auth: Auth{Kind: AuthNone}},
		{name: "api key", auth: Auth{Kind: AuthAPIKey, HeaderName: "X-Api-Key", Value: "abc"}},
		{name: "bearer", auth: Auth{Kind: AuthBearer, Value: "tok"}},
		{name: "name missing", auth: Auth{Kind: AuthAPIKey, Value: "v"}, wantField: "auth.api_key_header.name", wantErr: "required"},
		{name: "name with colon", auth: Auth{Kind: AuthAPIKey, HeaderName: "X:Key", Value: "v"}, wantField: "auth.api_key_header.name", wantErr: "valid HTTP header"},
		{name: "name with CRLF", auth: Auth{Kind: AuthAPIKey, HeaderName: "X\r\nY", Value: "v"}, wantField: "auth.api_key_header.name", wantErr: "valid HTTP header"},
		{name: "name too long", auth: Auth{Kind: AuthAPIKey, HeaderName: strings.Repeat("x", 129), Value: "v"}, wantField: "auth.api_key_header.name", wantErr: "longer"},
		{name: "reserved host", auth: Auth{Kind: AuthAPIKey, HeaderName: "HOST", Value: "v"}, wantField: "auth.api_key_header.name", wantErr: "reserved"},
		{name: "reserved transfer-encoding", auth: Auth{Kind: AuthAPIKey, HeaderName: "Transfer-Encoding", Value: "v"}, wantField: "auth.api_key_header.name", wantErr: "reserved"},
		{name: "reserved connection", auth: Auth{Kind: AuthAPIKey, HeaderName: "Connection", Value: "v"}, wantField: "auth.api_key_header.name", wantErr: "reserved"},
		{name: "reserved user-agent", auth: Auth{Kind: AuthAPIKey, HeaderName: "User-Agent", Value: "v"}, wantField: "auth.api_key_header.name", wantErr: "reserved"},
		{name: "reserved content-length", auth: Auth{Kind: AuthAPIKey, HeaderName: "Content-Length", Value: "v"}, wantField: "auth.api_key_header.name", wantErr: "reserved"},
		{name: "reserved tracestate", auth: Auth{Kind: AuthAPIKey, HeaderName: "tracestate", Value: "v"}, wantField: "auth.api_key_header.name", wantErr: "reserved"},
		{name: "reserved webhook-id", auth: Auth{Kind: AuthAPIKey, HeaderName: "webhook-id", Value: "v"}, wantField: "auth.api_key_header.name", wantErr: "reserved"},
		{name: "value LF", auth: Auth{Kind: AuthAPIKey, HeaderName: "X-K", Value: "a\nb"}, wantField: "auth.api_key_header.value", wantErr: "control"},
		{name: "value DEL", auth: Auth{Kind: AuthAPIKey, HeaderName: "X-K", Value: "a\x7fb"}, wantField: "auth.api_key_header.value", wantErr: "control"},
		{name: "value too long", auth: Auth{Kind: AuthAPIKey, HeaderName: "X-K", Value: strings.Repeat("v", 4097)}, wantField: "auth.api_key_header.value", wantErr: "longer"},
		{name: "bearer empty", auth: Auth{Kind: AuthBearer}, wantField: "auth.bearer.token", wantErr: "required"},
		{name: "bearer CR", auth: Auth{Kind: AuthBearer, Value: "a\rb"}, wantField: "auth.bearer.token", wantErr: "control"},
		{name: "bearer padded", auth: Auth{Kind: AuthBearer, Value: " tok"}, wantField: "auth.bearer.token", wantErr: "whitespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, ValidateAuth(tt.auth, "auth"), tt.wantField, tt.wantErr)
		})
	}
}

func TestValidateSpec(t *testing.T) {
	t.Parallel()
	ok := Spec{URL: "https://e.com/x", EventTypes: []string{"new_contact", "campaign_sent", "new_contact"}, Description: "line 1\nline 2"}
	got, err := Policy{}.Validate(ok, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"new_contact", "campaign_sent"}, got.EventTypes); diff != "" {
		t.Errorf("event types de-duplicated (-want +got):\n%s", diff)
	}
	tests := []struct {
		name  string
		edit  func(s *Spec)
		field string
	}{
		{"no event types", func(s *Spec) { s.EventTypes = nil }, "webhook.event_types"},
		{"unknown event type", func(s *Spec) { s.EventTypes = []string{"NEW_CONTACT"} }, "webhook.event_types"},
		{"description too long", func(s *Spec) { s.Description = strings.Repeat("é", 501) }, "webhook.description"},
		{"description control", func(s *Spec) { s.Description = "a\x00" }, "webhook.description"},
		{"bad url", func(s *Spec) { s.URL = "x" }, "webhook.url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.edit(&s)
			_, err := Policy{}.Validate(s, "webhook.")
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("got %v, want a ValidationError on %s", err, tt.field)
			}
		})
	}
	t.Run("500 multi-byte characters fit", func(t *testing.T) {
		s := ok
		s.Description = strings.Repeat("é", 500)
		if _, err := (Policy{}).Validate(s, ""); err != nil {
			t.Errorf("got %v, want no error", err)
		}
	})
}

func TestHintAndSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""}, {"short", ""}, {"whsec_abcdefghijkl", "ijkl"},
	}
	for _, tt := range tests {
		if got := Hint(tt.in); got != tt.want {
			t.Errorf("Hint(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
	name, value := Auth{Kind: AuthBearer, Value: "t"}.Header()
	if name != "Authorization" || value != "Bearer t" {
		t.Errorf("bearer header: got %q: %q, want Authorization: Bearer t", name, value)
	}
}

// FuzzValidate checks that whatever a caller sends, validation either refuses it with a field
// name or accepts something a request can safely carry.
func FuzzValidate(f *testing.F) {
	f.Add("https://e.com/x", "X-Api-Key", "value", "desc")
	f.Add("http://a:b@e.com", "Host", "a\r\nb", "")
	f.Add("https://[::1]:80/", "webhook-x", "", "\x00")
	f.Fuzz(func(t *testing.T, url, header, value, desc string) {
		s := Spec{URL: url, EventTypes: []string{"new_contact"}, Description: desc,
			Auth: Auth{Kind: AuthAPIKey, HeaderName: header, Value: value}}
		got, err := Policy{}.Validate(s, "")
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field == "" {
				t.Fatalf("error without a field: %v", err)
			}
			return
		}
		if !strings.HasPrefix(strings.ToLower(got.URL), "https://") {
			t.Fatalf("accepted non-https url %q", got.URL)
		}
		if strings.ContainsAny(got.Auth.Value, "\r\n\x00") || strings.ContainsAny(got.Auth.HeaderName, "\r\n: ") {
			t.Fatalf("accepted header injection %q: %q", got.Auth.HeaderName, got.Auth.Value)
		}
	})
}
