package gateway_test

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/gateway"
	"github.com/meshgate/meshgate/internal/observe/metrics"
	"github.com/meshgate/meshgate/internal/testotlp"
)

// BenchmarkProxyHTTP1Tracing is BenchmarkProxyHTTP1 (3-byte body) with tracing off (no
// telemetry block: allocs/op must equal BenchmarkProxyHTTP1's), at a 1% sample rate and at 100%,
// exporting to an OTLP/gRPC receiver on loopback. Requests carry no traceparent: each starts a
// trace, as at the edge.
func BenchmarkProxyHTTP1Tracing(b *testing.B) {
	cases := []struct {
		name  string
		block string // "" : tracing off
	}{
		{"off", ""},
		{"sample=0.01", "sampleRate: 0.01"},
		{"sample=1", "sampleRate: 1"},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			origin := rawOrigin(b, []byte("abc"))
			telemetry := ""
			if tc.block != "" {
				rcv := testotlp.StartGRPC(b)
				telemetry = fmt.Sprintf("telemetry:\n  tracing: {endpoint: %q, %s}\n", rcv.Endpoint, tc.block)
			}
			addr := benchTracingGateway(b, origin, telemetry)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET /api/users/7 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			br := bufio.NewReaderSize(c, 32<<10)
			roundTrip := func() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				n := -1
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						b.Fatal(err)
					}
					if len(line) <= 2 {
						break
					}
					if bytes.HasPrefix(line, []byte("Content-Length: ")) {
						n, _ = strconv.Atoi(string(bytes.TrimSpace(line[16:])))
					}
				}
				if _, err := br.Discard(n); err != nil {
					b.Fatal(err)
				}
			}
			for range 100 {
				roundTrip()
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU(b)
			for b.Loop() {
				roundTrip()
			}
			// CPU of the whole process (client, proxy, origin and receiver) per request: the
			// differences between the cases are the proxy's tracing.
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// benchTracingGateway is benchGateway with a telemetry block appended to the config.
func benchTracingGateway(b *testing.B, origin, telemetry string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf(`version: 1
admin: {address: "off"}
accessLog: {path: "off"}
listeners: [{name: public, address: %q}]
routes:
  - name: api
    match: [{path: {prefix: /api}}]
    filters:
      - requestHeaders: {set: {x-team: bench}}
      - responseHeaders: {set: {x-served-by: meshgate}}
    backends: [{service: origin}]
services:
  - name: origin
    endpoints: [{address: %q}]
%s`, addr, origin, telemetry)
	gw := gateway.New(slog.New(slog.DiscardHandler), metrics.New())
	if _, err := gw.LoadBytes("bench.yaml", []byte(cfg)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = gw.Shutdown(b.Context()) })
	return addr
}

// processCPU returns the user and system CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
