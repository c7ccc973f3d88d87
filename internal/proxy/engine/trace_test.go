package engine

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy/http1"
	"github.com/meshgate/meshgate/internal/proxy/listener"
	"github.com/meshgate/meshgate/internal/testotlp"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// flakyOrigin answers 503 to every odd request and 200 to every even one, and keeps the
// traceparent of each request.
type flakyOrigin struct {
	mu      sync.Mutex
	n       int
	parents []string
	baggage []string
}

func (o *flakyOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.n++
	n := o.n
	o.parents = append(o.parents, r.Header.Get("Traceparent"))
	o.baggage = append(o.baggage, r.Header.Get("Baggage"))
	o.mu.Unlock()
	if n%2 == 1 {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok"))
}

func (o *flakyOrigin) seen() (parents, baggage []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.parents...), append([]string(nil), o.baggage...)
}

// serveEngine serves e on a real loopback listener and returns its address.
func serveEngine(t *testing.T, e *Engine) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := listener.New(ln, &listener.Settings{
		ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, RequestTimeout: 10 * time.Second,
		Limits: http1.Limits{MaxHeaderBytes: 65536, MaxHeaderCount: 100}, MaxBodyBytes: 1 << 20,
		MaxConnections: 10, MaxConcurrentStreams: 10,
	}, listener.Options{Name: "edge", Protocol: listener.ProtoHTTP, Handler: e})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = l.Serve()
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String()
}

// startFlakyOrigin serves o on loopback and returns its address.
func startFlakyOrigin(t *testing.T, o *flakyOrigin) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: o, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func tracingConfig(t *testing.T, origin, telemetry string) *config.Config {
	t.Helper()
	yaml := fmt.Sprintf(`version: 1
admin: {address: "off"}
accessLog: {path: "off"}
listeners:
  - {name: edge, address: "127.0.0.1:0"}
routes:
  - name: users
    backends: [{service: users}]
    retry: {attempts: 2, on: [gateway_error], backoff: {base: 1ms, max: 2ms}}
services:
  - name: users
    endpoints: [{address: %q}]
%s`, origin, telemetry)
	cfg, err := config.LoadBytes("trace.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	return cfg
}

// TestTracingRetry checks a retried request's spans on both OTLP transports: one server span
// that continues the caller's trace, and one client span per attempt (attempt number, endpoint,
// outcome), each the parent the upstream was told in its traceparent. Baggage travels on.
func TestTracingRetry(t *testing.T) {
	tests := []struct {
		desc  string
		start func(testing.TB) *testotlp.Receiver
		proto string
	}{
		{"grpc", testotlp.StartGRPC, "grpc"},
		{"http", testotlp.StartHTTP, "http"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			rcv := tt.start(t)
			origin := &flakyOrigin{}
			originAddr := startFlakyOrigin(t, origin)
			e, _ := newTestEngine(t)
			mustApply(t, e, tracingConfig(t, originAddr, fmt.Sprintf(
				"telemetry:\n  tracing: {endpoint: %q, protocol: %s, sampleRate: 0, serviceName: edge-gw}\n", rcv.Endpoint, tt.proto)))
			addr := serveEngine(t, e)

			const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
			const callerSpan = "00f067aa0ba902b7"
			req, _ := http.NewRequest("GET", "http://"+addr+"/users/7", nil)
			req.Header.Set("Traceparent", "00-"+traceID+"-"+callerSpan+"-01") // sampled: honoured at rate 0
			req.Header.Set("Baggage", "tenant=acme")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, want 200 after a retry", resp.StatusCode)
			}
			spans := rcv.Wait(t, 10*time.Second, func(s []testotlp.Span) bool { return len(s) >= 3 })
			var server *testotlp.Span
			var attempts []testotlp.Span
			for i := range spans {
				s := spans[i]
				if s.TraceID != traceID || s.Service != "edge-gw" {
					t.Errorf("span %s: trace %s service %s, want %s edge-gw", s.Name, s.TraceID, s.Service, traceID)
				}
				switch s.Kind {
				case tracepb.Span_SPAN_KIND_SERVER:
					server = &spans[i]
				case tracepb.Span_SPAN_KIND_CLIENT:
					attempts = append(attempts, s)
				}
			}
			if server == nil || len(attempts) != 2 {
				t.Fatalf("want one server span and two client spans:\n%s", testotlp.Format(spans))
			}
			if server.ParentID != callerSpan || server.Name != "users" || server.Attrs["meshgate.route"] != "users" ||
				server.Attrs["http.response.status_code"] != "200" || server.Attrs["meshgate.listener"] != "edge" ||
				server.Attrs["url.path"] != "/users/7" || server.Attrs["http.request.method"] != "GET" {
				t.Errorf("server span: %+v", *server)
			}
			parents, baggage := origin.seen()
			if len(parents) != 2 {
				t.Fatalf("origin saw %d requests, want 2", len(parents))
			}
			for i, a := range attempts {
				want := map[string]string{"meshgate.attempt": fmt.Sprint(i + 1), "server.address": originAddr, "meshgate.service": "users"}
				if i == 0 {
					want["meshgate.outcome"], want["http.response.status_code"] = "retried", "503"
				} else {
					want["meshgate.outcome"], want["http.response.status_code"] = "ok", "200"
				}
				for k, v := range want {
					if a.Attrs[k] != v {
						t.Errorf("attempt %d: %s = %q, want %q", i+1, k, a.Attrs[k], v)
					}
				}
				if a.ParentID != server.SpanID {
					t.Errorf("attempt %d: parent %s, want the server span %s", i+1, a.ParentID, server.SpanID)
				}
				if wantTP := "00-" + traceID + "-" + a.SpanID + "-01"; parents[i] != wantTP {
					t.Errorf("attempt %d: origin got traceparent %q, want %q", i+1, parents[i], wantTP)
				}
				if baggage[i] != "tenant=acme" {
					t.Errorf("attempt %d: origin got baggage %q", i+1, baggage[i])
				}
			}
		})
	}
}

