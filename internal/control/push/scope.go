package push

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/config"
)

// errUnknownRole refuses a node whose role is neither gateway nor sidecar.
var errUnknownRole = errors.New("push: unknown role")

// scope is what a proxy needs to be sent. Proxies with equal scopes get the same resources.
type scope struct {
	role      string
	service   string
	namespace string
	// calls are the services a sidecar calls, sorted and without duplicates; empty means all.
	calls []string
}

// scopeOf returns the scope of node n.
func scopeOf(n *controlv1.Node) (scope, error) {
	switch n.GetRole() {
	case RoleGateway:
		// Every gateway gets the same: listeners, edge routes and what they use.
		return scope{role: RoleGateway}, nil
	case RoleSidecar:
		ns := n.GetNamespace()
		if ns == "" {
			ns = config.DefaultNamespace
		}
		calls := slices.Clone(n.GetCalls())
		slices.Sort(calls)
		return scope{role: RoleSidecar, service: n.GetService(), namespace: ns, calls: slices.Compact(calls)}, nil
	default:
		return scope{}, fmt.Errorf("%w %q (want %q or %q)", errUnknownRole, n.GetRole(), RoleGateway, RoleSidecar)
	}
}

// key identifies the scope: proxies with the same key share their resources.
func (s scope) key() string {
	if s.role == RoleGateway {
		return RoleGateway
	}
	// Quoted, so that no name can make two scopes' keys equal.
	b := []byte(s.role)
	for _, v := range append([]string{s.namespace, s.service}, s.calls...) {
		b = append(b, ' ')
		b = strconv.AppendQuote(b, v)
	}
	return string(b)
}

// resources selects the scope's resources from ix.
func (s scope) resources(ix *index) map[string]*controlv1.Resource {
	out := make(map[string]*controlv1.Resource)
	add := func(typ, name string) {
		if r := ix.byKey[Key(typ, name)]; r != nil {
			out[Key(typ, name)] = r
		}
	}
	cfg := ix.cfg
	// targets adds the services a route sends to.
	targets := func(r *config.Route) {
		for _, b := range r.Backends {
			add(TypeService, b.Service)
		}
		if r.Mirror != nil {
			add(TypeService, r.Mirror.Service)
		}
	}
	switch s.role {
	case RoleGateway:
		for i := range cfg.Listeners {
			add(TypeListener, cfg.Listeners[i].Name)
		}
		for i := range cfg.Routes {
			if r := &cfg.Routes[i]; r.Service == "" {
				add(TypeRoute, r.Name)
				targets(r)
			}
		}
		for i := range cfg.Authenticators {
			add(TypeAuthenticator, cfg.Authenticators[i].Name)
		}
		for i := range cfg.Consumers {
			add(TypeConsumer, cfg.Consumers[i].Name)
		}
		for i := range cfg.Plans {
			add(TypePlan, cfg.Plans[i].Name)
		}
	case RoleSidecar:
		calls := func(name string) bool {
			_, ok := slices.BinarySearch(s.calls, name)
			return ok
		}
		for i := range cfg.Services {
			svc := &cfg.Services[i]
			d := svc.Discovery
			if d == nil {
				continue
			}
			if discoveryService(svc) == s.service && discoveryNamespace(d) == s.namespace {
				add(TypeService, svc.Name) // inbound: the proxy's own service and its policy
			}
			if len(s.calls) == 0 {
				add(TypeService, svc.Name)
			}
		}
		for _, name := range s.calls {
			add(TypeService, name)
		}
		for i := range cfg.Routes {
			r := &cfg.Routes[i]
			if r.Service == "" || (len(s.calls) > 0 && !calls(r.Service)) {
				continue
			}
			add(TypeRoute, r.Name)
			targets(r)
		}
	}
	add(TypeBundle, BundleName)
	add(TypeRevocations, RevocationsName)
	add(TypeEdgeKey, EdgeKeyName)
	add(TypeTelemetry, TelemetryName)
	return out
}

// discoveryService is the mesh service a service discovers (default: its own name).
func discoveryService(svc *config.Service) string {
	if svc.Discovery.Service != "" {
		return svc.Discovery.Service
	}
	return svc.Name
}

// discoveryNamespace is the namespace of a discovery block (default "default").
func discoveryNamespace(d *config.ServiceDiscovery) string {
	if d.Namespace != "" {
		return d.Namespace
	}
	return config.DefaultNamespace
}
