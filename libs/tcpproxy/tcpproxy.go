// Package tcpproxy is a loopback TCP proxy for outage tests: put it between a service and a real
// dependency (PostgreSQL, NATS), Stop it to make the dependency unreachable (new connections are
// refused, open ones are cut), Start it again on the same address to end the outage.
package tcpproxy

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Proxy forwards connections accepted on Addr to a target address.
type Proxy struct {
	target string
	addr   string

	mu    sync.Mutex
	lis   net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// New starts a proxy on a free loopback port that forwards to target ("host:port").
func New(target string) (*Proxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	p := &Proxy{target: target, addr: lis.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.serve(lis)
	return p, nil
}

// Addr is the proxy's address; it stays the same across Stop and Start.
func (p *Proxy) Addr() string { return p.addr }

// Stop closes the listener (connections are refused from now on) and cuts every open
// connection. It waits until the proxy's goroutines have exited.
func (p *Proxy) Stop() {
	p.mu.Lock()
	if p.lis != nil {
		_ = p.lis.Close()
		p.lis = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Start listens again on Addr. The port was free a moment ago, so a few retries cover the
// kernel's short delay in releasing it.
func (p *Proxy) Start() error {
	var lis net.Listener
	var err error
	for range 50 {
		if lis, err = net.Listen("tcp", p.addr); err == nil {
			p.serve(lis)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("listen again on %s: %w", p.addr, err)
}

func (p *Proxy) serve(lis net.Listener) {
	p.mu.Lock()
	p.lis = lis
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.forward(c)
			}()
		}
	}()
}

// track registers c; it reports false (and closes c) when the proxy stopped meanwhile.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lis == nil {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) forward(client net.Conn) {
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	server, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		return
	}
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src) // an error is a cut connection: what Stop is for
		// One direction ending ends the pair: the peer sees the connection close.
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	<-done
}
