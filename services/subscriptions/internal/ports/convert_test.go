package ports

import (
	"testing"
	"time"

	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

func TestConfigToProtoServesUnreadableWebhooksDisabled(t *testing.T) {
	t.Parallel()
	now := time.Now()
	readable := domain.Webhook{ID: "wh_1", Enabled: true, Secret: "whsec_a", Auth: domain.Auth{Kind: domain.AuthBearer, Value: "tok"}}
	if c := configToProto(readable, now); !c.GetEnabled() || len(c.GetSecrets()) != 1 || c.GetAuthHeaderValue() == "" {
		t.Errorf("readable webhook: got %v, want enabled with its secret and auth", c)
	}
	unreadable := domain.Webhook{ID: "wh_2", Enabled: true, Unreadable: "secret: cipher: message authentication failed",
		Auth: domain.Auth{Kind: domain.AuthBearer}}
	c := configToProto(unreadable, now)
	if c.GetEnabled() || len(c.GetSecrets()) != 0 || c.GetAuthHeaderName() != "" || c.GetAuthHeaderValue() != "" {
		t.Errorf("unreadable webhook: got %v, want disabled without secrets or auth", c)
	}
}
