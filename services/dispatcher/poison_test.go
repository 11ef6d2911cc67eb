package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/customertext/webhooks/libs/event"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/streams"
	"github.com/customertext/webhooks/services/dispatcher/internal/fanout"
	"github.com/customertext/webhooks/services/dispatcher/internal/metrics"
)

// poisonEvent is a well-formed envelope of acc_1 whose event id is id, published raw (no
// producer's validation in the way).
func poisonEvent(t *testing.T, id string) *nats.Msg {
	t.Helper()
	env, err := event.New("acc_1", newContact("poison"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	env.EventID = id
	body, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(streams.EventSubject("acc_1", env.Event))
	m.Data = body
	return m
}

// poisonJob is a delivery job of wh_1 whose delivery id is id, published raw on a ready subject.
func poisonJob(t *testing.T, id, subjectID string) *nats.Msg {
	t.Helper()
	b, err := proto.Marshal(&webhooksv1.DeliveryJob{DeliveryId: id, EventId: "evt_x", EventType: "new_contact",
		AccountId: "acc_1", WebhookId: "wh_1", Attempt: 1, Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(streams.ReadySubject("default", subjectID))
	m.Data = b
	return m
}

// TestPoisonMessagesNeverStopTheDispatchers publishes, raw, each kind of message that once took
// the dispatchers down or stuck a slot for good, onto two running replicas: after each, a normal
// event is still delivered within seconds, both replicas are alive, and the poison is counted
// as terminated rather than retried.
func TestPoisonMessagesNeverStopTheDispatchers(t *testing.T) {
	t.Parallel()
	_, url := startNATS(t)
	_, js := connectJS(t, url)
	rcv := startReceiver(t, nil)
	cfg, _ := webhookConfig(t, "wh_1", "acc_1", rcv.srv.URL, "new_contact")
	cs := startConfigServer(t, cfg)
	admins := []string{freeAddr(t), freeAddr(t)}
	var stops []func() error
	for _, a := range admins {
		stops = append(stops, startDispatcher(t, dispatcherEnv(url, cs.addr, "ADMIN_ADDR", a, "CONCURRENCY", "4")))
		eventually(t, 30*time.Second, "replica ready", func() bool {
			return metric(t, a, `dispatcher_index_webhooks{state="enabled"}`) == 1
		})
	}

	poisons := []struct {
		name   string
		msg    *nats.Msg
		metric string
	}{
		{"event id of 5000 chars", poisonEvent(t, "evt_"+strings.Repeat("x", 5000)), `dispatcher_events_invalid_total{reason="bad_event_id"}`},
		{"event id with a space", poisonEvent(t, "evt_a b"), `dispatcher_events_invalid_total{reason="bad_event_id"}`},
		{"event id with a dot", poisonEvent(t, "evt_a.b"), `dispatcher_events_invalid_total{reason="bad_event_id"}`},
		{"event id with a star", poisonEvent(t, "evt_*"), `dispatcher_events_invalid_total{reason="bad_event_id"}`},
		{"job with a dotted delivery id", poisonJob(t, "del_a.b", "del_a.b"), `dispatcher_jobs_invalid_total{reason="bad_delivery_id"}`},
		{"job not matching its subject", poisonJob(t, "del_other", "del_this"), `dispatcher_jobs_invalid_total{reason="subject_mismatch"}`},
		{"job that is not protobuf", func() *nats.Msg {
			m := nats.NewMsg(streams.ReadySubject("default", "del_junk"))
			m.Data = []byte("\xff\xff\xff not a job")
			return m
		}(), `dispatcher_jobs_invalid_total{reason="unparseable"}`},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i, p := range poisons {
		before := 0.0
		for _, a := range admins {
			before += metric(t, a, p.metric)
		}
		if _, err := js.PublishMsg(ctx, p.msg); err != nil {
			t.Fatalf("%s: publish: %v", p.name, err)
		}
		env := publishEvent(t, js, "acc_1", newContact("after-"+p.name))
		eventually(t, 20*time.Second, p.name+": the next event delivered", func() bool {
			for _, r := range rcv.requests() {
				if strings.Contains(string(r.Body), env.EventID) {
					return true
				}
			}
			return false
		})
		eventually(t, 20*time.Second, p.name+": counted as terminated", func() bool {
			n := 0.0
			for _, a := range admins {
				n += metric(t, a, p.metric)
			}
			return n == before+1
		})
		for j, a := range admins {
			if v := metric(t, a, "dispatcher_replicas"); v < 0 {
				t.Fatalf("%s: replica %d is down", p.name, j)
			}
		}
		t.Logf("poison %d (%s): terminated, next event delivered, both replicas alive", i, p.name)
	}
	// Nothing is left holding a slot or waiting for a retry.
	for _, c := range []struct{ stream, name string }{{streams.Events, streams.FanoutConsumer}, {streams.Deliveries, streams.DeliveryConsumer}} {
		eventually(t, 20*time.Second, c.name+" settled", func() bool {
			cons, err := js.Consumer(ctx, c.stream, c.name)
			if err != nil {
				return false
			}
			ci, err := cons.Info(ctx)
			return err == nil && ci.NumAckPending == 0 && ci.NumRedelivered == 0 && ci.NumPending == 0
		})
	}
	for _, c := range []struct{ stream, name string }{{streams.Events, streams.FanoutConsumer},
		{streams.Deliveries, streams.DeliveryConsumer}, {streams.Deliveries, streams.DeliveryBulkConsumer}} {
		cons, err := js.Consumer(ctx, c.stream, c.name)
		if err != nil {
			t.Fatal(err)
		}
		if got := cons.CachedInfo().Config.MaxDeliver; got != streams.MaxDeliver {
			t.Errorf("%s MaxDeliver: got %d, want %d", c.name, got, streams.MaxDeliver)
		}
	}
	for i, stop := range stops {
		if err := stop(); err != nil {
			t.Errorf("replica %d: run returned %v, want a clean stop", i, err)
		}
	}
}

// closingProxy is a TCP proxy in front of nats-server that can do to its clients what the server
// does to one that broke a protocol limit: send "-ERR 'Maximum Control Line Exceeded'" and close
// the connection. nats.go does not reconnect after that error; the connection is closed for good.
type closingProxy struct {
	lis    net.Listener
	mu     sync.Mutex
	client []net.Conn
}

func startClosingProxy(t *testing.T, target string) *closingProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &closingProxy{lis: lis}
	t.Cleanup(func() { _ = lis.Close(); p.closeAll("") })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.client = append(p.client, c)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
			go func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						p.mu.Lock()
						_, werr := c.Write(buf[:n])
						p.mu.Unlock()
						if werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				_ = c.Close()
			}()
		}
	}()
	return p
}

// closeAll sends errLine (if any) to every client between two server writes, then closes them.
func (p *closingProxy) closeAll(errLine string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.client {
		if errLine != "" {
			_, _ = c.Write([]byte(errLine))
		}
		_ = c.Close()
	}
	p.client = nil
}

// TestDispatcherSurvivesAClosedConnection closes the dispatcher's NATS connection the way the
// server does after a protocol error (nats.go gives such a connection up rather than
// reconnecting): the dispatcher builds a new session and keeps delivering.
func TestDispatcherSurvivesAClosedConnection(t *testing.T) {
	t.Parallel()
	srv, url := startNATS(t)
	_, js := connectJS(t, url)
	proxy := startClosingProxy(t, strings.TrimPrefix(srv.ClientURL(), "nats://"))
	rcv := startReceiver(t, nil)
	cfg, _ := webhookConfig(t, "wh_1", "acc_1", rcv.srv.URL, "new_contact")
	cs := startConfigServer(t, cfg)
	admin := freeAddr(t)
	stop := startDispatcher(t, dispatcherEnv("nats://"+proxy.lis.Addr().String(), cs.addr, "ADMIN_ADDR", admin))
	eventually(t, 30*time.Second, "dispatcher ready", func() bool {
		return metric(t, admin, `dispatcher_index_webhooks{state="enabled"}`) == 1
	})
	for round := 1; round <= 2; round++ {
		proxy.closeAll("-ERR 'Maximum Control Line Exceeded'\r\n")
		eventually(t, 30*time.Second, "a new nats session", func() bool {
			return metric(t, admin, "dispatcher_nats_session_restarts_total") >= float64(round)
		})
		env := publishEvent(t, js, "acc_1", newContact("after-close"))
		eventually(t, 30*time.Second, "the next event delivered", func() bool {
			for _, r := range rcv.requests() {
				if strings.Contains(string(r.Body), env.EventID) {
					return true
				}
			}
			return false
		})
	}
	if err := stop(); err != nil {
		t.Errorf("run: got %v, want a clean stop", err)
	}
}

// TestRetryScheduleAckedAsDuplicateIsNotLost: when JetStream acks a retry schedule as a
// duplicate (its Nats-Msg-Id was seen inside the window) and no schedule of the chain is
// pending, the retry is published again under a fresh id instead of being silently dropped.
func TestRetryScheduleAckedAsDuplicateIsNotLost(t *testing.T) {
	t.Parallel()
	_, url := startNATS(t)
	_, js := connectJS(t, url)
	rcv := startReceiver(t, func(n int, _ *http.Request) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	cfg, _ := webhookConfig(t, "wh_1", "acc_1", rcv.srv.URL, "new_contact")
	cs := startConfigServer(t, cfg)
	env, err := event.New("acc_1", newContact("c1"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Something else already used the id of the first retry's schedule inside the window.
	blocker := nats.NewMsg("deliveries.sched.blocker")
	blocker.Data = []byte("not a schedule")
	id := fanout.DeliveryID(env.EventID, "wh_1")
	if _, err := js.PublishMsg(ctx, blocker, jetstream.WithMsgID(streams.JobMsgID(id, "", 2))); err != nil {
		t.Fatal(err)
	}
	admin := freeAddr(t)
	startDispatcher(t, dispatcherEnv(url, cs.addr, "ADMIN_ADDR", admin, "RETRY_SCHEDULE", "0s,100ms,100ms"))
	eventually(t, 30*time.Second, "dispatcher ready", func() bool {
		return metric(t, admin, `dispatcher_index_webhooks{state="enabled"}`) == 1
	})
	em := nats.NewMsg(streams.EventSubject("acc_1", env.Event))
	em.Data = body
	if _, err := js.PublishMsg(ctx, em, jetstream.WithMsgID(env.EventID)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the retry after the failed first attempt", func() bool { return rcv.count() >= 2 })
	if got := metric(t, admin, "dispatcher_schedule_duplicates_total"); got != 1 {
		t.Errorf("dispatcher_schedule_duplicates_total: got %v, want 1", got)
	}
}

// TestExhaustedJobIsDeadLettered: a job its consumer gave up on (MaxDeliver, here 2) gets a
// visible end: counted, a DEAD_LETTERED record in the delivery log (so it can be redelivered),
// and removed from the work queue where no consumer would deliver it again.
func TestExhaustedJobIsDeadLettered(t *testing.T) {
	t.Parallel()
	_, url := startNATS(t)
	nc, js := connectJS(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cons, err := streams.EnsureConsumer(ctx, js, streams.Deliveries, jetstream.ConsumerConfig{
		Durable: streams.DeliveryConsumer, FilterSubject: streams.ReadySubject("default", ">"),
		AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 2})
	if err != nil {
		t.Fatal(err)
	}
	attempts := newAttemptReader(t, js)
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	subs, err := watchMaxDeliveries(nc, js, m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	job := poisonJob(t, "del_stuck_wh_1", "del_stuck_wh_1")
	ack, err := js.PublishMsg(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // never settled: its attempt record could not be stored, say
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for msg := range b.Messages() {
			_ = msg.Nak()
		}
	}
	var recs []*webhooksv1.AttemptRecord
	eventually(t, 30*time.Second, "a dead-letter record", func() bool {
		recs = attempts.poll(t)
		return len(recs) > 0
	})
	r := recs[0]
	if r.GetDeliveryId() != "del_stuck_wh_1" || r.GetOutcome() != webhooksv1.Outcome_OUTCOME_DEAD_LETTERED ||
		string(r.GetPayload()) != "{}" || r.GetAttemptId() == "" {
		t.Errorf("record: got %v, want a dead letter of del_stuck_wh_1 with its payload", r)
	}
	s, err := js.Stream(ctx, streams.Deliveries)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the exhausted job removed", func() bool {
		_, err := s.GetMsg(ctx, ack.Sequence)
		return errors.Is(err, jetstream.ErrMsgNotFound)
	})
	if got := testutil.ToFloat64(m.MaxDeliveries.WithLabelValues(streams.DeliveryConsumer)); got != 1 {
		t.Errorf("max deliveries counted: got %v, want 1", got)
	}
}
