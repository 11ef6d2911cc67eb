package ports

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/customertext/webhooks/services/campaigns/internal/domain"
)

// Metrics implements app.Metrics with Prometheus counters.
type Metrics struct {
	recipients *prometheus.CounterVec
	campaigns  prometheus.Counter
}

// NewMetrics registers campaigns' counters.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		recipients: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "campaigns_recipients_total",
			Help: "Campaign recipients processed, by result (sent, failed, skipped)."}, []string{"result"}),
		campaigns: prometheus.NewCounter(prometheus.CounterOpts{Name: "campaigns_sent_total",
			Help: "Campaigns that finished sending to their whole audience."}),
	}
	for _, c := range []prometheus.Collector{m.recipients, m.campaigns} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register campaigns metrics: %w", err)
		}
	}
	for _, r := range []domain.Result{domain.ResultSent, domain.ResultFailed, domain.ResultSkipped} {
		m.recipients.WithLabelValues(string(r))
	}
	return m, nil
}

// Recipient implements app.Metrics.
func (m *Metrics) Recipient(result domain.Result) { m.recipients.WithLabelValues(string(result)).Inc() }

// CampaignSent implements app.Metrics.
func (m *Metrics) CampaignSent() { m.campaigns.Inc() }
