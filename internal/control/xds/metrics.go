package xds

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
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
		m.streams = register(reg, m.streams)
		m.nacks = register(reg, m.nacks)
	}
	return m
}

// register registers c on reg, or returns the collector already registered under its name.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
