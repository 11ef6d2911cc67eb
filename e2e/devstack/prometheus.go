package devstack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// PrometheusPort is where `make dev` serves Prometheus (next to the other fixed dev ports).
const PrometheusPort = 7390

// PrometheusConfig names the dev scrape config and the rules (deploy/prometheus) that a
// Prometheus of the stack loads.
type PrometheusConfig struct {
	// Binary is the prometheus executable (Debian's package: /usr/bin/prometheus, or unpacked
	// into .bin/ by scripts/install-prometheus.sh).
	Binary string
	// ConfigFile is deploy/prometheus/prometheus.yml; its rule files are read from its folder.
	ConfigFile string
	// Addr is the listen address (host:port) of its web UI and API.
	Addr string
}

// FindPrometheus returns the prometheus binary in binDir or on PATH, or "" when there is none.
func FindPrometheus(binDir string) string {
	if p := filepath.Join(binDir, "prometheus"); isExecutable(p) {
		return p
	}
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	return ""
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// StartPrometheus runs Prometheus with the dev scrape config and the alerting and recording rules,
// pointed at this stack's admin ports (the config names the fixed dev ports; a stack on other
// ports gets a copy with its own), and waits until it is ready. It stops with the stack.
func (s *Stack) StartPrometheus(ctx context.Context, cfg PrometheusConfig) (*Proc, error) {
	dir := filepath.Join(s.cfg.DataDir, "prometheus")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, fmt.Errorf("create prometheus dir: %w", err)
	}
	b, err := os.ReadFile(cfg.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("read prometheus config: %w", err)
	}
	conf := string(b)
	dev, p := DevPorts(), s.cfg.Ports
	for _, port := range [][2]int{{dev.ContactsAdmin, p.ContactsAdmin}, {dev.MessagingAdmin, p.MessagingAdmin},
		{dev.CampaignsAdmin, p.CampaignsAdmin}, {dev.SubscriptionsAdmin, p.SubscriptionsAdmin},
		{dev.DispatcherAdmin, p.DispatcherAdmin}} {
		conf = strings.ReplaceAll(conf, `"`+Addr(port[0])+`"`, `"`+Addr(port[1])+`"`)
	}
	// Rule files are relative to the config: load them from the repository's folder.
	conf = strings.ReplaceAll(conf, "  - alerts.yml", "  - "+filepath.Join(filepath.Dir(absPath(cfg.ConfigFile)), "alerts.yml"))
	confPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("write prometheus config: %w", err)
	}
	logPath := filepath.Join(s.cfg.DataDir, "logs", "prometheus.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open prometheus log: %w", err)
	}
	cmd := exec.Command(cfg.Binary, "--config.file="+confPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+cfg.Addr, "--storage.tsdb.retention.time=1d")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start prometheus: %w", err)
	}
	proc := &Proc{Name: "prometheus", LogPath: logPath, AdminAddr: cfg.Addr, cmd: cmd, done: make(chan struct{})}
	go func() {
		proc.err = cmd.Wait()
		logFile.Close()
		close(proc.done)
	}()
	s.mu.Lock()
	s.extra = append(s.extra, proc)
	s.mu.Unlock()
	if err := waitReady(ctx, proc, "http://"+cfg.Addr+"/-/ready", 60*time.Second); err != nil {
		return nil, fmt.Errorf("prometheus did not become ready (log: %s): %w", logPath, err)
	}
	return proc, nil
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
