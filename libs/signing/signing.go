// Package signing implements Standard Webhooks signatures: the webhook-id, webhook-timestamp and
// webhook-signature headers, with secrets in the "whsec_<base64>" form. Sign supports several
// secrets at once, which is how a rotated secret keeps verifying during its overlap window.
package signing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of the Standard Webhooks specification.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

const prefix = "whsec_"

// Secret is a decoded signing key.
type Secret []byte

// NewSecret returns a fresh random 32-byte secret.
func NewSecret() (Secret, string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, "", fmt.Errorf("generate secret: %w", err)
	}
	return b, prefix + base64.StdEncoding.EncodeToString(b), nil
}

// ParseSecret decodes a "whsec_..." secret.
func ParseSecret(s string) (Secret, error) {
	raw, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return nil, errors.New("parse secret: missing whsec_ prefix")
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, fmt.Errorf("parse secret: %w", err)
	}
	if len(b) < 16 {
		return nil, errors.New("parse secret: shorter than 16 bytes")
	}
	return b, nil
}

// Signature returns "v1,<base64 HMAC-SHA256(id.timestamp.body)>".
func (s Secret) Signature(id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, s)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, ts, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Headers sets the three signature headers on h, signing with every secret (space separated).
func Headers(h http.Header, secrets []Secret, id string, ts time.Time, body []byte) {
	unix := ts.Unix()
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		sigs = append(sigs, s.Signature(id, unix, body))
	}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(unix, 10))
	h.Set(HeaderSignature, strings.Join(sigs, " "))
}

// ErrInvalid is returned by Verify for a request that does not carry a valid signature.
var ErrInvalid = errors.New("invalid webhook signature")

// Verify checks the headers of a received webhook against secret, as a receiver would: the
// timestamp must be within tolerance of now and one of the v1 signatures must match.
func Verify(secret Secret, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, tsRaw, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsRaw == "" || sigs == "" {
		return fmt.Errorf("%w: missing headers", ErrInvalid)
	}
	ts, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad timestamp", ErrInvalid)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp outside tolerance", ErrInvalid)
	}
	want := secret.Signature(id, ts, body)
	for _, got := range strings.Fields(sigs) {
		if hmac.Equal([]byte(got), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("%w: no matching signature", ErrInvalid)
}
