// Package ssrf refuses outgoing connections to addresses a customer-supplied URL must never
// reach: loopback, private, link-local (cloud metadata included), CGNAT, multicast and every
// other range of the IANA special-purpose registries (through code.dny.dev/ssrf). The check runs at dial time on the resolved address (net.Dialer.Control), so a
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

	dnyssrf "code.dny.dev/ssrf"
)

// ErrForbidden is returned (wrapped) for a refused destination.
var ErrForbidden = errors.New("destination address is not allowed")

// Guard decides which destination addresses may be dialled.
type Guard struct {
	allow  []netip.Prefix
	denied *dnyssrf.Guardian
}

// New returns a guard that refuses reserved ranges except those in allow.
func New(allow []netip.Prefix) *Guard {
	return &Guard{allow: append([]netip.Prefix(nil), allow...), denied: newDenied()}
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

// newDenied returns the IANA IPv4 and IPv6 special-purpose address registries as maintained by
// code.dny.dev/ssrf (its generated lists follow
// https://www.iana.org/assignments/iana-ipv4-special-registry and
// https://www.iana.org/assignments/iana-ipv6-special-registry), plus what that library leaves to
// the dialler's network choice: an IPv6 destination must be inside global unicast 2000::/3,
// which also refuses ::/128, ::1, IPv4-mapped and -compatible forms, 64:ff9b::/96 NAT64,
// 100::/64, 5f00::/16 (SRv6), fc00::/7 and fe80::/10.
func newDenied() *dnyssrf.Guardian {
	return dnyssrf.New(dnyssrf.WithAnyPort(), dnyssrf.WithAnyNetwork())
}

// Check returns nil when addr may be dialled.
func (g *Guard) Check(addr netip.Addr) error {
	addr = addr.Unmap().WithZone("")
	for _, p := range g.allow {
		if p.Contains(addr) {
			return nil
		}
	}
	if !addr.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrForbidden)
	}
	if err := g.denied.SafeAddr(addr); err != nil {
		return fmt.Errorf("%w: %s", ErrForbidden, addr)
	}
	return nil
}

// CheckHost checks the host of a URL as written: an IP literal (with or without brackets and
// zone) must be allowed; a name is left to dial time, where its resolved addresses are checked.
// It lets an API refuse http://169.254.169.254/ when the URL is stored instead of on every
// delivery attempt.
func (g *Guard) CheckHost(host string) error {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return nil
	}
	return g.Check(addr)
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
