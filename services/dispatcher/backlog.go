package main

import (
	"context"
	"errors"
	"fmt"
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
	// Jobs seen below their lane's ack floor at the last poll, per lane.
	leftovers := map[string]map[uint64]bool{}
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
				seqs, err := belowFloor(ctx, js, l.lane, ci.AckFloor.Stream, maxOrphanScan)
				if err != nil {
					if ctx.Err() == nil {
						logger.Debug("find jobs below the ack floor", "lane", l.lane, "error", err)
					}
					continue
				}
				m.LaneBelowAckFloor.WithLabelValues(l.lane).Set(float64(len(seqs)))
				leftovers[l.lane] = sweep(ctx, js, leftovers[l.lane], seqs, m, logger)
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

// maxOrphanScan bounds the messages countBelowFloor reads per poll.
const maxOrphanScan = 1000

// belowFloor returns (up to limit) the stream sequences of the ready jobs of lane still stored at
// or below its consumer's ack floor. The consumer will never deliver them again: each was acked,
// terminated or given up on (MaxDeliver, whose advisory handler dead-letters and removes it). On a
// work queue an acked message is removed at once, so these are leftovers (a server crash, a
// missed advisory): the backlog gauges (num_pending) never count them. Pending retry schedules
// (deliveries.sched.>) sit below the floors by design and are not ready jobs.
func belowFloor(ctx context.Context, js jetstream.JetStream, lane string, floor uint64, limit int) ([]uint64, error) {
	if floor == 0 || limit <= 0 {
		return nil, nil
	}
	s, err := js.Stream(ctx, streams.Deliveries)
	if err != nil {
		return nil, fmt.Errorf("find jobs below the floor: %w", err)
	}
	filter := streams.ReadySubject(lane, ">")
	var out []uint64
	for seq := uint64(1); len(out) < limit; {
		msg, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("find jobs below the floor: %w", err)
		}
		if msg.Sequence > floor {
			return out, nil
		}
		out = append(out, msg.Sequence)
		seq = msg.Sequence + 1
	}
	return out, nil
}

// sweep dead-letters and removes the leftovers seen below the floor at this poll and the one
// before (a job acked a moment ago is being removed by the server; one seen twice is not), and
// returns this poll's set.
func sweep(ctx context.Context, js jetstream.JetStream, before map[uint64]bool, seqs []uint64, m *metrics.Metrics, logger *slog.Logger) map[uint64]bool {
	now := make(map[uint64]bool, len(seqs))
	for _, seq := range seqs {
		now[seq] = true
		if !before[seq] {
			continue
		}
		why := "left in the work queue below its consumer's ack floor (a server crash or a missed advisory); " +
			"whether it was delivered is unknown: redeliver it if needed"
		if err := deadLetterLeftover(ctx, js, seq, why, logger); err != nil {
			logger.Warn("sweep leftover job", "stream_seq", seq, "error", err)
			continue
		}
		m.LeftoversSwept.Inc()
		delete(now, seq)
	}
	return now
}
