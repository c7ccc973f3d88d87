package fault

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshgate/meshgate/internal/observe/metrics"
)

// Metrics holds the fault policy's collectors. Create one per process with NewMetrics and share
// it among every route's policy and across config reloads.
type Metrics struct {
	// injected counts injected faults by route and kind (delay, abort).
	injected *prometheus.CounterVec
}

// NewMetrics creates the fault policy's collectors and registers them with reg. Called again with
// the same registry it returns collectors that count into the ones registered first.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_fault_injected_total",
		Help: "Faults injected by route and kind (delay, abort).",
	}, []string{"route", "kind"})
	v, err := metrics.Register(reg, v)
	if err != nil {
		panic(err) // a different collector under the same name: a programming error
	}
	return &Metrics{injected: v}
}
