package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"

	"github.com/customertext/webhooks/e2e/chaos"
	"github.com/customertext/webhooks/libs/natsserver"
	"github.com/customertext/webhooks/libs/streams"
)

// scenario breaks the platform in one way; the session's finish checks the outcome.
type scenario struct {
	name  string
	about string
	run   func(ctx context.Context, s *session) error
	// env is added to every service's environment for this scenario.
	env []string
	// cluster marks a scenario that needs a NATS cluster (-nats-nodes 3); it is skipped on one server.
	cluster bool
}

func scenarios() []scenario {
	return []scenario{
		{"dispatcher-kill", "kill -9 one of two dispatchers mid-load, restart it, then kill -9 both", dispatcherKill, nil, false},
		{"nats-sigterm", "nats-server stopped with SIGTERM mid-load and started again on its data", natsRestart(false), nil, false},
		{"nats-sigkill", "nats-server killed with SIGKILL mid-load and started again on its data", natsRestart(true), nil, false},
		{"postgres-outage", "PostgreSQL unreachable (TCP proxy stopped) mid-load", postgresOutage, nil, false},
		{"endpoint-500", "an endpoint answers 500, then recovers", endpoint500, nil, false},
		{"bad-endpoints", "endpoints hanging, dripping bytes and answering 100 MB next to a healthy one", badEndpoints, nil, false},
		{"poison", "poison messages on EVENTS, DELIVERIES and ATTEMPTS mid-load", poison, nil, false},
		// No circuit breaker here: every delivery gets real attempts and retry schedules in its
		// first chain and again after the redelivery, where their ids must not collide.
		{"subscriptions-kill-disabled", "the subscription service killed -9 while a webhook is disabled; enable, redeliver into failures, recover",
			subscriptionsKillDisabled, []string{"CIRCUIT_FAILURES=1000000"}, false},
		// The breaker stays out of it, so that the failing endpoint's retries are real schedules
		// waiting across each leader change.
		{"cluster-leader-kills", "on a 3-node cluster: kill -9 the DELIVERIES, EVENTS and meta leaders in turn, then keep a node down",
			clusterLeaderKills, []string{"CIRCUIT_FAILURES=1000000"}, true},
	}
}

// clusterLeaderKills kills the node leading DELIVERIES, then EVENTS, then the meta leader, each
// brought back, and last keeps the new DELIVERIES leader down for long, while one endpoint fails
// for the first part so that its retries wait as message schedules across the leader changes.
func clusterLeaderKills(ctx context.Context, s *session) error {
	c, ok := s.p.NATS.(*chaos.Cluster)
	if !ok {
		return errors.New("cluster-leader-kills needs a NATS cluster: -nats-nodes 3")
	}
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		return fmt.Errorf("connect to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	a, hooks, err := s.account(ctx, "cluster", "ok", "flaky")
	if err != nil {
		return err
	}
	flaky := hooks[1].Endpoint
	flaky.SetMode(chaos.ModeFail)
	s.idleWait = 75 * time.Second // acks lost with a killed node come back after AckWait
	s.load(ctx, a, s.rate())

	kill := func(what, node string, down time.Duration) error {
		s.sleep(ctx, s.d(3*time.Second, 10*time.Second))
		i := slices.IndexFunc(c.Cluster.Nodes(), func(n *natsserver.Node) bool { return n.Name == node })
		if i < 0 {
			return fmt.Errorf("no node %q", node)
		}
		s.logf("kill -9 %s (%s)", node, what)
		c.Kill(i)
		s.sleep(ctx, down)
		if err := c.Restart(ctx, i); err != nil {
			return err
		}
		s.logf("%s back", node)
		return nil
	}
	leader, err := streamLeader(ctx, js, streams.Deliveries)
	if err != nil {
		return err
	}
	if err := kill("DELIVERIES leader", leader, s.d(3*time.Second, 10*time.Second)); err != nil {
		return err
	}
	if leader, err = streamLeader(ctx, js, streams.Events); err != nil {
		return err
	}
	if err := kill("EVENTS leader", leader, s.d(3*time.Second, 10*time.Second)); err != nil {
		return err
	}
	if leader, err = c.MetaLeader(ctx); err != nil {
		return err
	}
	if err := kill("meta leader", leader, s.d(3*time.Second, 10*time.Second)); err != nil {
		return err
	}
	flaky.SetMode(chaos.ModeOK)
	s.logf("endpoint flaky recovered (answered 500 %d times)", flaky.Snapshot().Answered[chaos.ModeFail])
	if leader, err = streamLeader(ctx, js, streams.Deliveries); err != nil {
		return err
	}
	if err := kill("DELIVERIES leader, kept down", leader, s.d(30*time.Second, 3*time.Minute)); err != nil {
		return err
	}
	s.sleep(ctx, s.d(3*time.Second, 10*time.Second))
	s.stop()
	return nil
}

// streamLeader is the name of the node leading stream, waiting through an election.
func streamLeader(ctx context.Context, js jetstream.JetStream, stream string) (string, error) {
	for {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := js.Stream(ictx, stream)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = st.Info(ictx)
		}
		cancel()
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
			return info.Cluster.Leader, nil
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("leader of %s: %w", stream, errors.Join(ctx.Err(), err))
		}
	}
}

