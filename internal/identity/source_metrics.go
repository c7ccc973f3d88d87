package identity

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshgate/meshgate/internal/observe/metrics"
)

// sourceMetrics are a Source's metrics; without a Registerer they are kept but not exported.
type sourceMetrics struct {
	expiry   prometheus.Gauge
	renewals *prometheus.CounterVec
}

func newSourceMetrics(reg prometheus.Registerer) (*sourceMetrics, error) {
	m := &sourceMetrics{
		expiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshgate_identity_certificate_expiry_timestamp_seconds",
			Help: "When the workload certificate expires, in seconds since the Unix epoch.",
		}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshgate_identity_renewals_total",
			Help: "Certificate requests (the first and every renewal), by result: success or failure.",
		}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.expiry, err = metrics.Register(reg, m.expiry); err != nil {
		return nil, err
	}
	if m.renewals, err = metrics.Register(reg, m.renewals); err != nil {
		return nil, err
	}
	return m, nil
}
