package secrets

import (
	"encoding/base64"
	"strings"
	"testing"
)

func key(b byte) string {
	k := make([]byte, 32)
	for i := range k {
		k[i] = b
	}
	return base64.StdEncoding.EncodeToString(k)
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		primary string
		wantErr string
	}{
		{name: "one", in: "k1:" + key(1), primary: "k1"},
		{name: "two, first encrypts", in: "new:" + key(2) + ", old:" + key(1), primary: "new"},
		{name: "empty", in: "", wantErr: "at least one key"},
		{name: "no id", in: key(1), wantErr: "want <key-id>:<base64 key>"},
		{name: "bad base64", in: "k1:!!!", wantErr: "not valid base64"},
		{name: "short key", in: "k1:" + base64.StdEncoding.EncodeToString([]byte("short")), wantErr: "want 32 bytes"},
		{name: "duplicate id", in: "k1:" + key(1) + ",k1:" + key(2), wantErr: "duplicate key id"},
		{name: "bad id", in: "k 1:" + key(1), wantErr: "key id must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := ParseKeys(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseKeys error: got %v, want containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), key(1)) || strings.Contains(err.Error(), key(2)) {
					t.Fatalf("error leaks key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKeys: %v", err)
			}
			if got := kr.PrimaryID(); got != tt.primary {
				t.Errorf("primary: got %q, want %q", got, tt.primary)
			}
		})
	}
}

func TestSealOpenAcrossRotation(t *testing.T) {
	t.Parallel()
	old, err := ParseKeys("old:" + key(1))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := old.Seal("whsec_abc", "webhook:w1:secret")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "whsec_abc") {
		t.Fatalf("sealed value contains the plaintext: %q", sealed)
	}
	rotated, err := ParseKeys("new:" + key(2) + ",old:" + key(1))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		kr      *Keyring
		sealed  string
		context string
		want    string
		wantErr bool
	}{
		{name: "same keyring", kr: old, sealed: sealed, context: "webhook:w1:secret", want: "whsec_abc"},
		{name: "older key still decrypts", kr: rotated, sealed: sealed, context: "webhook:w1:secret", want: "whsec_abc"},
		{name: "other context refused", kr: rotated, sealed: sealed, context: "webhook:w2:secret", wantErr: true},
		{name: "dropped key refused", kr: mustParse(t, "new:"+key(2)), sealed: sealed, context: "webhook:w1:secret", wantErr: true},
		{name: "garbage refused", kr: rotated, sealed: "old:AAAA", context: "webhook:w1:secret", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.kr.Open(tt.sealed, tt.context)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Open: got %q, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if got != tt.want {
				t.Errorf("Open: got %q, want %q", got, tt.want)
			}
		})
	}
	resealed, err := rotated.Seal("x", "c")
	if err != nil {
		t.Fatal(err)
	}
	if got := KeyID(resealed); got != "new" {
		t.Errorf("KeyID of a new seal: got %q, want %q", got, "new")
	}
}

func mustParse(t *testing.T, s string) *Keyring {
	t.Helper()
	kr, err := ParseKeys(s)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func FuzzParseKeys(f *testing.F) {
	f.Add("k1:" + key(1))
	f.Add("a:" + key(1) + ",b:" + key(2))
	f.Add(",,:")
	f.Fuzz(func(t *testing.T, s string) {
		kr, err := ParseKeys(s)
		if err != nil {
			return
		}
		sealed, err := kr.Seal("v", "c")
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if got, err := kr.Open(sealed, "c"); err != nil || got != "v" {
			t.Fatalf("Open: got %q, %v; want %q", got, err, "v")
		}
	})
}

func FuzzOpen(f *testing.F) {
	kr, err := ParseKeys("k1:" + key(1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("k1:AAAA")
	f.Add("nope")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = kr.Open(s, "c") // must not panic
	})
}
