package engine

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/observe/metrics"
	"github.com/meshgate/meshgate/internal/proxy/cluster"
)

// endpointsConfig returns a config with services "users" (extra is spliced into it) and "orders"
// (unchanged), and a route to each. Each address becomes an endpoint of users; none leaves users
// with discovery and no endpoints.
func endpointsConfig(t *testing.T, extra string, addrs ...string) *config.Config {
	t.Helper()
	var eps []string
	for _, a := range addrs {
		eps = append(eps, fmt.Sprintf("{address: %q}", a))
	}
	yaml := fmt.Sprintf(`version: 1
admin: {address: "off"}
accessLog: {path: "off"}
listeners:
  - {name: edge, address: "127.0.0.1:0"}
routes:
  - name: users
    match: [{path: {prefix: /users}}]
    backends: [{service: users}]
  - name: orders
    backends: [{service: orders}]
services:
  - name: users
    discovery: {}
    endpoints: [%s]
%s
  - name: orders
    endpoints: [{address: "10.0.9.1:80"}]
`, strings.Join(eps, ", "), extra)
	cfg, err := config.LoadBytes("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	return cfg
}

func newTestEngine(t *testing.T) (*Engine, *metrics.Registry) {
	t.Helper()
	m := metrics.New()
	e := New(slog.New(slog.DiscardHandler), m)
	t.Cleanup(e.Close)
	return e, m
}

func mustApply(t *testing.T, e *Engine, cfg *config.Config) *Table {
	t.Helper()
	tb, err := e.Apply(cfg)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return tb
}

// healthSeries returns the endpoints of svc with a meshgate_endpoint_healthy series.
func healthSeries(t *testing.T, m *metrics.Registry, svc string) []string {
	t.Helper()
	mfs, err := m.Prom.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "meshgate_endpoint_healthy" {
			continue
		}
		for _, x := range mf.GetMetric() {
			var s, ep string
			for _, l := range x.GetLabel() {
				switch l.GetName() {
				case "service":
					s = l.GetValue()
				case "endpoint":
					ep = l.GetValue()
				}
			}
			if s == svc {
				out = append(out, ep)
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestApplyEndpointsOnlyKeepsClusterAndTransport(t *testing.T) {
	outlier := "    outlierDetection: {consecutive5xx: 3}\n    healthCheck: {interval: 1h, tcp: {}}"
	tests := []struct {
		desc        string
		extra       string // service settings spliced into users, the same before and after
		before      []string
		after       []string
		nextExtra   string // when set, users' settings after the change
		wantSame    bool
		wantSeries  []string
		wantHealthy int
	}{
		{desc: "endpoint added", before: []string{"10.0.0.1:80"}, after: []string{"10.0.0.1:80", "10.0.0.2:80"},
			wantSame: true, wantSeries: []string{"10.0.0.1:80", "10.0.0.2:80"}, wantHealthy: 2},
		{desc: "endpoint removed", before: []string{"10.0.0.1:80", "10.0.0.2:80"}, after: []string{"10.0.0.2:80"},
			wantSame: true, wantSeries: []string{"10.0.0.2:80"}, wantHealthy: 1},
		{desc: "weight changed", before: []string{"10.0.0.1:80"}, after: []string{"10.0.0.1:80"}, nextExtra: "",
			wantSame: true, wantSeries: []string{"10.0.0.1:80"}, wantHealthy: 1},
		{desc: "with health check and outlier detection", extra: outlier, before: []string{"10.0.0.1:80", "10.0.0.2:80"},
			after: []string{"10.0.0.3:80", "10.0.0.2:80"}, wantSame: true, wantSeries: []string{"10.0.0.2:80", "10.0.0.3:80"}, wantHealthy: 2},
		{desc: "to no endpoints", before: []string{"10.0.0.1:80"}, after: nil, wantSame: true, wantSeries: nil},
		{desc: "from no endpoints", before: nil, after: []string{"10.0.0.1:80"}, wantSame: true, wantSeries: []string{"10.0.0.1:80"}, wantHealthy: 1},
		{desc: "policy changed too: a new cluster", before: []string{"10.0.0.1:80", "10.0.0.2:80"}, after: []string{"10.0.0.2:80"},
			nextExtra: "    loadBalancer: {policy: random}", wantSame: false, wantSeries: []string{"10.0.0.2:80"}, wantHealthy: 1},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			e, m := newTestEngine(t)
			t1 := mustApply(t, e, endpointsConfig(t, tt.extra, tt.before...))
			next := tt.extra
			if tt.nextExtra != "" {
				next = tt.nextExtra
			}
			cfg2 := endpointsConfig(t, next, tt.after...)
			if tt.desc == "weight changed" {
				cfg2.Services[0].Endpoints[0].Weight = 5
			}
			s1, o1 := t1.services["users"], t1.services["orders"]
			var kept *cluster.Endpoint
			for _, ep := range s1.cluster.Endpoints() {
				if slices.Contains(tt.after, ep.Address) {
					kept = ep
				}
			}
			t2 := mustApply(t, e, cfg2)
			s2 := t2.services["users"]
			if t2.services["orders"] != o1 {
				t.Fatal("the unchanged service was rebuilt")
			}
			same := s2 == s1 && s2.cluster == s1.cluster && s2.transport == s1.transport
			if same != tt.wantSame {
				t.Fatalf("service kept %v, want %v", same, tt.wantSame)
			}
			if s2.fingerprint != cluster.Fingerprint(&cfg2.Services[0]) {
				t.Fatal("the kept service's fingerprint is stale")
			}
			if tt.wantSame && kept != nil && !slices.Contains(s2.cluster.Endpoints(), kept) {
				t.Fatalf("endpoint %s was replaced, not kept", kept.Address)
			}
			if tt.desc == "weight changed" && s2.cluster.Endpoints()[0].Weight() != 5 {
				t.Fatalf("weight %d, want 5", s2.cluster.Endpoints()[0].Weight())
			}
			var got []string
			for _, ep := range s2.cluster.Endpoints() {
				got = append(got, ep.Address)
			}
			if !slices.Equal(got, tt.after) {
				t.Fatalf("endpoints %v, want %v", got, tt.after)
			}
			if s2.cluster.HealthyCount() != tt.wantHealthy {
				t.Fatalf("%d in rotation, want %d", s2.cluster.HealthyCount(), tt.wantHealthy)
			}
			if series := healthSeries(t, m, "users"); !slices.Equal(series, tt.wantSeries) {
				t.Fatalf("meshgate_endpoint_healthy series %v, want %v", series, tt.wantSeries)
			}
			// Applying the same config again changes nothing.
			if t3 := mustApply(t, e, endpointsConfig(t, next, tt.after...)); tt.desc != "weight changed" && t3.services["users"] != s2 {
				t.Fatal("re-applying the same config rebuilt the service")
			}
		})
	}
}

func TestApplyFailureLeavesEndpointsAlone(t *testing.T) {
	// A config refused by compile (here: a route to a service that does not exist) must not
	// update endpoints it would have updated.
	e, _ := newTestEngine(t)
	t1 := mustApply(t, e, endpointsConfig(t, "", "10.0.0.1:80"))
	bad := endpointsConfig(t, "", "10.0.0.2:80")
	bad.Routes[1].Backends[0].Service = "missing"
	if _, err := e.Apply(bad); err == nil {
		t.Fatal("Apply accepted a route to a missing service")
	}
	eps := t1.services["users"].cluster.Endpoints()
	if len(eps) != 1 || eps[0].Address != "10.0.0.1:80" {
		t.Fatalf("endpoints changed by a refused config: %v", eps)
	}
	if e.Table() != t1 {
		t.Fatal("a refused config replaced the table")
	}
}

func TestRemovedServiceSeriesDeleted(t *testing.T) {
	e, m := newTestEngine(t)
	mustApply(t, e, endpointsConfig(t, "", "10.0.0.1:80", "10.0.0.2:80"))
	// A settings change builds a new cluster: the series of the address it no longer has go.
	mustApply(t, e, endpointsConfig(t, "    loadBalancer: {policy: random}", "10.0.0.2:80"))
	if got := healthSeries(t, m, "users"); !slices.Equal(got, []string{"10.0.0.2:80"}) {
		t.Fatalf("series %v after a settings change", got)
	}
}
