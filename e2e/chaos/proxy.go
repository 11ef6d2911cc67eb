package chaos

import (
	"fmt"
	"io"
	"net"
	"sync"
)

// Proxy is a TCP proxy on loopback in front of a server (PostgreSQL). Stop closes its listener
// and every connection through it, so clients see the server as unreachable (connections
// refused) until Start listens on the same port again.
type Proxy struct {
	target string
	addr   string

	mu    sync.Mutex
	lis   net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// StartProxy listens on a random loopback port and forwards every connection to target.
func StartProxy(target string) (*Proxy, error) {
	p := &Proxy{target: target, addr: "127.0.0.1:0", conns: map[net.Conn]struct{}{}}
	if err := p.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.addr }

// Start listens again (on the same port) after Stop.
func (p *Proxy) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lis != nil {
		return nil
	}
	lis, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("proxy listen on %s: %w", p.addr, err)
	}
	p.lis, p.addr = lis, lis.Addr().String()
	p.wg.Add(1)
	go p.accept(lis)
	return nil
}

// Stop closes the listener and cuts every open connection.
func (p *Proxy) Stop() {
	p.mu.Lock()
	lis := p.lis
	p.lis = nil
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	if lis != nil {
		_ = lis.Close()
	}
	p.wg.Wait()
}

func (p *Proxy) accept(lis net.Listener) {
	defer p.wg.Done()
	for {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		if !p.track(c, up) {
			return
		}
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// track registers a connection pair unless the proxy was stopped meanwhile.
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lis == nil {
		for _, c := range conns {
			_ = c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	// A cut connection is the point of the proxy: copy errors are expected.
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}
