package sidecar

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
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
	for _, c := range []prometheus.Collector{m.refused, m.tcp, m.tcpBytes, m.ready} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}