func dispatcherKill(ctx context.Context, s *session) error {
	a, _, err := s.account(ctx, "kill", "ok1", "ok2")
	if err != nil {
		return err
	}
	s.load(ctx, a, s.rate())
	s.sleep(ctx, s.d(3*time.Second, 15*time.Second))
	one := s.p.Stack.Proc("dispatcher-1")
	s.logf("kill -9 %s", one.Name)
	one.Kill()
	s.sleep(ctx, s.d(3*time.Second, 15*time.Second))
	if err := s.p.Stack.StartService(ctx, "dispatcher", 1); err != nil {
		return err
	}
	s.logf("dispatcher-1 restarted")
	s.sleep(ctx, s.d(2*time.Second, 10*time.Second))
	s.logf("kill -9 both dispatchers")
	for _, d := range s.p.Stack.Dispatchers() {
		d.Kill()
	}
	s.sleep(ctx, s.d(2*time.Second, 15*time.Second))
	for i := range 2 {
		if err := s.p.Stack.StartService(ctx, "dispatcher", i); err != nil {
			return err
		}
	}
	s.logf("both dispatchers restarted")
	s.sleep(ctx, s.d(2*time.Second, 10*time.Second))
	s.stop()
	return nil
}

func natsRestart(kill bool) func(ctx context.Context, s *session) error {
	return func(ctx context.Context, s *session) error {
		a, _, err := s.account(ctx, "nats", "ok1", "ok2")
		if err != nil {
			return err
		}
		// Acks in flight when the server went away are lost: those messages come back after
		// their consumer's AckWait (the attempt log's is 1 minute).
		s.idleWait = 75 * time.Second
		s.load(ctx, a, s.rate())
		for round := range s.rounds() {
			s.sleep(ctx, s.d(3*time.Second, 10*time.Second))
			if kill {
				s.logf("kill -9 nats-server (round %d)", round+1)
				s.p.NATS.Kill(0)
			} else {
				s.logf("SIGTERM nats-server (round %d)", round+1)
				if err := s.p.NATS.Terminate(0, time.Minute); err != nil {
					s.fail("%v", err)
				}
			}
			s.sleep(ctx, s.d(2*time.Second, 10*time.Second))
			if err := s.p.NATS.Restart(ctx, 0); err != nil {
				return err
			}
			s.logf("nats-server back on its data")
		}
		s.sleep(ctx, s.d(3*time.Second, 10*time.Second))
		s.stop()
		return nil
	}
}

// rounds is how often a fault is repeated.
func (s *session) rounds() int {
	if s.short {
		return 1
	}
	return 3
}

func postgresOutage(ctx context.Context, s *session) error {
	a, _, err := s.account(ctx, "pg", "ok1", "ok2")
	if err != nil {
		return err
	}
	s.load(ctx, a, s.rate())
	s.sleep(ctx, s.d(2*time.Second, 10*time.Second))
	outage := s.d(10*time.Second, 30*time.Second)
	before := s.p.Producer.FailedWith(codes.Internal)
	s.logf("PostgreSQL unreachable for %s (proxy stopped)", outage)
	s.p.PG.Stop()
	s.sleep(ctx, outage)
	if err := s.p.PG.Start(); err != nil {
		return err
	}
	s.logf("PostgreSQL reachable again")
	s.sleep(ctx, s.d(3*time.Second, 15*time.Second))
	s.stop()
	// Issue 11, item 3: callers must tell a retryable outage (UNAVAILABLE) from a bug (INTERNAL).
	if n := s.p.Producer.FailedWith(codes.Internal) - before; n > 0 {
		s.fail("%d CreateContact calls answered INTERNAL while PostgreSQL was unreachable; an outage must answer UNAVAILABLE", n)
	}
	return nil
}

