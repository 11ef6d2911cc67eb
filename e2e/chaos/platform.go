// Package chaos is the harness of `make chaos`: the whole platform as real processes (every
// service from its binary, nats-server as its own process or cluster, PostgreSQL behind a TCP
// proxy that can be cut), a ledger receiver that verifies every signature and records
// webhook-ids, and producers that create contacts through the contacts gRPC API. Scenarios
// (e2e/cmd/chaos) break something under load and then check the ledger: every event delivered,
// duplicates only with the same webhook-id.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"

	"github.com/customertext/webhooks/e2e/devstack"
	"github.com/customertext/webhooks/libs/event"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
)

// ServiceEnv makes the services fast enough to break and heal within a chaos run: a retry
// schedule of seconds (8 attempts over about two minutes, like production's count), short
// delivery timeouts and ack waits (a killed dispatcher's jobs come back after 5 s), circuits
// that probe after a second.
var ServiceEnv = []string{
	"RETRY_SCHEDULE=0s,1s,2s,4s,8s,15s,30s,60s",
	"DELIVERY_TIMEOUT=2s",
	"ACK_WAIT=5s",
	"CIRCUIT_OPEN_FOR=1s",
	"RESYNC_INTERVAL=5s",
	"LOG_LEVEL=info",
}

// Config describes one platform.
type Config struct {
	// Name names the run's database (chaos_<name>) and data folder.
	Name string
	// BinDir holds the service binaries and nats-server.
	BinDir string
	// DataDir is the parent of the run's data folder (NATS storage and every log).
	DataDir string
	// DatabaseURL is the PostgreSQL server the services reach through the proxy.
	DatabaseURL string
	// NATSNodes is 1 for a single nats-server (the real binary from BinDir), 3 for a JetStream
	// cluster (streams then get 3 replicas; see Cluster).
	NATSNodes int
	// Dispatchers is the number of dispatcher processes (default 2).
	Dispatchers int
	// Env is added to every service's environment after ServiceEnv.
	Env []string
}

// Platform is a running platform with its harness.
type Platform struct {
	Stack  *devstack.Stack
	NATS   Broker
	PG     *Proxy
	Ledger *Ledger
	Dir    string

	nc       *nats.Conn
	js       jetstream.JetStream
	svc      *grpc.ClientConn
	Producer *Producer
}

// Start brings up NATS, the proxy, the ledger and every service on a fresh database.
func Start(ctx context.Context, cfg Config) (_ *Platform, err error) {
	if cfg.Dispatchers == 0 {
		cfg.Dispatchers = 2
	}
	if cfg.NATSNodes == 0 {
		cfg.NATSNodes = 1
	}
	p := &Platform{Dir: filepath.Join(cfg.DataDir, cfg.Name)}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	dbURL, err := devstack.FreshDatabase(ctx, cfg.DatabaseURL, "chaos_"+cfg.Name)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	target := u.Host
	if target == "" {
		return nil, errors.New("DATABASE_URL must name a TCP host:port for the proxy to reach")
	}
	if _, _, err := net.SplitHostPort(target); err != nil {
		target = net.JoinHostPort(target, "5432")
	}
	if p.PG, err = StartProxy(target); err != nil {
		return nil, err
	}
	u.Host = p.PG.Addr()
	if p.NATS, err = startBroker(ctx, cfg, p.Dir); err != nil {
		return nil, err
	}
	if p.nc, err = nats.Connect(p.NATS.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond)); err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	if p.js, err = jetstream.New(p.nc); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if p.Ledger, err = StartLedger(); err != nil {
		return nil, err
	}
	env := append([]string{}, ServiceEnv...)
	if cfg.NATSNodes > 1 {
		env = append(env, fmt.Sprintf("STREAM_REPLICAS=%d", min(cfg.NATSNodes, 3)))
	}
	env = append(env, cfg.Env...)
	if p.Stack, err = devstack.Start(ctx, devstack.Config{BinDir: cfg.BinDir, DataDir: p.Dir, DatabaseURL: u.String(),
		Dispatchers: cfg.Dispatchers, ExtraEnv: env, NATSURL: p.NATS.URL()}); err != nil {
		return nil, fmt.Errorf("start services (logs in %s): %w", filepath.Join(p.Dir, "logs"), err)
	}
	if p.svc, err = devstack.Dial(devstack.Addr(p.Stack.Ports().SubscriptionsGRPC), p.Stack.ServiceToken); err != nil {
		return nil, err
	}
	if p.Producer, err = NewProducer(devstack.Addr(p.Stack.Ports().ContactsGRPC), p.Stack.ServiceToken); err != nil {
		return nil, err
	}
	return p, nil
}

