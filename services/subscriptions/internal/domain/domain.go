// Package domain holds the subscription service's pure types: webhooks and their auth, accounts
// and roles, delivery records, and the validation rules every input goes through before it is
// stored.
package domain

import (
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned when a webhook, delivery or account does not exist in the caller's
// account. Another account's resources are reported the same way, never as forbidden.
var ErrNotFound = errors.New("not found")

// ErrPrecondition is returned (wrapped) when a request is valid but the resource's state does not
// allow it.
var ErrPrecondition = errors.New("failed precondition")

// ErrSecretsUnreadable is returned (wrapping ErrPrecondition) when a webhook whose secrets cannot
// be decrypted would be changed: writing it back would destroy them.
var ErrSecretsUnreadable = fmt.Errorf("%w: the webhook's secrets cannot be decrypted with the configured SECRETS_KEYS; restore the key that sealed them", ErrPrecondition)

// ErrLimitReached is returned (wrapped) when an account already has as many webhooks as it may.
var ErrLimitReached = errors.New("limit reached")

// ValidationError names the request field that is invalid.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason) }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Role is an API key user's role in an account.
type Role string

// The three roles; only RoleAdmin may use the webhook settings.
const (
	RoleAdmin   Role = "admin"
	RoleManager Role = "manager"
	RoleUser    Role = "user"
)

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool {
	return r == RoleAdmin || r == RoleManager || r == RoleUser
}

// Principal is the authenticated caller of the public API.
type Principal struct {
	AccountID string
	// UserID is the key's user; empty for a key issued to the account rather than a user.
	UserID string
	Role   Role
	// KeyID is the API key the caller presented.
	KeyID string
	// KeyLastUsed is when that key was last recorded as used before this call (zero: never).
	KeyLastUsed time.Time
}

// APIKey describes an account API key; the key itself is only ever held as a hash.
type APIKey struct {
	ID        string
	AccountID string
	// UserID is who issued the key, or whose key it is; empty for a key issued from the CLI.
	UserID       string
	Name         string
	Role         Role
	Hint         string
	CreateTime   time.Time
	LastUsedTime time.Time
}

// AuthKind is how an endpoint authenticates our requests.
type AuthKind string

// The auth kinds.
const (
	AuthNone   AuthKind = "none"
	AuthAPIKey AuthKind = "api_key"
	AuthBearer AuthKind = "bearer"
)

// Auth is an endpoint's auth configuration. Value is the API key value or the bearer token, in
// clear text only in memory.
type Auth struct {
	Kind       AuthKind
	HeaderName string
	Value      string
}

// Header returns the header name and value a request carries.
func (a Auth) Header() (name, value string) {
	switch a.Kind {
	case AuthAPIKey:
		return a.HeaderName, a.Value
	case AuthBearer:
		return "Authorization", "Bearer " + a.Value
	}
	return "", ""
}

// Webhook is a configured endpoint with its secrets in clear text (memory only).
type Webhook struct {
	ID          string
	AccountID   string
	URL         string
	EventTypes  []string
	Enabled     bool
	Description string
	Auth        Auth
	// Timeout of a delivery request; 0 means the platform default.
	Timeout time.Duration
	// SendTraceContext lets requests carry our W3C trace context (traceparent, tracestate).
	SendTraceContext bool
	// Secret is the current signing secret ("whsec_...").
	Secret string
	// PrevSecret keeps signing until PrevSecretExpireTime after a rotation.
	PrevSecret           string
	PrevSecretExpireTime time.Time
	DisabledReason       string
	Version              int64
	CreateTime           time.Time
	UpdateTime           time.Time
	// Unreadable says why the stored secrets could not be decrypted (a key missing from
	// SECRETS_KEYS, a damaged row); empty when they were. Such a webhook is served without
	// secrets, never delivered to, and cannot be updated until the key is restored.
	Unreadable string
}

// ActiveSecrets returns the secrets that sign at now: the current one first.
func (w Webhook) ActiveSecrets(now time.Time) []string {
	out := []string{w.Secret}
	if w.PrevSecret != "" && now.Before(w.PrevSecretExpireTime) {
		out = append(out, w.PrevSecret)
	}
	return out
}

// Subscribes reports whether the webhook receives eventType.
func (w Webhook) Subscribes(eventType string) bool {
	for _, t := range w.EventTypes {
		if t == eventType {
			return true
		}
	}
	return false
}

// Hint returns at most the last 4 characters of a secret, and nothing for short secrets, where
// 4 characters would give too much away.
func Hint(secret string) string {
	if len(secret) < 12 {
		return ""
	}
	return secret[len(secret)-4:]
}

// Outcome of a delivery attempt.
type Outcome int

// The outcomes, numbered as the protobuf enum.
const (
	OutcomeUnspecified  Outcome = 0
	OutcomeSucceeded    Outcome = 1
	OutcomeRetrying     Outcome = 2
	OutcomeDeadLettered Outcome = 3
)

// Attempt is one delivery attempt in the log.
type Attempt struct {
	ID             string
	DeliveryID     string
	EventID        string
	EventType      string
	AccountID      string
	WebhookID      string
	URL            string
	Attempt        int32
	Outcome        Outcome
	Test           bool
	RequestHeaders map[string]string
	ResponseStatus int32
	ResponseBody   string
	DurationMS     int64
	Error          string
	Time           time.Time
	NextRetryTime  time.Time
	// Payload is the event body; kept on the delivery, not on each attempt.
	Payload []byte
	// Gone is set when the endpoint answered 410 Gone.
	Gone bool
	// Deferral marks not an attempt but a correction: the retry announced by attempt ID (made at
	// Time) was deferred by the dispatcher and now happens at NextRetryTime.
	Deferral bool
}

// Delivery is the latest state of one (event, webhook) delivery, kept for redelivery.
type Delivery struct {
	ID          string
	WebhookID   string
	AccountID   string
	EventID     string
	EventType   string
	Payload     []byte
	Outcome     Outcome
	Attempts    int32
	LastAttempt time.Time
}

// AttemptFilter selects attempts of one account.
type AttemptFilter struct {
	AccountID string
	WebhookID string
	EventType string
	EventID   string
	Outcome   Outcome
	Start     time.Time
	End       time.Time
}
