// Package index keeps the dispatcher's in-memory copy of every webhook configuration: a map
// lookup by (account, event type) for the fan-out and by id for the delivery workers, so no
// event or attempt costs a database query or an RPC.
package index

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/identity"
	"github.com/customertext/webhooks/libs/signing"
)

// Secret is a signing key and when it stops signing (zero: the current secret).
type Secret struct {
	Key    signing.Secret
	Expiry time.Time
}

// Webhook is the part of a webhook's configuration the dispatcher needs. Values are immutable
// once built; the index replaces them whole.
type Webhook struct {
	ID        string
	AccountID string
	URL       string
	// Endpoint is what per-endpoint limits and circuit breakers key on: the URL's scheme, host
	// (with port) and path, without query. Two customers behind one shared host (Zapier, Make)
	// are two endpoints: one's failures must not open the other's circuit.
	Endpoint        string
	EventTypes      []string
	Enabled         bool
	Secrets         []Secret
	AuthHeaderName  string
	AuthHeaderValue string
	// Timeout of one attempt; zero means the dispatcher's default.
	Timeout time.Duration
	Version int64

	// SendTraceContext lets requests carry our W3C trace context (traceparent, tracestate).
	SendTraceContext bool
}

// FromProto validates a configuration received from the subscription service.
func FromProto(c *webhooksv1.WebhookConfig) (Webhook, error) {
	if c == nil {
		return Webhook{}, errors.New("webhook config: missing")
	}
	// Both ids become parts of subjects and Nats-Msg-Ids of every delivery (libs/identity).
	if err := identity.Webhook(c.GetId()); err != nil {
		return Webhook{}, fmt.Errorf("webhook config: %w", err)
	}
	if err := identity.Account(c.GetAccountId()); err != nil {
		return Webhook{}, fmt.Errorf("webhook config %s: %w", c.GetId(), err)
	}
	u, err := url.Parse(c.GetUrl())
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Webhook{}, fmt.Errorf("webhook config %s: url must be an absolute http(s) URL", c.GetId())
	}
	w := Webhook{
		ID:              c.GetId(),
		AccountID:       c.GetAccountId(),
		URL:             c.GetUrl(),
		Endpoint:        u.Scheme + "://" + u.Host + u.EscapedPath(),
		EventTypes:      slices.Clone(c.GetEventTypes()),
		Enabled:         c.GetEnabled(),
		AuthHeaderName:  c.GetAuthHeaderName(),
		AuthHeaderValue: c.GetAuthHeaderValue(),
		Timeout:         time.Duration(c.GetTimeoutMs()) * time.Millisecond,
		Version:         c.GetVersion(),
	}
	if w.Timeout < 0 {
		w.Timeout = 0
	}
	w.SendTraceContext = c.GetSendTraceContext()
	for i, s := range c.GetSecrets() {
		key, err := signing.ParseSecret(s.GetSecret())
		if err != nil {
			// The error text never contains the secret itself.
			return Webhook{}, fmt.Errorf("webhook config %s: secrets[%d]: %w", c.GetId(), i, err)
		}
		sec := Secret{Key: key}
		if s.GetExpireTime() != nil {
			sec.Expiry = s.GetExpireTime().AsTime()
		}
		w.Secrets = append(w.Secrets, sec)
	}
	return w, nil
}

// SigningSecrets returns the secrets that still sign at now: the current one and, during a
// rotation overlap, the previous one.
func (w Webhook) SigningSecrets(now time.Time) []signing.Secret {
	out := make([]signing.Secret, 0, len(w.Secrets))
	for _, s := range w.Secrets {
		if s.Expiry.IsZero() || now.Before(s.Expiry) {
			out = append(out, s.Key)
		}
	}
	return out
}

// Subscribes reports whether the webhook wants events of the given type.
func (w Webhook) Subscribes(eventType string) bool {
	return slices.Contains(w.EventTypes, eventType)
}

// String keeps secrets out of logs when a Webhook is printed whole.
func (w Webhook) String() string {
	return fmt.Sprintf("webhook %s (account %s, version %d)", w.ID, w.AccountID, w.Version)
}