func startBroker(ctx context.Context, cfg Config, dir string) (Broker, error) {
	if cfg.NATSNodes > 1 {
		c, err := StartCluster(ctx, filepath.Join(dir, "nats"), cfg.NATSNodes)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	n, err := StartNATS(ctx, NATSConfig{Bin: filepath.Join(cfg.BinDir, "nats-server"), Dir: dir})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// Close stops everything; the data folder stays for inspection.
func (p *Platform) Close() {
	if p.Producer != nil {
		p.Producer.Close()
	}
	if p.svc != nil {
		p.svc.Close()
	}
	if p.nc != nil {
		p.nc.Close()
	}
	if p.Stack != nil {
		p.Stack.Stop()
	}
	if p.NATS != nil {
		p.NATS.Stop()
	}
	if p.PG != nil {
		p.PG.Stop()
	}
	if p.Ledger != nil {
		p.Ledger.Close()
	}
}

// JetStream is the harness's own client (poison publishing, consumer inspection).
func (p *Platform) JetStream() jetstream.JetStream { return p.js }

// Account is a tenant with an admin key and its webhooks.
type Account struct {
	ID       string
	Hooks    webhooksv1.WebhookServiceClient
	Webhooks []*Webhook
	conn     *grpc.ClientConn
}

// Webhook is a registered webhook and the ledger endpoint it points at.
type Webhook struct {
	ID       string
	Endpoint *Endpoint
	// Expected: every event of its account produced while it exists must reach it.
	Expected bool
}

// NewAccount creates an account and an admin API key.
func (p *Platform) NewAccount(ctx context.Context, name string) (*Account, error) {
	accounts := webhooksv1.NewAccountServiceClient(p.svc)
	acct, err := accounts.CreateAccount(ctx, &webhooksv1.CreateAccountRequest{Name: name})
	if err != nil {
		return nil, fmt.Errorf("create account: %w", err)
	}
	key, err := accounts.CreateApiKey(ctx, &webhooksv1.CreateApiKeyRequest{AccountId: acct.GetAccountId(),
		UserEmail: "admin@" + name + ".example", Role: webhooksv1.Role_ROLE_ADMIN})
	if err != nil {
		return nil, fmt.Errorf("create admin key: %w", err)
	}
	conn, err := devstack.Dial(devstack.Addr(p.Stack.Ports().SubscriptionsGRPC), key.GetApiKey())
	if err != nil {
		return nil, err
	}
	a := &Account{ID: acct.GetAccountId(), Hooks: webhooksv1.NewWebhookServiceClient(conn), conn: conn}
	p.Producer.addAccount(a)
	return a, nil
}

// AddWebhook registers a webhook for new_contact and contact_updated pointing at the ledger endpoint called name and waits
// until every dispatcher has it.
func (p *Platform) AddWebhook(ctx context.Context, a *Account, name string) (*Webhook, error) {
	before, err := p.Stack.MinIndexed(ctx)
	if err != nil {
		return nil, err
	}
	e := p.Ledger.Endpoint(name)
	resp, err := a.Hooks.CreateWebhook(ctx, &webhooksv1.CreateWebhookRequest{Url: e.URL, EventTypes: []string{event.NewContact, event.ContactUpdated},
		Description: "chaos " + name})
	if err != nil {
		return nil, fmt.Errorf("create webhook %s: %w", name, err)
	}
	if err := e.SetSecret(resp.GetSigningSecret()); err != nil {
		return nil, err
	}
	w := &Webhook{ID: resp.GetWebhook().GetId(), Endpoint: e, Expected: true}
	a.Webhooks = append(a.Webhooks, w)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Stack.WaitIndexed(wctx, before+1); err != nil {
		return nil, err
	}
	return w, nil
}
