package store

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	obsmetrics "github.com/meshgate/meshgate/internal/observe/metrics"
)

// Operation results as counted in meshgate_control_store_operations_total.
const (
	resultOK          = "ok"
	resultNotFound    = "not_found"
	resultConflict    = "conflict"
	resultExists      = "exists"
	resultUnavailable = "unavailable"
	resultCanceled    = "canceled"
	resultError       = "error"
)

// metrics counts a store's operations and tracks whether its backend answers.
type metrics struct {
	ops *prometheus.CounterVec
	up  prometheus.Gauge
	// backend labels this store's series ("bolt", "etcd").
	backend string
}

// newMetrics registers the store metrics with reg (nil: unregistered). Several stores may share
// one registry: the second finds the first's collectors.
func newMetrics(reg prometheus.Registerer, backend string) (*metrics, error) {
	ops := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_control_store_operations_total",
		Help: "Store operations by backend, operation and result.",
	}, []string{"backend", "op", "result"})
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshgate_control_store_up",
		Help: "1 when the store's last operation reached its backend, 0 when it found it unavailable.",
	}, []string{"backend"})
	if reg != nil {
		var err error
		if ops, err = obsmetrics.Register(reg, ops); err != nil {
			return nil, err
		}
		if up, err = obsmetrics.Register(reg, up); err != nil {
			return nil, err
		}
	}
	m := &metrics{ops: ops, up: up.WithLabelValues(backend), backend: backend}
	m.up.Set(1)
	return m, nil
}

// observe counts one operation with its outcome and returns err unchanged. Contract outcomes
// (not found, conflict, exists) count as the backend answering.
func (m *metrics) observe(op string, err error) error {
	result := resultOK
	switch {
	case err == nil:
	case errors.Is(err, ErrUnavailable):
		result = resultUnavailable
	case errors.Is(err, ErrNotFound):
		result = resultNotFound
	case errors.Is(err, ErrConflict):
		result = resultConflict
	case errors.Is(err, ErrExists):
		result = resultExists
	case errors.Is(err, context.Canceled):
		result = resultCanceled
	default:
		result = resultError
	}
	m.ops.WithLabelValues(m.backend, op, result).Inc()
	switch result {
	case resultUnavailable, resultError:
		m.up.Set(0)
	case resultCanceled:
	default:
		m.up.Set(1)
	}
	return err
}
