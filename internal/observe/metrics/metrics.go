// Package metrics defines meshgate's Prometheus metrics. Collectors live on a Registry that is
// created once per process and passed in; nothing here is global.
package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Registry holds every collector meshgate exports.
type Registry struct {
	// Prom is the Prometheus registry the admin listener serves on /metrics.
	Prom *prometheus.Registry

	// Requests counts downstream requests by listener, route, service, status code and reason.
	Requests *prometheus.CounterVec
	// RequestDuration observes the whole exchange time by route and service.
	RequestDuration *prometheus.HistogramVec
	// UpstreamDuration observes the time from sending to the upstream to the end of its response.
	UpstreamDuration *prometheus.HistogramVec
	// UpstreamConnections is the number of open upstream connections by service.
	UpstreamConnections *prometheus.GaugeVec
	// UpstreamConnects counts upstream connection attempts by service and result.
	UpstreamConnects *prometheus.CounterVec
	// DownstreamConnections is the number of open downstream connections by listener.
	DownstreamConnections *prometheus.GaugeVec
	// DownstreamShed counts connections closed at once because the listener had its maximum open.
	DownstreamShed *prometheus.CounterVec
	// EndpointHealthy is 1 for a healthy endpoint and 0 for an unhealthy one.
	EndpointHealthy *prometheus.GaugeVec
	// Reloads counts config reloads by result ("success" or "failure").
	Reloads *prometheus.CounterVec
	// ConfigVersion is the version number of the running config.
	ConfigVersion prometheus.Gauge
	// ConfigLastReload is the Unix time of the last successful config load.
	ConfigLastReload prometheus.Gauge
	// Retries counts retries sent by route, service and the reason for the retry.
	Retries *prometheus.CounterVec
	// RetryBudgetExhausted counts retries a retry budget refused, by route and service.
	RetryBudgetExhausted *prometheus.CounterVec
	// RateLimitDecisions counts rate-limit decisions by route and decision (admitted, limited,
	// unavailable, failed_open).
	RateLimitDecisions *prometheus.CounterVec
	// AuthzDecisions counts authorization decisions by route, deciding rule and decision (allow,
	// deny).
	AuthzDecisions *prometheus.CounterVec
	// ConsumerRequests counts requests of authenticated consumers by consumer, route and status
	// code.
	ConsumerRequests *prometheus.CounterVec
	// EdgeContextRejected counts edge context headers dropped by reason.
	EdgeContextRejected *prometheus.CounterVec
	// ConcurrencyLimit is each service's adaptive concurrency limit.
	ConcurrencyLimit *prometheus.GaugeVec
	// ConcurrencyLimited counts requests the adaptive concurrency limit refused, by service.
	ConcurrencyLimited *prometheus.CounterVec
}

// durationBuckets spans 100µs to about 30s, the range a proxy sees.
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// New creates and registers every collector, plus the Go runtime and process collectors.
func New() *Registry {
	r := &Registry{Prom: prometheus.NewRegistry()}
	r.Requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_http_requests_total",
		Help: "Downstream HTTP requests by listener, route, service, status code and reason code.",
	}, []string{"listener", "route", "service", "code", "reason"})
	r.RequestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "meshgate_http_request_duration_seconds",
		Help:    "Time from the complete request head to the end of the response, by route and service.",
		Buckets: durationBuckets,
	}, []string{"route", "service"})
	r.UpstreamDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "meshgate_upstream_request_duration_seconds",
		Help:    "Time from sending a request upstream to the end of its response, by service.",
		Buckets: durationBuckets,
	}, []string{"service"})
	r.UpstreamConnections = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshgate_upstream_connections",
		Help: "Open upstream connections by service.",
	}, []string{"service"})
	r.UpstreamConnects = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_upstream_connects_total",
		Help: "Upstream connection attempts by service and result (success, failure).",
	}, []string{"service", "result"})
	r.DownstreamShed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_downstream_connections_shed_total",
		Help: "Downstream connections closed at once, unserved, because the listener had maxConnections open, by listener.",
	}, []string{"listener"})
	r.DownstreamConnections = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshgate_downstream_connections",
		Help: "Open downstream connections by listener.",
	}, []string{"listener"})
	r.EndpointHealthy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshgate_endpoint_healthy",
		Help: "1 when the endpoint passes health checks, 0 when it is out of rotation.",
	}, []string{"service", "endpoint"})
	r.Reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_config_reloads_total",
		Help: "Config loads by result (success, failure).",
	}, []string{"result"})
	r.ConfigVersion = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshgate_config_version",
		Help: "Version number of the running config; it grows by one with every accepted change.",
	})
	r.ConfigLastReload = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshgate_config_last_reload_success_timestamp_seconds",
		Help: "Unix time of the last accepted config.",
	})
	r.Retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_retry_attempts_total",
		Help: "Retries sent, by route, service and reason (the failure retried: status, upstream_reset, ...).",
	}, []string{"route", "service", "reason"})
	r.RetryBudgetExhausted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_retry_budget_exhausted_total",
		Help: "Retries not sent because the retry budget was spent, by route and service.",
	}, []string{"route", "service"})
	r.RateLimitDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_ratelimit_decisions_total",
		Help: "Rate-limit decisions by route and decision (admitted, limited, unavailable, failed_open).",
	}, []string{"route", "decision"})
	r.AuthzDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_authz_decisions_total",
		Help: "Authorization decisions by route, deciding rule and decision (allow, deny).",
	}, []string{"route", "rule", "decision"})
	r.ConsumerRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_consumer_requests_total",
		Help: "Requests made for edge consumers by consumer, service, route and status code, at the gateway and (with the consumer the edge decided, carried in the signed edge context) at every sidecar hop.",
	}, []string{"consumer", "service", "route", "code"})
	r.EdgeContextRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_edge_context_rejected_total",
		Help: "Edge context headers a sidecar dropped, by reason (bad_signature, expired, malformed, no_key, other_request).",
	}, []string{"reason"})
	r.ConcurrencyLimit = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshgate_adaptive_concurrency_limit",
		Help: "The adaptive concurrency limit of each service that has one.",
	}, []string{"service"})
	r.ConcurrencyLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_adaptive_concurrency_limited_total",
		Help: "Requests the adaptive concurrency limit refused with 503 concurrency_limited, by service.",
	}, []string{"service"})
	r.Prom.MustRegister(r.Retries, r.RetryBudgetExhausted, r.RateLimitDecisions, r.AuthzDecisions, r.ConsumerRequests, r.EdgeContextRejected,
		r.ConcurrencyLimit, r.ConcurrencyLimited,
		r.Requests, r.RequestDuration, r.UpstreamDuration, r.UpstreamConnections,
		r.UpstreamConnects, r.DownstreamConnections, r.DownstreamShed, r.EndpointHealthy, r.Reloads, r.ConfigVersion,
		r.ConfigLastReload,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// StatusCode returns the decimal text of a status code without allocating for common codes.
func StatusCode(code int) string {
	if code >= 100 && code < 600 {
		return statusText[code-100]
	}
	return strconv.Itoa(code)
}

var statusText = func() (s [500]string) {
	for i := range s {
		s[i] = strconv.Itoa(i + 100)
	}
	return s
}()
