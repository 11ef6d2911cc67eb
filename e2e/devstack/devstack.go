// Package devstack runs the whole platform on one machine: an embedded NATS JetStream server and
// every service as a real child process, configured through the same environment variables as
// in production. `make dev` and the end-to-end tests both use it.
package devstack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/customertext/webhooks/libs/loginlink"
	"github.com/customertext/webhooks/libs/natsserver"
)

// Services in start order: subscriptions first (dispatchers load their index from it), contacts
// before messaging and campaigns (they call it); the console last (its /readyz needs
// subscriptions).
func Services() []string {
	return []string{"subscriptions", "contacts", "messaging", "campaigns", "dispatcher", "console"}
}

// Ports of one stack; zero fields are picked free at random.
type Ports struct {
	NATS                                       int
	ContactsGRPC, MessagingGRPC, CampaignsGRPC int
	SubscriptionsGRPC                          int
	ContactsAdmin, MessagingAdmin              int
	CampaignsAdmin, SubscriptionsAdmin         int
	DispatcherAdmin, MessagingHTTP             int
	// SubscriptionsHTTP is the public HTTP/JSON API.
	SubscriptionsHTTP int
	// ConsoleHTTP serves the web console, ConsoleAdmin its metrics and health.
	ConsoleHTTP, ConsoleAdmin int
}

// DevPorts are the fixed ports of `make dev` (docs/architecture.md).
func DevPorts() Ports {
	return Ports{
		NATS: 14222, ContactsGRPC: 7101, MessagingGRPC: 7102, CampaignsGRPC: 7103, SubscriptionsGRPC: 7104,
		ContactsAdmin: 7201, MessagingAdmin: 7202, CampaignsAdmin: 7203, SubscriptionsAdmin: 7204,
		DispatcherAdmin: 7205, MessagingHTTP: 7302, SubscriptionsHTTP: 7304,
		ConsoleHTTP: 7305, ConsoleAdmin: 7206,
	}
}

// Config describes a stack.
type Config struct {
	// BinDir holds the service binaries (make build puts them in .bin/).
	BinDir string
	// DataDir holds NATS storage and the services' logs.
	DataDir string
	// DatabaseURL is the PostgreSQL database every service uses (each in its own schema).
	DatabaseURL string
	Ports       Ports
	// Dispatchers is how many dispatcher processes to run (default 1).
	Dispatchers int
	// ExtraEnv is appended to every service's environment (e.g. tuning for tests).
	ExtraEnv []string
	// NATSNodes is 1 (the default) for one embedded nats-server, or the size of a JetStream
	// cluster of nats-server processes on random loopback ports with streams replicated on 3 nodes
	// (R3), the production shape. A binary that runs a cluster must call
	// natsserver.RunNodeIfChild first thing in main or TestMain.
	NATSNodes int
	// NATSURL, when set, is an already running NATS server (or cluster: comma-separated URLs)
	// the services use instead of starting one; the chaos suite runs nats-server as its own
	// process so that it can be killed.
	NATSURL string
}

// Stack is a running platform.
type Stack struct {
	cfg          Config
	nats         *natsserver.Server  // one embedded server, or
	cluster      *natsserver.Cluster // a cluster (NATSNodes > 1)
	natsURL      string
	ServiceToken string
	SecretsKey   string
	// LoginLinkKey signs the console's login links (LoginLink).
	LoginLinkKey []byte

	mu    sync.Mutex
	procs map[string]*Proc
	// extra are helper processes (Prometheus), stopped before the services.
	extra []*Proc
}

// Proc is one service process.
type Proc struct {
	Name    string
	LogPath string
	// AdminAddr serves /metrics, /healthz and /readyz.
	AdminAddr string
	cmd       *exec.Cmd
	done      chan struct{}
	err       error
}

// Start launches NATS and every service and waits until each reports ready.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	if cfg.Dispatchers == 0 {
		cfg.Dispatchers = 1
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := fillPorts(&cfg.Ports); err != nil {
		return nil, err
	}
	s := &Stack{cfg: cfg, ServiceToken: randomToken(), SecretsKey: "dev1:" + randomKey(), procs: map[string]*Proc{}}
	s.LoginLinkKey = make([]byte, 32)
	_, _ = rand.Read(s.LoginLinkKey)
	if err := s.startNATS(ctx); err != nil {
		return nil, err
	}
	for _, name := range Services() {
		n := 1
		if name == "dispatcher" {
			n = cfg.Dispatchers
		}
		for i := range n {
			if err := s.StartService(ctx, name, i); err != nil {
				s.Stop()
				return nil, err
			}
		}
	}
	return s, nil
}

