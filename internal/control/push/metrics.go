package push

import (
	"github.com/prometheus/client_golang/prometheus"

	obsmetrics "github.com/meshgate/meshgate/internal/observe/metrics"
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
	// A second server on the same registry counts into the first one's collectors.
	m.streams, _ = obsmetrics.Register(reg, m.streams)
	m.responses, _ = obsmetrics.Register(reg, m.responses)
	m.nacks, _ = obsmetrics.Register(reg, m.nacks)
	m.duration, _ = obsmetrics.Register(reg, m.duration)
	_, _ = obsmetrics.Register[prometheus.Collector](reg, staleGauge)
	return m
}
