package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/customertext/webhooks/libs/delivery"
	"github.com/customertext/webhooks/libs/event"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/identity"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/services/dispatcher/internal/fanout"
	"github.com/customertext/webhooks/services/dispatcher/internal/index"
	"github.com/customertext/webhooks/services/dispatcher/internal/metrics"
)

// deferredHeader marks a job deferred for its endpoint's sake (busy, circuit open); its value is
// the reason. It travels with the job through the schedule.
const deferredHeader = "Ct-Deferred"

// errWebhookDisabled is the error of the dead-letter record of a job whose webhook is disabled.
const errWebhookDisabled = "webhook is disabled; not delivered (redeliver after enabling it)"

// handle processes one ready job. Every path ends in exactly one of: ack (after the durable
// follow-up is stored), nak (redelivered) or term (not a job). While the job's endpoint is busy it
// waits in the lane's parking, if that has room, with its worker slot given back by release
// (idempotent).
func (p *Pool) handle(ctx context.Context, msg jetstream.Msg, st *laneState, release func()) {
	lane := LaneOf(msg.Subject())
	if meta, err := msg.Metadata(); err == nil {
		p.metrics.QueueWait.WithLabelValues(lane).Observe(max(p.now().Sub(meta.Timestamp), 0).Seconds())
	}
	job, err := ParseJob(msg.Data())
	if err == nil && !strings.HasSuffix(msg.Subject(), "."+job.GetDeliveryId()) {
		err = invalidJob(ReasonSubjectMismatch, fmt.Errorf("job of %s on another delivery's subject", job.GetDeliveryId()))
	}
	if err != nil {
		// Never retried, never a crash: terminated, counted and logged once.
		reason := ReasonUnparseable
		var inv *InvalidJobError
		if errors.As(err, &inv) {
			reason = inv.Reason
		}
		p.metrics.InvalidJobs.WithLabelValues(reason).Inc()
		p.logger.Error("terminating invalid delivery job", "subject", msg.Subject(), "reason", reason, "error", err)
		if err := msg.TermWithReason("invalid delivery job: " + reason); err != nil {
			p.logger.Warn("terminate invalid delivery job", "error", err)
		}
		return
	}
	if st.report != nil && job.GetAttempt() == 1 {
		if ns, err := strconv.ParseInt(msg.Headers().Get(streams.LatenessFromHeader), 10, 64); err == nil {
			st.report.Observe(p.now().Sub(time.Unix(0, ns)))
		}
	}
	ctx, endSpan := p.startDelivery(ctx, msg, job, lane)
	defer endSpan()
	log := p.logger.With("delivery_id", job.GetDeliveryId(), "attempt", job.GetAttempt())

	hook, found, err := p.hooks.Lookup(ctx, job.GetWebhookId())
	switch {
	case err != nil:
		log.Warn("webhook lookup failed; rescheduling", "error", err)
		p.metrics.PlatformFailures.WithLabelValues(metrics.StageLookup).Inc()
		p.deferJob(ctx, msg, job, lane, 5*time.Second, "lookup_failed")
		return
	case !found || hook.AccountID != job.GetAccountId():
		// Deleted: nothing to deliver to and nothing to log against.
		p.metrics.DeliveriesTotal.WithLabelValues(eventLabel(job), metrics.OutcomeDropped).Inc()
		log.Info("webhook no longer exists; dropping delivery", "webhook_id", job.GetWebhookId())
		p.ack(msg, log)
		return
	case !hook.Enabled:
		rec := p.record(job, hook, delivery.Result{}, p.now())
		rec.Outcome = webhooksv1.Outcome_OUTCOME_DEAD_LETTERED
		rec.Error = errWebhookDisabled
		rec.Payload = job.GetPayload()
		p.metrics.DeliveriesTotal.WithLabelValues(eventLabel(job), metrics.OutcomeDropped).Inc()
		p.settle(ctx, msg, log, rec, nil)
		return
	}

	parked := false
	permit, ok, wait, reason := p.guard.Acquire(ctx, hook.Endpoint, func() bool {
		// Wait for the busy endpoint without a worker slot, if the parking has room.
		select {
		case st.parking <- struct{}{}:
			parked = true
			release()
			return true
		default:
			return false
		}
	})
	if parked {
		<-st.parking
	}
	if !ok {
		p.deferJob(ctx, msg, job, lane, wait, reason)
		return
	}
	timeout := hook.Timeout
	if timeout <= 0 {
		timeout = p.cfg.DefaultTimeout
	}
	timeout = min(timeout, p.cfg.MaxTimeout)
	started := p.now()
	if et := job.GetEventTime(); et != nil && job.GetAttempt() == 1 && msg.Headers().Get(deferredHeader) == "" {
		p.metrics.FirstAttemptDelay.WithLabelValues(lane).Observe(max(started.Sub(et.AsTime()), 0).Seconds())
	}
	stopKeepAlive := p.keepAlive(msg, timeout)
	postCtx, endPost := p.startPost(ctx)
	res := p.sender.Send(postCtx, delivery.Request{
		URL:             hook.URL,
		Body:            job.GetPayload(),
		MsgID:           job.GetEventId(),
		Secrets:         hook.SigningSecrets(started),
		AuthHeaderName:  hook.AuthHeaderName,
		AuthHeaderValue: hook.AuthHeaderValue,
		Timeout:         timeout,
		// The attempt's client span is recorded either way; only the header is the webhook's choice.
		SendTraceContext: hook.SendTraceContext,
	})
	stopKeepAlive()
	endPost(res)
	permit.Done(unhealthy(res))
	if ctx.Err() != nil && !res.Succeeded() {
		// Shutdown cut the attempt short: not the endpoint's fault, let another replica retry.
		_ = msg.Nak()
		return
	}
	if res.Succeeded() {
		p.metrics.AttemptDuration.WithLabelValues("success").Observe(res.Duration.Seconds())
	} else {
		p.metrics.AttemptDuration.WithLabelValues("failure").Observe(res.Duration.Seconds())
	}

	rec := p.record(job, hook, res, started)
	var sched *nats.Msg
	outcome := metrics.OutcomeSucceeded
	switch {
	case res.Succeeded():
		rec.Outcome = webhooksv1.Outcome_OUTCOME_SUCCEEDED
		if et := job.GetEventTime(); et != nil {
			p.metrics.EndToEnd.WithLabelValues(eventLabel(job)).Observe(max(p.now().Sub(et.AsTime()), 0).Seconds())
		}
	case res.Gone():
		rec.Outcome = webhooksv1.Outcome_OUTCOME_DEAD_LETTERED
		rec.Gone = true
		rec.Payload = job.GetPayload()
		outcome = metrics.OutcomeGone
	default:
		delay, again := p.cfg.Policy.Next(int(job.GetAttempt()), res.RetryAfter)
		if !again {
			rec.Outcome = webhooksv1.Outcome_OUTCOME_DEAD_LETTERED
			rec.Payload = job.GetPayload()
			outcome = metrics.OutcomeDeadLettered
			break
		}
		at := p.now().Add(delay)
		next := proto.CloneOf(job)
		next.Attempt = job.GetAttempt() + 1
		next.PreviousAttemptId, next.PreviousAttemptTime = rec.GetAttemptId(), rec.GetAttemptTime()
		sched, err = ScheduleMsg(next, lane, at, streams.JobMsgID(job.GetDeliveryId(), job.GetGeneration(), next.GetAttempt()), msg.Headers())
		if err != nil {
			log.Error("build retry schedule", "error", err)
			p.metrics.PlatformFailures.WithLabelValues(metrics.StageSettle).Inc()
			p.nak(msg)
			return
		}
		rec.Outcome = webhooksv1.Outcome_OUTCOME_RETRYING
		rec.NextRetryTime = timestamppb.New(at)
		outcome = metrics.OutcomeRetrying
	}
	if p.settle(ctx, msg, log, rec, sched) {
		p.metrics.DeliveriesTotal.WithLabelValues(eventLabel(job), outcome).Inc()
		switch outcome {
		case metrics.OutcomeRetrying:
			p.metrics.RetriesTotal.Inc()
		case metrics.OutcomeDeadLettered, metrics.OutcomeGone:
			p.metrics.DeadLetters.Inc()
		}
	}
}

