package secrets_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/customertext/webhooks/services/messaging/internal/secrets"
)

func key(b byte) string {
	return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(rune(b)), 32)))
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	old, err := secrets.ParseKeys("k1:" + key('a'))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	rotated, err := secrets.ParseKeys("k2:" + key('b') + ",k1:" + key('a'))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	var none *secrets.Keyring
	sealedOld, _ := old.Seal("tok", "number:+1")
	sealedNew, _ := rotated.Seal("tok", "number:+1")
	plain, _ := none.Seal("tok", "number:+1")
	if strings.Contains(sealedOld, "tok") || !strings.HasPrefix(sealedOld, "k1:") || !strings.HasPrefix(sealedNew, "k2:") {
		t.Fatalf("got sealed %q and %q, want ciphertexts under k1 and k2", sealedOld, sealedNew)
	}
	tests := []struct {
		name    string
		kr      *secrets.Keyring
		sealed  string
		context string
		wantErr bool
	}{
		{"same key", old, sealedOld, "number:+1", false},
		{"old value after rotation", rotated, sealedOld, "number:+1", false},
		{"new value", rotated, sealedNew, "number:+1", false},
		{"new value without the new key", old, sealedNew, "number:+1", true},
		{"other row", old, sealedOld, "number:+2", true},
		{"plain value with keys", rotated, plain, "number:+1", false},
		{"plain value without keys", none, plain, "number:+1", false},
		{"sealed value without keys", none, sealedOld, "number:+1", true},
		{"garbage", old, "k1:!!!", "number:+1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.kr.Open(tc.sealed, tc.context)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != "tok" {
				t.Errorf("got %q, %v; want \"tok\"", got, err)
			}
		})
	}
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		wantNil bool
		wantErr bool
	}{
		{"", true, false},
		{"k1:" + key('a'), false, false},
		{"k1", false, true},
		{"plain:" + key('a'), false, true},
		{"k1:" + base64.StdEncoding.EncodeToString([]byte("short")), false, true},
		{"k1:" + key('a') + ",k1:" + key('b'), false, true},
		{"bad id!:" + key('a'), false, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			kr, err := secrets.ParseKeys(tc.in)
			if (err != nil) != tc.wantErr || (kr == nil) != (tc.wantNil || tc.wantErr) {
				t.Fatalf("got %v, %v; want nil=%v error=%v", kr, err, tc.wantNil, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), key('a')) {
				t.Errorf("error %q leaks key material", err)
			}
		})
	}
}
