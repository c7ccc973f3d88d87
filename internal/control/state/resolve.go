package state

import (
	"fmt"
	"net"
	"sort"
	"strconv"

	"github.com/meshgate/meshgate/internal/config"
)

// Resolve returns the config proxies run: a deep copy of s.Config in which every service with
// discovery also lists the healthy workloads of its mesh service as endpoints (on the named port,
// or the workloads' only port), and every registered mesh service that no service discovers gets
// a service of its own, named "SERVICE.NAMESPACE", with default policies. A mesh service whose
// workloads declare HTTP/2 or gRPC on the chosen port is called with that protocol.
//
// Resolve never fails: a workload whose port cannot be chosen is left out, and Problems says why.
// It is computed once per State and shared by every caller (the push and the xDS server), who
// must not change it.
func (s *State) Resolve() (*config.Config, []Problem) {
	s.resolveOnce.Do(func() { s.resolved, s.problems = s.resolve() })
	return s.resolved, s.problems
}

// resolve does Resolve's work.
func (s *State) resolve() (*config.Config, []Problem) {
	c := copyConfig(s.Config)
	byKey := make(map[string][]*Workload)
	for i := range s.Workloads {
		w := &s.Workloads[i]
		byKey[w.Key()] = append(byKey[w.Key()], w)
	}
	var problems []Problem
	discovered := make(map[string]bool)
	for i := range c.Services {
		svc := &c.Services[i]
		d := svc.Discovery
		if d == nil {
			continue
		}
		key := d.Namespace + "/" + d.Service
		discovered[key] = true
		problems = append(problems, fill(svc, d.Port, byKey[key])...)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		if !discovered[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		w := byKey[k][0]
		svc := config.Service{
			Name:      ImplicitServiceName(w.Service, w.Namespace),
			Discovery: &config.ServiceDiscovery{Service: w.Service, Namespace: w.Namespace},
		}
		config.ApplyServiceDefaults(&svc)
		problems = append(problems, fill(&svc, "", byKey[k])...)
		c.Services = append(c.Services, svc)
	}
	return c, problems
}

// ImplicitServiceName is the config name of a registered mesh service that no service of the
// config discovers: "SERVICE.NAMESPACE".
func ImplicitServiceName(service, namespace string) string { return service + "." + namespace }

// Problem is a workload Resolve could not use.
type Problem struct {
	// Workload is the workload's ID.
	Workload string
	// Service is the config service it was resolved for.
	Service string
	// Reason says why it was left out.
	Reason string
}

func (p Problem) String() string {
	return fmt.Sprintf("workload %s of service %q: %s", p.Workload, p.Service, p.Reason)
}

// fill appends the healthy workloads' endpoints to svc, on the port named port (or each
// workload's only port). When the workloads run sidecars, svc is called through them over mutual
// TLS: the endpoints are the sidecars' inbound ports and svc.Mesh names the identity they must
// present; a workload without a sidecar is then left out, so no call to the service is ever
// plaintext.
func fill(svc *config.Service, port string, ws []*Workload) []Problem {
	var problems []Problem
	var meshID string
	for _, w := range ws {
		if w.Health == HealthHealthy && w.SidecarPort > 0 {
			meshID = w.Identity
			break
		}
	}
	proto, portName := "", ""
	for _, w := range ws {
		if w.Health != HealthHealthy {
			continue
		}
		p, why := choosePort(w, port)
		if why == "" && meshID != "" && w.SidecarPort == 0 {
			why = "it has no sidecar, and the service's other workloads are called through theirs (mutual TLS)"
		}
		if why != "" {
			problems = append(problems, Problem{Workload: w.ID, Service: svc.Name, Reason: why})
			continue
		}
		if proto == "" {
			proto, portName = p.Protocol, p.Name
		}
		target := p.Port
		if meshID != "" {
			target = w.SidecarPort
		}
		for _, a := range w.Addresses {
			svc.Endpoints = append(svc.Endpoints, config.Endpoint{Address: net.JoinHostPort(a, strconv.Itoa(target)), Weight: 1})
		}
	}
	switch proto {
	case PortHTTP2:
		svc.Protocol = config.UpstreamHTTP2
	case PortGRPC:
		svc.Protocol = config.UpstreamGRPC
	}
	if meshID != "" {
		app := proto
		if app == "" {
			app = PortHTTP1
		}
		if port != "" {
			portName = port
		}
		svc.Mesh = &config.ServiceMesh{Identity: meshID, Port: portName, AppProtocol: app}
		svc.HealthCheck = nil // the sidecars' health comes from the registry and outlier detection
	}
	return problems
}

// choosePort returns the workload's port called name, or its only port when name is empty.
func choosePort(w *Workload, name string) (Port, string) {
	if name == "" {
		if len(w.Ports) == 1 {
			return w.Ports[0], ""
		}
		return Port{}, fmt.Sprintf("it has %d ports and the service names none (discovery.port)", len(w.Ports))
	}
	for _, p := range w.Ports {
		if p.Name == name {
			return p, ""
		}
	}
	return Port{}, fmt.Sprintf("it has no port named %q", name)
}