// settle stores the follow-up schedule (if any) and the attempt record, then acknowledges the
// job. If either publish fails the job is redelivered instead: the attempt may be repeated but
// never silently lost. It reports whether the job was acknowledged.
func (p *Pool) settle(ctx context.Context, msg jetstream.Msg, log *slog.Logger, rec *webhooksv1.AttemptRecord, sched *nats.Msg) bool {
	stored := p.records.Add(context.WithoutCancel(ctx), rec)
	var err error
	if sched != nil {
		err = p.schedule(context.WithoutCancel(ctx), sched, log)
	}
	if err == nil {
		err = p.waitRecord(stored)
	}
	if err != nil {
		log.Warn("follow-up not stored; job will be redelivered", "error", err)
		p.metrics.PlatformFailures.WithLabelValues(metrics.StageSettle).Inc()
		p.nak(msg)
		return false
	}
	p.ack(msg, log)
	return true
}

// schedule publishes a retry schedule and makes sure one is pending for its chain. JetStream
// acks a Nats-Msg-Id it saw inside the duplicate window as a duplicate and stores nothing: that
// is fine when a schedule of the chain is pending (this job was redelivered after its schedule
// was stored), and a lost retry otherwise, so then the schedule is published again under a fresh
// id.
func (p *Pool) schedule(ctx context.Context, sched *nats.Msg, log *slog.Logger) error {
	dup, err := p.publish(ctx, sched)
	if err != nil || !dup {
		return err
	}
	stream, err := p.js.Stream(ctx, streams.Deliveries)
	if err != nil {
		return fmt.Errorf("check pending schedule %s: %w", sched.Subject, err)
	}
	pending, err := stream.GetLastMsgForSubject(ctx, sched.Subject)
	switch {
	case err == nil && pending.Header.Get("Nats-Schedule") != "":
		return nil
	case err != nil && !errors.Is(err, jetstream.ErrMsgNotFound):
		return fmt.Errorf("check pending schedule %s: %w", sched.Subject, err)
	}
	p.metrics.ScheduleDuplicates.Inc()
	id := sched.Header.Get(jetstream.MsgIDHeader)
	log.Warn("retry schedule acked as a duplicate with none pending; publishing it under a fresh id", "msg_id", id)
	sched.Header.Set(jetstream.MsgIDHeader, id+".x"+strconv.FormatInt(p.now().UnixNano(), 36))
	if dup, err = p.publish(ctx, sched); err == nil && dup {
		err = fmt.Errorf("publish %s: acked as a duplicate twice", sched.Subject)
	}
	return err
}

