package tcpproxy

import (
	"bufio"
	"net"
	"testing"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
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
	return lis.Addr().String()
}

func roundTrip(c net.Conn, r *bufio.Reader, msg string) (string, error) {
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	return r.ReadString('\n')
}

func TestStopRefusesAndCutsStartRestores(t *testing.T) {
	p, err := New(echoServer(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(p.Stop)

	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if got, err := roundTrip(c, r, "hello"); err != nil || got != "hello\n" {
		t.Fatalf("through the proxy: got %q, %v; want %q", got, err, "hello\n")
	}

	p.Stop()
	if _, err := roundTrip(c, r, "again"); err == nil {
		t.Errorf("open connection after Stop: got no error, want it cut")
	}
	if c2, err := net.Dial("tcp", p.Addr()); err == nil {
		_ = c2.Close()
		t.Errorf("dial after Stop: got a connection, want refused")
	}

	if err := p.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("dial after Start: %v", err)
	}
	defer c3.Close()
	if got, err := roundTrip(c3, bufio.NewReader(c3), "back"); err != nil || got != "back\n" {
		t.Fatalf("after Start: got %q, %v; want %q", got, err, "back\n")
	}
}
