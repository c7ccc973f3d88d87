// Package netaddr holds the address parsing the config's address lists share: trusted proxies,
// IP access lists and authorization source rules.
package netaddr

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParsePrefix parses a CIDR ("10.0.0.0/8", "2001:db8::/32") or a single address, which stands for
// itself alone (/32 for IPv4, /128 for IPv6). The prefix is masked ("10.1.2.3/8" is 10.0.0.0/8).
// An IPv4-mapped IPv6 prefix of at least 96 bits is turned into the IPv4 prefix it covers, since
// client addresses are compared unmapped. Zones are refused.
func ParsePrefix(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR: %w", s, err)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR nor an address: %w", s, err)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q has a zone", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}
