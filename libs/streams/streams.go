// Package streams declares the platform's JetStream topology (streams, subjects and the durable
// consumers shared by every replica) in one place. Ensure is idempotent, so every replica of every
// service calls it at start-up; the last writer wins with the same configuration.
package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream names.
const (
	// Events holds domain events published by contacts, messaging and campaigns through their
	// outboxes. Subject: events.<account_id>.<event_type>.
	Events = "EVENTS"
	// Deliveries is the work queue of delivery jobs, one per (event, webhook). Ready jobs are on
	// deliveries.ready.<lane>.<delivery_id>; a job waiting for its next attempt is a one-shot
	// message schedule on deliveries.sched.<delivery_id> that fires onto the ready subject.
	Deliveries = "DELIVERIES"
	// Attempts carries one record per delivery attempt to the subscription service's log writer.
	// Subject: attempts.<account_id>.
	Attempts = "ATTEMPTS"
)

// Durable consumer names, shared by every replica of the consuming service.
const (
	// FanoutConsumer reads Events in the dispatcher and writes delivery jobs.
	FanoutConsumer = "fanout"
	// DeliveryConsumer reads ready jobs of the default lane (deliveries.ready.default.>) in the
	// dispatcher's delivery workers.
	DeliveryConsumer = "delivery-workers"
	// DeliveryBulkConsumer reads ready jobs of the bulk lane (deliveries.ready.bulk.>): accounts
	// over their fair share. No consumer may cover deliveries.sched.>.
	DeliveryBulkConsumer = "delivery-workers-bulk"
	// AttemptLogConsumer reads Attempts in the subscription service.
	AttemptLogConsumer = "attempt-log"
)

// Core NATS subjects (not persisted).
const (
	// WebhookChanges carries change notifications ("<account_id>.<webhook_id>" in the body is not
	// needed: the subject suffix names the webhook) from the subscription service to dispatchers.
	// Subject: webhooks.changed.<webhook_id>. Dispatchers also resync periodically, so a missed
	// notification only delays convergence.
	WebhookChangesPrefix = "webhooks.changed."
	// DispatcherPeers carries each dispatcher replica's heartbeat (its id in the body), so that
	// every replica knows how many share the fan-out and can divide the per-account fair share.
	DispatcherPeers = "dispatcher.peers"
)

// EventsDuplicateWindow is how long JetStream remembers a Nats-Msg-Id. An outbox relay that
// crashed after publishing and before marking its rows re-publishes within this window, and the
// duplicates are dropped.
const EventsDuplicateWindow = 10 * time.Minute

// EventSubject is the subject of an event of the given account and type.
func EventSubject(accountID, eventType string) string {
	return "events." + accountID + "." + eventType
}

// ParseEventSubject returns the account and event type of an events.<account>.<type> subject.
func ParseEventSubject(subject string) (accountID, eventType string, err error) {
	parts := strings.Split(subject, ".")
	if len(parts) != 3 || parts[0] != "events" || parts[1] == "" || parts[2] == "" {
		return "", "", fmt.Errorf("parse event subject %q: want events.<account>.<type>", subject)
	}
	return parts[1], parts[2], nil
}

// ReadySubject is the subject a delivery job is consumed from.
func ReadySubject(lane, deliveryID string) string {
	return "deliveries.ready." + lane + "." + deliveryID
}

// ScheduleSubject is the unique schedule subject of a delivery's chain of attempts (its
// generation, empty for the fan-out's chain) waiting for its next attempt. Re-publishing on it
// replaces the pending schedule, so at most one schedule per chain is ever pending; two chains of
// one delivery (a redelivery while the first still retries) never replace each other's.
func ScheduleSubject(deliveryID, generation string) string {
	if generation == "" {
		return "deliveries.sched." + deliveryID
	}
	return "deliveries.sched." + deliveryID + "." + generation
}

