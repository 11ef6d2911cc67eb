package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/services/dispatcher/internal/endpoint"
	"github.com/customertext/webhooks/services/dispatcher/internal/index"
	"github.com/customertext/webhooks/services/dispatcher/internal/metrics"
)

// pollBacklog publishes the consumers' backlog (what autoscaling watches) every few seconds.
func pollBacklog(ctx context.Context, js jetstream.JetStream, m *metrics.Metrics, logger *slog.Logger) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		poll := func(stream, name string) (*jetstream.ConsumerInfo, bool) {
			c, err := js.Consumer(ctx, stream, name)
			var ci *jetstream.ConsumerInfo
			if err == nil {
				ci, err = c.Info(ctx)
			}
			if err != nil {
				if ctx.Err() == nil {
					logger.Debug("poll consumer backlog", "consumer", name, "error", err)
				}
				return nil, false
			}
			m.ConsumerPending.WithLabelValues(name).Set(float64(ci.NumPending))
			m.ConsumerAckPending.WithLabelValues(name).Set(float64(ci.NumAckPending))
			return ci, true
		}
		poll(streams.Events, streams.FanoutConsumer)
		for _, l := range laneConsumers() {
			if ci, ok := poll(streams.Deliveries, l.durable); ok {
				m.LaneBacklog.WithLabelValues(l.lane).Set(float64(ci.NumPending))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// indexSize exposes the number of webhooks in the index by state, read at scrape time.
func indexSize(idx *index.Index) prometheus.Collector {
	desc := prometheus.NewDesc("dispatcher_index_webhooks", "Webhooks in the in-memory index, by state (enabled, disabled).", []string{"state"}, nil)
	return collectorFunc{desc: desc, collect: func(ch chan<- prometheus.Metric) {
		en, dis := idx.Counts()
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(en), "enabled")
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(dis), "disabled")
	}}
}

type collectorFunc struct {
	desc    *prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// openCircuits exposes the number of open circuits as a gauge read at scrape time.
func openCircuits(g *endpoint.Guard) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "dispatcher_open_circuits",
		Help: "Endpoints whose circuit breaker is open or half-open on this replica.",
	}, func() float64 { return float64(g.OpenCircuits()) })
}
