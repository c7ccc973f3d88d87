package netaddr

import (
	"net"
	"net/netip"
)

// IsLoopbackHost reports whether host (of a listen address) names only loopback addresses:
// "localhost" or a loopback IP.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// IsLoopbackAddr reports whether addr, a host:port listen address, is on loopback only.
func IsLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && IsLoopbackHost(host)
}
