package push

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the push server's collectors.
type metrics struct {
	streams   prometheus.Gauge
	responses prometheus.Counter
	nacks     prometheus.Counter
	duration  prometheus.Histogram
}

// newMetrics creates the collectors and registers them on reg (when not nil); stale counts the
// proxies whose ACK is overdue, at scrape time.
func newMetrics(reg prometheus.Registerer, stale func() float64) *metrics {
	m := &metrics{
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshgate_control_push_streams",
			Help: "Config push streams open (one per connected proxy).",
		}),
		responses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshgate_control_push_responses_total",
			Help: "Config push responses sent to proxies.",
		}),
		nacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshgate_control_push_nacks_total",
			Help: "Config push responses proxies refused (NACK).",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "meshgate_control_push_duration_seconds",
			Help:    "Time from a state update to a response carrying it being sent to a proxy.",
			Buckets: []float64{.01, .025, .05, .1, .15, .2, .3, .5, .75, 1, 1.5, 2.5, 5, 10},
		}),
	}
	if reg == nil {
		return m
	}
	staleGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "meshgate_control_push_stale_proxies",
		Help: "Proxies whose ACK of a config push is overdue.",
	}, stale)
	m.streams = register(reg, m.streams)
	m.responses = register(reg, m.responses)
	m.nacks = register(reg, m.nacks)
	m.duration = register(reg, m.duration)
	_ = register[prometheus.Collector](reg, staleGauge)
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