func (s *Stack) startNATS(ctx context.Context) error {
	if s.cfg.NATSURL != "" {
		s.natsURL = s.cfg.NATSURL
		return nil
	}
	dir := filepath.Join(s.cfg.DataDir, "nats")
	if s.cfg.NATSNodes <= 1 {
		ns, err := natsserver.Start(natsserver.Options{Port: s.cfg.Ports.NATS, StoreDir: dir})
		if err != nil {
			return fmt.Errorf("start embedded nats-server on port %d: %w", s.cfg.Ports.NATS, err)
		}
		s.nats, s.natsURL = ns, ns.ClientURL()
		return nil
	}
	c, err := natsserver.StartCluster(ctx, natsserver.ClusterOptions{Nodes: s.cfg.NATSNodes, Dir: dir})
	if err != nil {
		return err
	}
	s.cluster, s.natsURL = c, c.ClientURL()
	return nil
}

// NATSURL is the client URL of the NATS server, or of every node of the cluster.
func (s *Stack) NATSURL() string { return s.natsURL }

// Cluster is the NATS cluster when the stack runs on one (NATSNodes > 1), else nil.
func (s *Stack) Cluster() *natsserver.Cluster { return s.cluster }

func (s *Stack) stopNATS() {
	if s.cluster != nil {
		s.cluster.Shutdown()
		return
	}
	if s.nats != nil {
		s.nats.Shutdown()
	}
}

// Addr returns 127.0.0.1:port.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// Ports returns the ports in use.
func (s *Stack) Ports() Ports { return s.cfg.Ports }

func (s *Stack) env(name string, replica int) (admin int, env []string) {
	p := s.cfg.Ports
	env = append(os.Environ(),
		"NATS_URL="+s.natsURL,
		"DATABASE_URL="+s.cfg.DatabaseURL,
		"SERVICE_TOKEN="+s.ServiceToken,
		"LOG_FORMAT=text",
		"CONTACTS_ADDR="+Addr(p.ContactsGRPC),
		"SUBSCRIPTIONS_ADDR="+Addr(p.SubscriptionsGRPC),
		"SECRETS_KEYS="+s.SecretsKey,
	)
	switch name {
	case "subscriptions":
		admin = p.SubscriptionsAdmin
		env = append(env, "GRPC_ADDR="+Addr(p.SubscriptionsGRPC), "HTTP_ADDR="+Addr(p.SubscriptionsHTTP),
			"ALLOW_INSECURE_HTTP=true", "SSRF_ALLOW=127.0.0.0/8,::1")
	case "contacts":
		admin = p.ContactsAdmin
		env = append(env, "GRPC_ADDR="+Addr(p.ContactsGRPC))
	case "messaging":
		admin = p.MessagingAdmin
		env = append(env, "GRPC_ADDR="+Addr(p.MessagingGRPC), "HTTP_ADDR="+Addr(p.MessagingHTTP),
			"PUBLIC_BASE_URL=http://"+Addr(p.MessagingHTTP))
	case "campaigns":
		admin = p.CampaignsAdmin
		env = append(env, "GRPC_ADDR="+Addr(p.CampaignsGRPC))
	case "console":
		admin = p.ConsoleAdmin
		env = append(env, "HTTP_ADDR="+Addr(p.ConsoleHTTP), "DEVELOPMENT=true",
			"LOGIN_LINK_KEY="+base64.StdEncoding.EncodeToString(s.LoginLinkKey))
	case "dispatcher":
		admin = p.DispatcherAdmin
		if replica > 0 {
			port, _ := freePort()
			admin = port
		}
		env = append(env, "SSRF_ALLOW=127.0.0.0/8,::1")
		if s.cluster != nil {
			env = append(env, "STREAM_REPLICAS=3")
		}
	}
	env = append(env, "ADMIN_ADDR="+Addr(admin))
	env = append(env, s.cfg.ExtraEnv...)
	return admin, env
}

