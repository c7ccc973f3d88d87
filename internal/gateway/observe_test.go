package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMetrics checks the request counter's labels for a miss and for a proxied request.
func TestMetrics(t *testing.T) {
	t.Parallel()
	e := startUpstream(t, "echo", upstreamOptions{})
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners:
  - {name: edge, address: "127.0.0.1:0"}
routes:
  - name: api
    match: [{path: {prefix: /api}}]
    backends: [{service: echo}]
services:
  - name: echo
    endpoints: [{address: %q}]
`, e.Addr))
	client := newClient(t)
	base := baseURL(t, gw, "edge")
	if r := get(t, client, base+"/missing"); r.Status != 404 {
		t.Fatalf("miss: status %d", r.Status)
	}
	for range 3 {
		if r := get(t, client, base+"/api/x"); r.Status != 200 {
			t.Fatalf("hit: status %d reason %q", r.Status, r.reason())
		}
	}
	want := []struct {
		labels map[string]string
		value  float64
	}{
		{map[string]string{"listener": "edge", "route": "", "service": "", "code": "404", "reason": "no_route"}, 1},
		{map[string]string{"listener": "edge", "route": "api", "service": "echo", "code": "200", "reason": ""}, 3},
	}
	for _, w := range want {
		// The counter is updated after the response is sent: give it a moment.
		var got float64
		var ok bool
		deadline := time.Now().Add(2 * time.Second)
		for {
			got, ok = metricValue(t, gw, "meshgate_http_requests_total", w.labels)
			if (ok && got == w.value) || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !ok || got != w.value {
			t.Errorf("meshgate_http_requests_total%v = %v (present %v); want %v", w.labels, got, ok, w.value)
		}
	}
	if v, ok := metricValue(t, gw, "meshgate_config_version", map[string]string{}); !ok || v != 1 {
		t.Errorf("meshgate_config_version = %v (present %v); want 1", v, ok)
	}
}

// TestAccessLog checks the access log line of one request, written to a file and flushed by
// Shutdown.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	e := startUpstream(t, "echo", upstreamOptions{})
	path := filepath.Join(t.TempDir(), "access.log")
	cfg := fmt.Sprintf(`version: 1
admin: {address: "off"}
accessLog: {path: %q}
listeners:
  - {name: edge, address: "127.0.0.1:0"}
routes:
  - name: api
    backends: [{service: echo}]
services:
  - name: echo
    endpoints: [{address: %q}]
`, path, e.Addr)
	gw := startGateway(t, cfg)
	client := newClient(t)
	req, err := http.NewRequest(http.MethodPost, baseURL(t, gw, "edge")+"/log/me", bytes.NewReader([]byte("hello")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Request-Id", "log-req-1")
	r := do(t, client, req)
	if r.Status != 200 {
		t.Fatalf("status %d reason %q", r.Status, r.reason())
	}
	client.CloseIdleConnections()
	shutdownGateway(t, gw)

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 1 {
		t.Fatalf("access log has %d lines; want 1:\n%s", len(lines), data)
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &entry); err != nil {
		t.Fatalf("access log line is not JSON: %v\n%s", err, lines[0])
	}
	wantFields := map[string]any{
		"route": "api", "service": "echo", "endpoint": e.Addr, "status": float64(200), "reason": "",
		"request_id": "log-req-1", "bytes_in": float64(5), "bytes_out": float64(len(r.Body)),
		"method": "POST", "path": "/log/me", "listener": "edge",
	}
	for k, want := range wantFields {
		if got, ok := entry[k]; !ok || got != want {
			t.Errorf("access log %s = %#v (present %v); want %#v", k, got, ok, want)
		}
	}
	if d, ok := entry["duration_ms"].(float64); !ok || d <= 0 {
		t.Errorf("access log duration_ms = %#v; want a positive number", entry["duration_ms"])
	}
}
