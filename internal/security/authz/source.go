package authz

import (
	"net/netip"
)

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
