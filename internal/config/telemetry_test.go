package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTelemetry checks the telemetry block's defaults and its errors, located by file and line.
func TestTelemetry(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tel.yaml")
	const head = "version: 1\nlisteners: [{name: web, address: \"127.0.0.1:18080\"}]\n"
	tests := []struct {
		desc     string
		yaml     string
		want     []string
		protocol string
		rate     float64
		insecure bool
	}{
		{desc: "loopback defaults", yaml: "telemetry:\n  tracing: {endpoint: \"127.0.0.1:4317\"}\n", protocol: "grpc", rate: 0.01, insecure: true},
		{desc: "remote host is TLS by default", yaml: "telemetry:\n  tracing: {endpoint: \"otel.example:4317\", sampleRate: 1}\n", protocol: "grpc", rate: 1},
		{desc: "http URL is plaintext", yaml: "telemetry:\n  tracing: {endpoint: \"http://otel.example:4318/v1/traces\", protocol: http, sampleRate: 0}\n", protocol: "http", insecure: true},
		{desc: "https URL", yaml: "telemetry:\n  tracing: {endpoint: \"https://otel.example\", protocol: http}\n", protocol: "http", rate: 0.01},
		{
			desc: "bad values",
			yaml: "telemetry:\n  tracing:\n    endpoint: \"collector:abc\"\n    protocol: zipkin\n    sampleRate: 2\n    timeout: -1s\n",
			want: []string{
				`DIR/tel.yaml:5: telemetry: tracing.endpoint: "collector:abc": the port must be a number in 1..65535`,
				`DIR/tel.yaml:6: telemetry: tracing.protocol: "zipkin" must be "grpc" or "http"`,
				`DIR/tel.yaml:7: telemetry: tracing.sampleRate: must be a number from 0 to 1`,
				`DIR/tel.yaml:8: telemetry: tracing.timeout: must be above 0`,
			},
		},
		{
			desc: "missing endpoint",
			yaml: "telemetry:\n  tracing: {}\n",
			want: []string{`DIR/tel.yaml:4: telemetry: tracing.endpoint: required: the collector's host:port or URL`},
		},
		{
			desc: "grpc URL with a path",
			yaml: "telemetry:\n  tracing: {endpoint: \"https://otel.example:4317/v1/traces\", insecure: true}\n",
			want: []string{
				`DIR/tel.yaml:4: telemetry: tracing.endpoint: "https://otel.example:4317/v1/traces": an OTLP/gRPC endpoint has no path`,
				`DIR/tel.yaml:4: telemetry: tracing.insecure: true contradicts the endpoint's scheme "https"`,
			},
		},
		{desc: "ftp URL", yaml: "telemetry:\n  tracing: {endpoint: \"ftp://h:1\"}\n",
			want: []string{`DIR/tel.yaml:4: telemetry: tracing.endpoint: "ftp://h:1": the scheme must be http or https`}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			c, err := LoadBytes(file, []byte(head+tt.yaml))
			got := strings.ReplaceAll(strings.Join(errorLines(err), "\n"), dir, "DIR")
			if want := strings.Join(tt.want, "\n"); got != want {
				t.Fatalf("got:\n\t%s\nwant:\n\t%s", strings.ReplaceAll(got, "\n", "\n\t"), strings.ReplaceAll(want, "\n", "\n\t"))
			}
			if err != nil {
				return
			}
			tr := c.Telemetry.Tracing
			if tr.Protocol != tt.protocol || *tr.SampleRate != tt.rate || *tr.Insecure != tt.insecure || tr.Timeout != 10*time.Second {
				t.Errorf("got protocol %q rate %v insecure %v timeout %v", tr.Protocol, *tr.SampleRate, *tr.Insecure, tr.Timeout)
			}
		})
	}
}

// TestNoTelemetry checks that a config without the block has no tracing.
func TestNoTelemetry(t *testing.T) {
	c, err := LoadBytes("x.yaml", []byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Telemetry != nil {
		t.Fatalf("telemetry = %+v, want nil", c.Telemetry)
	}
}
