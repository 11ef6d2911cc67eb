package ssrf

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr    string
		allowed bool
	}{
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"2606:4700:4700::1111", true},
		{"127.0.0.1", false},
		{"127.5.5.5", false},
		{"::1", false},
		{"10.0.0.1", false},
		{"172.16.3.4", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"fd00:ec2::254", false},   // AWS IPv6 metadata
		{"fe80::1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"100.64.0.1", false},
		{"224.0.0.1", false},
		{"255.255.255.255", false},
		{"::ffff:127.0.0.1", false}, // IPv4-mapped loopback
		{"::ffff:10.1.2.3", false},
		{"64:ff9b::a00:1", false}, // NAT64 of 10.0.0.1
		{"198.18.0.1", false},
		{"192.0.2.1", false},
		// The rest of the IANA special-purpose registries.
		{"192.88.99.1", false},     // deprecated 6to4 relay anycast
		{"192.31.196.1", false},    // AS112-v4
		{"192.52.193.1", false},    // AMT
		{"192.175.48.1", false},    // AS112 direct delegation
		{"3fff::1", false},         // documentation (RFC 9637)
		{"5f00::1", false},         // SRv6 SIDs (RFC 9602)
		{"2620:4f:8000::1", false}, // AS112 direct delegation
		{"2001:db8::1", false},
		{"2001::1", false}, // Teredo
		{"2002:a00:1::", false},
		{"100::1", false},
		{"64:ff9b:1::1", false},
		{"::ffff:8.8.8.8", true}, // IPv4-mapped public address
		{"2a00:1450:4001:80b::200e", true},
		{"4000::1", false}, // outside global unicast 2000::/3
	}
	g := New(nil)
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := g.Check(netip.MustParseAddr(tt.addr))
			if got := err == nil; got != tt.allowed {
				t.Fatalf("Check(%s): got allowed=%v (%v), want %v", tt.addr, got, err, tt.allowed)
			}
			if err != nil && !errors.Is(err, ErrForbidden) {
				t.Errorf("got %v, want it to wrap ErrForbidden", err)
			}
		})
	}
}

func TestAllowList(t *testing.T) {
	t.Parallel()
	allow, err := ParseAllowList(" 127.0.0.0/8, ::1 ,10.1.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	g := New(allow)
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "::1": true, "10.1.2.3": true, "10.2.0.1": false, "169.254.169.254": false,
	} {
		if got := g.Check(netip.MustParseAddr(addr)) == nil; got != want {
			t.Errorf("Check(%s) with allow-list: got %v, want %v", addr, got, want)
		}
	}
	if err := g.Control("tcp", "127.0.0.1:80", nil); err != nil {
		t.Errorf("Control(127.0.0.1:80): %v", err)
	}
	if err := New(nil).Control("tcp", "127.0.0.1:80", nil); err == nil {
		t.Error("Control(127.0.0.1:80) without allow-list: got nil, want error")
	}
	for _, bad := range []string{"nope", "10.0.0.0/99", "1.2.3.4/"} {
		if _, err := ParseAllowList(bad); err == nil {
			t.Errorf("ParseAllowList(%q): got nil error, want one", bad)
		}
	}
}

func FuzzControl(f *testing.F) {
	f.Add("127.0.0.1:80")
	f.Add("[::1]:443")
	f.Add("example.com:80")
	g := New(nil)
	f.Fuzz(func(t *testing.T, address string) {
		err := g.Control("tcp", address, nil)
		if err == nil {
			// Anything admitted must be a literal, routable address.
			ap, perr := netip.ParseAddrPort(address)
			if perr != nil {
				t.Fatalf("admitted unparseable address %q", address)
			}
			if a := ap.Addr().Unmap(); a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() {
				t.Fatalf("admitted %q", address)
			}
		}
	})
}

func TestCheckHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host    string
		allowed bool
	}{
		{"example.com", true}, // names are checked at dial time
		{"8.8.8.8", true},
		{"127.0.0.1", false},
		{"169.254.169.254", false},
		{"0.0.0.0", false},
		{"[::1]", false},
		{"::1", false},
		{"[fe80::1%25eth0]", false},
		{"fe80::1%eth0", false},
		{"[2606:4700:4700::1111]", true},
		{"192.88.99.1", false},
	}
	g := New(nil)
	for _, tt := range tests {
		if got := g.CheckHost(tt.host) == nil; got != tt.allowed {
			t.Errorf("CheckHost(%q): got allowed=%v, want %v", tt.host, got, tt.allowed)
		}
	}
	allow, err := ParseAllowList("127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	if err := New(allow).CheckHost("127.0.0.1"); err != nil {
		t.Errorf("CheckHost(127.0.0.1) with the allow-list: %v", err)
	}
}

// FuzzCheckHost: whatever the host, CheckHost never panics, and refuses exactly the literal
// addresses Check refuses.
func FuzzCheckHost(f *testing.F) {
	for _, s := range []string{"example.com", "127.0.0.1", "[::1]", "fe80::1%eth0", "[::ffff:10.0.0.1]", "", "["} {
		f.Add(s)
	}
	g := New(nil)
	f.Fuzz(func(t *testing.T, host string) {
		err := g.CheckHost(host)
		addr, perr := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
		if perr != nil {
			if err != nil {
				t.Fatalf("CheckHost(%q) = %v for a name, want nil (names are checked at dial time)", host, err)
			}
			return
		}
		if (err == nil) != (g.Check(addr) == nil) {
			t.Fatalf("CheckHost(%q) = %v, Check = %v", host, err, g.Check(addr))
		}
	})
}
