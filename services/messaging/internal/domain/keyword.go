package domain

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every validation error; the message names the field.
var ErrInvalid = errors.New("invalid argument")

// Limits on keywords.
const (
	MaxKeywordChars  = 32
	MaxKeywordGroups = 20
	// MaxGroupChars and the other group name rules are the contacts service's.
	MaxGroupChars = 64
	// MaxAccountIDChars and the account id alphabet are the contacts service's: the id becomes a
	// NATS subject token.
	MaxAccountIDChars = 64
)

// ValidateAccountID checks an account id: 1 to MaxAccountIDChars letters, digits, '-' or '_'.
func ValidateAccountID(id string) error {
	if id == "" {
		return fmt.Errorf("account_id: required: %w", ErrInvalid)
	}
	if len(id) > MaxAccountIDChars || strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) >= 0 {
		return fmt.Errorf("account_id: at most %d letters, digits, '-' or '_': %w", MaxAccountIDChars, ErrInvalid)
	}
	return nil
}

// validGroupName: no control or format characters, no ';' (the contacts CSV separator).
func validGroupName(g string) bool {
	return utf8.ValidString(g) && utf8.RuneCountInString(g) <= MaxGroupChars && !strings.ContainsRune(g, ';') &&
		strings.IndexFunc(g, func(r rune) bool { return unicode.IsControl(r) || unicode.In(r, unicode.Cf) }) < 0
}

// Keyword is an account keyword: texting Word joins Groups and gets Reply.
type Keyword struct {
	// Word is upper case, letters and digits only.
	Word   string
	Groups []string
	// Reply is the auto-reply; empty sends none.
	Reply string
}

// NewKeyword validates and normalises a keyword.
func NewKeyword(word string, groups []string, reply string) (Keyword, error) {
	w := strings.ToUpper(strings.TrimSpace(word))
	switch {
	case w == "":
		return Keyword{}, fmt.Errorf("keyword.keyword: required: %w", ErrInvalid)
	case utf8.RuneCountInString(w) > MaxKeywordChars:
		return Keyword{}, fmt.Errorf("keyword.keyword: longer than %d characters: %w", MaxKeywordChars, ErrInvalid)
	case strings.IndexFunc(w, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) >= 0:
		return Keyword{}, fmt.Errorf("keyword.keyword: only letters and digits are allowed: %w", ErrInvalid)
	case reserved(w):
		return Keyword{}, fmt.Errorf("keyword.keyword: %q is reserved for opt-out, opt-in and help: %w", w, ErrInvalid)
	}
	// A keyword must match itself typed in any case; case mapping does not round-trip for every
	// rune (İ lowers to i + combining dot).
	if normalizeWord(w) != w || strings.ToUpper(strings.ToLower(w)) != w {
		return Keyword{}, fmt.Errorf("keyword.keyword: %q has no stable upper case form: %w", word, ErrInvalid)
	}
	if len(groups) == 0 {
		return Keyword{}, fmt.Errorf("keyword.groups: at least one group is required: %w", ErrInvalid)
	}
	if len(groups) > MaxKeywordGroups {
		return Keyword{}, fmt.Errorf("keyword.groups: more than %d groups: %w", MaxKeywordGroups, ErrInvalid)
	}
	seen := map[string]bool{}
	var gs []string
	for _, g := range groups {
		g = strings.TrimSpace(g)
		if g == "" || !validGroupName(g) {
			return Keyword{}, fmt.Errorf("keyword.groups: each group name must be 1 to %d characters without control characters or ';': %w", MaxGroupChars, ErrInvalid)
		}
		if !seen[g] {
			seen[g] = true
			gs = append(gs, g)
		}
	}
	reply = strings.TrimSpace(reply)
	if utf8.RuneCountInString(reply) > MaxBodyChars {
		return Keyword{}, fmt.Errorf("keyword.reply: longer than %d characters: %w", MaxBodyChars, ErrInvalid)
	}
	if !utf8.ValidString(reply) {
		return Keyword{}, fmt.Errorf("keyword.reply: not valid UTF-8: %w", ErrInvalid)
	}
	return Keyword{Word: w, Groups: gs, Reply: reply}, nil
}
