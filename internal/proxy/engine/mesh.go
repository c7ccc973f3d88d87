package engine

import (
	"context"
	"fmt"
	"net"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy/cluster"
	"github.com/meshgate/meshgate/internal/proxy/upstream"
)

// MeshDialer opens mutual TLS connections to mesh peers with the proxy's workload identity.
// A proxy on the control plane (a gateway or a sidecar) has one; a gateway run from a file has
// none and so refuses configs with mesh services.
type MeshDialer interface {
	// DialMesh connects to the peer sidecar at addr, which must present m.Identity, and asks it
	// for the workload port m.Port. The returned connection has finished its handshake and
	// negotiated HTTP/2 (or opaque TCP when m.AppProtocol is "tcp").
	DialMesh(ctx context.Context, addr string, m *config.ServiceMesh) (net.Conn, error)
}

// SetMeshDialer gives the engine the proxy's mesh identity. Call it before the first Apply.
func (e *Engine) SetMeshDialer(d MeshDialer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mesh = d
}

// meshDial returns the dial function for calls to svc: nil for plain services, an error when svc
// is a mesh service and the proxy has no mesh identity.
func meshDial(svc *config.Service, d MeshDialer) (upstream.DialFunc, error) {
	m := svc.Mesh
	if m == nil {
		return nil, nil
	}
	if d == nil {
		return nil, fmt.Errorf("service %q is a mesh service (mutual TLS with identity %s), and this proxy has no mesh identity: run it on the control plane", svc.Name, m.Identity)
	}
	mc := *m
	return func(ctx context.Context, addr string) (net.Conn, error) { return d.DialMesh(ctx, addr, &mc) }, nil
}

// Cluster returns the cluster of the service called name in the table, or nil. Sidecars pick
// endpoints from it for opaque TCP, so TCP calls share the balancer, health and outlier state
// of HTTP calls.
func (t *Table) Cluster(name string) *cluster.Cluster {
	if s := t.services[name]; s != nil {
		return s.cluster
	}
	return nil
}

// Dial connects to endpoint addr of the service called name the way its HTTP calls do (mutual
// TLS for a mesh service).
func (t *Table) Dial(ctx context.Context, name, addr string) (net.Conn, error) {
	s := t.services[name]
	if s == nil {
		return nil, fmt.Errorf("engine: no service %q", name)
	}
	if s.dial != nil {
		return s.dial(ctx, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}
