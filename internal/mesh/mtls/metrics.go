package mtls

import "github.com/prometheus/client_golang/prometheus"

// Metrics count mesh handshakes by direction and outcome.
type Metrics struct {
	handshakes *prometheus.CounterVec
}

// NewMetrics registers the handshake counter with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_mesh_handshakes_total",
		Help: "Mutual TLS handshakes between mesh proxies by direction (inbound, outbound) and result (ok, or why it failed).",
	}, []string{"direction", "result"})}
	if err := reg.Register(m.handshakes); err != nil {
		var are prometheus.AlreadyRegisteredError
		if ok := asAlreadyRegistered(err, &are); ok {
			m.handshakes = are.ExistingCollector.(*prometheus.CounterVec)
			return m, nil
		}
		return nil, err
	}
	return m, nil
}

func asAlreadyRegistered(err error, are *prometheus.AlreadyRegisteredError) bool {
	e, ok := err.(prometheus.AlreadyRegisteredError)
	if ok {
		*are = e
	}
	return ok
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
