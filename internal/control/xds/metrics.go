package xds

import (
	"github.com/prometheus/client_golang/prometheus"

	obsmetrics "github.com/meshgate/meshgate/internal/observe/metrics"
)

// metrics are the xDS server's collectors.
type metrics struct {
	streams prometheus.Gauge
	nacks   *prometheus.CounterVec
}

// newMetrics creates the collectors and registers them on reg when it is not nil.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshgate_control_xds_streams",
			Help: "xDS streams open (an ADS stream counts once).",
		}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshgate_control_xds_nacks_total",
			Help: "xDS responses clients refused (NACK), by resource type.",
		}, []string{"type"}),
	}
	if reg != nil {
		// A second server on the same registry counts into the first one's collectors.
		m.streams, _ = obsmetrics.Register(reg, m.streams)
		m.nacks, _ = obsmetrics.Register(reg, m.nacks)
	}
	return m
}
