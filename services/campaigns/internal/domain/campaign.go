// Package domain holds campaigns' pure types: a campaign, its validation and its states, and
// the outcome of each recipient.
package domain

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every validation error; the message names the field.
var ErrInvalid = errors.New("invalid argument")

// Limits on a campaign.
const (
	MaxNameChars = 200
	MaxBodyChars = 1600
	MaxGroups    = 50
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

// State is a campaign's lifecycle state.
type State string

// Campaign states: a draft is sent once; SENDING survives a crash and is resumed.
const (
	StateDraft   State = "DRAFT"
	StateSending State = "SENDING"
	StateSent    State = "SENT"
)

// Result is a recipient's outcome.
type Result string

// Recipient results. Pending rows are written before the provider is called.
const (
	ResultPending Result = "pending"
	ResultSent    Result = "sent"
	ResultFailed  Result = "failed"
	ResultSkipped Result = "skipped"
)

// Campaign is a message to the members of some groups.
type Campaign struct {
	ID           string
	AccountID    string
	Name         string
	Body         string
	TargetGroups []string
	State        State
	Audience     int
	Sent         int
	Failed       int
	Skipped      int
	StartTime    time.Time
	FinishTime   time.Time
	CreateTime   time.Time
}

// NewCampaign validates and normalises a draft.
func NewCampaign(id, accountID, name, body string, groups []string, now time.Time) (Campaign, error) {
	name = strings.TrimSpace(name)
	if err := ValidateAccountID(accountID); err != nil {
		return Campaign{}, err
	}
	switch {
	case name == "":
		return Campaign{}, fmt.Errorf("name: required: %w", ErrInvalid)
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameChars:
		return Campaign{}, fmt.Errorf("name: at most %d characters of valid UTF-8: %w", MaxNameChars, ErrInvalid)
	case strings.TrimSpace(body) == "":
		return Campaign{}, fmt.Errorf("body: required: %w", ErrInvalid)
	case !utf8.ValidString(body) || utf8.RuneCountInString(body) > MaxBodyChars:
		return Campaign{}, fmt.Errorf("body: at most %d characters of valid UTF-8: %w", MaxBodyChars, ErrInvalid)
	case len(groups) == 0:
		return Campaign{}, fmt.Errorf("target_groups: at least one group is required: %w", ErrInvalid)
	case len(groups) > MaxGroups:
		return Campaign{}, fmt.Errorf("target_groups: more than %d groups: %w", MaxGroups, ErrInvalid)
	}
	seen := map[string]bool{}
	var gs []string
	for _, g := range groups {
		g = strings.TrimSpace(g)
		if g == "" || !validGroupName(g) {
			return Campaign{}, fmt.Errorf("target_groups: each group name must be 1 to %d characters without control characters or ';': %w", MaxGroupChars, ErrInvalid)
		}
		if !seen[g] {
			seen[g] = true
			gs = append(gs, g)
		}
	}
	return Campaign{ID: id, AccountID: accountID, Name: name, Body: body, TargetGroups: gs, State: StateDraft, CreateTime: now.UTC()}, nil
}
