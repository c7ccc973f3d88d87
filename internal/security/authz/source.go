package authz

import (
	"errors"
	"net/netip"
	"strings"
)

// parseCIDR parses a CIDR or a single address into a masked prefix. IPv4-mapped IPv6 forms
// ("::ffff:10.0.0.0/104", "::ffff:10.0.0.1") become their IPv4 equivalents, as client
// addresses are unmapped before comparison.
func parseCIDR(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, err
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if a.Zone() != "" {
			return netip.Prefix{}, errors.New("zones are not allowed")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// sourceHolds reports whether ip, unmapped and without zone, lies in one of cidrs.
func sourceHolds(cidrs []netip.Prefix, ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return false
	}
	for _, p := range cidrs {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