// StartService starts one process of a service (replica numbers other dispatcher processes) and
// waits for its /readyz.
func (s *Stack) StartService(ctx context.Context, name string, replica int) error {
	admin, env := s.env(name, replica)
	key := procKey(name, replica)
	logPath := filepath.Join(s.cfg.DataDir, "logs", key+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log of %s: %w", key, err)
	}
	cmd := exec.Command(filepath.Join(s.cfg.BinDir, name))
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Children die with the runner (Linux): a killed `make dev` or test leaves no service behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", key, err)
	}
	p := &Proc{Name: key, LogPath: logPath, AdminAddr: Addr(admin), cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs[key] = p
	s.mu.Unlock()
	if err := waitReady(ctx, p, "http://"+Addr(admin)+"/readyz", 60*time.Second); err != nil {
		return fmt.Errorf("%s did not become ready (log: %s): %w", key, logPath, err)
	}
	return nil
}

func procKey(name string, replica int) string {
	if replica == 0 {
		return name
	}
	return fmt.Sprintf("%s-%d", name, replica)
}

// Proc returns a running process by key ("dispatcher", "dispatcher-1", ...).
func (s *Stack) Proc(key string) *Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.procs[key]
}

// Procs returns every process started so far (the latest one per key), running or not.
func (s *Stack) Procs() []*Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Proc, 0, len(s.procs))
	for _, p := range s.procs {
		out = append(out, p)
	}
	return out
}

// Dispatchers returns the running dispatcher processes.
func (s *Stack) Dispatchers() []*Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Proc
	for _, p := range s.procs {
		if p.cmd.Path == filepath.Join(s.cfg.BinDir, "dispatcher") && !p.Exited() {
			out = append(out, p)
		}
	}
	return out
}

// Kill sends SIGKILL to a process and waits for it to die.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Terminate sends SIGTERM and waits up to grace before killing.
func (p *Proc) Terminate(grace time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("%s did not stop within %s after SIGTERM", p.Name, grace)
	}
}

// ExitErr is how an exited process ended (nil for a clean exit or while it runs).
func (p *Proc) ExitErr() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop terminates every service (reverse start order) and the NATS server.
func (s *Stack) Stop() []error {
	s.mu.Lock()
	procs := append([]*Proc(nil), s.extra...)
	s.extra = nil
	names := Services()
	for i := len(names) - 1; i >= 0; i-- {
		for k, p := range s.procs {
			if p.cmd.Path == filepath.Join(s.cfg.BinDir, names[i]) {
				procs = append(procs, p)
				delete(s.procs, k)
			}
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, p := range procs {
		if p.Exited() {
			continue
		}
		if err := p.Terminate(30 * time.Second); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", p.Name, err))
		}
	}
	s.stopNATS()
	return errs
}

func waitReady(ctx context.Context, p *Proc, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		if p.Exited() {
			return fmt.Errorf("exited: %v", p.err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("timed out waiting for /readyz")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func fillPorts(p *Ports) error {
	for _, f := range []*int{&p.NATS, &p.ContactsGRPC, &p.MessagingGRPC, &p.CampaignsGRPC, &p.SubscriptionsGRPC,
		&p.ContactsAdmin, &p.MessagingAdmin, &p.CampaignsAdmin, &p.SubscriptionsAdmin, &p.DispatcherAdmin, &p.MessagingHTTP,
		&p.SubscriptionsHTTP, &p.ConsoleHTTP, &p.ConsoleAdmin} {
		if *f != 0 {
			continue
		}
		port, err := freePort()
		if err != nil {
			return err
		}
		*f = port
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "svc_" + base64.RawURLEncoding.EncodeToString(b)
}

func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// ConsoleURL is the web console's address.
func (s *Stack) ConsoleURL() string { return "http://" + Addr(s.cfg.Ports.ConsoleHTTP) }

// LoginLink mints a console login link for an account user, as the platform's backend does.
func (s *Stack) LoginLink(accountID, email, role string, ttl time.Duration) (string, error) {
	tok, err := loginlink.Sign(s.LoginLinkKey, accountID, email, role, ttl, time.Now())
	if err != nil {
		return "", err
	}
	return s.ConsoleURL() + "/login?token=" + url.QueryEscape(tok), nil
}

// FreshDatabase drops the named database on the server of baseURL if it exists, creates it
// empty and returns its URL. Each `make dev` and `make bench` run starts from a clean platform:
// NATS storage and the secrets key are new every run too.
func FreshDatabase(ctx context.Context, baseURL, name string) (string, error) {
	conn, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("drop database %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return "", fmt.Errorf("parse database url: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}
