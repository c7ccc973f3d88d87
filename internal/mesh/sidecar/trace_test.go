package sidecar

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control"
	"github.com/meshgate/meshgate/internal/gateway"
	"github.com/meshgate/meshgate/internal/testotlp"
)

// forwarder starts workload a: for every request it calls service b through its own sidecar's
// outbound port (*outbound), copying the request's traceparent onto the call, and answers with
// b's answer.
func forwarder(t *testing.T, outbound *atomic.Value) Port {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, _ := outbound.Load().(string)
		req, _ := http.NewRequestWithContext(r.Context(), "GET", "http://"+addr+"/from-a", nil)
		req.Host = "b.shop.mesh"
		if tp := r.Header.Get("Traceparent"); tp != "" {
			req.Header.Set("Traceparent", tp)
		}
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		w.WriteHeader(resp.StatusCode)
		_, _ = fmt.Fprintf(w, "a -> %s", b)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return Port{Name: "http", Port: ln.Addr().(*net.TCPAddr).Port, Protocol: "http1"}
}

// TestTraceAcrossTheMesh sends a request through a controlled gateway to service a, whose
// workload calls service b, with tracing pushed by the control plane to every proxy, and checks
// that the spans the OTLP collector receives form one trace: gateway server → gateway attempt →
// sidecar a inbound → its call to the workload → sidecar a outbound → its attempt → sidecar b
// inbound → its call to the workload, each the parent of the next.
func TestTraceAcrossTheMesh(t *testing.T) {
	rcv := testotlp.StartGRPC(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := ln.Addr().String()
	_ = ln.Close()
	m := startMesh(t, fmt.Sprintf(`
version: 1
listeners: [{name: public, address: %q}]
routes:
  - {name: edge-a, listeners: [public], backends: [{service: a}]}
services:
  - name: a
    discovery: {service: a, namespace: shop}
  - name: b
    discovery: {service: b, namespace: shop}
telemetry:
  tracing: {endpoint: %q, sampleRate: 1}
`, public, rcv.Endpoint))
	m.sidecar("b", []Port{app(t, "b")}, nil)
	var aOut atomic.Value
	a := m.sidecar("a", []Port{forwarder(t, &aOut)}, nil)
	aOut.Store(a.OutboundAddr().String())

	gw, err := gateway.StartControlled(gateway.ControlledOptions{
		Control: m.plane.GRPCAddr().String(), ControlCA: filepath.Join(m.dir, control.BundleFile), JoinToken: m.token,
		DataDir: t.TempDir(), Name: "gateway", Namespace: "shop",
		Admin: config.Admin{Address: "off"}, AccessLog: config.AccessLog{Path: "off"}, Log: testLog(t).With("component", "gateway"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close(context.Background()) })
	select {
	case <-gw.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("gateway not ready")
	}

	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var body string
	var traceID string
	eventually(t, "the gateway reaches b through a", func() bool {
		resp, err := c.Get("http://" + public + "/hello")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		if resp.StatusCode != 200 {
			return false
		}
		return true
	})
	if body != "a -> b /from-a" {
		t.Fatalf("body %q", body)
	}
	// The last call's trace: the gateway server span of the last request is its root. Earlier
	// calls may have failed while the mesh settled, so look for a complete chain.
	type step struct {
		service string
		kind    tracepb.Span_SpanKind
		name    string
	}
	want := []step{
		{"meshgate-gateway", tracepb.Span_SPAN_KIND_SERVER, "edge-a"},
		{"meshgate-gateway", tracepb.Span_SPAN_KIND_CLIENT, "a"},
		{"a", tracepb.Span_SPAN_KIND_SERVER, "inbound:http"},
		{"a", tracepb.Span_SPAN_KIND_CLIENT, "app:http"},
		{"a", tracepb.Span_SPAN_KIND_SERVER, ""}, // the outbound route to b
		{"a", tracepb.Span_SPAN_KIND_CLIENT, "b"},
		{"b", tracepb.Span_SPAN_KIND_SERVER, "inbound:http"},
		{"b", tracepb.Span_SPAN_KIND_CLIENT, "app:http"},
	}
	var chain []testotlp.Span
	findChain := func(spans []testotlp.Span) bool {
		for _, root := range spans {
			if root.ParentID != "" || root.Service != want[0].service || root.Kind != want[0].kind {
				continue
			}
			got := []testotlp.Span{root}
			for i := 1; i < len(want); i++ {
				var next *testotlp.Span
				for j := range spans {
					s := &spans[j]
					if s.TraceID == root.TraceID && s.ParentID == got[i-1].SpanID && s.Service == want[i].service && s.Kind == want[i].kind &&
						(want[i].name == "" || s.Name == want[i].name) {
						next = s
						break
					}
				}
				if next == nil {
					break
				}
				got = append(got, *next)
			}
			if len(got) == len(want) {
				chain, traceID = got, root.TraceID
				return true
			}
		}
		return false
	}
	rcv.Wait(t, 15*time.Second, findChain)
	t.Logf("trace %s:\n%s", traceID, testotlp.Format(chain))
	gwServer, aIn, bIn := chain[0], chain[2], chain[6]
	if gwServer.Attrs["meshgate.route"] != "edge-a" || gwServer.Attrs["http.response.status_code"] != "200" || gwServer.Attrs["url.path"] != "/hello" {
		t.Errorf("gateway server span: %v", gwServer.Attrs)
	}
	if chain[1].Attrs["meshgate.attempt"] != "1" || chain[1].Attrs["meshgate.outcome"] != "ok" || chain[1].Attrs["server.address"] == "" {
		t.Errorf("gateway client span: %v", chain[1].Attrs)
	}
	if aIn.Attrs["meshgate.peer"] != "spiffe://mesh.local/ns/shop/sa/gateway" {
		t.Errorf("sidecar a inbound span: peer %q", aIn.Attrs["meshgate.peer"])
	}
	if bIn.Attrs["meshgate.peer"] != "spiffe://mesh.local/ns/shop/sa/a" || bIn.Attrs["url.path"] != "/from-a" {
		t.Errorf("sidecar b inbound span: %v", bIn.Attrs)
	}
}
