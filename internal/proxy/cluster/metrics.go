package cluster

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshgate/meshgate/internal/observe/metrics"
)

// Circuit-breaker thresholds, as they appear in errors and in the "threshold" label of
// meshgate_circuit_breaker_rejected_total.
const (
	ThresholdMaxRequests        = "max_requests"         // CircuitBreaker.MaxRequests in flight.
	ThresholdMaxRetries         = "max_retries"          // CircuitBreaker.MaxRetries in flight.
	ThresholdMaxPendingRequests = "max_pending_requests" // CircuitBreaker.MaxPendingRequests waiting.
	ThresholdMaxConnections     = "max_connections"      // CircuitBreaker.MaxConnections open.
	ThresholdOpen               = "consecutive_failures" // the breaker opened after consecutive failures.
	ThresholdHalfOpen           = "half_open_requests"   // a half-open breaker's probes are all out.
)

// Outlier-ejection reasons, as they appear in the "reason" label of
// meshgate_outlier_ejections_total.
const (
	EjectConsecutive5xx           = "consecutive_5xx"
	EjectConsecutiveGatewayErrors = "consecutive_gateway_errors"
	EjectSuccessRate              = "success_rate"
	EjectConnectFailures          = "consecutive_connect_failures"
)

// Metrics are the Prometheus collectors of circuit breakers and outlier detection, shared by
// every cluster of a process. Create them with NewMetrics.
type Metrics struct {
	// BreakerOpen is 1 while a service's breaker is open or half-open after consecutive
	// failures, and 0 while it is closed. Labels: service.
	BreakerOpen *prometheus.GaugeVec
	// BreakerRejected counts requests a service's breaker refused, by the threshold that refused
	// them. Labels: service, threshold.
	BreakerRejected *prometheus.CounterVec
	// Ejections counts outlier ejections, by the rule that ejected. Labels: service, reason.
	Ejections *prometheus.CounterVec
	// Ejected is 1 while an endpoint is ejected and 0 otherwise. Labels: service, endpoint.
	Ejected *prometheus.GaugeVec
}

// NewMetrics returns the collectors registered on reg. The first call for a registry registers
// them; later calls return the ones already registered, so every cluster of a process, across
// config reloads, shares one set.
func NewMetrics(reg *prometheus.Registry) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("cluster: metrics: nil registry")
	}
	m := &Metrics{}
	var err error
	if m.BreakerOpen, err = metrics.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshgate_circuit_breaker_open",
		Help: "1 while the service's circuit breaker is open or half-open after consecutive failures, 0 while closed.",
	}, []string{"service"})); err != nil {
		return nil, err
	}
	if m.BreakerRejected, err = metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_circuit_breaker_rejected_total",
		Help: "Requests the service's circuit breaker refused with 503 circuit_open, by the threshold that refused them.",
	}, []string{"service", "threshold"})); err != nil {
		return nil, err
	}
	if m.Ejections, err = metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_outlier_ejections_total",
		Help: "Endpoints ejected by outlier detection, by service and rule (consecutive_5xx, consecutive_gateway_errors, success_rate).",
	}, []string{"service", "reason"})); err != nil {
		return nil, err
	}
	if m.Ejected, err = metrics.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshgate_outlier_ejected",
		Help: "1 while outlier detection keeps the endpoint out of load balancing, 0 otherwise.",
	}, []string{"service", "endpoint"})); err != nil {
		return nil, err
	}
	return m, nil
}
