package auth

import "github.com/prometheus/client_golang/prometheus"

// Metrics count authentication outcomes.
type Metrics struct {
	total *prometheus.CounterVec
}

// NewMetrics registers the authentication metrics with reg (once per registry).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{total: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_auth_total",
		Help: "Authentication outcomes by route, authenticator and result (authenticated, refused, missing, anonymous).",
	}, []string{"route", "authenticator", "result"})}
	reg.MustRegister(m.total)
	return m
}

// count records one outcome; m may be nil.
func (m *Metrics) count(route, authenticator, result string) {
	if m != nil {
		m.total.WithLabelValues(route, authenticator, result).Inc()
	}
}
