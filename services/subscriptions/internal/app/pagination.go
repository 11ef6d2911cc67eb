package app

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

func pageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, &domain.ValidationError{Field: "page_size", Reason: "must not be negative"}
	case n == 0:
		return defaultPageSize, nil
	case n > maxPageSize:
		return maxPageSize, nil
	}
	return int(n), nil
}

// Page tokens are opaque to callers: base64url of "<kind>:<cursor>".

func encodeToken(kind, cursor string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + cursor))
}

func decodeToken(tok, kind string) (string, error) {
	if tok == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", &domain.ValidationError{Field: "page_token", Reason: "is not a token this API returned"}
	}
	cursor, ok := strings.CutPrefix(string(raw), kind+":")
	if !ok || cursor == "" {
		return "", &domain.ValidationError{Field: "page_token", Reason: "is not a token this API returned"}
	}
	return cursor, nil
}

func encodeAttemptToken(t time.Time, id string) string {
	return encodeToken("a", strconv.FormatInt(t.UnixNano(), 10)+"|"+id)
}

func decodeAttemptToken(tok string) (time.Time, string, error) {
	cursor, err := decodeToken(tok, "a")
	if err != nil || cursor == "" {
		return time.Time{}, "", err
	}
	ns, id, ok := strings.Cut(cursor, "|")
	n, perr := strconv.ParseInt(ns, 10, 64)
	if !ok || perr != nil || id == "" {
		return time.Time{}, "", &domain.ValidationError{Field: "page_token", Reason: "is not a token this API returned"}
	}
	return time.Unix(0, n), id, nil
}
