// Package natsserver runs an embedded NATS JetStream server in-process, for tests and for the
// local all-in-one run. Production uses a real cluster; nothing else in the code base knows the
// difference because everything talks to it through a client URL.
package natsserver

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure the embedded server.
type Options struct {
	// Host to listen on; default 127.0.0.1.
	Host string
	// Port to listen on; -1 (the default when zero) picks a free random port, so the server never
	// collides with a machine-wide nats-server on 4222.
	Port int
	// StoreDir holds JetStream file storage. Required: streams use file storage.
	StoreDir string
	// ServerName is the server's name; default "customertext-embedded".
	ServerName string
}

// Server is a running embedded nats-server.
type Server struct {
	srv *server.Server
}

// Start starts a JetStream-enabled server and waits until it accepts connections.
func Start(opts Options) (*Server, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("start nats-server: store dir is required")
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = -1
	}
	if opts.ServerName == "" {
		opts.ServerName = "customertext-embedded"
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: opts.ServerName,
		Host:       opts.Host,
		Port:       opts.Port,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		// Webhook payloads are bounded well below this; leave room for headers.
		MaxPayload: 1 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("create nats-server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("start nats-server: not ready after 10s")
	}
	return &Server{srv: srv}, nil
}

// ClientURL is the nats:// URL clients connect to.
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// Shutdown stops the server and waits for it to finish.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}
