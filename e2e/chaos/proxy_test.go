package chaos

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// TestProxyStopCutsAndStartRestores: a stopped proxy refuses connections and has cut the open
// ones; started again on the same port, it forwards again.
func TestProxyStopCutsAndStartRestores(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	p, err := StartProxy(echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	roundTrip := func(c net.Conn) error {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		_, err := bufio.NewReader(c).ReadString('\n')
		return err
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	addr := p.Addr()
	p.Stop()
	if err := roundTrip(c); err == nil {
		t.Error("an open connection still works after Stop")
	}
	if c2, err := net.Dial("tcp", addr); err == nil {
		c2.Close()
		t.Error("a new connection was accepted after Stop")
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if p.Addr() != addr {
		t.Errorf("restarted on %s, want %s", p.Addr(), addr)
	}
	c3, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if err := roundTrip(c3); err != nil {
		t.Errorf("after Start: %v", err)
	}
}