// publish stores msg and reports whether JetStream acked it as a duplicate.
func (p *Pool) publish(ctx context.Context, msg *nats.Msg) (duplicate bool, err error) {
	f, err := p.js.PublishMsgAsync(msg)
	if err != nil {
		return false, fmt.Errorf("publish %s: %w", msg.Subject, err)
	}
	ack, err := p.waitAck(ctx, f)
	if err != nil {
		return false, err
	}
	return ack.Duplicate, nil
}

// nak hands the job back for redelivery after a back-off that grows with its deliveries; the
// consumer's MaxDeliver bounds how often.
func (p *Pool) nak(msg jetstream.Msg) {
	delay := time.Second
	if meta, err := msg.Metadata(); err == nil {
		delay = streams.NakDelay(meta.NumDelivered, time.Second, streams.MaxNakDelay)
	}
	_ = msg.NakWithDelay(delay)
}

// deferJob reschedules the same attempt without an HTTP call (circuit open, endpoint at its
// cap, lookup failure). Its dedupe id is unique per deferral; the schedule subject is per chain
// (delivery and generation), so at most one schedule of a chain is ever pending. The log row of
// the attempt that announced this one is corrected to the new time (a deferral record).
func (p *Pool) deferJob(ctx context.Context, msg jetstream.Msg, job *webhooksv1.DeliveryJob, lane string, wait time.Duration, reason string) {
	at := p.now().Add(wait)
	id := streams.JobMsgID(job.GetDeliveryId(), job.GetGeneration(), job.GetAttempt()) + ".d" + strconv.FormatInt(at.UnixNano(), 36)
	sched, err := ScheduleMsg(job, lane, at, id, msg.Headers())
	if err != nil {
		p.metrics.PlatformFailures.WithLabelValues(metrics.StageDefer).Inc()
		_ = msg.NakWithDelay(wait)
		return
	}
	if reason != "lookup_failed" {
		// The endpoint's doing: its late first attempt is not the pipeline's latency.
		sched.Header.Set(deferredHeader, reason)
	}
	// The previous attempt's log row announced this attempt's time: keep it true.
	var stored <-chan error
	if job.GetPreviousAttemptId() != "" && job.GetPreviousAttemptTime() != nil {
		stored = p.records.Add(context.WithoutCancel(ctx), deferral(job, at))
	}
	err = p.schedule(context.WithoutCancel(ctx), sched, p.logger)
	if err == nil && stored != nil {
		err = p.waitRecord(stored)
	}
	if err != nil {
		p.logger.Warn("defer delivery failed; job will be redelivered", "delivery_id", job.GetDeliveryId(), "error", err)
		p.metrics.PlatformFailures.WithLabelValues(metrics.StageDefer).Inc()
		p.nak(msg)
		return
	}
	p.metrics.Deferred.WithLabelValues(reason).Inc()
	p.ack(msg, p.logger)
}

