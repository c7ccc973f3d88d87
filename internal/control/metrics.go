package control

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// controlMetrics are the control plane's own collectors; the store, push and xDS servers
// register theirs on the same registry.
type controlMetrics struct {
	reg           *prometheus.Registry
	authFailures  *prometheus.CounterVec
	signs         *prometheus.CounterVec
	registrations *prometheus.CounterVec
	applies       *prometheus.CounterVec
	workloads     prometheus.Gauge
	stateVersion  prometheus.Gauge
	configVersion prometheus.Gauge
	leader        prometheus.Gauge
	bundleRoots   prometheus.Gauge
	resolveIssues prometheus.Gauge
}

// newControlMetrics registers the collectors on reg, or on a new registry (with the Go runtime and
// process collectors) when reg is nil.
func newControlMetrics(reg *prometheus.Registry) *controlMetrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &controlMetrics{reg: reg}
	m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_control_auth_failures_total",
		Help: "Control-plane calls refused for want of a valid identity or join token, by RPC and reason.",
	}, []string{"rpc", "reason"})
	m.signs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_control_certificates_signed_total",
		Help: "Certificate requests by result (signed, refused).",
	}, []string{"result"})
	m.registrations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_control_registry_calls_total",
		Help: "Successful registry calls by operation (register, heartbeat, deregister).",
	}, []string{"op"})
	m.applies = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_control_config_applies_total",
		Help: "Config changes submitted to the control plane by result (applied, invalid, conflict, failed).",
	}, []string{"result"})
	m.workloads = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshgate_control_workloads",
		Help: "Registered workloads that are alive.",
	})
	m.stateVersion = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshgate_control_state_version",
		Help: "Version of the state this replica serves; it grows with every config, registry or bundle change.",
	})
	m.configVersion = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshgate_control_config_version",
		Help: "Version of the stored config this replica serves.",
	})
	m.leader = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshgate_control_leader",
		Help: "1 while this replica leads (runs CA rotation), 0 otherwise.",
	})
	m.bundleRoots = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshgate_control_trust_bundle_roots",
		Help: "Root certificates in the trust bundle (2 during a root rotation).",
	})
	m.resolveIssues = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshgate_control_resolve_problems",
		Help: "Registered workloads left out of their service's endpoints (for example, no matching port).",
	})
	m.reg.MustRegister(m.authFailures, m.signs, m.registrations, m.applies, m.workloads, m.stateVersion,
		m.configVersion, m.leader, m.bundleRoots, m.resolveIssues)
	return m
}