// JobMsgID is the Nats-Msg-Id of a delivery job (ready or scheduled) for attempt of the chain
// generation: "<delivery_id>.<attempt>" for the fan-out's chain, whose re-run after a crash must
// be deduplicated, and "<delivery_id>.<generation>.<attempt>" for a redelivery's. Ids are unique
// per chain and attempt, so a schedule is never mistaken for another chain's inside the
// duplicate window.
func JobMsgID(deliveryID, generation string, attempt int32) string {
	a := strconv.FormatInt(int64(attempt), 10)
	if generation == "" {
		return deliveryID + "." + a
	}
	return deliveryID + "." + generation + "." + a
}

// MaxGenerationLen bounds a generation token (identity rules otherwise).
const MaxGenerationLen = 36

// AttemptSubject is the subject of an attempt record.
func AttemptSubject(accountID string) string {
	return "attempts." + accountID
}

// AttemptBatchSubject carries AttemptBatch messages; AttemptBatchHeader marks them (the subject
// alone could collide with an account named "batch").
const (
	AttemptBatchSubject = "attempts.batch"
	AttemptBatchHeader  = "Ct-Attempt-Batch"
)

// BulkEventHeader marks an EVENTS message that the outbox relay published from bulk rows (an
// import), which it paces by design: the time such an event waited is not lateness.
const BulkEventHeader = "Ct-Bulk"

// LatenessFromHeader on a first-attempt delivery job carries when its event occurred (Unix
// nanoseconds), for an event that was not written in bulk: the workers measure the default
// lane's lateness from there, the whole way an API call's event goes before its webhook.
const LatenessFromHeader = "Ct-Lateness-From"

// Config tunes the topology; the zero value is the production default.
type Config struct {
	// Replicas of each stream: 3 in a cluster. Zero keeps an existing stream's replica count (1
	// when creating), so services that do not own this setting never scale a stream down; the
	// dispatcher applies STREAM_REPLICAS.
	Replicas int
	// EventsMaxAge bounds how long events are kept for replay. Default 7 days.
	EventsMaxAge time.Duration
}

// StreamConfigs returns the stream configurations Ensure applies.
func StreamConfigs(cfg Config) []jetstream.StreamConfig {
	if cfg.EventsMaxAge == 0 {
		cfg.EventsMaxAge = 7 * 24 * time.Hour
	}
	return []jetstream.StreamConfig{
		{
			Name:        Events,
			Description: "Domain events from the outbox relays",
			Subjects:    []string{"events.>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			MaxAge:      cfg.EventsMaxAge,
			Duplicates:  EventsDuplicateWindow,
			// A bounded payload: a larger event is a bug in a publisher, refuse it.
			MaxMsgSize: 256 << 10,
		},
		{
			Name:        Deliveries,
			Description: "Delivery jobs; retries wait as one-shot message schedules",
			Subjects:    []string{"deliveries.>"},
			// WorkQueue: a job is gone once acked. Schedules work on WorkQueue (not on Interest,
			// where they are silently dropped). No MaxAge: a schedule must outlive the longest
			// retry delay.
			Retention:         jetstream.WorkQueuePolicy,
			Storage:           jetstream.FileStorage,
			Replicas:          cfg.Replicas,
			Duplicates:        EventsDuplicateWindow,
			AllowMsgSchedules: true,
			MaxMsgSize:        512 << 10,
		},
		{
			Name:        Attempts,
			Description: "Delivery attempt records for the delivery log",
			Subjects:    []string{"attempts.>"},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			Duplicates:  EventsDuplicateWindow,
			MaxMsgSize:  512 << 10,
		},
	}
}

// Ensure creates or updates every stream. Safe to run concurrently from every replica. A stream
// whose configuration already matches is left alone: an update racing with consumer creation on
// another replica is both pointless and, on nats-server 2.15, racy.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	for _, sc := range StreamConfigs(cfg) {
		s, err := js.Stream(ctx, sc.Name)
		if err == nil {
			info, ierr := s.Info(ctx)
			if ierr == nil && sc.Replicas == 0 {
				sc.Replicas = info.Config.Replicas
			}
			if ierr == nil && matches(info.Config, sc) {
				continue
			}
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("ensure stream %s: %w", sc.Name, err)
		}
		st, err := js.CreateOrUpdateStream(ctx, sc)
		if err != nil {
			return fmt.Errorf("ensure stream %s: %w", sc.Name, err)
		}
		if err := awaitReplicas(ctx, st, sc.Replicas); err != nil {
			return fmt.Errorf("ensure stream %s: %w", sc.Name, err)
		}
	}
	return nil
}

