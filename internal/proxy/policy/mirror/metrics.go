package mirror

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
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
	if err := reg.Register(v); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			panic(err)
		}
		v = are.ExistingCollector.(*prometheus.CounterVec)
	}
	return &Metrics{requests: v}
}
