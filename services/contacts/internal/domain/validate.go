package domain

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Bounds on outside input.
const (
	MaxAccountIDLen = 64
	MaxIDLen        = 64
	MaxNameLen      = 100 // runes
	MaxEmailLen     = 254 // bytes, RFC 5321 path limit
	MaxPhoneLen     = 64  // bytes of raw input
	MaxGroupNameLen = 64  // runes
	MaxGroups       = 100 // per contact or request
	MaxKeywordLen   = 32  // runes
	DefaultRegion   = "US"
)

// NewAccountID validates an account id. It becomes a NATS subject token, so only letters, digits,
// "-" and "_" are allowed.
func NewAccountID(s string) (string, error) {
	if err := token("account_id", s, MaxAccountIDLen); err != nil {
		return "", err
	}
	return s, nil
}

// NewID validates a contact or group id given by a caller.
func NewID(field, s string) (string, error) {
	if err := token(field, s, MaxIDLen); err != nil {
		return "", err
	}
	return s, nil
}

func token(field, s string, max int) error {
	if s == "" {
		return Invalid(field, "is required")
	}
	if len(s) > max {
		return Invalid(field, "is longer than %d characters", max)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return Invalid(field, "may contain only letters, digits, '-' and '_'")
		}
	}
	return nil
}

// NewName validates a first or last name: trimmed, at most MaxNameLen characters, valid UTF-8,
// no control characters. Empty is allowed.
func NewName(field, s string) (string, error) {
	return text(field, s, MaxNameLen)
}

func text(field, s string, max int) (string, error) {
	if !utf8.ValidString(s) {
		return "", Invalid(field, "is not valid UTF-8")
	}
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > max {
		return "", Invalid(field, "is longer than %d characters", max)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError || unicode.In(r, unicode.Cf) && r != '\u200d' {
			return "", Invalid(field, "contains a control character")
		}
	}
	return s, nil
}

// NewEmail validates an optional email address: a bare addr-spec (no display name) of at most
// MaxEmailLen bytes. Empty is allowed.
func NewEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if len(s) > MaxEmailLen {
		return "", Invalid("email", "is longer than %d characters", MaxEmailLen)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || !strings.Contains(s, "@") {
		return "", Invalid("email", "is not a valid address (want name@example.com)")
	}
	return s, nil
}

// NewGroupName validates a group name: trimmed, 1 to MaxGroupNameLen characters, no control
// characters and no ";" (the CSV import's group separator).
func NewGroupName(field, s string) (string, error) {
	s, err := text(field, s, MaxGroupNameLen)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", Invalid(field, "must not be empty")
	}
	if strings.Contains(s, ";") {
		return "", Invalid(field, "must not contain ';'")
	}
	return s, nil
}

// NewGroupNames validates a list of group names and drops case-insensitive duplicates (the first
// spelling wins). The result is sorted.
func NewGroupNames(field string, names []string) ([]string, error) {
	if len(names) > MaxGroups {
		return nil, Invalid(field, "has more than %d groups", MaxGroups)
	}
	out := make([]string, 0, len(names))
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		g, err := NewGroupName(field, n)
		if err != nil {
			return nil, err
		}
		k := strings.ToLower(g)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, g)
	}
	return SortGroups(out), nil
}

// NewKeyword validates the opt-in keyword of a keyword_optin contact.
func NewKeyword(s string) (string, error) {
	s, err := text("keyword", s, MaxKeywordLen)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", Invalid("keyword", "is required when source is keyword_optin")
	}
	return s, nil
}

// NewRegion validates an ISO 3166 region code for phone parsing; empty means DefaultRegion.
func NewRegion(s string) (string, error) {
	if s == "" {
		return DefaultRegion, nil
	}
	r := strings.ToUpper(s)
	if len(r) != 2 || !phonenumbers.GetSupportedRegions()[r] {
		return "", Invalid("default_region", "%q is not a supported ISO 3166 region code", s)
	}
	return r, nil
}

// NormalizePhone parses raw (any format; numbers without "+" are read for region) and returns it
// in E.164. A number is accepted when it is valid for its country, or when it has exactly the
// length of a full number of its country: the product's own examples (+15551234567) use the
// fictional 555 range, which libphonenumber does not count as valid. Anything else (letters, too
// short, too long, unknown country code, local-only numbers) is refused.
func NormalizePhone(raw, region string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", Invalid("phone", "is required")
	}
	if len(raw) > MaxPhoneLen {
		return "", Invalid("phone", "is longer than %d characters", MaxPhoneLen)
	}
	if !utf8.ValidString(raw) {
		return "", Invalid("phone", "is not valid UTF-8")
	}
	n, err := phonenumbers.Parse(raw, region)
	if err != nil {
		return "", Invalid("phone", "%q is not a phone number", raw)
	}
	if !phonenumbers.IsValidNumber(n) && phonenumbers.IsPossibleNumberWithReason(n) != phonenumbers.IS_POSSIBLE {
		return "", Invalid("phone", "%q is not a valid phone number", raw)
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}
