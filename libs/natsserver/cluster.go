package natsserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// nodeConfigEnv names the environment variable that turns a process into one cluster node: it
// holds the path of the node's nats-server configuration file. See RunNodeIfChild.
const nodeConfigEnv = "CT_NATSSERVER_NODE_CONFIG"

// RunNodeIfChild runs this process as a nats-server node and exits, when it was started as one by
// a Cluster; otherwise it returns at once. Call it first in TestMain (or main) of every binary that
// starts a Cluster: the cluster's nodes are that same binary run again, so a test can SIGKILL a
// node as an operator's machine would lose one, without building a separate nats-server.
func RunNodeIfChild() {
	path := os.Getenv(nodeConfigEnv)
	if path == "" {
		return
	}
	if err := runNode(path); err != nil {
		fmt.Fprintln(os.Stderr, "nats node:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runNode serves one node from its configuration file until SIGTERM or SIGINT (the server's own
// signal handling shuts it down cleanly).
func runNode(path string) error {
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		return fmt.Errorf("read node config: %w", err)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("create node: %w", err)
	}
	srv.ConfigureLogger()
	srv.Start()
	srv.WaitForShutdown()
	return nil
}

// ClusterOptions configure a Cluster.
type ClusterOptions struct {
	// Nodes in the cluster; default 3.
	Nodes int
	// Dir holds each node's configuration, log and JetStream storage (Dir/<node>/...). Required;
	// it survives node restarts, as a node's disk does.
	Dir string
	// Name of the cluster; default "customertext".
	Name string
}

// Cluster is a JetStream cluster of nats-server processes on loopback. Each node keeps its ports
// and storage across Kill and Start, so it comes back as the same peer.
type Cluster struct {
	name  string
	nodes []*Node
}

// Node is one server of a Cluster.
type Node struct {
	// Name is the node's server name, as JetStream reports leaders.
	Name string
	// ClientURL is the nats:// URL of this node alone.
	ClientURL string
	// MonitorURL is the node's HTTP monitoring endpoint (/jsz, /healthz, /varz).
	MonitorURL string

	config string
	log    string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartCluster writes each node's configuration and starts every node; it returns when each
// accepts client connections and JetStream has a meta leader. Stop it with Shutdown.
func StartCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("start nats cluster: dir is required")
	}
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Name == "" {
		opts.Name = "customertext"
	}
	ports, err := freePorts(3 * opts.Nodes)
	if err != nil {
		return nil, fmt.Errorf("start nats cluster: %w", err)
	}
	routes := make([]string, opts.Nodes)
	for i := range opts.Nodes {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3*i+1])
	}
	c := &Cluster{name: opts.Name}
	for i := range opts.Nodes {
		name := fmt.Sprintf("n%d", i+1)
		dir := filepath.Join(opts.Dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("start nats cluster: %w", err)
		}
		n := &Node{
			Name:       name,
			ClientURL:  fmt.Sprintf("nats://127.0.0.1:%d", ports[3*i]),
			MonitorURL: fmt.Sprintf("http://127.0.0.1:%d", ports[3*i+2]),
			config:     filepath.Join(dir, "nats.conf"),
			log:        filepath.Join(dir, "nats.log"),
		}
		conf := nodeConfig(name, opts.Name, filepath.Join(dir, "jetstream"), ports[3*i], ports[3*i+1], ports[3*i+2], routes)
		if err := os.WriteFile(n.config, []byte(conf), 0o644); err != nil {
			return nil, fmt.Errorf("start nats cluster: %w", err)
		}
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		if err := n.Start(); err != nil {
			c.Shutdown()
			return nil, fmt.Errorf("start nats cluster: %w", err)
		}
	}
	for _, n := range c.nodes {
		if err := n.WaitReady(ctx); err != nil {
			c.Shutdown()
			return nil, fmt.Errorf("start nats cluster: %w", err)
		}
	}
	if err := c.awaitFormed(ctx); err != nil {
		c.Shutdown()
		return nil, fmt.Errorf("start nats cluster: %w", err)
	}
	return c, nil
}

// awaitFormed waits until every node sees the same meta leader with every other peer current.
// Before that, the first JetStream API request of a client can go unanswered (seen as a stream
// create that hung until its deadline on a cluster that already had a meta leader).
func (c *Cluster) awaitFormed(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last string
	for {
		leaders := map[string]bool{}
		formed := true
		for _, n := range c.nodes {
			info, err := n.jsz(ctx)
			if err != nil || info.Meta == nil || info.Meta.Leader == "" {
				formed, last = false, fmt.Sprintf("%s: no meta leader (%v)", n.Name, err)
				break
			}
			leaders[info.Meta.Leader] = true
			if n.Name == info.Meta.Leader {
				current := 0
				for _, p := range info.Meta.Replicas {
					if p.Current && !p.Offline {
						current++
					}
				}
				if current != len(c.nodes)-1 {
					formed, last = false, fmt.Sprintf("leader %s: %d of %d peers current", n.Name, current, len(c.nodes)-1)
				}
			}
		}
		if formed && len(leaders) == 1 {
			return nil
		}
		if len(leaders) > 1 {
			last = fmt.Sprintf("nodes disagree on the meta leader: %v", leaders)
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("wait for the cluster to form: %w (last: %s)", err, last)
		}
	}
}

