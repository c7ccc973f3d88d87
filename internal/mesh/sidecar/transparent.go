package sidecar

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/meshgate/meshgate/internal/mesh/intercept"
)

// DefaultMark is the SO_MARK a transparent sidecar sets on its own sockets so that
// interception leaves them alone.
const DefaultMark = 0x539

// Interception is the transparent mode of one sidecar in its workload's network namespace:
// nftables rules that send the workload's TCP through the sidecar, the virtual IPs of mesh
// services and the DNS answers that hand them out.
type Interception struct {
	vips  intercept.VIPs
	dns   *intercept.DNS
	rules intercept.Rules
	log   *slog.Logger
}

// InterceptOptions configure transparent mode.
type InterceptOptions struct {
	// Mark is the SO_MARK of the sidecar's own sockets. Default DefaultMark.
	Mark uint32
	// ProxyUID, when set, also exempts the sidecar's user.
	ProxyUID *uint32
	// DNS is where the DNS responder for SERVICE.NAMESPACE.mesh listens (on loopback). Default
	// "127.0.0.1:15053".
	DNS string
	// Exclude are destinations never intercepted (the control plane's address is always).
	Exclude []netip.Prefix
	// Passthrough lets the workload reach addresses outside the mesh unproxied. Default false:
	// they are refused with unknown_destination.
	Passthrough bool
	// Log receives the interception's logs.
	Log *slog.Logger
}

// Intercept installs interception for o (already checked by New's caller: addresses bound
// where the redirects land) in the calling thread's network namespace and starts the DNS
// responder. It changes o: the transparent hooks and the marked dialer. control is the control
// plane's host:port, never intercepted.
func Intercept(o *Options, control string, io InterceptOptions) (*Interception, error) {
	if io.Mark == 0 {
		io.Mark = DefaultMark
	}
	if io.DNS == "" {
		io.DNS = "127.0.0.1:15053"
	}
	if io.Log == nil {
		io.Log = slog.Default()
	}
	inPort, err := portOf(orDefault(o.Inbound, DefaultInbound))
	if err != nil {
		return nil, fmt.Errorf("sidecar: inbound: %w", err)
	}
	outPort, err := portOf(orDefault(o.Outbound, DefaultOutbound))
	if err != nil {
		return nil, fmt.Errorf("sidecar: outbound: %w", err)
	}
	dnsPort, err := portOf(io.DNS)
	if err != nil {
		return nil, fmt.Errorf("sidecar: dns: %w", err)
	}
	if h, _, _ := net.SplitHostPort(orDefault(o.Outbound, DefaultOutbound)); h != "127.0.0.1" && h != "" && h != "0.0.0.0" {
		return nil, fmt.Errorf("sidecar: transparent mode needs the outbound front on 127.0.0.1 (intercepted calls land there), not %s", o.Outbound)
	}
	exclude := append([]netip.Prefix(nil), io.Exclude...)
	if host, _, err := net.SplitHostPort(control); err == nil {
		addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
		if err != nil {
			return nil, fmt.Errorf("sidecar: control plane address %s: %w", host, err)
		}
		for _, a := range addrs {
			exclude = append(exclude, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	var appPorts []uint16
	for _, p := range o.Ports {
		appPorts = append(appPorts, uint16(p.Port))
	}
	ic := &Interception{log: io.Log, rules: intercept.Rules{
		ProxyUID: io.ProxyUID, ProxyMark: io.Mark, OutboundPort: outPort, InboundPort: inPort,
		InboundPorts: appPorts, DNSPort: dnsPort, ExcludeOutboundCIDRs: exclude,
	}}
	dialer := intercept.MarkDialer(io.Mark)
	ic.dns = &intercept.DNS{Zone: "mesh", Lookup: ic.vips.Lookup, Upstreams: resolvers(), Dialer: dialer,
		Logger: io.Log.With("component", "dns")}
	if err := ic.dns.Start(io.DNS); err != nil {
		return nil, fmt.Errorf("sidecar: dns: %w", err)
	}
	if err := intercept.Install(ic.rules); err != nil {
		_ = ic.dns.Shutdown(context.Background())
		return nil, fmt.Errorf("sidecar: installing interception (needs root or CAP_NET_ADMIN in the workload's network namespace): %w", err)
	}
	o.Dialer = dialer
	o.Transparent = &Transparent{
		OriginalDst: intercept.OriginalDst, ServiceOf: ic.vips.Service,
		IsVirtual: intercept.VIPRange().Contains, Passthrough: io.Passthrough,
	}
	io.Log.Info("transparent interception installed", "outbound_port", outPort, "inbound_port", inPort,
		"app_ports", appPorts, "dns", io.DNS, "mark", io.Mark, "excluded", exclude)
	return ic, nil
}

// Targets gives the mesh services their virtual IPs; the sidecar calls it with every config.
func (ic *Interception) Targets(keys []string) {
	if err := ic.vips.Update(keys); err != nil {
		ic.log.Error("virtual IPs", "error", err)
	}
}

// Close removes the rules and stops the DNS responder.
func (ic *Interception) Close() error {
	err := intercept.Remove()
	_ = ic.dns.Shutdown(context.Background())
	return err
}

// resolvers returns the non-loopback nameservers of /etc/resolv.conf as host:53, for names
// outside the mesh.
func resolvers() []string {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil && !a.IsLoopback() {
				out = append(out, net.JoinHostPort(a.String(), "53"))
			}
		}
	}
	return out
}

func portOf(addr string) (uint16, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q needs a fixed port", addr)
	}
	return uint16(n), nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
