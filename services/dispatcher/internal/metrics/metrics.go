// Package metrics declares the dispatcher's Prometheus metrics. Labels are bounded sets (event
// type, outcome, reason, consumer, lane); nothing is labelled by account, webhook or URL.
package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/customertext/webhooks/libs/event"
)

// Delivery outcomes, the "outcome" label of DeliveriesTotal.
const (
	OutcomeSucceeded    = "succeeded"
	OutcomeRetrying     = "retrying"
	OutcomeDeadLettered = "dead_lettered"
	OutcomeGone         = "gone"
	// OutcomeDropped is a job whose webhook was deleted or disabled.
	OutcomeDropped = "dropped"
)

// Stages of PlatformFailures: where the platform itself (not a customer's endpoint) failed to
// move a job on. Each is followed by a redelivery, so nothing is lost, but the delivery is late.
const (
	StageFanout = "fanout" // an event's jobs were not all stored
	StageLookup = "lookup" // the webhook's configuration could not be read
	StageSettle = "settle" // an attempt's retry schedule or record was not stored
	StageDefer  = "defer"  // a deferral could not be scheduled
)

// Metrics are the dispatcher's instruments.
type Metrics struct {
	// Fan-out.
	EventsTotal   *prometheus.CounterVec // result: fanned_out, no_match
	EventsInvalid *prometheus.CounterVec // reason
	JobsCreated   *prometheus.CounterVec // lane

	// Delivery.
	DeliveriesTotal *prometheus.CounterVec   // event_type, outcome
	AttemptDuration *prometheus.HistogramVec // result: success, failure
	EndToEnd        *prometheus.HistogramVec // event_type
	RetriesTotal    prometheus.Counter
	DeadLetters     prometheus.Counter
	Deferred        *prometheus.CounterVec // reason: circuit_open, endpoint_busy, lookup_failed
	InvalidJobs     *prometheus.CounterVec // reason
	// ScheduleDuplicates counts retry schedules acked as duplicates with none of their chain
	// pending, published again under a fresh id.
	ScheduleDuplicates prometheus.Counter
	// MaxDeliveries counts messages a consumer gave up on after MaxDeliver deliveries.
	MaxDeliveries *prometheus.CounterVec // consumer
	// NATSRestarts counts NATS sessions started after the first (the server closed the connection).
	NATSRestarts prometheus.Counter
	InFlight     prometheus.Gauge
	QueueWait    *prometheus.HistogramVec // lane: time from ready (or scheduled) to pickup
	// FirstAttemptDelay is the pipeline's own latency, the SLO's: from the event to the start of
	// its first HTTP attempt, by lane. Jobs deferred because their endpoint was busy or its
	// circuit open are left out (the endpoint's doing, not the platform's).
	FirstAttemptDelay *prometheus.HistogramVec
	// PlatformFailures counts jobs the platform failed to move on, by stage: the bad events of the
	// delivery availability SLO (failures of customers' endpoints are not among them).
	PlatformFailures *prometheus.CounterVec

	// Consumers, polled.
	ConsumerPending    *prometheus.GaugeVec // consumer
	ConsumerAckPending *prometheus.GaugeVec // consumer
	LaneBacklog        *prometheus.GaugeVec // lane
	LaneBelowAckFloor  *prometheus.GaugeVec // lane
	LeftoversSwept     prometheus.Counter
	BulkLimit          prometheus.Gauge
	Replicas           prometheus.Gauge
}

