package xds

import (
	"fmt"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/meshgate/meshgate/internal/config"
)

// Translate turns a resolved config into one go-control-plane snapshot at version: a Cluster
// (and, for clusters of IP endpoints, a ClusterLoadAssignment) for every service, and for every
// service with discovery an API Listener and a RouteConfiguration named after its mesh host name
// "SERVICE.NAMESPACE". The snapshot is checked with Consistent. An error names the config object
// that could not be translated.
func Translate(version string, cfg *config.Config) (*cache.Snapshot, error) {
	if cfg == nil {
		return nil, fmt.Errorf("xds: nil config")
	}
	var listeners, routes, clusters, endpoints []types.Resource
	hosts := make(map[string]string) // mesh host name -> config service name
	for i := range cfg.Services {
		svc := &cfg.Services[i]
		c, cla, err := buildCluster(svc)
		if err != nil {
			return nil, fmt.Errorf("xds: service %q: %w", svc.Name, err)
		}
		clusters = append(clusters, c)
		if cla != nil {
			endpoints = append(endpoints, cla)
		}
		if svc.Discovery == nil {
			continue
		}
		host := MeshHost(svc)
		if other, dup := hosts[host]; dup {
			return nil, fmt.Errorf("xds: service %q: mesh host %q is already served by service %q", svc.Name, host, other)
		}
		hosts[host] = svc.Name
		rc, err := buildRouteConfig(cfg, svc, host)
		if err != nil {
			return nil, fmt.Errorf("xds: service %q: %w", svc.Name, err)
		}
		l, err := buildListener(host)
		if err != nil {
			return nil, fmt.Errorf("xds: listener %q: %w", host, err)
		}
		routes = append(routes, rc)
		listeners = append(listeners, l)
	}
	for _, group := range [][]types.Resource{listeners, routes, clusters, endpoints} {
		for _, r := range group {
			if err := validate(r); err != nil {
				return nil, fmt.Errorf("xds: %s %q: %w", typeName(r), cache.GetResourceName(r), err)
			}
		}
	}
	snap, err := cache.NewSnapshot(version, map[resource.Type][]types.Resource{
		resource.ListenerType: listeners,
		resource.RouteType:    routes,
		resource.ClusterType:  clusters,
		resource.EndpointType: endpoints,
	})
	if err != nil {
		return nil, fmt.Errorf("xds: snapshot: %w", err)
	}
	if err := snap.Consistent(); err != nil {
		return nil, fmt.Errorf("xds: snapshot is not consistent: %w", err)
	}
	return snap, nil
}

// MeshHost returns the host name clients call a service with discovery by, "SERVICE.NAMESPACE":
// the name of its Listener and RouteConfiguration and the target of "xds:///SERVICE.NAMESPACE".
func MeshHost(svc *config.Service) string {
	d := svc.Discovery
	name, ns := svc.Name, "default"
	if d != nil && d.Service != "" {
		name = d.Service
	}
	if d != nil && d.Namespace != "" {
		ns = d.Namespace
	}
	return name + "." + ns
}

// validate runs the protoc-gen-validate rules Envoy checks, so a resource Envoy would refuse
// fails here instead of being NACKed.
func validate(r types.Resource) error {
	v, ok := r.(interface{ ValidateAll() error })
	if !ok {
		return nil
	}
	return v.ValidateAll()
}

// typeName names a resource's kind for errors.
func typeName(r types.Resource) string {
	return string(r.ProtoReflect().Descriptor().Name())
}
