package intercept

import (
	"errors"
	"fmt"
	"net/netip"
)

// Rules says what Install captures in a workload's network namespace. Loopback traffic is never
// redirected, nor are packets of the sidecar itself (recognised by ProxyUID or ProxyMark).
type Rules struct {
	// ProxyUID, when set, is the user the sidecar runs as: TCP and DNS from sockets of this user
	// are never redirected. Optional; needs ProxyMark when the app runs as the same user.
	ProxyUID *uint32
	// ProxyMark, when non-zero, is the SO_MARK the sidecar sets on its own sockets (MarkDialer):
	// packets carrying it are never redirected. Needed when the app and the sidecar run as the
	// same user. Setting SO_MARK needs CAP_NET_ADMIN. Default 0: no mark exemption.
	ProxyMark uint32
	// OutboundPort is the sidecar's outbound listener port (for example 15001): the app's TCP to
	// non-loopback destinations outside ExcludeOutboundCIDRs is redirected to it on the loopback
	// address of the connection's family (127.0.0.1 or ::1). 0 disables outbound capture.
	OutboundPort uint16
	// InboundPort is the sidecar's inbound listener port (for example 15006): TCP that arrives
	// on a non-loopback interface for one of the captured app ports is redirected to it. 0
	// disables inbound capture.
	InboundPort uint16
	// InboundPorts are the app ports whose inbound TCP is redirected to InboundPort. Empty means
	// every port except ExcludeInboundPorts.
	InboundPorts []uint16
	// ExcludeInboundPorts are ports whose inbound TCP always goes directly to the app (or to the
	// sidecar's own public ports, such as health or metrics). Only used when InboundPorts is
	// empty.
	ExcludeInboundPorts []uint16
	// DNSPort, when non-zero, captures the app's UDP and TCP queries to port 53 of any
	// non-loopback address (the nameservers in resolv.conf) and redirects them to this port on
	// 127.0.0.1 (or ::1 for IPv6), where the sidecar's DNS responder must listen. Queries to
	// loopback nameservers are not captured. DNS capture applies even to nameservers inside
	// ExcludeOutboundCIDRs.
	DNSPort uint16
	// ExcludeOutboundCIDRs are destinations whose TCP is never redirected (for example the
	// control plane's or a database's addresses). IPv4 and IPv6 prefixes may be mixed.
	ExcludeOutboundCIDRs []netip.Prefix
}

// Validate reports an inconsistent rule set.
func (r Rules) Validate() error {
	var errs []error
	if r.OutboundPort == 0 && r.InboundPort == 0 && r.DNSPort == 0 {
		errs = append(errs, errors.New("intercept: rules capture nothing: set OutboundPort, InboundPort or DNSPort"))
	}
	if r.OutboundPort != 0 && r.ProxyUID == nil && r.ProxyMark == 0 {
		errs = append(errs, errors.New("intercept: outbound capture needs ProxyUID or ProxyMark, or the sidecar's own connections loop back into it"))
	}
	if r.DNSPort != 0 && r.ProxyUID == nil && r.ProxyMark == 0 {
		errs = append(errs, errors.New("intercept: DNS capture needs ProxyUID or ProxyMark, or the responder's upstream queries loop back into it"))
	}
	if len(r.InboundPorts) > 0 && len(r.ExcludeInboundPorts) > 0 {
		errs = append(errs, errors.New("intercept: set InboundPorts or ExcludeInboundPorts, not both"))
	}
	if (len(r.InboundPorts) > 0 || len(r.ExcludeInboundPorts) > 0) && r.InboundPort == 0 {
		errs = append(errs, errors.New("intercept: inbound ports given without InboundPort"))
	}
	for _, p := range r.InboundPorts {
		if p == 0 {
			errs = append(errs, errors.New("intercept: inbound port 0"))
		}
	}
	for _, p := range r.ExcludeOutboundCIDRs {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("intercept: invalid excluded CIDR %v", p))
		}
	}
	return errors.Join(errs...)
}
