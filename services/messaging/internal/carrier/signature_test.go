package carrier_test

import (
	"net/url"
	"testing"

	"github.com/customertext/webhooks/services/messaging/internal/carrier"
)

// TestSignatureKnownAnswer checks the scheme against Twilio's documented example
// (https://www.twilio.com/docs/usage/security#validating-requests).
func TestSignatureKnownAnswer(t *testing.T) {
	t.Parallel()
	form := url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+12349013030"},
		"Digits":  {"1234"},
		"From":    {"+12349013030"},
		"To":      {"+18005551212"},
	}
	got := carrier.Signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", form)
	if want := "0/KCTR6DLpKmkAf8muzZqo1nDgQ="; got != want {
		t.Errorf("got signature %q, want %q", got, want)
	}
}

func TestValid(t *testing.T) {
	t.Parallel()
	const u = "http://127.0.0.1:7302/sms/inbound"
	form := url.Values{"From": {"+15551230001"}, "To": {"+15557654321"}, "Body": {"STOP"}, "MessageSid": {"SM1"}}
	good := carrier.Signature("tok", u, form)
	tests := []struct {
		name  string
		token string
		url   string
		form  url.Values
		sig   string
		want  bool
	}{
		{"valid", "tok", u, form, good, true},
		{"wrong token", "other", u, form, good, false},
		{"wrong url", "tok", u + "x", form, good, false},
		{"tampered body", "tok", u, url.Values{"From": {"+15551230001"}, "To": {"+15557654321"}, "Body": {"START"}, "MessageSid": {"SM1"}}, good, false},
		{"missing signature", "tok", u, form, "", false},
		{"empty token", "", u, form, carrier.Signature("", u, form), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := carrier.Valid(tc.token, tc.url, tc.form, tc.sig); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzValid checks that a signature only validates the exact form it was made for.
func FuzzValid(f *testing.F) {
	f.Add("tok", "Body", "STOP", "STOP ")
	f.Add("t", "", "", "x")
	f.Fuzz(func(t *testing.T, token, key, value, other string) {
		const u = "https://example.com/sms/inbound"
		form := url.Values{key: {value}}
		sig := carrier.Signature(token, u, form)
		if token != "" && !carrier.Valid(token, u, form, sig) {
			t.Fatalf("own signature rejected for token %q form %v", token, form)
		}
		if other != value && carrier.Valid(token, u, url.Values{key: {other}}, sig) {
			t.Fatalf("signature of %q accepted for %q", value, other)
		}
	})
}
