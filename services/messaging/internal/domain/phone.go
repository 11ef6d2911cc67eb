package domain

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// MaxBodyChars bounds an inbound body (a 10-segment concatenated SMS).
const MaxBodyChars = 1600

// NormalizePhone parses a number (international format, or national for region) and returns
// it in E.164. field names the input in the error.
func NormalizePhone(field, raw, region string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", fmt.Errorf("%s: required: %w", field, ErrInvalid)
	}
	if len(raw) > 64 {
		return "", fmt.Errorf("%s: too long for a phone number: %w", field, ErrInvalid)
	}
	n, err := phonenumbers.Parse(raw, region)
	if err != nil {
		return "", fmt.Errorf("%s: not a phone number: %w", field, ErrInvalid)
	}
	// IsPossibleNumber, not IsValidNumber: carriers and tests use numbers such as the 555 range
	// that are well-formed but not assigned.
	if !phonenumbers.IsPossibleNumber(n) {
		return "", fmt.Errorf("%s: not a possible phone number: %w", field, ErrInvalid)
	}
	e164 := phonenumbers.Format(n, phonenumbers.E164)
	// Some malformed inputs (a national trunk prefix after the country code) format to a
	// number that parses differently again; refuse them rather than store two forms.
	again, err := phonenumbers.Parse(e164, region)
	if err != nil || phonenumbers.Format(again, phonenumbers.E164) != e164 {
		return "", fmt.Errorf("%s: not a well-formed phone number: %w", field, ErrInvalid)
	}
	return e164, nil
}

// ValidateBody checks an inbound body.
func ValidateBody(field, body string) error {
	if !utf8.ValidString(body) {
		return fmt.Errorf("%s: not valid UTF-8: %w", field, ErrInvalid)
	}
	if utf8.RuneCountInString(body) > MaxBodyChars {
		return fmt.Errorf("%s: longer than %d characters: %w", field, MaxBodyChars, ErrInvalid)
	}
	return nil
}
