package signing

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The vector published with the Standard Webhooks reference libraries.
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS     = 1614265330
	vectorBody   = `{"test": 2432232314}`
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignatureMatchesStandardWebhooksVector(t *testing.T) {
	t.Parallel()
	s, err := ParseSecret(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Signature(vectorID, vectorTS, []byte(vectorBody)); got != vectorSig {
		t.Errorf("got %s, want %s", got, vectorSig)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	current, _, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	previous, _, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"event":"new_contact"}`)
	signed := func(secrets ...Secret) http.Header {
		h := http.Header{}
		Headers(h, secrets, "evt_1", now, body)
		return h
	}
	tests := []struct {
		name    string
		secret  Secret
		header  http.Header
		body    []byte
		now     time.Time
		wantErr bool
	}{
		{"current secret", current, signed(current), body, now, false},
		{"both secrets, verify with previous", previous, signed(current, previous), body, now, false},
		{"both secrets, verify with current", current, signed(current, previous), body, now, false},
		{"wrong secret", other, signed(current, previous), body, now, true},
		{"tampered body", current, signed(current), []byte(`{"event":"contact_opt_out"}`), now, true},
		{"too old", current, signed(current), body, now.Add(6 * time.Minute), true},
		{"from the future", current, signed(current), body, now.Add(-6 * time.Minute), true},
		{"no headers", current, http.Header{}, body, now, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.header, tt.body, tt.now, 5*time.Minute)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v, want it to wrap ErrInvalid", err)
			}
		})
	}
}

func TestHeadersSignsWithEverySecret(t *testing.T) {
	t.Parallel()
	a, _, _ := NewSecret()
	b, _, _ := NewSecret()
	h := http.Header{}
	Headers(h, []Secret{a, b}, "evt_1", time.Unix(10, 0), []byte("{}"))
	if got := len(strings.Fields(h.Get(HeaderSignature))); got != 2 {
		t.Errorf("got %d signatures, want 2", got)
	}
	if got := h.Get(HeaderTimestamp); got != "10" {
		t.Errorf("got timestamp %q, want 10", got)
	}
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!", "whsec_YWJj"} {
		if _, err := ParseSecret(in); err == nil {
			t.Errorf("ParseSecret(%q): got nil error, want one", in)
		}
	}
	_, text, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSecret(text); err != nil {
		t.Errorf("ParseSecret(NewSecret()): %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("evt_1", "1614265330", "v1,abc", []byte("{}"))
	s, _ := ParseSecret(vectorSecret)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		// Must never panic; a forged signature must never verify.
		if err := Verify(s, h, body, time.Unix(1614265330, 0), time.Hour); err == nil {
			want := s.Signature(id, 1614265330, body)
			if !strings.Contains(sig, want) {
				t.Fatalf("verified a signature that is not ours: %q", sig)
			}
		}
	})
}
