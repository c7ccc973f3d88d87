package config

import (
	"net"
	"net/netip"
	"strconv"
)

// binding is a socket address some listener binds, for finding listeners that cannot all bind.
type binding struct {
	s       scope
	address string
	ips     []netip.Addr // nil: every interface
	port    int
}

// checkListenAddress checks that address is "host:port" a listener can bind: the host an IP
// address, "localhost" or empty (every interface), the port in 0..65535 (0: any free port).
func checkListenAddress(s scope, address string) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		s.errorf("%q is not a host:port address", address)
		return
	}
	if _, ok := listenHost(host); !ok {
		s.errorf("host %q must be an IP address, \"localhost\" or empty (every interface)", host)
	}
	if _, ok := parsePort(port, 0); !ok {
		s.errorf("port %q must be a number in 0..65535", port)
	}
}

// listenHost returns the addresses a listen host binds, nil for every interface.
func listenHost(host string) ([]netip.Addr, bool) {
	switch host {
	case "", "0.0.0.0", "::":
		return nil, true
	case "localhost":
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}, true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, false
	}
	if ip.Unmap().IsUnspecified() {
		return nil, true
	}
	return []netip.Addr{ip.Unmap()}, true
}

// appendBinding adds the socket address of s to bound, unless it is invalid (already reported)
// or has port 0 (a fresh port each time, so it clashes with nothing).
func appendBinding(bound []binding, s scope, address string) []binding {
	host, p, err := net.SplitHostPort(address)
	if err != nil {
		return bound
	}
	ips, ok := listenHost(host)
	port, pok := parsePort(p, 1)
	if !ok || !pok {
		return bound
	}
	return append(bound, binding{s: s, address: address, ips: ips, port: port})
}

// checkClashes reports each binding that cannot be bound beside an earlier one: the same port
// on the same address, or on every interface and any address.
func checkClashes(bound []binding) {
	byPort := make(map[int][]binding)
	for _, b := range bound {
		for _, earlier := range byPort[b.port] {
			if overlaps(earlier.ips, b.ips) {
				b.s.errorf("%q clashes with %q of %s: both bind port %d", b.address, earlier.address, describeBinder(earlier.s), b.port)
				break
			}
		}
		byPort[b.port] = append(byPort[b.port], b)
	}
}

// overlaps reports whether two sets of listen addresses share one, nil meaning every address.
func overlaps(a, b []netip.Addr) bool {
	if a == nil || b == nil {
		return true
	}
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// describeBinder names the object owning a binding, with its line when known.
func describeBinder(s scope) string {
	label := s.label
	if label == "" {
		label = s.path
	}
	if n := s.v.line(s.path); n > 0 {
		return label + " (line " + strconv.Itoa(n) + ")"
	}
	return label
}
