package loginlink

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestRedeem(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	good, err := Sign(testKey, "acc_1", "a@example.com", "admin", 5*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := Sign([]byte("ffffffffffffffffffffffffffffffff"), "acc_1", "a@example.com", "admin", 5*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	body, sig, _ := strings.Cut(good, ".")
	tests := []struct {
		name  string
		token string
		at    time.Time
		want  error
	}{
		{"valid", good, now, nil},
		{"signed with another key", otherKey, now, ErrForged},
		{"signature swapped", body + "." + strings.Split(otherKey, ".")[1], now, ErrForged},
		{"body tampered", "x" + body + "." + sig, now, ErrForged},
		{"no signature", body, now, ErrForged},
		{"garbage", "%%%", now, ErrForged},
		{"expired", good, now.Add(5 * time.Minute), ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRedeemer(testKey).Redeem(tt.token, tt.at)
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRedeemOnce(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tok, err := Sign(testKey, "acc_1", "a@example.com", "manager", time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRedeemer(testKey)
	c, err := r.Redeem(tok, now)
	if err != nil {
		t.Fatalf("first redeem: %v", err)
	}
	if c.AccountID != "acc_1" || c.Email != "a@example.com" || c.Role != "manager" {
		t.Errorf("got claims %+v", c)
	}
	if _, err := r.Redeem(tok, now.Add(time.Second)); !errors.Is(err, ErrUsed) {
		t.Errorf("second redeem: got %v, want %v", err, ErrUsed)
	}
}

func TestSignRefuses(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		name string
		key  []byte
		role string
		ttl  time.Duration
	}{
		{"short key", []byte("short"), "admin", time.Minute},
		{"unknown role", testKey, "owner", time.Minute},
		{"ttl too long", testKey, "admin", 2 * time.Hour},
		{"no ttl", testKey, "admin", 0},
	} {
		if _, err := Sign(tt.key, "acc_1", "a@example.com", tt.role, tt.ttl, now); err == nil {
			t.Errorf("%s: got nil error, want one", tt.name)
		}
	}
}

func FuzzRedeem(f *testing.F) {
	tok, _ := Sign(testKey, "acc_1", "a@example.com", "admin", time.Minute, time.Unix(1_800_000_000, 0))
	f.Add(tok)
	f.Add("a.b")
	f.Fuzz(func(t *testing.T, s string) {
		if s == tok {
			return
		}
		if _, err := NewRedeemer(testKey).Redeem(s, time.Unix(1_800_000_000, 0)); err == nil {
			t.Errorf("token %q accepted", s)
		}
	})
}