// nodeConfig is one node's nats-server configuration. max_payload matches the embedded server.
func nodeConfig(name, cluster, storeDir string, client, route, monitor int, routes []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %q\nlisten: \"127.0.0.1:%d\"\nhttp: \"127.0.0.1:%d\"\n", name, client, monitor)
	fmt.Fprintf(&b, "max_payload: %d\n", 1<<20)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n}\n", storeDir)
	fmt.Fprintf(&b, "cluster {\n  name: %q\n  listen: \"127.0.0.1:%d\"\n  routes: [\n", cluster, route)
	for _, r := range routes {
		fmt.Fprintf(&b, "    %q\n", r)
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

// freePorts reserves n distinct loopback ports by listening on port 0, then releases them for the
// nodes to bind. Another process could take one in between; on this machine's loopback that is
// rare enough for tests, and the node's start then fails loudly rather than silently.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// ClientURL is a comma-separated URL of every node, as clients of a cluster are configured.
func (c *Cluster) ClientURL() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = n.ClientURL
	}
	return strings.Join(urls, ",")
}

// Nodes returns the cluster's nodes in name order.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Node returns the node with the given server name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Shutdown stops every running node (SIGTERM, then SIGKILL after 10 s) and waits for them.
func (c *Cluster) Shutdown() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Go(func() { n.Stop() })
	}
	wg.Wait()
}

// MetaLeader waits until a running node reports a JetStream meta leader and returns its name.
func (c *Cluster) MetaLeader(ctx context.Context) (string, error) {
	var last error
	for {
		for _, n := range c.nodes {
			if !n.Running() {
				continue
			}
			info, err := n.jsz(ctx)
			if err != nil {
				last = err
				continue
			}
			if info.Meta != nil && info.Meta.Leader != "" && c.Node(info.Meta.Leader).Running() {
				return info.Meta.Leader, nil
			}
			last = errors.New("no meta leader yet")
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return "", fmt.Errorf("wait for meta leader: %w (last: %v)", err, last)
		}
	}
}

// Start starts the node's process (again, after Kill or Stop, with the same ports and storage).
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("start node %s: already running", n.Name)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("start node %s: %w", n.Name, err)
	}
	logf, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("start node %s: %w", n.Name, err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), nodeConfigEnv+"="+n.config)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a test's Ctrl-C reaches the test, which stops the nodes itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start node %s: %w", n.Name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // a killed node's exit status is the point, not an error
		logf.Close()
		close(done)
	}()
	n.cmd, n.done = cmd, done
	return nil
}

// Kill ends the node with SIGKILL, as a crashed machine would, and waits until it is gone.
func (n *Node) Kill() { n.signal(syscall.SIGKILL, 0) }

// Stop ends the node with SIGTERM (a clean shutdown), escalating to SIGKILL after 10 s.
func (n *Node) Stop() { n.signal(syscall.SIGTERM, 10*time.Second) }

func (n *Node) signal(sig syscall.Signal, grace time.Duration) {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd, n.done = nil, nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig) // it may have exited already; done tells
	if grace > 0 {
		select {
		case <-done:
			return
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	}
	<-done
}

// Running reports whether the node's process is running.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// WaitReady waits until the node answers its monitoring /healthz with JetStream healthy.
func (n *Node) WaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last error
	for {
		last = n.healthz(ctx)
		if last == nil {
			return nil
		}
		if !n.Running() {
			return fmt.Errorf("node %s exited (see %s): %w", n.Name, n.log, last)
		}
		if err := pause(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("node %s not ready: %w (last: %v)", n.Name, err, last)
		}
	}
}

func (n *Node) healthz(ctx context.Context) error {
	body, err := n.get(ctx, "/healthz?js-enabled-only=true")
	if err != nil {
		return err
	}
	if !strings.Contains(string(body), `"ok"`) {
		return fmt.Errorf("healthz: %s", body)
	}
	return nil
}

// jsz reads the node's JetStream monitoring page.
func (n *Node) jsz(ctx context.Context) (*server.JSInfo, error) {
	body, err := n.get(ctx, "/jsz")
	if err != nil {
		return nil, err
	}
	var info server.JSInfo
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("decode /jsz of %s: %w", n.Name, err)
	}
	return &info, nil
}

func (n *Node) get(ctx context.Context, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.MonitorURL+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s of %s: %w", path, n.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("get %s of %s: %w", path, n.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("get %s of %s: %s", path, n.Name, strconv.Quote(string(body)))
	}
	return body, nil
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
