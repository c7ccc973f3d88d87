package sidecar

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/security/authz"
)

// Names of what the sidecar adds to the pushed config. They contain ':' so that they never
// clash with a service or route of the mesh config.
const (
	outboundListener = "outbound"
	inboundPrefix    = "inbound:"  // + port name: listener and route of inbound calls to the port
	appPrefix        = "app:"      // + port name: the workload's port, as a service
	outboundPrefix   = "outbound:" // + service name: listener of calls bound to one service
	meshRoutePrefix  = "mesh:"     // + service name: the default route of calls to it
)

// meshTarget is a service the workload may call.
type meshTarget struct {
	// name is the service's config name.
	name string
	// key is "SERVICE.NAMESPACE", the mesh name (and virtual IP name) of the service.
	key string
	// tcp reports an opaque TCP service.
	tcp bool
}

// plan is the sidecar's view of one pushed config: the config the engine runs and what the
// fronts need to dispatch connections.
type plan struct {
	cfg *config.Config
	// targets are the callable mesh services by key ("SERVICE.NAMESPACE") and by config name.
	targets map[string]*meshTarget
	byName  map[string]*meshTarget
	// inboundAuthz decides opaque TCP calls to the workload (HTTP calls are decided by the
	// engine's inbound route with the same policy); nil allows every mesh peer.
	inboundAuthz *authz.Policy
	// permissive accepts plaintext on the workload's ports.
	permissive bool
}

// translate turns the pushed config into the one the sidecar's engine runs: the workload's
// inbound listeners and routes (with its service's authz), and the outbound routes to every
// mesh service (its attached routes, or a default one) on the explicit outbound listener and on
// one listener per service for intercepted and bound connections.
func translate(in *config.Config, o *Options) (*plan, error) {
	cfg := &config.Config{Version: 1, Admin: config.Admin{Address: "off"}, AccessLog: config.AccessLog{Path: o.AccessLog},
		Authenticators: in.Authenticators, Consumers: in.Consumers, Plans: in.Plans}
	p := &plan{cfg: cfg, targets: map[string]*meshTarget{}, byName: map[string]*meshTarget{}}
	cfg.Telemetry = sidecarTelemetry(in.Telemetry, o)
	own := ownService(in, o)
	if own != nil {
		if own.Inbound != nil && own.Inbound.MTLS == config.MTLSPermissive {
			p.permissive = true
		}
		if own.Authz != nil {
			pol, err := authz.Compile(own.Authz)
			if err != nil {
				return nil, fmt.Errorf("sidecar: service %q authz: %w", own.Name, err)
			}
			p.inboundAuthz = pol
		}
	}
	// Inbound: one listener, route and local service per workload port.
	for _, port := range o.Ports {
		if port.Protocol == config.AppTCP {
			continue // relayed by the inbound front
		}
		ln := inboundPrefix + port.Name
		cfg.Listeners = append(cfg.Listeners, virtualListener(ln, false))
		cfg.Routes = append(cfg.Routes, config.Route{Name: ln, Listeners: []string{ln}, Backends: []config.Backend{{Service: appPrefix + port.Name}}})
		cfg.Services = append(cfg.Services, config.Service{
			Name: appPrefix + port.Name, Protocol: port.Protocol,
			Endpoints: []config.Endpoint{{Address: joinHostPort(o.AppHost, port.Port)}},
		})
	}
	// Outbound.
	cfg.Listeners = append(cfg.Listeners, virtualListener(outboundListener, true))
	attached := map[string][]*config.Route{}
	for i := range in.Routes {
		if r := &in.Routes[i]; r.Service != "" {
			attached[r.Service] = append(attached[r.Service], r)
		}
	}
	for i := range in.Services {
		svc := in.Services[i]
		svc.Inbound = nil
		cfg.Services = append(cfg.Services, svc)
		d := svc.Discovery
		if d == nil {
			continue
		}
		t := &meshTarget{name: svc.Name, key: d.Service + "." + d.Namespace, tcp: svc.Mesh != nil && svc.Mesh.AppProtocol == config.AppTCP}
		p.targets[t.key] = t
		p.byName[t.name] = t
		if t.tcp {
			continue // relayed by the outbound front
		}
		bound := outboundPrefix + svc.Name
		cfg.Listeners = append(cfg.Listeners, virtualListener(bound, true))
		hosts := hostNames(d, o.Namespace)
		routes := attached[svc.Name]
		if len(routes) == 0 {
			routes = []*config.Route{defaultRoute(svc.Name)}
		}
		for _, r := range routes {
			// The same route twice: by host name on the explicit listener, and for any host
			// on the service's own listener (intercepted calls to its virtual IP).
			byHost := *r
			byHost.Name = meshRoutePrefix + svc.Name + ":" + r.Name
			byHost.Service, byHost.Listeners, byHost.Hosts = "", []string{outboundListener}, hosts
			bySvc := *r
			bySvc.Name = meshRoutePrefix + svc.Name + ":" + r.Name + ":bound"
			bySvc.Service, bySvc.Listeners, bySvc.Hosts = "", []string{bound}, nil
			cfg.Routes = append(cfg.Routes, byHost, bySvc)
		}
	}
	sort.SliceStable(cfg.Routes, func(i, j int) bool { return cfg.Routes[i].Name < cfg.Routes[j].Name })
	config.ApplyDefaults(cfg)
	if err := config.Validate(cfg); err != nil {
		return nil, err
	}
	// The inbound routes enforce the service's authz. It was validated as the service's (mesh)
	// policy with the pushed config, where identity rules are allowed; a route's own authz may
	// not match identities, so it is attached after validation.
	if own != nil && own.Authz != nil {
		for i := range cfg.Routes {
			if r := &cfg.Routes[i]; strings.HasPrefix(r.Name, inboundPrefix) {
				a := *own.Authz
				r.Authz = &a
			}
		}
	}
	return p, nil
}

