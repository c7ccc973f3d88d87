// Package ipaccess is the client address policy of a route: it refuses requests from denied
// addresses and, when an allow list is set, from addresses outside it, with 403 and reason
// "ip_denied". It checks the client address after trusted-proxy resolution (Exchange.ClientIP),
// with an IPv4-mapped IPv6 address taken as the IPv4 address it maps and any zone ignored. A deny
// entry wins over an allow entry. A request whose client address is unknown is refused.
package ipaccess

import (
	"fmt"
	"net/netip"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/netaddr"
	"github.com/meshgate/meshgate/internal/proxy"
)

// ReasonIPDenied marks a request the policy refused.
const ReasonIPDenied = proxy.ReasonIPDenied

// policy is a compiled IP access policy.
type policy struct {
	route string
	allow []netip.Prefix // empty: any address not denied
	deny  []netip.Prefix
}

// New compiles the IP access policy p of the route named route into a middleware. It fails when
// an entry is neither a CIDR nor an address (config validation reports the same problems first).
func New(route string, p *config.IPAccess) (proxy.Middleware, error) {
	pol, err := compile(route, p)
	if err != nil {
		return nil, err
	}
	return pol.middleware, nil
}

// compile checks and compiles p.
func compile(route string, p *config.IPAccess) (*policy, error) {
	if p == nil {
		return nil, fmt.Errorf("ipaccess: route %q: no policy", route)
	}
	pol := &policy{route: route}
	var err error
	if pol.allow, err = parsePrefixes(p.Allow); err != nil {
		return nil, fmt.Errorf("ipaccess: route %q: allow: %w", route, err)
	}
	if pol.deny, err = parsePrefixes(p.Deny); err != nil {
		return nil, fmt.Errorf("ipaccess: route %q: deny: %w", route, err)
	}
	return pol, nil
}

// parsePrefixes parses CIDRs and single addresses.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := netaddr.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// middleware implements proxy.Middleware.
func (p *policy) middleware(next proxy.Handler) proxy.Handler {
	return proxy.HandlerFunc(func(x *proxy.Exchange) error {
		if err := p.check(x.ClientIP); err != nil {
			return proxy.Fail(403, ReasonIPDenied, err)
		}
		return next.Serve(x)
	})
}

// check returns why a is refused, or nil when it is admitted.
func (p *policy) check(a netip.Addr) error {
	if !a.IsValid() {
		return fmt.Errorf("ipaccess: route %q: the client address is unknown", p.route)
	}
	a = a.Unmap().WithZone("")
	if q, ok := find(p.deny, a); ok {
		return fmt.Errorf("ipaccess: route %q: client %s is in denied %s", p.route, a, q)
	}
	if len(p.allow) > 0 {
		if _, ok := find(p.allow, a); !ok {
			return fmt.Errorf("ipaccess: route %q: client %s is not in the allow list", p.route, a)
		}
	}
	return nil
}

// find returns the first prefix of list that contains a.
func find(list []netip.Prefix, a netip.Addr) (netip.Prefix, bool) {
	for _, q := range list {
		if q.Contains(a) {
			return q, true
		}
	}
	return netip.Prefix{}, false
}
