package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/customertext/webhooks/e2e/devstack"
	"github.com/customertext/webhooks/libs/event"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/natsserver"
	"github.com/customertext/webhooks/libs/signing"
	"github.com/customertext/webhooks/libs/streams"
)

// TestClusterSurvivesLeaderKills runs the platform on a 3-node JetStream cluster with R3 streams
// and two dispatchers while contacts are created through the contacts API, and SIGKILLs the node
// leading DELIVERIES, then the one leading EVENTS, then the meta leader, bringing each back, and
// last keeps the new DELIVERIES leader down for 45 s before bringing it back. One
// endpoint fails until the kills are over, so its retries wait as message schedules across every
// leader change. Every event must reach both endpoints, signed, with duplicates only under the same
// webhook-id; no service may restart, and every consumer's backlog returns to zero.
func TestClusterSurvivesLeaderKills(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster scenario: runs in the full suite")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	stack := startStack(ctx, t, devstack.Config{NATSNodes: 3, Dispatchers: 2,
		// Retries every 2 s for 4 minutes: the failing endpoint recovers long before the last.
		// The breaker stays out of it: its open time doubles per failed probe, so after this long
		// an outage its next probe could come minutes after the endpoint recovered.
		ExtraEnv: []string{"RETRY_SCHEDULE=0s" + strings.Repeat(",2s", 120), "CIRCUIT_FAILURES=1000000"}})
	cluster := stack.Cluster()

	healthy, err := devstack.StartReceiver("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer healthy.Close()
	failing, err := devstack.StartReceiver("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer failing.Close()
	failing.SetStatus(http.StatusServiceUnavailable)

	acct, secrets := clusterAccount(ctx, t, stack, healthy.URL, failing.URL)
	contacts, err := devstack.Dial(devstack.Addr(stack.Ports().ContactsGRPC), stack.ServiceToken)
	if err != nil {
		t.Fatal(err)
	}
	defer contacts.Close()
	client := contactsv1.NewContactServiceClient(contacts)

	// Steady load: a contact every 50 ms until the kills are over.
	var (
		mu      sync.Mutex
		created []string
	)
	loadCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-loadCtx.Done():
				return
			case <-tick.C:
			}
			c, err := client.CreateContact(loadCtx, &contactsv1.CreateContactRequest{AccountId: acct,
				Contact: &contactsv1.Contact{FirstName: "Load", Phone: fmt.Sprintf("+1555%07d", i)}})
			if err != nil {
				if loadCtx.Err() == nil {
					t.Errorf("create contact %d: %v", i, err)
				}
				continue
			}
			mu.Lock()
			created = append(created, c.GetContact().GetId())
			mu.Unlock()
		}
	}()
	createdCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(created)
	}

	nc, err := nats.Connect(stack.NATSURL(), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	leaderOf := func(stream string) string {
		for {
			ictx, icancel := context.WithTimeout(ctx, 2*time.Second)
			s, err := js.Stream(ictx, stream)
			var info *jetstream.StreamInfo
			if err == nil {
				info, err = s.Info(ictx)
			}
			icancel()
			if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
				return info.Cluster.Leader
			}
			if ctx.Err() != nil {
				t.Fatalf("no leader of %s: %v", stream, err)
			}
		}
	}
	killAndRestore := func(what, node string, down time.Duration) {
		t.Helper()
		before := createdCount()
		waitFor(ctx, t, "load before the kill", func() bool { return createdCount() >= before+20 })
		n := cluster.Node(node)
		start := time.Now()
		n.Kill()
		t.Logf("killed %s (%s)", node, what)
		// Load keeps flowing while the node is down.
		during := createdCount()
		waitFor(ctx, t, "load while "+node+" is down", func() bool {
			return createdCount() >= during+40 && time.Since(start) >= down
		})
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		if err := n.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s back after %v", node, time.Since(start).Round(time.Millisecond))
	}

	killAndRestore("DELIVERIES leader", leaderOf(streams.Deliveries), 0)
	killAndRestore("EVENTS leader", leaderOf(streams.Events), 0)
	meta, err := cluster.MetaLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	killAndRestore("meta leader", meta, 0)
	// A node down for long: retries keep being scheduled and fired by the two left, and the node
	// catches up when it is back. make chaos keeps it down for minutes.
	killAndRestore("DELIVERIES leader, kept down", leaderOf(streams.Deliveries), 45*time.Second)
	stopLoad()
	<-loadDone
	failing.SetStatus(http.StatusOK)

	mu.Lock()
	want := append([]string(nil), created...)
	mu.Unlock()
	t.Logf("%d contacts created through the kills", len(want))

	healed := time.Now()
	for name, rcv := range map[string]*devstack.Receiver{"healthy": healthy, "failing then recovered": failing} {
		// Bounded by the test's context only: this asserts that nothing is lost, not how fast the
		// retries that churned through the leader changes drain on a loaded machine.
		for len(delivered(t, rcv, secrets)) < len(want) {
			if ctx.Err() != nil {
				t.Fatalf("%s endpoint: %d of %d events after %v", name, len(delivered(t, rcv, secrets)), len(want), time.Since(healed))
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("%s endpoint: every event %v after the last fault", name, time.Since(healed).Round(time.Millisecond))
		got := delivered(t, rcv, secrets)
		for _, id := range want {
			if _, ok := got[id]; !ok {
				t.Errorf("%s endpoint: contact %s never delivered", name, id)
			}
		}
		for contact, ids := range got {
			if len(ids) > 1 {
				t.Errorf("%s endpoint: contact %s delivered under %d webhook-ids %v, want 1", name, contact, len(ids), ids)
			}
		}
	}

	for _, key := range []string{"subscriptions", "contacts", "dispatcher", "dispatcher-1"} {
		if p := stack.Proc(key); p == nil || p.Exited() {
			t.Errorf("%s exited during the node kills; services must reconnect without a restart", key)
		}
	}
	for _, c := range []struct{ stream, consumer string }{
		{streams.Events, streams.FanoutConsumer},
		{streams.Deliveries, streams.DeliveryConsumer},
		{streams.Deliveries, streams.DeliveryBulkConsumer},
	} {
		waitFor(ctx, t, c.consumer+" backlog back to zero", func() bool {
			ictx, icancel := context.WithTimeout(ctx, 2*time.Second)
			defer icancel()
			cons, err := js.Consumer(ictx, c.stream, c.consumer)
			if err != nil {
				return false
			}
			info, err := cons.Info(ictx)
			return err == nil && info.NumPending == 0 && info.NumAckPending == 0
		})
	}
}

// clusterAccount creates an account with two new_contact webhooks and returns the account id and
// each endpoint URL's signing secret.
func clusterAccount(ctx context.Context, t *testing.T, stack *devstack.Stack, urls ...string) (string, map[string]signing.Secret) {
	t.Helper()
	svc, err := devstack.Dial(devstack.Addr(stack.Ports().SubscriptionsGRPC), stack.ServiceToken)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	accounts := webhooksv1.NewAccountServiceClient(svc)
	acct, err := accounts.CreateAccount(ctx, &webhooksv1.CreateAccountRequest{Name: "Cluster Co"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := accounts.CreateApiKey(ctx, &webhooksv1.CreateApiKeyRequest{
		AccountId: acct.GetAccountId(), UserEmail: "a@cluster.example", Role: webhooksv1.Role_ROLE_ADMIN})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := devstack.Dial(devstack.Addr(stack.Ports().SubscriptionsGRPC), key.GetApiKey())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	hooks := webhooksv1.NewWebhookServiceClient(admin)
	secrets := map[string]signing.Secret{}
	before, err := stack.MinIndexed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range urls {
		wh, err := hooks.CreateWebhook(ctx, &webhooksv1.CreateWebhookRequest{Url: u, EventTypes: []string{event.NewContact}})
		if err != nil {
			t.Fatal(err)
		}
		if secrets[u], err = signing.ParseSecret(wh.GetSigningSecret()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stack.WaitIndexed(ctx, before+float64(len(urls))); err != nil {
		t.Fatal(err)
	}
	return acct.GetAccountId(), secrets
}

// delivered returns, for each contact whose new_contact reached rcv with a 2xx, the distinct
// webhook-ids it arrived under; every such request must carry a valid signature.
func delivered(t *testing.T, rcv *devstack.Receiver, secrets map[string]signing.Secret) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	for _, r := range rcv.Requests() {
		if r.Status/100 != 2 {
			continue
		}
		if err := signing.Verify(secrets[rcv.URL], r.Header, r.Body, r.At, 5*time.Minute); err != nil {
			t.Errorf("request with an invalid signature: %v", err)
			continue
		}
		var env event.Envelope
		var data struct {
			ContactID string `json:"contact_id"`
		}
		if err := json.Unmarshal(r.Body, &env); err != nil || json.Unmarshal(env.Data, &data) != nil {
			t.Errorf("undecodable body: %s", r.Body)
			continue
		}
		if out[data.ContactID] == nil {
			out[data.ContactID] = map[string]bool{}
		}
		out[data.ContactID][r.Header.Get("Webhook-Id")] = true
	}
	return out
}

// TestMain lets this test binary serve as the nodes of the NATS clusters its tests start, and
// removes the service binaries the tests built.
func TestMain(m *testing.M) {
	natsserver.RunNodeIfChild()
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}
