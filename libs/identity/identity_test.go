package identity

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, id   string
		check      func(string) error
		wantReason string
	}{
		{"account", "acc_0192f1b2-aaaa", Account, ""},
		{"event uuid", "evt_0192f1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b", Event, ""},
		{"webhook", "wh_0192f1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b", Webhook, ""},
		{"longest delivery", "test_" + strings.Repeat("e", MaxLen) + "_" + strings.Repeat("w", MaxLen), Delivery, ""},
		{"longest account", strings.Repeat("a", MaxLen), Account, ""},
		{"empty", "", Account, ReasonEmpty},
		{"too long", strings.Repeat("a", MaxLen+1), Event, ReasonTooLong},
		{"5000 chars", strings.Repeat("e", 5000), Event, ReasonTooLong},
		{"delivery too long", strings.Repeat("d", MaxDeliveryLen+1), Delivery, ReasonTooLong},
		{"space", "evt_a b", Event, ReasonBadChar},
		{"dot", "evt_a.b", Event, ReasonBadChar},
		{"star", "evt_*", Event, ReasonBadChar},
		{"gt", "evt_>", Event, ReasonBadChar},
		{"newline", "evt_a\r\nPUB x 1", Event, ReasonBadChar},
		{"non-ascii", "evt_é", Event, ReasonBadChar},
		{"nul", "evt_\x00", Webhook, ReasonBadChar},
		{"colon", "a:b", Account, ReasonBadChar},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.check(tt.id)
			if got := Reason(err); got != tt.wantReason {
				t.Fatalf("reason: got %q (%v), want %q", got, err, tt.wantReason)
			}
			if tt.wantReason != "" && !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid): got false, want true", err)
			}
			if err != nil && len(err.Error()) > 200 {
				t.Errorf("error text is %d bytes: it must not echo the id", len(err.Error()))
			}
		})
	}
}

// FuzzCheck proves that whatever Check accepts is safe as a NATS subject token, a header value
// and a Nats-Msg-Id, and bounded.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"", "acc_1", "evt_a.b", "a b", "*", ">", "\r\n", strings.Repeat("x", 200), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := Delivery(id)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || Reason(err) == "" {
				t.Fatalf("Delivery(%q): got %v, want an identity error with a reason", id, err)
			}
			return
		}
		if len(id) == 0 || len(id) > MaxDeliveryLen {
			t.Fatalf("Delivery(%q) accepted %d bytes", id, len(id))
		}
		if strings.ContainsAny(id, ".*> \t\r\n\x00:") {
			t.Fatalf("Delivery(%q) accepted a subject or header metacharacter", id)
		}
		for _, r := range id {
			if r > 0x7e || r < 0x21 {
				t.Fatalf("Delivery(%q) accepted rune %U", id, r)
			}
		}
		if len(id) <= MaxLen {
			if err := Event(id); err != nil {
				t.Fatalf("Event(%q) refused what Delivery accepts: %v", id, err)
			}
		}
	})
}