// awaitReplicas waits until a replicated stream has all its followers placed and a quorum of them
// current. Right after a stream is created or scaled up (R1 to R3) in a cluster, creating a
// consumer on it fails with "insufficient resources" until they are
// (TestClusterConsumerRightAfterScaleUp). A quorum, not every follower: a node that is down must
// not hold up a service's start.
func awaitReplicas(ctx context.Context, st jetstream.Stream, replicas int) error {
	if replicas <= 1 {
		return nil
	}
	wait := 50 * time.Millisecond
	for {
		info, err := st.Info(ctx)
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" && len(info.Cluster.Replicas) == replicas-1 {
			current := 0
			for _, r := range info.Cluster.Replicas {
				if r.Current && !r.Offline {
					current++
				}
			}
			if current >= replicas/2 {
				return nil
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for %d current replicas: %w", replicas, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// matches reports whether have already holds every setting want declares.
func matches(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Retention == want.Retention &&
		have.Storage == want.Storage && have.Replicas == want.Replicas && have.MaxAge == want.MaxAge &&
		have.Duplicates == want.Duplicates && have.AllowMsgSchedules == want.AllowMsgSchedules &&
		have.MaxMsgSize == want.MaxMsgSize && have.Description == want.Description
}

// EnsureConsumer creates or updates a durable consumer. Two replicas racing to create the same
// consumer with the same configuration both succeed. A consumer without a bound on deliveries
// gets MaxDeliver: no message may be delivered forever.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cc jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if cc.Durable == "" {
		return nil, errors.New("ensure consumer: durable name is required")
	}
	if cc.MaxDeliver <= 0 {
		cc.MaxDeliver = MaxDeliver
	}
	wait := 100 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, ensureAttemptTimeout)
		c, err := js.CreateOrUpdateConsumer(actx, stream, cc)
		cancel()
		if err == nil {
			return c, nil
		}
		if !transient(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("ensure consumer %s on %s: %w", cc.Durable, stream, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("ensure consumer %s on %s: %w", cc.Durable, stream, err)
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// transient reports whether a JetStream API error can go away by itself in a cluster: no leader
// answered yet (timeout, no responders) or the cluster is still placing a stream's replicas (503,
// e.g. "insufficient resources" right after a scale-up another replica made).
func transient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code == 503
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrTimeout)
}

// ensureAttemptTimeout bounds one Ensure try. In a cluster, a request about a stream whose leader
// just died is never answered, so a try waits out its whole timeout while the new leader is
// elected in about 2 s; with 10 s tries a service starting after a node loss stalled 10 s
// (TestClusterConsumersAfterMetaLeaderKill), with 3 s tries it is ready in about 3.
const ensureAttemptTimeout = 3 * time.Second

// EnsureWithRetry runs Ensure until it succeeds, backing off up to 5 s between tries, so that a
// publishing service can start (and accept writes into its outbox) while NATS is unreachable. It
// returns false when ctx ended first.
func EnsureWithRetry(ctx context.Context, js jetstream.JetStream, cfg Config, logger *slog.Logger) bool {
	wait := 250 * time.Millisecond
	for {
		ectx, cancel := context.WithTimeout(ctx, ensureAttemptTimeout)
		err := Ensure(ectx, js, cfg)
		cancel()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		logger.Warn("ensure streams failed; retrying", "error", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}
