// Package carrier speaks the carriers' webhook dialect: the Twilio-compatible request
// signature (X-Twilio-Signature) that proves an inbound SMS came from the carrier.
package carrier

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // Twilio's signature scheme is HMAC-SHA1.
	"encoding/base64"
	"net/url"
	"sort"
	"strings"
)

// SignatureHeader carries the signature of an inbound request.
const SignatureHeader = "X-Twilio-Signature"

// Signature computes base64(HMAC-SHA1(token, fullURL + key1 + value1 + key2 + value2 ...)) with
// the form keys sorted, and each key's values sorted, as Twilio does.
func Signature(token, fullURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		vs := append([]string(nil), form[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(token))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Valid reports whether signature is the signature of the request in constant time. An empty
// token or signature is never valid.
func Valid(token, fullURL string, form url.Values, signature string) bool {
	if token == "" || signature == "" {
		return false
	}
	want := Signature(token, fullURL, form)
	return hmac.Equal([]byte(want), []byte(signature))
}
