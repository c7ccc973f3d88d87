package fault

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
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
	if err := reg.Register(v); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			panic(err)
		}
		v = are.ExistingCollector.(*prometheus.CounterVec)
	}
	return &Metrics{injected: v}
}