// ownService returns the pushed service the workload belongs to, or nil.
func ownService(in *config.Config, o *Options) *config.Service {
	for i := range in.Services {
		d := in.Services[i].Discovery
		if d != nil && d.Service == o.Service && d.Namespace == o.Namespace {
			return &in.Services[i]
		}
	}
	return nil
}

// defaultRoute sends every call to service name, retrying what never reached it and, for
// idempotent requests, a connection the endpoint closed or reset before answering (a peer
// sidecar that died with calls on its pooled HTTP/2 connection).
func defaultRoute(name string) *config.Route {
	return &config.Route{
		Name:     "default",
		Backends: []config.Backend{{Service: name}},
		Retry: &config.RetryPolicy{Attempts: 3,
			On: []string{config.RetryOnConnectFailure, config.RetryOnRefusedStream, config.RetryOnReset}},
	}
}

// hostNames are the names a workload in namespace ns calls the mesh service d by:
// SERVICE.NAMESPACE.mesh, SERVICE.NAMESPACE and, within its own namespace, SERVICE.
func hostNames(d *config.ServiceDiscovery, ns string) []string {
	h := []string{d.Service + "." + d.Namespace + ".mesh", d.Service + "." + d.Namespace}
	if d.Namespace == ns {
		h = append(h, d.Service)
	}
	return h
}

// virtualListener is a listener the sidecar serves from handed-over connections. Its address
// has port 0 (it binds nothing). Sidecars pass requests on as they came: no body limit, long
// streams allowed; outbound, paths are left as the workload wrote them.
func virtualListener(name string, outbound bool) config.Listener {
	l := config.Listener{Name: name, Address: "127.0.0.1:0", Protocol: config.ProtocolHTTP}
	l.Limits.MaxBodyBytes = -1
	l.Timeouts.Request = 24 * time.Hour
	if outbound {
		l.Paths = config.PathNormalization{KeepSlashes: true, AllowEncodedSlash: true}
	}
	return l
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return fmt.Sprintf("[%s]:%d", host, port)
	}
	return fmt.Sprintf("%s:%d", host, port)
}

// sidecarTelemetry copies the pushed telemetry block; its spans are named after the sidecar's
// service unless the block names one.
func sidecarTelemetry(in *config.Telemetry, o *Options) *config.Telemetry {
	if in == nil || in.Tracing == nil {
		return in
	}
	tr := *in.Tracing
	if tr.ServiceName == "" {
		tr.ServiceName = o.Service
	}
	return &config.Telemetry{Tracing: &tr}
}
