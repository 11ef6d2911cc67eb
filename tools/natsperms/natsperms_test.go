package natsperms_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"sigs.k8s.io/yaml"
)

var passwordVar = regexp.MustCompile(`^<< \$([A-Z]+)_PASSWORD >>$`)

// startServer runs nats-server with the accounts and users of the chart values, each password
// "pw-<user>".
func startServer(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../k8s/nats/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Config struct {
			Merge map[string]any `json:"merge"`
		} `json:"config"`
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	conf := values.Config.Merge
	var fill func(v any) any
	fill = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = fill(e)
			}
		case []any:
			for i, e := range x {
				x[i] = fill(e)
			}
		case string:
			if m := passwordVar.FindStringSubmatch(x); m != nil {
				return "pw-" + strings.ToLower(m[1])
			}
		}
		return v
	}
	fill(conf)
	dir := t.TempDir()
	conf["listen"] = "127.0.0.1:-1"
	conf["jetstream"] = map[string]any{"store_dir": filepath.Join(dir, "js")}
	var raw bytes.Buffer
	enc := json.NewEncoder(&raw)
	enc.SetEscapeHTML(false) // the NATS config parser knows no \u escapes
	if err := enc.Encode(conf); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(file, raw.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("nats config from values.yaml: %v", err)
	}
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return srv.ClientURL()
}

// client is one service's connection, as its own user.
type client struct {
	nc *nats.Conn
	js jetstream.JetStream
}

