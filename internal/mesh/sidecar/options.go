package sidecar

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/meshgate/meshgate/internal/config"
)

// Default addresses of a sidecar's fronts and admin API.
const (
	DefaultInbound  = ":15006"
	DefaultOutbound = "127.0.0.1:15001"
	DefaultAdmin    = "127.0.0.1:15020"
)

// Port is one port the workload serves.
type Port struct {
	// Name identifies the port within the workload (a DNS label).
	Name string
	// Port is the TCP port the workload listens on, on AppHost.
	Port int
	// Protocol is "http1", "http2", "grpc" or "tcp".
	Protocol string
}

// ParsePort parses "NAME=PORT[/PROTOCOL]" (protocol default http1).
func ParsePort(s string) (Port, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok {
		return Port{}, fmt.Errorf("port %q: want NAME=PORT[/PROTOCOL]", s)
	}
	num, proto, _ := strings.Cut(rest, "/")
	if proto == "" {
		proto = config.UpstreamHTTP1
	}
	n, err := strconv.Atoi(num)
	p := Port{Name: name, Port: n, Protocol: proto}
	switch {
	case !config.IsMeshName(name):
		return p, fmt.Errorf("port %q: name %q is not a valid port name (lower-case letters, digits, '-')", s, name)
	case err != nil || n < 1 || n > 65535:
		return p, fmt.Errorf("port %q: %q is not a port number", s, num)
	}
	switch proto {
	case config.UpstreamHTTP1, config.UpstreamHTTP2, config.UpstreamGRPC, config.AppTCP:
	default:
		return p, fmt.Errorf("port %q: protocol %q: want http1, http2, grpc or tcp", s, proto)
	}
	return p, nil
}

// Options configure a sidecar.
type Options struct {
	// Service and Namespace name the workload's mesh service (its identity is
	// spiffe://TRUST-DOMAIN/ns/NAMESPACE/sa/SERVICE). Required.
	Service, Namespace string
	// Ports are the workload's ports. At least one is required.
	Ports []Port
	// AppHost is where the workload listens, as seen from the sidecar. Default "127.0.0.1".
	AppHost string
	// Addresses are the IP addresses peers reach this workload (its sidecar) at; registered with
	// the control plane. Default: the host's non-loopback addresses, or 127.0.0.1 if none.
	Addresses []string
	// Inbound is the address the inbound front listens on (mutual TLS from peers). Default
	// ":15006".
	Inbound string
	// Outbound is the address the outbound front listens on (the workload's calls). Default
	// "127.0.0.1:15001".
	Outbound string
	// Upstreams bind a local address to one mesh service (explicit mode for any protocol,
	// opaque TCP included): config service name → listen address.
	Upstreams map[string]string
	// Transparent, when set, routes intercepted connections by their original destination.
	Transparent *Transparent
	// Calls lists the services the workload calls (config names), to limit what the control
	// plane sends; empty means every mesh service.
	Calls []string
	// DrainDelay is how long the sidecar keeps serving after reporting itself draining, so that
	// callers learn it before it stops. Default 2s.
	DrainDelay time.Duration
	// DrainTimeout bounds waiting for in-flight requests at shutdown. Default 20s.
	DrainTimeout time.Duration
	// HandshakeTimeout bounds an inbound TLS handshake. Default 5s.
	HandshakeTimeout time.Duration
	// TCPIdleTimeout closes a relayed TCP connection idle in both directions this long.
	// Default 1h.
	TCPIdleTimeout time.Duration
	// AccessLog is where the sidecar logs requests: "off" (default), "stdout", "stderr" or a
	// file path.
	AccessLog string
	// Dialer opens the sidecar's own connections (marked so interception skips them). Default:
	// a plain dialer.
	Dialer *net.Dialer
	// Log receives the sidecar's logs.
	Log *slog.Logger
}

// Transparent is what transparent interception needs from the sidecar's host side.
type Transparent struct {
	// OriginalDst returns where an intercepted connection was going.
	OriginalDst func(net.Conn) (netip.AddrPort, error)
	// ServiceOf returns the mesh service name ("SERVICE.NAMESPACE") a virtual IP belongs to.
	ServiceOf func(netip.Addr) (string, bool)
	// IsVirtual reports whether an address is in the virtual IP range (an unknown one there is
	// refused rather than passed through).
	IsVirtual func(netip.Addr) bool
	// Passthrough lets connections to addresses outside the mesh through, unproxied. Default
	// false: they are refused with unknown_destination.
	Passthrough bool
}

// check fills defaults and checks o.
func (o *Options) check() error {
	if !config.IsMeshName(o.Service) {
		return fmt.Errorf("sidecar: service %q is not a valid mesh service name", o.Service)
	}
	if o.Namespace == "" {
		o.Namespace = config.DefaultNamespace
	}
	if !config.IsMeshName(o.Namespace) {
		return fmt.Errorf("sidecar: namespace %q is not a valid namespace", o.Namespace)
	}
	if len(o.Ports) == 0 {
		return errors.New("sidecar: the workload needs at least one port (--port NAME=PORT[/PROTOCOL])")
	}
	seen := map[string]bool{}
	for _, p := range o.Ports {
		if seen[p.Name] {
			return fmt.Errorf("sidecar: port %q is listed twice", p.Name)
		}
		seen[p.Name] = true
	}
	if o.AppHost == "" {
		o.AppHost = "127.0.0.1"
	}
	if o.Inbound == "" {
		o.Inbound = DefaultInbound
	}
	if o.Outbound == "" {
		o.Outbound = DefaultOutbound
	}
	if o.DrainDelay == 0 {
		o.DrainDelay = 2 * time.Second
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 20 * time.Second
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 5 * time.Second
	}
	if o.TCPIdleTimeout == 0 {
		o.TCPIdleTimeout = time.Hour
	}
	if o.AccessLog == "" {
		o.AccessLog = "off"
	}
	if o.Dialer == nil {
		o.Dialer = &net.Dialer{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if len(o.Addresses) == 0 {
		o.Addresses = hostAddresses()
	}
	return nil
}

// port returns the workload port called name, or its only port when name is "".
func (o *Options) port(name string) (Port, bool) {
	if name == "" && len(o.Ports) == 1 {
		return o.Ports[0], true
	}
	for _, p := range o.Ports {
		if p.Name == name {
			return p, true
		}
	}
	if len(o.Ports) == 1 {
		// A caller that names the port differently (another workload's name for it) still
		// means the only port there is.
		return o.Ports[0], true
	}
	return Port{}, false
}

// portByNumber returns the workload port listening on n.
func (o *Options) portByNumber(n int) (Port, bool) {
	for _, p := range o.Ports {
		if p.Port == n {
			return p, true
		}
	}
	return Port{}, false
}

// hostAddresses returns the host's global unicast addresses, or 127.0.0.1 when it has none.
func hostAddresses() []string {
	var out []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().IsGlobalUnicast() {
			out = append(out, p.Addr().Unmap().String())
		}
	}
	if len(out) == 0 {
		out = []string{"127.0.0.1"}
	}
	return out
}
