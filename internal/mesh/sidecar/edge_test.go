package sidecar

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control"
	"github.com/meshgate/meshgate/internal/control/telemetry"
	"github.com/meshgate/meshgate/internal/gateway"
	"github.com/meshgate/meshgate/internal/observe/record"
)

// relayApp is a workload that calls next through its sidecar (explicit mode, HTTP proxy),
// forwarding the request id and the edge context as an application forwards trace headers;
// with ?forge=1 it sends a context it made up instead.
func relayApp(t *testing.T, name string, proxy func() string, next string) Port {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pu, _ := url.Parse("http://" + proxy())
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
		req, _ := http.NewRequestWithContext(r.Context(), "GET", next, nil)
		req.Header.Set("X-Request-Id", r.Header.Get("X-Request-Id"))
		req.Header.Set("X-Meshgate-Context", r.Header.Get("X-Meshgate-Context"))
		if r.URL.Query().Get("forge") == "1" {
			req.Header.Set("X-Meshgate-Context", "v1.eyJjIjoiYmlnLWJhbmsiLCJlIjo5OTk5OTk5OTk5fQ.AAAA")
		}
		resp, err := c.Do(req)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		_, _ = fmt.Fprintf(w, " via %s", name)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return Port{Name: "http", Port: ln.Addr().(*net.TCPAddr).Port, Protocol: "http1"}
}

// TestEdgeContextAcrossHops: the consumer the gateway authenticated and its edge route reach
// every sidecar hop (records, metrics, impact), and a workload cannot forge them.
func TestEdgeContextAcrossHops(t *testing.T) {
	sum := sha256.Sum256([]byte("acme-secret"))
	m := startMesh(t, `
version: 1
listeners:
  - {name: public, address: "127.0.0.1:0", protocol: http}
authenticators:
  - {name: key, apiKey: {header: X-API-Key}}
consumers:
  - name: acme
    apiKeys: [{sha256: `+hex.EncodeToString(sum[:])+`}]
routes:
  - name: shop-api
    match: [{path: {prefix: /}}]
    auth: {authenticators: [key]}
    backends: [{service: web}]
services:
  - {name: web, discovery: {service: web, namespace: shop}}
  - {name: orders, discovery: {service: orders, namespace: shop}}
`)
	orders := m.sidecar("orders", []Port{app(t, "orders")}, nil)
	var web *Sidecar
	web = m.sidecar("web", []Port{relayApp(t, "web", func() string { return web.OutboundAddr().String() }, "http://orders.shop.mesh/items")}, nil)
	gw, err := gateway.StartControlled(gateway.ControlledOptions{
		Control: m.plane.GRPCAddr().String(), ControlCA: filepath.Join(m.dir, control.BundleFile), JoinToken: m.token,
		DataDir: t.TempDir(), Name: "gateway", Namespace: "shop", ID: "gateway-test",
		Admin: config.Admin{Address: "off"}, AccessLog: config.AccessLog{Path: "off"}, Log: testLog(t).With("proxy", "gateway"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close(context.Background()) })
	var base string
	eventually(t, "the gateway listens", func() bool {
		if a := gw.Addr("public"); a != nil {
			base = "http://" + a.String()
			return true
		}
		return false
	})
	get := func(path, id string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("X-API-Key", "acme-secret")
		req.Header.Set("X-Request-Id", id)
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	eventually(t, "gateway → web → orders answers", func() bool {
		st, body := get("/", "warm")
		return st == 200 && strings.Contains(body, "orders") && strings.Contains(body, "via web")
	})
	if st, body := get("/", "edge-ctx-1"); st != 200 {
		t.Fatalf("call: %d %s", st, body)
	}
	admin := "http://" + m.plane.AdminAddr().String()
	var recs []record.Record
	eventually(t, "every hop's record of the request", func() bool {
		resp, err := http.Get(admin + "/v1/explain/edge-ctx-1")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		recs = nil
		return json.NewDecoder(resp.Body).Decode(&recs) == nil && len(recs) >= 4
	})
	for _, r := range recs {
		if r.Consumer != "acme" || r.EdgeRoute != "shop-api" {
			t.Errorf("%s %s (%s): consumer %q edge route %q, want acme via shop-api at every hop", r.Proxy, r.Direction, r.Route, r.Consumer, r.EdgeRoute)
		}
	}
	// The consumer's metrics at the last hop, by service and route.
	if got := testutil.ToFloat64(orders.gw.Metrics().ConsumerRequests.WithLabelValues("acme", "app:http", "inbound:http", "200")); got < 1 {
		t.Errorf("orders' sidecar counted %v requests for acme", got)
	}

	// A workload that makes up a context: dropped at the next hop, and counted.
	if st, _ := get("/?forge=1", "edge-ctx-forged"); st != 200 {
		t.Fatalf("forged call: %d", st)
	}
	if got := testutil.ToFloat64(web.gw.Metrics().EdgeContextRejected.WithLabelValues("bad_signature")); got < 1 {
		t.Errorf("web's sidecar rejected %v forged contexts, want 1", got)
	}
	eventually(t, "the forged request's records carry no consumer inside the mesh", func() bool {
		resp, err := http.Get(admin + "/v1/explain/edge-ctx-forged")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var rs []record.Record
		if json.NewDecoder(resp.Body).Decode(&rs) != nil || len(rs) < 4 {
			return false
		}
		for _, r := range rs {
			if r.Consumer == "big-bank" {
				t.Fatalf("the forged consumer reached %s %s", r.Proxy, r.Direction)
			}
		}
		return true
	})

	// impact: which consumers a service's calls were made for.
	eventually(t, "impact names acme for orders", func() bool {
		resp, err := http.Get(admin + "/v1/impact?service=orders&since=5m")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var out struct {
			Consumers []telemetry.ImpactRow `json:"consumers"`
		}
		if json.NewDecoder(resp.Body).Decode(&out) != nil {
			return false
		}
		for _, r := range out.Consumers {
			if r.Consumer == "acme" && r.EdgeRoute == "shop-api" && r.Requests >= 2 {
				return true
			}
		}
		return false
	})
}
