// Package ssrf refuses outgoing connections to addresses a customer-supplied URL must never
// reach: loopback, private, link-local (cloud metadata included), CGNAT, multicast and other
// reserved ranges. The check runs at dial time on the resolved address (net.Dialer.Control), so a
// hostname that resolves to a public address at validation time and to 127.0.0.1 later (DNS
// rebinding) is refused as well. An explicit allow-list admits ranges for development and tests.
package ssrf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// ErrForbidden is returned (wrapped) for a refused destination.
var ErrForbidden = errors.New("destination address is not allowed")

// Guard decides which destination addresses may be dialled.
type Guard struct {
	allow []netip.Prefix
}

// New returns a guard that refuses reserved ranges except those in allow.
func New(allow []netip.Prefix) *Guard {
	return &Guard{allow: append([]netip.Prefix(nil), allow...)}
}

// ParseAllowList parses a comma-separated list of CIDR prefixes or single addresses.
func ParseAllowList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("parse allow-list entry %q: %w", f, err)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("parse allow-list entry %q: %w", f, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// reserved lists ranges that are not globally routable unicast destinations, beyond what the
// netip predicates cover.
func reserved() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),
		netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
		netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
		netip.MustParsePrefix("192.0.2.0/24"),  // documentation
		netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"),
		netip.MustParsePrefix("240.0.0.0/4"),  // reserved, broadcast
		netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach IPv4 internals
		netip.MustParsePrefix("64:ff9b:1::/48"),
		netip.MustParsePrefix("100::/64"),  // discard
		netip.MustParsePrefix("2001::/23"), // IETF protocol assignments
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("2002::/16"), // 6to4 can embed private IPv4
		netip.MustParsePrefix("fc00::/7"),  // unique local (includes fd00:ec2::254 metadata)
	}
}

// Check returns nil when addr may be dialled.
func (g *Guard) Check(addr netip.Addr) error {
	addr = addr.Unmap()
	for _, p := range g.allow {
		if p.Contains(addr) {
			return nil
		}
	}
	switch {
	case !addr.IsValid(), addr.IsUnspecified(), addr.IsLoopback(), addr.IsPrivate(),
		addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast(), addr.IsInterfaceLocalMulticast(),
		addr.IsMulticast():
		return fmt.Errorf("%w: %s", ErrForbidden, addr)
	}
	for _, p := range reserved() {
		if p.Contains(addr) {
			return fmt.Errorf("%w: %s", ErrForbidden, addr)
		}
	}
	return nil
}

// Control is a net.Dialer Control function enforcing the guard on the resolved address.
func (g *Guard) Control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrForbidden, address)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrForbidden, address)
	}
	return g.Check(addr)
}
