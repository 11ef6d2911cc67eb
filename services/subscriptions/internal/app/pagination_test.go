package app

import (
	"errors"
	"testing"
	"time"

	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

func TestAttemptTokenRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 4, 25, 14, 30, 0, 123456000, time.UTC)
	tok := encodeAttemptToken(at, "att_1")
	gotT, gotID, err := decodeAttemptToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !gotT.Equal(at) || gotID != "att_1" {
		t.Errorf("got %v %q, want %v att_1", gotT, gotID, at)
	}
	tests := []string{"!!", encodeToken("w", "wh_1"), encodeToken("a", "notanumber|x"), encodeToken("a", "12")}
	for _, bad := range tests {
		t.Run(bad, func(t *testing.T) {
			_, _, err := decodeAttemptToken(bad)
			var ve *domain.ValidationError
			if !errors.As(err, &ve) || ve.Field != "page_token" {
				t.Errorf("got %v, want a page_token validation error", err)
			}
		})
	}
}

func TestPageSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      int32
		want    int
		wantErr bool
	}{{0, defaultPageSize, false}, {10, 10, false}, {5000, maxPageSize, false}, {-1, 0, true}}
	for _, tt := range tests {
		got, err := pageSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("pageSize(%d): got %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzPageTokens(f *testing.F) {
	f.Add(encodeAttemptToken(time.Unix(1, 2), "x"))
	f.Add(encodeToken("w", "wh_1"))
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		if c, err := decodeToken(tok, "w"); err == nil && tok != "" && c == "" {
			t.Fatalf("accepted token %q with an empty cursor", tok)
		}
		_, _, _ = decodeAttemptToken(tok)
	})
}