// TestTracingUnsampledParent checks that an unsampled caller is honoured at sample rate 1: no
// span is exported, and the upstream is told the trace with the sampled flag off.
func TestTracingUnsampledParent(t *testing.T) {
	rcv := testotlp.StartGRPC(t)
	origin := &flakyOrigin{n: 1} // answers 200 first
	e, _ := newTestEngine(t)
	mustApply(t, e, tracingConfig(t, startFlakyOrigin(t, origin),
		fmt.Sprintf("telemetry:\n  tracing: {endpoint: %q, sampleRate: 1}\n", rcv.Endpoint)))
	addr := serveEngine(t, e)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Header.Set("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-00")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	parents, _ := origin.seen()
	if len(parents) != 1 || !strings.HasPrefix(parents[0], "00-"+traceID+"-") || !strings.HasSuffix(parents[0], "-00") ||
		strings.Contains(parents[0], "00f067aa0ba902b7") {
		t.Fatalf("origin got traceparent %q, want trace %s, a new span id, flags 00", parents, traceID)
	}
	// A sampled request afterwards is exported; the unsampled one before it must not be.
	resp, err = http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	spans := rcv.Wait(t, 10*time.Second, func(s []testotlp.Span) bool { return len(s) >= 2 })
	for _, s := range spans {
		if s.TraceID == traceID {
			t.Errorf("an unsampled trace was exported: %+v", s)
		}
	}
}

// TestTracingReload checks that a config without the block turns tracing off and one that
// changes it builds a new tracer, while an unchanged block keeps the running one.
func TestTracingReload(t *testing.T) {
	rcv := testotlp.StartGRPC(t)
	e, _ := newTestEngine(t)
	block := fmt.Sprintf("telemetry:\n  tracing: {endpoint: %q, sampleRate: 1}\n", rcv.Endpoint)
	t1 := mustApply(t, e, tracingConfig(t, "127.0.0.1:1", block))
	t2 := mustApply(t, e, tracingConfig(t, "127.0.0.1:1", block))
	if t1.tracing == nil || t2.tracing != t1.tracing {
		t.Fatalf("an unchanged block built a new tracer")
	}
	t3 := mustApply(t, e, tracingConfig(t, "127.0.0.1:1", strings.Replace(block, "sampleRate: 1", "sampleRate: 0.5", 1)))
	if t3.tracing == nil || t3.tracing == t1.tracing {
		t.Fatalf("a changed block kept the old tracer")
	}
	t4 := mustApply(t, e, tracingConfig(t, "127.0.0.1:1", ""))
	if t4.tracing != nil {
		t.Fatalf("tracing stayed on without the block")
	}
}

// TestTracingUnsampledRoot checks a trace that starts unsampled (sample rate 0): no span is
// exported, and the upstream still gets a valid traceparent with the sampled flag off, so that
// the next hop does not start a trace of its own.
func TestTracingUnsampledRoot(t *testing.T) {
	rcv := testotlp.StartGRPC(t)
	origin := &flakyOrigin{n: 1}
	e, _ := newTestEngine(t)
	mustApply(t, e, tracingConfig(t, startFlakyOrigin(t, origin),
		fmt.Sprintf("telemetry:\n  tracing: {endpoint: %q, sampleRate: 0}\n", rcv.Endpoint)))
	addr := serveEngine(t, e)
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	parents, _ := origin.seen()
	if len(parents) != 1 {
		t.Fatalf("origin got traceparents %q, want one", parents)
	}
	tid, sampled, ok := parseTraceparent(parents[0])
	if !ok || sampled || tid == [16]byte{} {
		t.Fatalf("origin got traceparent %q: valid %v, sampled %v", parents[0], ok, sampled)
	}
	time.Sleep(2 * tracingBatchTimeout)
	if spans := rcv.Spans(); len(spans) != 0 {
		t.Fatalf("%d spans exported at sample rate 0", len(spans))
	}
}

func TestParseTraceparent(t *testing.T) {
	const tid = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, tt := range []struct {
		in            string
		sampled, want bool
	}{
		{"00-" + tid + "-00f067aa0ba902b7-01", true, true},
		{"00-" + tid + "-00f067aa0ba902b7-00", false, true},
		{"01-" + tid + "-00f067aa0ba902b7-01-future", true, true},
		{"00-" + tid + "-00f067aa0ba902b7-01-extra", false, false}, // version 00 is exactly 55 long
		{"ff-" + tid + "-00f067aa0ba902b7-01", false, false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false, false},
		{"00-" + tid + "-0000000000000000-01", false, false},
		{"00-" + tid + "-00f067aa0ba902bz-01", false, false},
		{"", false, false},
	} {
		_, sampled, ok := parseTraceparent(tt.in)
		if ok != tt.want || ok && sampled != tt.sampled {
			t.Errorf("parseTraceparent(%q) = sampled %v, ok %v; want %v, %v", tt.in, sampled, ok, tt.sampled, tt.want)
		}
	}
}
