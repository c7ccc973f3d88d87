package mirror

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshgate/meshgate/internal/observe/metrics"
)

// Metrics holds the mirror policy's collectors. Create one per process with NewMetrics and share
// it among every route's policy and across config reloads.
type Metrics struct {
	// requests counts sampled requests by route and result (sent, failed, dropped, skipped).
	requests *prometheus.CounterVec
}

// NewMetrics creates the mirror policy's collectors and registers them with reg. Called again
// with the same registry it returns collectors that count into the ones registered first.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_mirror_requests_total",
		Help: "Requests sampled for mirroring, by route and result (sent, failed, dropped, skipped).",
	}, []string{"route", "result"})
	v, err := metrics.Register(reg, v)
	if err != nil {
		panic(err) // a different collector under the same name: a programming error
	}
	return &Metrics{requests: v}
}
