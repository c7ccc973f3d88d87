package config

import (
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// DefaultNamespace is the mesh namespace of a service or workload that names none.
const DefaultNamespace = "default"

// meshDefaults fills the defaults of a service's discovery and inbound authz.
func meshDefaults(svc *Service) {
	if d := svc.Discovery; d != nil {
		setDefault(&d.Service, svc.Name)
		setDefault(&d.Namespace, DefaultNamespace)
	}
	if svc.Authz != nil {
		setDefault(&svc.Authz.Default, defaultAuthzDefaultAction)
	}
	if m := svc.Mesh; m != nil {
		setDefault(&m.AppProtocol, UpstreamHTTP1)
	}
	if in := svc.Inbound; in != nil {
		setDefault(&in.MTLS, MTLSStrict)
	}
}

// meshBlocks checks a service's mesh and inbound blocks.
func meshBlocks(s scope, svc *Service) {
	if m := svc.Mesh; m != nil {
		ms := s.key("mesh")
		if id, err := spiffeid.FromString(m.Identity); err != nil {
			ms.key("identity").errorf("%q is not a SPIFFE ID (%v)", m.Identity, err)
		} else if id.Path() == "" {
			ms.key("identity").errorf("%q names a trust domain, not a workload", m.Identity)
		}
		if m.Port != "" && !IsMeshName(m.Port) {
			ms.key("port").errorf("%q is not a valid port name", m.Port)
		}
		checkOneOf(ms.key("appProtocol"), m.AppProtocol, UpstreamHTTP1, UpstreamHTTP2, UpstreamGRPC, AppTCP)
		if svc.HealthCheck != nil {
			s.key("healthCheck").errorf("a mesh service's endpoints are sidecars; their health comes from the registry and outlier detection, not probes")
		}
	}
	if in := svc.Inbound; in != nil {
		is := s.key("inbound")
		checkOneOf(is.key("mtls"), in.MTLS, MTLSStrict, MTLSPermissive)
		if svc.Discovery == nil {
			is.errorf("only a mesh service (with discovery) has sidecars to configure")
		}
	}
}

// discovery checks a service's discovery block and records the mesh service it names.
func (v *validator) discovery(s scope, svc *Service) {
	d := svc.Discovery
	if d == nil {
		return
	}
	ds := s.key("discovery")
	if !IsMeshName(d.Service) {
		ds.key("service").errorf("%q is not a valid mesh service name (lower-case letters, digits and '-', at most 63)", d.Service)
	}
	if !IsMeshName(d.Namespace) {
		ds.key("namespace").errorf("%q is not a valid namespace (lower-case letters, digits and '-', at most 63)", d.Namespace)
	}
	if d.Port != "" && !IsMeshName(d.Port) {
		ds.key("port").errorf("%q is not a valid port name", d.Port)
	}
	key := d.Namespace + "/" + d.Service
	if first, dup := v.meshServices[key]; dup {
		ds.errorf("mesh service %s is already discovered by %s", key, v.where(first))
	} else {
		v.meshServices[key] = ds.path
	}
}

// routeParent checks a route attached to a mesh service.
func (v *validator) routeParent(s scope, r *Route) {
	if r.Service == "" {
		return
	}
	ss := s.key("service")
	if len(r.Listeners) > 0 {
		ss.errorf("a route attached to a service is not served on listeners; remove listeners")
	}
	svc := v.serviceByName(r.Service)
	switch {
	case svc == nil:
		ss.errorf("service %q is not defined", r.Service)
	case svc.Discovery == nil:
		ss.errorf("service %q has no discovery, so no sidecar calls it as a mesh service", r.Service)
	}
}

// serviceByName returns the service called name, or nil.
func (v *validator) serviceByName(name string) *Service {
	for i := range v.c.Services {
		if v.c.Services[i].Name == name {
			return &v.c.Services[i]
		}
	}
	return nil
}

// checkPeerConditions checks a rule's identity and namespace conditions, which only a service's
// (mesh) policy may use: at the edge there is no mesh peer to match, and a rule whose only
// condition could never be evaluated must not allow everything.
func checkPeerConditions(rs scope, rule *AuthzRule, mesh bool) {
	if !mesh {
		if len(rule.Identities) > 0 {
			rs.key("identities").errorf("only a service's authz (enforced by its sidecars) can match mesh identities")
		}
		if len(rule.Namespaces) > 0 {
			rs.key("namespaces").errorf("only a service's authz (enforced by its sidecars) can match mesh namespaces")
		}
		return
	}
	for i, id := range rule.Identities {
		if !validIdentityPattern(id) {
			rs.key("identities").index(i).errorf(`%q is not a SPIFFE ID ("spiffe://TRUST-DOMAIN/ns/NAMESPACE/sa/SERVICE", or a prefix ending in "/*")`, id)
		}
	}
	for i, ns := range rule.Namespaces {
		if !IsMeshName(ns) {
			rs.key("namespaces").index(i).errorf("%q is not a valid namespace", ns)
		}
	}
}

// validIdentityPattern reports whether p is a SPIFFE ID, or one followed by "/*".
func validIdentityPattern(p string) bool {
	p = strings.TrimSuffix(p, "/*")
	_, err := spiffeid.FromString(p)
	return err == nil
}

// IsMeshName reports whether s is a valid mesh service, namespace or port name: a DNS label
// (RFC 1123) of lower-case letters, digits and '-', 1 to 63 long, not starting or ending in '-'.
func IsMeshName(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
