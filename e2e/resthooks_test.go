package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/customertext/webhooks/e2e/devstack"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
)

// rest calls the subscription service's public HTTP API with an account API key.
type rest struct {
	t    *testing.T
	base string
	key  string
}

func (r rest) call(ctx context.Context, method, path string, body any, want int, out any) {
	r.t.Helper()
	var in io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			r.t.Fatal(err)
		}
		in = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, in)
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	if resp.StatusCode != want {
		r.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			r.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// waitIndexed waits until every dispatcher's index holds exactly n enabled webhooks.
func waitIndexed(ctx context.Context, t *testing.T, stack *devstack.Stack, n float64) {
	t.Helper()
	waitFor(ctx, t, fmt.Sprintf("%v enabled webhooks in every dispatcher's index", n), func() bool {
		counts, err := stack.IndexedWebhooks(ctx)
		ok := err == nil && len(counts) > 0
		for _, v := range counts {
			ok = ok && v == n
		}
		return ok
	})
}

// firstNames returns the data.first_name of every new_contact request a receiver got.
func firstNames(t *testing.T, rs []devstack.Request) []string {
	t.Helper()
	var out []string
	for _, r := range rs {
		var body struct {
			Event string `json:"event"`
			Data  struct {
				FirstName string `json:"first_name"`
			} `json:"data"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("receiver body %s: %v", r.Body, err)
		}
		out = append(out, body.Data.FirstName)
	}
	return out
}

// TestRESTHooksAndRecovery drives the public HTTP API against the running stack: Zapier's REST
// hook sequence (subscribe, an event reaches the target, samples return it, unsubscribe, the
// next event reaches nothing) and recovery of what a disabled webhook missed.
func TestRESTHooksAndRecovery(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	stack := startStack(ctx, t, devstack.Config{})
	p := stack.Ports()

	svc, err := devstack.Dial(devstack.Addr(p.SubscriptionsGRPC), stack.ServiceToken)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	accounts := webhooksv1.NewAccountServiceClient(svc)
	acct, err := accounts.CreateAccount(ctx, &webhooksv1.CreateAccountRequest{Name: "Zap Co"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := accounts.CreateApiKey(ctx, &webhooksv1.CreateApiKeyRequest{
		AccountId: acct.GetAccountId(), UserEmail: "a@zap.example", Role: webhooksv1.Role_ROLE_ADMIN})
	if err != nil {
		t.Fatal(err)
	}
	api := rest{t: t, base: "http://" + devstack.Addr(p.SubscriptionsHTTP), key: key.GetApiKey()}
	contactsConn, err := devstack.Dial(devstack.Addr(p.ContactsGRPC), stack.ServiceToken)
	if err != nil {
		t.Fatal(err)
	}
	defer contactsConn.Close()
	contacts := contactsv1.NewContactServiceClient(contactsConn)
	phone := 1000
	newContact := func(name string) {
		t.Helper()
		phone++
		if _, err := contacts.CreateContact(ctx, &contactsv1.CreateContactRequest{AccountId: acct.GetAccountId(),
			Contact: &contactsv1.Contact{FirstName: name, Phone: fmt.Sprintf("+1555123%04d", phone)}}); err != nil {
			t.Fatalf("create contact %s: %v", name, err)
		}
	}
	receiver := func() *devstack.Receiver {
		r, err := devstack.StartReceiver("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	// control is subscribed throughout: once it has an event, the fan-out has planned that
	// event's jobs for every webhook, so another receiver's silence means something.
	control := receiver()
	api.call(ctx, "POST", "/v1/webhooks", map[string]any{"url": control.URL, "event_types": []string{"new_contact"}}, 201, nil)
	waitIndexed(ctx, t, stack, 1)
	waitControl := func(name string) {
		t.Helper()
		if _, err := control.WaitFor(ctx, func(r devstack.Request) bool {
			return len(firstNames(t, []devstack.Request{r})) == 1 && firstNames(t, []devstack.Request{r})[0] == name
		}); err != nil {
			t.Fatalf("control receiver never got %s: %v", name, err)
		}
	}

	t.Run("zapier", func(t *testing.T) {
		target := receiver()
		// Subscribe: what Zapier sends when a Zap is turned on.
		var sub struct {
			Webhook struct {
				ID      string `json:"id"`
				Enabled bool   `json:"enabled"`
			} `json:"webhook"`
		}
		api.call(ctx, "POST", "/v1/webhooks", map[string]any{"url": target.URL, "event_types": []string{"new_contact"}}, 201, &sub)
		if sub.Webhook.ID == "" || !sub.Webhook.Enabled {
			t.Fatalf("subscribe: got %+v, want an enabled webhook with an id", sub)
		}
		waitIndexed(ctx, t, stack, 2)

		newContact("Zelda")
		got, err := target.WaitFor(ctx, func(devstack.Request) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		if names := firstNames(t, []devstack.Request{got}); names[0] != "Zelda" {
			t.Fatalf("target got %v, want Zelda's new_contact", names)
		}

		// Perform list: the samples are that very event, in the body the target received.
		var samples []map[string]any
		api.call(ctx, "GET", "/v1/event-types/new_contact/samples", nil, 200, &samples)
		var received map[string]any
		if err := json.Unmarshal(got.Body, &received); err != nil {
			t.Fatal(err)
		}
		if len(samples) != 1 {
			t.Fatalf("samples: got %d, want the 1 real event", len(samples))
		}
		if diff := cmp.Diff(received, samples[0]); diff != "" {
			t.Errorf("sample differs from the delivered body (-delivered +sample):\n%s", diff)
		}

		// Unsubscribe: what Zapier sends when the Zap is turned off.
		api.call(ctx, "DELETE", "/v1/webhooks/"+sub.Webhook.ID, nil, 204, nil)
		waitIndexed(ctx, t, stack, 1)
		newContact("Yuri")
		waitControl("Yuri")
		if names := firstNames(t, target.Requests()); !cmp.Equal(names, []string{"Zelda"}) {
			t.Errorf("target got %v after unsubscribing, want only Zelda", names)
		}
	})

	t.Run("recover what a disabled webhook missed", func(t *testing.T) {
		target := receiver()
		var sub struct {
			Webhook struct {
				ID string `json:"id"`
			} `json:"webhook"`
		}
		api.call(ctx, "POST", "/v1/webhooks", map[string]any{"url": target.URL, "event_types": []string{"new_contact"}}, 201, &sub)
		id := sub.Webhook.ID
		waitIndexed(ctx, t, stack, 2)
		newContact("Before")
		if _, err := target.WaitFor(ctx, func(devstack.Request) bool { return true }); err != nil {
			t.Fatal(err)
		}

		since := time.Now()
		api.call(ctx, "POST", "/v1/webhooks/"+id+":disable", map[string]any{}, 200, nil)
		waitIndexed(ctx, t, stack, 1)
		missed := []string{"Missed1", "Missed2", "Missed3"}
		for _, n := range missed {
			newContact(n)
		}
		waitControl("Missed3")
		if n := len(target.Requests()); n != 1 {
			t.Fatalf("target got %d requests while disabled, want still 1", n)
		}
		api.call(ctx, "POST", "/v1/webhooks/"+id+":enable", map[string]any{}, 200, nil)
		waitIndexed(ctx, t, stack, 2)

		var rec struct {
			EventsScanned    string `json:"events_scanned"`
			DeliveriesQueued string `json:"deliveries_queued"`
		}
		api.call(ctx, "POST", "/v1/webhooks/"+id+":recover", map[string]any{"start_time": since.UTC().Format(time.RFC3339Nano)}, 200, &rec)
		// Yuri and Zelda of the subtest above came before since; the three missed ones after.
		if rec.EventsScanned != "3" || rec.DeliveriesQueued != "3" {
			t.Fatalf("recover: got %+v, want 3 scanned and 3 queued", rec)
		}
		waitFor(ctx, t, "the three missed events at the target", func() bool { return len(target.Requests()) >= 4 })
		// A later event flows through after the recovered ones: nothing else was queued.
		newContact("After")
		waitFor(ctx, t, "the event after the recovery", func() bool { return len(target.Requests()) >= 5 })
		names := firstNames(t, target.Requests())
		sort.Strings(names[1:4])
		if want := []string{"Before", "Missed1", "Missed2", "Missed3", "After"}; !cmp.Equal(names, want) {
			t.Errorf("target got %v, want %v: exactly the missed events, once each", names, want)
		}

		// Recovering again inside the dedupe window queues none of the three again; only After,
		// which came since and was never recovered (the fan-out delivered it), is queued.
		api.call(ctx, "POST", "/v1/webhooks/"+id+":recover", map[string]any{"start_time": since.UTC().Format(time.RFC3339Nano)}, 200, &rec)
		if rec.EventsScanned != "4" || rec.DeliveriesQueued != "1" {
			t.Errorf("second recover: got %+v, want 4 scanned and only After queued", rec)
		}
	})

	t.Run("make dev's curl examples", func(t *testing.T) {
		target := receiver()
		var sub struct {
			Webhook struct {
				ID string `json:"id"`
			} `json:"webhook"`
		}
		api.call(ctx, "POST", "/v1/webhooks", map[string]any{"url": target.URL, "event_types": []string{"new_contact"}}, 201, &sub)
		for _, ex := range devstack.CurlExamples(target.URL, sub.Webhook.ID) {
			var body any
			if ex.Body != "" {
				body = json.RawMessage(ex.Body)
			}
			api.call(ctx, ex.Method, ex.Path, body, ex.Status, nil)
		}
		if _, err := target.WaitFor(ctx, func(r devstack.Request) bool { return true }); err != nil {
			t.Errorf("the test event example reached nothing: %v", err)
		}
	})
}
