package mtls

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshgate/meshgate/internal/observe/metrics"
)

// Metrics count mesh handshakes by direction and outcome.
type Metrics struct {
	handshakes *prometheus.CounterVec
}

// NewMetrics registers the handshake counter with reg (or shares the one already there).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	c, err := metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_mesh_handshakes_total",
		Help: "Mutual TLS handshakes between mesh proxies by direction (inbound, outbound) and result (ok, or why it failed).",
	}, []string{"direction", "result"}))
	if err != nil {
		return nil, err
	}
	return &Metrics{handshakes: c}, nil
}

// inbound counts an inbound handshake; why is "" on success.
func (m *Metrics) inbound(why string) { m.count("inbound", why) }

// outbound counts a failed outbound handshake.
func (m *Metrics) outbound(why string) { m.count("outbound", why) }

func (m *Metrics) count(dir, why string) {
	if m == nil {
		return
	}
	if why == "" {
		why = "ok"
	}
	m.handshakes.WithLabelValues(dir, why).Inc()
}