// New creates and registers the metrics.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		EventsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dispatcher_events_total",
			Help: "Events read by the fan-out, by result (fanned_out, no_match)."}, []string{"result"}),
		EventsInvalid: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dispatcher_events_invalid_total",
			Help: "Messages on the EVENTS stream that were not valid events and were terminated, by reason."}, []string{"reason"}),
		JobsCreated: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dispatcher_jobs_created_total",
			Help: "Delivery jobs published by the fan-out, by lane."}, []string{"lane"}),
		DeliveriesTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dispatcher_deliveries_total",
			Help: "Delivery attempts by event type and outcome (succeeded, retrying, dead_lettered, gone, dropped)."},
			[]string{"event_type", "outcome"}),
		AttemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dispatcher_attempt_duration_seconds",
			Help:    "Duration of one HTTP attempt, by result (success, failure).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10)}, []string{"result"}),
		EndToEnd: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dispatcher_end_to_end_latency_seconds",
			Help:    "Time from the event to its successful delivery (2xx), by event type.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 14)}, []string{"event_type"}),
		RetriesTotal: prometheus.NewCounter(prometheus.CounterOpts{Name: "dispatcher_retries_scheduled_total",
			Help: "Retries scheduled as message schedules after a failed attempt."}),
		DeadLetters: prometheus.NewCounter(prometheus.CounterOpts{Name: "dispatcher_dead_letters_total",
			Help: "Deliveries dead-lettered after their last attempt (or a 410 Gone)."}),
		Deferred: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dispatcher_deferred_total",
			Help: "Jobs rescheduled without an HTTP call, by reason (circuit_open, endpoint_busy, lookup_failed)."},
			[]string{"reason"}),
		InvalidJobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dispatcher_jobs_invalid_total",
			Help: "Messages on the ready subjects that were not valid delivery jobs and were terminated, by reason."}, []string{"reason"}),
		ScheduleDuplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "dispatcher_schedule_duplicates_total",
			Help: "Retry schedules acked as duplicates with none of their chain pending, published again under a fresh id."}),
		MaxDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dispatcher_max_deliveries_total",
			Help: "Messages a dispatcher consumer gave up on after its MaxDeliver deliveries, by consumer."}, []string{"consumer"}),
		NATSRestarts: prometheus.NewCounter(prometheus.CounterOpts{Name: "dispatcher_nats_session_restarts_total",
			Help: "NATS sessions rebuilt after the server closed the connection or a consumer's stream of messages ended."}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dispatcher_deliveries_in_flight",
			Help: "Delivery jobs being processed by this replica."}),
		QueueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dispatcher_queue_wait_seconds",
			Help:    "Time a ready job waited in the stream before a worker picked it up, by lane.",
			Buckets: prometheus.ExponentialBuckets(0.005, 3, 12)}, []string{"lane"}),
		FirstAttemptDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dispatcher_first_attempt_delay_seconds",
			Help:    "Time from an event to the start of its first HTTP attempt, by lane (deferrals for busy or open-circuit endpoints excluded).",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800}}, []string{"lane"}),
		PlatformFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dispatcher_platform_failures_total",
			Help: "Jobs the platform failed to move on and left for redelivery, by stage (fanout, lookup, settle, defer)."},
			[]string{"stage"}),
		ConsumerPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dispatcher_consumer_pending",
			Help: "Messages not yet delivered to the consumer (num_pending), by consumer."}, []string{"consumer"}),
		ConsumerAckPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dispatcher_consumer_ack_pending",
			Help: "Messages delivered but not yet acknowledged, by consumer."}, []string{"consumer"}),
		LaneBacklog: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dispatcher_lane_backlog",
			Help: "Ready delivery jobs waiting, by lane."}, []string{"lane"}),
		LaneBelowAckFloor: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dispatcher_lane_jobs_below_ack_floor",
			Help: "Ready jobs still stored at or below their lane consumer's ack floor (never delivered again; counted up to 1000). Not backlog."},
			[]string{"lane"}),
		LeftoversSwept: prometheus.NewCounter(prometheus.CounterOpts{Name: "dispatcher_leftover_jobs_swept_total",
			Help: "Ready jobs found below their lane consumer's ack floor at two polls in a row, dead-lettered and removed."}),
		BulkLimit: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dispatcher_bulk_lane_limit",
			Help: "Bulk-lane deliveries this replica may have in process now; it shrinks while the default lane is late."}),
		Replicas: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dispatcher_replicas",
			Help: "Dispatcher replicas this one hears heartbeats from, itself included; the per-account fair share is divided among them."}),
	}
	for _, c := range []prometheus.Collector{m.EventsTotal, m.EventsInvalid, m.JobsCreated, m.DeliveriesTotal,
		m.AttemptDuration, m.EndToEnd, m.RetriesTotal, m.DeadLetters, m.Deferred, m.InvalidJobs, m.ScheduleDuplicates,
		m.MaxDeliveries, m.NATSRestarts, m.InFlight, m.QueueWait, m.FirstAttemptDelay, m.PlatformFailures,
		m.ConsumerPending, m.ConsumerAckPending, m.LaneBacklog, m.LaneBelowAckFloor, m.LeftoversSwept, m.BulkLimit, m.Replicas} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register dispatcher metrics: %w", err)
		}
	}
	m.initialise()
	return m, nil
}

// initialise creates the series of every known label value at 0: a counter that has not moved
// yet is a 0 on the dashboard and in rate(), not "no data".
func (m *Metrics) initialise() {
	eventTypes := []string{event.NewContact, event.ContactUpdated, event.ContactOptOut, event.InboundMessage,
		event.KeywordOptIn, event.CampaignSent, "unknown"}
	outcomes := []string{OutcomeSucceeded, OutcomeRetrying, OutcomeDeadLettered, OutcomeGone, OutcomeDropped}
	for _, r := range []string{"fanned_out", "no_match"} {
		m.EventsTotal.WithLabelValues(r)
	}
	for _, r := range []string{"bad_subject", "unknown_type", "unparseable", "subject_mismatch"} {
		m.EventsInvalid.WithLabelValues(r)
	}
	for _, r := range []string{"circuit_open", "endpoint_busy", "lookup_failed"} {
		m.Deferred.WithLabelValues(r)
	}
	for _, s := range []string{StageFanout, StageLookup, StageSettle, StageDefer} {
		m.PlatformFailures.WithLabelValues(s)
	}
	for _, r := range []string{"success", "failure"} {
		m.AttemptDuration.WithLabelValues(r)
	}
	for _, l := range []string{"default", "bulk"} {
		m.JobsCreated.WithLabelValues(l)
		m.QueueWait.WithLabelValues(l)
		m.FirstAttemptDelay.WithLabelValues(l)
	}
	for _, et := range eventTypes {
		m.EndToEnd.WithLabelValues(et)
		for _, o := range outcomes {
			m.DeliveriesTotal.WithLabelValues(et, o)
		}
	}
}
