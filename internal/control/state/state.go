// Package state is the control plane's model of the mesh at one instant: the stored config
// revision, the registered workloads and the trust bundle, and the one resolution of them into the
// config each proxy runs (mesh services' endpoints filled in from the registry). The push server
// and the xDS server both translate from a resolved State, so they never disagree.
package state

import (
	"sync"
	"time"

	"github.com/meshgate/meshgate/internal/config"
)

// Workload health as registered and heartbeated.
const (
	HealthHealthy   = "healthy"   // serving; gets traffic.
	HealthUnhealthy = "unhealthy" // reported failing; gets no traffic.
	HealthDraining  = "draining"  // shutting down; gets no new traffic.
)

// Port protocols a workload may declare.
const (
	PortHTTP1 = "http1"
	PortHTTP2 = "http2"
	PortGRPC  = "grpc"
	PortTCP   = "tcp"
)

// Port is one port a workload serves.
type Port struct {
	// Name identifies the port within the workload.
	Name string `json:"name"`
	// Port is the TCP port number.
	Port int `json:"port"`
	// Protocol is PortHTTP1, PortHTTP2, PortGRPC or PortTCP.
	Protocol string `json:"protocol"`
}

// Workload is one registered instance of a mesh service.
type Workload struct {
	// ID is unique per instance.
	ID string `json:"id"`
	// Service and Namespace name the mesh service the instance belongs to.
	Service   string `json:"service"`
	Namespace string `json:"namespace"`
	// Version is the instance's version label.
	Version string `json:"version,omitempty"`
	// Labels are free-form labels.
	Labels map[string]string `json:"labels,omitempty"`
	// Addresses are the IP addresses the instance is reachable at.
	Addresses []string `json:"addresses"`
	// Ports are the ports it serves.
	Ports []Port `json:"ports"`
	// Health is HealthHealthy, HealthUnhealthy or HealthDraining.
	Health string `json:"health"`
	// SidecarPort is the port of the workload's sidecar inbound listener (mutual TLS); 0 when
	// the workload has no sidecar.
	SidecarPort int `json:"sidecarPort,omitempty"`
	// Identity is the SPIFFE ID of the client certificate the instance registered with.
	Identity string `json:"identity"`
	// Registered is when the instance first registered; Expires is when its registration lapses
	// without another heartbeat.
	Registered time.Time `json:"registered"`
	Expires    time.Time `json:"expires"`
}

// Key returns "namespace/service", the mesh service the workload belongs to.
func (w *Workload) Key() string { return w.Namespace + "/" + w.Service }

// State is everything the control plane serves, at one version.
type State struct {
	// Version increases with every change of the config, the workloads or the bundle.
	Version uint64
	// ConfigVersion is the stored config revision in Config.
	ConfigVersion uint64
	// Config is the stored config, defaulted and validated. Never nil.
	Config *config.Config
	// Workloads are the live registrations, sorted by ID.
	Workloads []Workload
	// TrustBundle is the PEM of the roots every proxy trusts.
	TrustBundle []byte
	// TrustDomain is the mesh's SPIFFE trust domain.
	TrustDomain string
	// Revocations are the revoked identities every proxy refuses.
	Revocations []Revocation
	// EdgeKey is the key proxies sign and verify the edge context with.
	EdgeKey []byte

	resolveOnce sync.Once
	resolved    *config.Config
	problems    []Problem
}