func (p *Pool) ack(msg jetstream.Msg, log *slog.Logger) {
	if err := msg.Ack(); err != nil {
		log.Warn("ack delivery job", "error", err)
	}
}

// deferral is the record that moves the retry time announced by job's previous attempt to at.
func deferral(job *webhooksv1.DeliveryJob, at time.Time) *webhooksv1.AttemptRecord {
	return &webhooksv1.AttemptRecord{
		Deferral:      true,
		AttemptId:     job.GetPreviousAttemptId(),
		AttemptTime:   job.GetPreviousAttemptTime(),
		DeliveryId:    job.GetDeliveryId(),
		EventId:       job.GetEventId(),
		EventType:     job.GetEventType(),
		AccountId:     job.GetAccountId(),
		WebhookId:     job.GetWebhookId(),
		Attempt:       job.GetAttempt() - 1,
		Outcome:       webhooksv1.Outcome_OUTCOME_RETRYING,
		NextRetryTime: timestamppb.New(at),
	}
}

// record builds the attempt record common to every outcome.
func (p *Pool) record(job *webhooksv1.DeliveryJob, hook index.Webhook, res delivery.Result, at time.Time) *webhooksv1.AttemptRecord {
	rec := &webhooksv1.AttemptRecord{
		AttemptId:      "att_" + uuid.Must(uuid.NewV7()).String(),
		DeliveryId:     job.GetDeliveryId(),
		EventId:        job.GetEventId(),
		EventType:      job.GetEventType(),
		AccountId:      job.GetAccountId(),
		WebhookId:      job.GetWebhookId(),
		Url:            hook.URL,
		Attempt:        job.GetAttempt(),
		RequestHeaders: res.Headers,
		ResponseStatus: int32(res.Status),
		ResponseBody:   truncate(res.Body, delivery.MaxResponseExcerpt),
		DurationMs:     res.Duration.Milliseconds(),
		Error:          res.ErrorText(),
		AttemptTime:    timestamppb.New(at),
	}
	if job.GetAttempt() == 1 {
		rec.Payload = job.GetPayload()
	}
	return rec
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// eventLabel bounds the event_type label to the six known types: a job can come from outside
// the fan-out (redeliveries).
func eventLabel(job *webhooksv1.DeliveryJob) string {
	if event.Known(job.GetEventType()) {
		return job.GetEventType()
	}
	return "unknown"
}

// unhealthy reports failures that say the endpoint itself is in trouble.
func unhealthy(r delivery.Result) bool {
	if r.Err != nil {
		return true
	}
	return r.Status >= 500 || r.Status == http.StatusTooManyRequests
}

// Reasons a ready message is terminated: the "reason" label of dispatcher_jobs_invalid_total.
const (
	ReasonUnparseable     = "unparseable"
	ReasonBadDeliveryID   = "bad_delivery_id"
	ReasonBadEventID      = "bad_event_id"
	ReasonBadAccountID    = "bad_account_id"
	ReasonBadWebhookID    = "bad_webhook_id"
	ReasonBadGeneration   = "bad_generation"
	ReasonBadAttempt      = "bad_attempt"
	ReasonSubjectMismatch = "subject_mismatch"
)

// InvalidReasons lists every reason, so that each series exists (at 0) from the start.
var InvalidReasons = []string{ReasonUnparseable, ReasonBadDeliveryID, ReasonBadEventID, ReasonBadAccountID,
	ReasonBadWebhookID, ReasonBadGeneration, ReasonBadAttempt, ReasonSubjectMismatch}

// InvalidJobError is why a message is not a delivery job.
type InvalidJobError struct {
	Reason string
	Err    error
}

func (e *InvalidJobError) Error() string { return "parse delivery job: " + e.Err.Error() }
func (e *InvalidJobError) Unwrap() error { return e.Err }

func invalidJob(reason string, err error) error { return &InvalidJobError{Reason: reason, Err: err} }

// ParseJob decodes and validates a delivery job: every id it carries becomes part of a subject
// or a Nats-Msg-Id (libs/identity). Errors are *InvalidJobError values naming the reason.
func ParseJob(b []byte) (*webhooksv1.DeliveryJob, error) {
	job := &webhooksv1.DeliveryJob{}
	if err := proto.Unmarshal(b, job); err != nil {
		return nil, invalidJob(ReasonUnparseable, err)
	}
	checks := []struct {
		reason string
		err    error
	}{
		{ReasonBadDeliveryID, identity.Delivery(job.GetDeliveryId())},
		{ReasonBadWebhookID, identity.Webhook(job.GetWebhookId())},
		{ReasonBadAccountID, identity.Account(job.GetAccountId())},
		{ReasonBadEventID, identity.Event(job.GetEventId())},
	}
	if g := job.GetGeneration(); g != "" {
		checks = append(checks, struct {
			reason string
			err    error
		}{ReasonBadGeneration, identity.Check("generation", g, streams.MaxGenerationLen)})
	}
	for _, c := range checks {
		if c.err != nil {
			return nil, invalidJob(c.reason, c.err)
		}
	}
	if job.GetAttempt() < 1 {
		return nil, invalidJob(ReasonBadAttempt, errors.New("attempt must be at least 1"))
	}
	return job, nil
}

// ScheduleMsg builds the one-shot message schedule that puts job back on its ready subject at
// at. The raw Nats-Schedule header keeps sub-second precision (WithScheduleAt truncates).
func ScheduleMsg(job *webhooksv1.DeliveryJob, lane string, at time.Time, msgID string, trace nats.Header) (*nats.Msg, error) {
	body, err := proto.Marshal(job)
	if err != nil {
		return nil, fmt.Errorf("marshal job: %w", err)
	}
	m := nats.NewMsg(streams.ScheduleSubject(job.GetDeliveryId(), job.GetGeneration()))
	m.Data = body
	fanout.CopyTrace(trace, m.Header)
	m.Header.Set("Nats-Schedule", "@at "+at.UTC().Format(time.RFC3339Nano))
	m.Header.Set("Nats-Schedule-Target", streams.ReadySubject(lane, job.GetDeliveryId()))
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	return m, nil
}

// LaneOf returns the lane of a deliveries.ready.<lane>.<id> subject.
func LaneOf(subject string) string {
	parts := strings.SplitN(subject, ".", 4)
	if len(parts) < 4 || parts[0] != "deliveries" || parts[1] != "ready" || parts[2] == "" {
		return "default"
	}
	return parts[2]
}
