// Package loginlink signs and redeems the console's login links: the platform's backend, which
// knows who is signed in to the product, mints a short-lived link for an account user with their
// role; the console redeems it once.
//
// A link's token is base64url(JSON claims) "." base64url(HMAC-SHA256(key, JSON claims)). The key
// is shared by the backend and the console only; neither the browser nor the subscription
// service needs it.
package loginlink

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// MaxTTL bounds how long a link may be valid, however it was signed.
const MaxTTL = time.Hour

// Claims is who a link signs in, and until when.
type Claims struct {
	AccountID string `json:"acc"`
	Email     string `json:"email"`
	// Role is admin, manager or user.
	Role   string `json:"role"`
	Expiry int64  `json:"exp"`
	Nonce  string `json:"nonce"`
}

// Errors of Redeem; the console shows the same page for all of them.
var (
	ErrForged  = errors.New("login link is not valid")
	ErrExpired = errors.New("login link has expired")
	ErrUsed    = errors.New("login link was already used")
)

// Sign returns a token for an account user valid for ttl (at most MaxTTL).
func Sign(key []byte, accountID, email, role string, ttl time.Duration, now time.Time) (string, error) {
	if len(key) < 32 {
		return "", errors.New("sign login link: key must be at least 32 bytes")
	}
	if accountID == "" || email == "" {
		return "", errors.New("sign login link: account id and email are required")
	}
	switch role {
	case "admin", "manager", "user":
	default:
		return "", fmt.Errorf("sign login link: role %q is not admin, manager or user", role)
	}
	if ttl <= 0 || ttl > MaxTTL {
		return "", fmt.Errorf("sign login link: ttl %s is not between 0 and %s", ttl, MaxTTL)
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("sign login link: %w", err)
	}
	body, err := json.Marshal(Claims{AccountID: accountID, Email: email, Role: role,
		Expiry: now.Add(ttl).Unix(), Nonce: base64.RawURLEncoding.EncodeToString(nonce)})
	if err != nil {
		return "", fmt.Errorf("sign login link: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(mac(key, body)), nil
}

func mac(key, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(body)
	return h.Sum(nil)
}

// Redeemer verifies tokens and remembers the nonces of redeemed ones until they expire, so each
// link signs in once. It is safe for concurrent use.
type Redeemer struct {
	key []byte
	mu  sync.Mutex
	// used maps a redeemed nonce to its link's expiry; expired entries are dropped.
	used map[string]int64
}

// NewRedeemer returns a Redeemer for links signed with key.
func NewRedeemer(key []byte) *Redeemer {
	return &Redeemer{key: key, used: map[string]int64{}}
}

// Redeem verifies a token and marks it used.
func (r *Redeemer) Redeem(token string, now time.Time) (Claims, error) {
	var c Claims
	b64body, b64sig, ok := strings.Cut(token, ".")
	if !ok {
		return c, ErrForged
	}
	body, err1 := base64.RawURLEncoding.DecodeString(b64body)
	sig, err2 := base64.RawURLEncoding.DecodeString(b64sig)
	if err1 != nil || err2 != nil || !hmac.Equal(sig, mac(r.key, body)) {
		return c, ErrForged
	}
	if err := json.Unmarshal(body, &c); err != nil || c.Nonce == "" || c.AccountID == "" || c.Email == "" {
		return Claims{}, ErrForged
	}
	switch c.Role {
	case "admin", "manager", "user":
	default:
		return Claims{}, ErrForged
	}
	if now.Unix() >= c.Expiry {
		return Claims{}, ErrExpired
	}
	if time.Unix(c.Expiry, 0).Sub(now) > MaxTTL {
		return Claims{}, ErrForged
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for n, exp := range r.used {
		if now.Unix() >= exp {
			delete(r.used, n)
		}
	}
	if _, seen := r.used[c.Nonce]; seen {
		return Claims{}, ErrUsed
	}
	r.used[c.Nonce] = c.Expiry
	return c, nil
}