func endpoint500(ctx context.Context, s *session) error {
	a, hooks, err := s.account(ctx, "e500", "ok", "flaky")
	if err != nil {
		return err
	}
	flaky := hooks[1].Endpoint
	flaky.SetMode(chaos.ModeFail)
	failing := time.Now()
	down := s.d(15*time.Second, 3*time.Minute)
	s.logf("endpoint flaky answers 500 for %s", down)
	s.load(ctx, a, s.rate())
	s.sleep(ctx, s.d(5*time.Second, 30*time.Second))
	for _, f := range s.stopLoad {
		f()
	}
	s.stopLoad = nil
	s.logf("load stopped: %d contacts created; flaky still failing", s.p.Producer.Created())
	s.sleep(ctx, down-time.Since(failing))
	flaky.SetMode(chaos.ModeOK)
	s.healed = time.Now()
	s.logf("endpoint flaky recovered (answered 500 %d times)", flaky.Snapshot().Answered[chaos.ModeFail])
	return nil
}

func badEndpoints(ctx context.Context, s *session) error {
	good, _, err := s.account(ctx, "good", "healthy")
	if err != nil {
		return err
	}
	bad, hooks, err := s.account(ctx, "bad", "hang", "drip", "huge")
	if err != nil {
		return err
	}
	hooks[0].Endpoint.SetMode(chaos.ModeHang)
	hooks[1].Endpoint.SetMode(chaos.ModeDrip)
	hooks[2].Endpoint.SetMode(chaos.ModeHuge)
	s.load(ctx, good, s.rate())
	s.load(ctx, bad, max(s.rate()/10, 1))
	s.sleep(ctx, s.d(10*time.Second, 2*time.Minute))
	s.stop()
	s.logf("hang and drip endpoints recover; huge keeps answering %d MB", chaos.HugeBody>>20)
	hooks[0].Endpoint.SetMode(chaos.ModeOK)
	hooks[1].Endpoint.SetMode(chaos.ModeOK)
	for _, h := range hooks {
		snap := h.Endpoint.Snapshot()
		s.logf("endpoint %s: %d requests so far", h.Endpoint.Name, snap.Requests)
	}
	return nil
}

func subscriptionsKillDisabled(ctx context.Context, s *session) error {
	a, hooks, err := s.account(ctx, "paused", "ok", "paused")
	if err != nil {
		return err
	}
	paused := hooks[1]
	paused.Endpoint.SetMode(chaos.ModeFail)
	s.load(ctx, a, s.rate())
	s.sleep(ctx, s.d(4*time.Second, 20*time.Second))
	s.stop()
	// Every event reached the healthy webhook: the paused one's jobs exist and are retrying.
	paused.Expected = false
	if t := s.p.WaitDelivered(ctx, time.Minute); t.Lost > 0 {
		paused.Expected = true
		return fmt.Errorf("healthy webhook still misses %d deliveries before the fault", t.Lost)
	}
	paused.Expected = true
	if _, err := a.Hooks.DisableWebhook(ctx, disableReq(paused.ID)); err != nil {
		return fmt.Errorf("disable webhook: %w", err)
	}
	// The attempt records the killed process had taken come back after the attempt-log
	// consumer's AckWait (1 minute).
	s.idleWait = 75 * time.Second
	subs := s.p.Stack.Proc("subscriptions")
	s.logf("webhook paused disabled; kill -9 subscriptions")
	subs.Kill()
	s.sleep(ctx, s.d(5*time.Second, 20*time.Second))
	if err := s.p.Stack.StartService(ctx, "subscriptions", 0); err != nil {
		return err
	}
	s.logf("subscriptions restarted")
	want := s.p.Producer.Events()
	n, err := waitDeadLetters(ctx, a, paused.ID, want, s.d(time.Minute, 3*time.Minute))
	s.logf("delivery log holds %d of %d deliveries to paused as dead-lettered", n, want)
	if err != nil {
		return err
	}
	before, err := s.p.Stack.MinIndexed(ctx)
	if err != nil {
		return err
	}
	if _, err := a.Hooks.EnableWebhook(ctx, enableReq(paused.ID)); err != nil {
		return fmt.Errorf("enable webhook: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.p.Stack.WaitIndexed(wctx, before+1); err != nil {
		return err
	}
	resp, err := a.Hooks.RedeliverFailed(ctx, redeliverReq(paused.ID))
	if err != nil {
		return fmt.Errorf("redeliver failed deliveries: %w", err)
	}
	// The redelivered chains fail too for a while: their retries must be scheduled afresh, not
	// dropped as duplicates of the first chains' (issue 11, item 2).
	still := s.d(5*time.Second, 20*time.Second)
	s.logf("webhook enabled; RedeliverFailed queued %d; the endpoint keeps failing for %s", resp.GetRedelivered(), still)
	s.sleep(ctx, still)
	paused.Endpoint.SetMode(chaos.ModeOK)
	s.healed = time.Now()
	s.logf("endpoint paused recovered")
	return nil
}
