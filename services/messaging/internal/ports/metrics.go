package ports

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/customertext/webhooks/services/messaging/internal/domain"
)

// Metrics implements app.Metrics with Prometheus counters.
type Metrics struct {
	inbound *prometheus.CounterVec
	sigFail prometheus.Counter
	replies prometheus.Counter
}

// NewMetrics registers messaging's counters.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		inbound: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "messaging_inbound_messages_total",
			Help: "Inbound SMS handled, by kind (opt_out, opt_in, help, keyword, message)."}, []string{"kind"}),
		sigFail: prometheus.NewCounter(prometheus.CounterOpts{Name: "messaging_inbound_signature_failures_total",
			Help: "Inbound requests refused because the carrier signature was missing or wrong."}),
		replies: prometheus.NewCounter(prometheus.CounterOpts{Name: "messaging_replies_sent_total",
			Help: "Replies (confirmations, help, keyword auto-replies) handed to the SMS provider."}),
	}
	for _, c := range []prometheus.Collector{m.inbound, m.sigFail, m.replies} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register messaging metrics: %w", err)
		}
	}
	for _, k := range []domain.Kind{domain.KindOptOut, domain.KindOptIn, domain.KindHelp, domain.KindKeyword, domain.KindMessage} {
		m.inbound.WithLabelValues(string(k))
	}
	return m, nil
}

// Inbound implements app.Metrics.
func (m *Metrics) Inbound(kind domain.Kind) { m.inbound.WithLabelValues(string(kind)).Inc() }

// SignatureFailure implements app.Metrics.
func (m *Metrics) SignatureFailure() { m.sigFail.Inc() }

// ReplySent implements app.Metrics.
func (m *Metrics) ReplySent() { m.replies.Inc() }
