package domain

import (
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/customertext/webhooks/libs/event"
	"github.com/customertext/webhooks/libs/ssrf"
)

// Bounds on what a webhook may hold.
const (
	MaxURLLength         = 2048
	MaxDescriptionLength = 500
	MaxHeaderNameLength  = 128
	MaxSecretValueLength = 4096
	// MaxTimeout bounds a webhook's own request timeout (0 means the platform default).
	MaxTimeout = 30 * time.Second
)

// Spec is the caller-settable part of a webhook.
type Spec struct {
	URL         string
	EventTypes  []string
	Enabled     bool
	Description string
	Auth        Auth
	// Timeout of a delivery request to the endpoint; 0 means the platform default.
	Timeout time.Duration
	// SendTraceContext lets requests carry our W3C trace context; off by default.
	SendTraceContext bool
}

// Policy holds the validation settings that come from configuration.
type Policy struct {
	// AllowInsecureHTTP admits http:// URLs (development only).
	AllowInsecureHTTP bool
	// Guard refuses URLs whose host is a literal reserved address (its allow-list applies);
	// nil refuses every reserved range.
	Guard *ssrf.Guard
}

// Validate checks a spec and returns it normalised (event types de-duplicated). Field names in
// errors are prefixed with prefix ("" for create, "webhook." for update).
func (p Policy) Validate(s Spec, prefix string) (Spec, error) {
	if err := p.ValidateURL(s.URL, prefix+"url"); err != nil {
		return Spec{}, err
	}
	types, err := ValidateEventTypes(s.EventTypes, prefix+"event_types")
	if err != nil {
		return Spec{}, err
	}
	s.EventTypes = types
	if err := ValidateDescription(s.Description, prefix+"description"); err != nil {
		return Spec{}, err
	}
	if err := ValidateAuth(s.Auth, prefix+"auth"); err != nil {
		return Spec{}, err
	}
	if err := ValidateTimeout(s.Timeout, prefix+"timeout_seconds"); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// ValidateTimeout admits 0 (the platform default) or whole seconds from 1 to MaxTimeout.
func ValidateTimeout(d time.Duration, field string) error {
	if d != 0 && (d < time.Second || d > MaxTimeout || d%time.Second != 0) {
		return invalid(field, "must be 0 (the default, 10 s) or 1 to %d seconds", int(MaxTimeout/time.Second))
	}
	return nil
}

// ValidateURL checks an endpoint URL: absolute https (http only when allowed), a host, no
// user-info, bounded length, no whitespace or control characters.
func (p Policy) ValidateURL(raw, field string) error {
	switch {
	case raw == "":
		return invalid(field, "is required")
	case len(raw) > MaxURLLength:
		return invalid(field, "is longer than %d characters", MaxURLLength)
	case !utf8.ValidString(raw) || strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return invalid(field, "contains whitespace or control characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalid(field, "is not a valid URL")
	}
	switch {
	case !u.IsAbs() || u.Opaque != "":
		return invalid(field, "must be an absolute https:// URL")
	case u.Scheme == "http" && !p.AllowInsecureHTTP:
		return invalid(field, "must use https (plain http is allowed only in insecure development mode)")
	case u.Scheme != "https" && u.Scheme != "http":
		return invalid(field, "must use https")
	case u.User != nil:
		return invalid(field, "must not contain user information (put credentials in auth)")
	case u.Hostname() == "":
		return invalid(field, "must name a host")
	}
	guard := p.Guard
	if guard == nil {
		guard = ssrf.New(nil)
	}
	if err := guard.CheckHost(u.Hostname()); err != nil {
		return invalid(field, "must not be a loopback, private, link-local, metadata or otherwise reserved address")
	}
	return nil
}

// SameOrigin reports whether two valid webhook URLs have the same scheme, host and port (RFC
// 6454), the default port of the scheme counting as that port. Stored auth is sent only to the
// origin it was given for.
func SameOrigin(a, b string) bool {
	ua, err := url.Parse(a)
	if err != nil {
		return false
	}
	ub, err := url.Parse(b)
	if err != nil {
		return false
	}
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if strings.EqualFold(u.Scheme, "http") {
			return "80"
		}
		return "443"
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Hostname(), ub.Hostname()) && port(ua) == port(ub)
}

// ValidateEventTypes requires at least one known event type and drops duplicates.
func ValidateEventTypes(types []string, field string) ([]string, error) {
	if len(types) == 0 {
		return nil, invalid(field, "at least one event type is required")
	}
	seen := make(map[string]bool, len(types))
	out := make([]string, 0, len(types))
	for i, t := range types {
		if !event.Known(t) {
			return nil, invalid(field, "element %d: unknown event type %q", i, truncate(t, 64))
		}
		if seen[t] {
			continue
		}
		seen[t] = true
		out = append(out, t)
	}
	return out, nil
}

// ValidateDescription bounds the description and refuses control characters other than newlines
// and tabs.
func ValidateDescription(d, field string) error {
	switch {
	case !utf8.ValidString(d):
		return invalid(field, "is not valid UTF-8")
	case utf8.RuneCountInString(d) > MaxDescriptionLength:
		return invalid(field, "is longer than %d characters", MaxDescriptionLength)
	case strings.ContainsFunc(d, func(r rune) bool { return (r < ' ' && r != '\n' && r != '\t') || r == 0x7f }):
		return invalid(field, "contains control characters")
	}
	return nil
}

// reservedHeaders may not be set by a customer's auth configuration: they are set by the
// delivery code, by the transport, or carry the signature and trace.
var reservedHeaders = map[string]bool{
	"host": true, "content-length": true, "content-type": true, "content-encoding": true,
	"transfer-encoding": true, "connection": true, "keep-alive": true, "upgrade": true, "te": true,
	"trailer": true, "expect": true, "user-agent": true, "authorization": true, "proxy-authorization": true,
	"cookie": true, "traceparent": true, "tracestate": true, "baggage": true,
}

// ValidateAuth checks an auth configuration.
func ValidateAuth(a Auth, field string) error {
	switch a.Kind {
	case AuthNone, "":
		return nil
	case AuthAPIKey:
		name := field + ".api_key_header.name"
		lower := strings.ToLower(a.HeaderName)
		switch {
		case a.HeaderName == "":
			return invalid(name, "is required")
		case len(a.HeaderName) > MaxHeaderNameLength:
			return invalid(name, "is longer than %d characters", MaxHeaderNameLength)
		case !isToken(a.HeaderName):
			return invalid(name, "is not a valid HTTP header name")
		case reservedHeaders[lower] || strings.HasPrefix(lower, "webhook-") || strings.HasPrefix(lower, "proxy-"):
			return invalid(name, "%q is reserved and cannot be used for auth", a.HeaderName)
		}
		return validateSecretValue(a.Value, field+".api_key_header.value")
	case AuthBearer:
		return validateSecretValue(a.Value, field+".bearer.token")
	}
	return invalid(field, "unknown auth kind")
}

func validateSecretValue(v, field string) error {
	switch {
	case v == "":
		return invalid(field, "is required")
	case len(v) > MaxSecretValueLength:
		return invalid(field, "is longer than %d characters", MaxSecretValueLength)
	case !utf8.ValidString(v):
		return invalid(field, "is not valid UTF-8")
	case strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return invalid(field, "contains CR, LF or other control characters")
	case strings.TrimSpace(v) != v:
		return invalid(field, "has leading or trailing whitespace")
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token (the grammar of a header field name).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return s != ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