func connect(t *testing.T, url, user string) *client {
	t.Helper()
	c := &client{}
	// Permission violations surface as failed calls below; the handler keeps them out of stderr.
	nc, err := nats.Connect(url, nats.UserInfo(user, "pw-"+user), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c.nc, c.js = nc, js
	return c
}

// The streams as libs/streams declares them (names, subjects, retention): enough for the server
// to route every API call the services make.
var streamConfigs = []jetstream.StreamConfig{
	{Name: "EVENTS", Subjects: []string{"events.>"}, Storage: jetstream.FileStorage, Duplicates: 10 * time.Minute},
	{Name: "DELIVERIES", Subjects: []string{"deliveries.>"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, AllowMsgSchedules: true},
	{Name: "ATTEMPTS", Subjects: []string{"attempts.>"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage},
}

// ensure is what every service does at start (libs/streams.Ensure): info, then create.
func ensure(ctx context.Context, c *client) error {
	if _, err := c.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("account info: %w", err)
	}
	for _, sc := range streamConfigs {
		if _, err := c.js.Stream(ctx, sc.Name); err == nil {
			continue
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream info %s: %w", sc.Name, err)
		}
		if _, err := c.js.CreateStream(ctx, sc); err != nil {
			return fmt.Errorf("create %s: %w", sc.Name, err)
		}
	}
	return nil
}

func fetchOne(ctx context.Context, t *testing.T, cons jetstream.Consumer, what string) {
	t.Helper()
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(3*time.Second))
	if err != nil {
		t.Fatalf("%s: fetch: %v", what, err)
	}
	n := 0
	for m := range batch.Messages() {
		n++
		if err := m.DoubleAck(ctx); err != nil {
			t.Errorf("%s: ack: %v", what, err)
		}
	}
	if batch.Error() != nil || n != 1 {
		t.Fatalf("%s: fetched %d messages (%v), want 1", what, n, batch.Error())
	}
}

// Each service does, as its own user, what its code does on NATS (docs/architecture.md, "NATS");
// and a service cannot do what belongs to another.
func TestEveryServiceCanDoItsJobAndNoMore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := startServer(t)
	users := map[string]*client{}
	for _, u := range []string{"contacts", "messaging", "campaigns", "subscriptions", "dispatcher"} {
		users[u] = connect(t, url, u)
		if err := ensure(ctx, users[u]); err != nil {
			t.Fatalf("%s: ensure streams: %v", u, err)
		}
	}
	d, s := users["dispatcher"], users["subscriptions"]

	// Dispatcher: its three durable consumers, peers' heartbeats, config change notes.
	mk := func(stream, name, filter string) jetstream.Consumer {
		cons, err := d.js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
			Durable: name, FilterSubject: filter, AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 10})
		if err != nil {
			t.Fatalf("dispatcher: create consumer %s: %v", name, err)
		}
		return cons
	}
	fanout := mk("EVENTS", "fanout", "")
	workers := mk("DELIVERIES", "delivery-workers", "deliveries.ready.default.>")
	bulk := mk("DELIVERIES", "delivery-workers-bulk", "deliveries.ready.bulk.>")
	notes, err := d.nc.SubscribeSync("webhooks.changed.*")
	if err != nil {
		t.Fatal(err)
	}
	peers, err := d.nc.SubscribeSync("dispatcher.peers")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// Relays: each publishes its own event types (deduplicated by id) and reads the fan-out's
	// backlog to pace bulk rows.
	for user, typ := range map[string]string{"contacts": "new_contact", "messaging": "inbound_message", "campaigns": "campaign_sent"} {
		c := users[user]
		if _, err := c.js.Publish(ctx, "events.acc_1."+typ, []byte("{}"), jetstream.WithMsgID("evt_"+user)); err != nil {
			t.Errorf("%s: publish %s: %v", user, typ, err)
		}
		if _, err := c.js.Consumer(ctx, "EVENTS", "fanout"); err != nil {
			t.Errorf("%s: fan-out consumer info: %v", user, err)
		}
	}
	for range 3 {
		fetchOne(ctx, t, fanout, "dispatcher fan-out")
	}

	// Dispatcher: jobs on both lanes, a retry schedule, attempt records, backlog polling.
	for _, subj := range []string{"deliveries.ready.default.del_1", "deliveries.ready.bulk.del_2"} {
		if _, err := d.js.Publish(ctx, subj, []byte("job")); err != nil {
			t.Errorf("dispatcher: publish %s: %v", subj, err)
		}
	}
	fetchOne(ctx, t, workers, "dispatcher default lane")
	fetchOne(ctx, t, bulk, "dispatcher bulk lane")
	sched := nats.NewMsg("deliveries.sched.del_3")
	sched.Header.Set("Nats-Schedule", "@at "+time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano))
	sched.Header.Set("Nats-Schedule-Target", "deliveries.ready.default.del_3")
	sched.Header.Set(jetstream.MsgIDHeader, "del_3.2")
	if _, err := d.js.PublishMsg(ctx, sched); err != nil {
		t.Errorf("dispatcher: publish a schedule: %v", err)
	}
	if _, err := d.js.Publish(ctx, "attempts.batch", []byte("batch")); err != nil {
		t.Errorf("dispatcher: publish attempts: %v", err)
	}
	if err := d.nc.Publish("dispatcher.peers", []byte("d1")); err != nil {
		t.Fatal(err)
	}
	if _, err := peers.NextMsg(3 * time.Second); err != nil {
		t.Errorf("dispatcher: heartbeat not received: %v", err)
	}
	for _, name := range []string{"fanout", "delivery-workers", "delivery-workers-bulk"} {
		stream := "DELIVERIES"
		if name == "fanout" {
			stream = "EVENTS"
		}
		if _, err := d.js.Consumer(ctx, stream, name); err != nil {
			t.Errorf("dispatcher: backlog of %s: %v", name, err)
		}
	}

	// Subscriptions: the attempt-log consumer, config change notes, redeliveries.
	log, err := s.js.CreateOrUpdateConsumer(ctx, "ATTEMPTS", jetstream.ConsumerConfig{Durable: "attempt-log", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("subscriptions: create attempt-log: %v", err)
	}
	fetchOne(ctx, t, log, "subscriptions attempt log")
	if err := s.nc.Publish("webhooks.changed.wh_1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := notes.NextMsg(3 * time.Second); err != nil {
		t.Errorf("dispatcher: config change note not received: %v", err)
	}
	if _, err := s.js.Publish(ctx, "deliveries.ready.default.del_4", []byte("redeliver"), jetstream.WithMsgID("del_4.r1")); err != nil {
		t.Errorf("subscriptions: redeliver: %v", err)
	}

	// What each service must not do.
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 500*time.Millisecond) }
	forbidden := []struct {
		user, what string
		do         func(context.Context, *client) error
	}{
		{"contacts", "publish a job", func(ctx context.Context, c *client) error {
			_, err := c.js.Publish(ctx, "deliveries.ready.default.x", nil)
			return err
		}},
		{"contacts", "publish another service's event type", func(ctx context.Context, c *client) error {
			_, err := c.js.Publish(ctx, "events.acc_1.campaign_sent", nil)
			return err
		}},
		{"campaigns", "consume the fan-out", func(ctx context.Context, c *client) error {
			_, err := c.js.CreateOrUpdateConsumer(ctx, "EVENTS", jetstream.ConsumerConfig{Durable: "fanout"})
			return err
		}},
		{"dispatcher", "publish an event", func(ctx context.Context, c *client) error {
			_, err := c.js.Publish(ctx, "events.acc_1.new_contact", nil)
			return err
		}},
		{"dispatcher", "delete a stream", func(ctx context.Context, c *client) error {
			return c.js.DeleteStream(ctx, "EVENTS")
		}},
		{"subscriptions", "read the default lane", func(ctx context.Context, c *client) error {
			cons, err := c.js.Consumer(ctx, "DELIVERIES", "delivery-workers")
			if err != nil {
				return err
			}
			_, err = cons.Fetch(1, jetstream.FetchMaxWait(300*time.Millisecond))
			return err
		}},
	}
	for _, f := range forbidden {
		fctx, fcancel := short()
		err := f.do(fctx, users[f.user])
		fcancel()
		if err == nil {
			t.Errorf("%s may %s", f.user, f.what)
		}
	}
	if n, err := d.js.Stream(ctx, "EVENTS"); err != nil || n == nil {
		t.Errorf("EVENTS gone after a forbidden delete: %v", err)
	}
}
