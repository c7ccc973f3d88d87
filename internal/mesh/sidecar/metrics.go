package sidecar

import (
	"github.com/prometheus/client_golang/prometheus"

	obsmetrics "github.com/meshgate/meshgate/internal/observe/metrics"
)

// metrics are the sidecar's own counters (the engine counts requests as a gateway does).
type metrics struct {
	// refused counts connections the fronts refused, by direction and reason code.
	refused *prometheus.CounterVec
	// tcp counts relayed opaque TCP connections by direction, service and result.
	tcp *prometheus.CounterVec
	// tcpBytes counts relayed bytes by direction and service.
	tcpBytes *prometheus.CounterVec
	// ready is 1 while the sidecar is ready for traffic.
	ready prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshgate_sidecar_refused_connections_total",
			Help: "Connections the sidecar refused, by direction (inbound, outbound) and reason code.",
		}, []string{"direction", "reason"}),
		tcp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshgate_sidecar_tcp_connections_total",
			Help: "Opaque TCP connections relayed, by direction, service and result (ok, or a reason code).",
		}, []string{"direction", "service", "result"}),
		tcpBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshgate_sidecar_tcp_bytes_total",
			Help: "Bytes relayed on opaque TCP connections, by direction and service.",
		}, []string{"direction", "service"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshgate_sidecar_ready",
			Help: "1 while the sidecar has a config and a certificate and is not draining.",
		}),
	}
	var err error
	if m.refused, err = obsmetrics.Register(reg, m.refused); err != nil {
		return nil, err
	}
	if m.tcp, err = obsmetrics.Register(reg, m.tcp); err != nil {
		return nil, err
	}
	if m.tcpBytes, err = obsmetrics.Register(reg, m.tcpBytes); err != nil {
		return nil, err
	}
	if m.ready, err = obsmetrics.Register(reg, m.ready); err != nil {
		return nil, err
	}
	return m, nil
}
