package config

import "time"

// Telemetry configures what a proxy reports about the requests it serves beyond metrics and the
// access log. The control plane sends the block to every proxy it configures.
type Telemetry struct {
	// Tracing exports OpenTelemetry spans of every request a proxy serves: one server span per
	// hop and one client span per upstream attempt, with W3C trace context and baggage read from
	// incoming requests and sent upstream. Absent: no tracing, and no cost on the request path.
	Tracing *Tracing `yaml:"tracing,omitempty" json:"tracing,omitempty"`
}

// Tracing protocols (Tracing.Protocol).
const (
	// TracingGRPC exports spans with OTLP over gRPC.
	TracingGRPC = "grpc"
	// TracingHTTP exports spans with OTLP over HTTP (protobuf body).
	TracingHTTP = "http"
)

// Tracing configures OpenTelemetry tracing and where its spans go.
type Tracing struct {
	// Endpoint is the OTLP collector: "host:port", or a URL ("http://host:port",
	// "https://host:port/v1/traces"); a URL's scheme says whether the connection is plaintext.
	// With protocol "http" and no path in the URL, spans go to "/v1/traces". Required.
	Endpoint string `yaml:"endpoint" json:"endpoint"`
	// Protocol is "grpc" (OTLP over gRPC) or "http" (OTLP over HTTP with protobuf bodies).
	// Default "grpc".
	Protocol string `yaml:"protocol,omitempty" json:"protocol,omitempty"`
	// SampleRate is the share of requests that start a trace and are recorded, 0 to 1. A request
	// whose caller sent a sampled W3C traceparent is always recorded, and one whose caller sent
	// an unsampled traceparent never is (parent-based sampling). Default 0.01.
	SampleRate *float64 `yaml:"sampleRate,omitempty" json:"sampleRate,omitempty"`
	// ServiceName is the service.name resource attribute of the spans. Default: "meshgate-gateway"
	// for a gateway, the service a sidecar runs beside for a sidecar.
	ServiceName string `yaml:"serviceName,omitempty" json:"serviceName,omitempty"`
	// Timeout bounds one export of a batch of spans to the collector. Default 10s.
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Insecure sends spans to the collector in plaintext instead of TLS. Default: true when the
	// endpoint is a loopback address or an "http://" URL, false otherwise.
	Insecure *bool `yaml:"insecure,omitempty" json:"insecure,omitempty"`
}
