package xds

import (
	"strconv"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/meshgate/meshgate/internal/config"
)

func load(t *testing.T, yaml string) *config.Config {
	t.Helper()
	c, err := config.LoadBytes("mesh.yaml", []byte("version: 1\n"+yaml))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// translate translates and checks the snapshot is consistent.
func translate(t *testing.T, cfg *config.Config) *cache.Snapshot {
	t.Helper()
	snap, err := Translate("v1", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Consistent(); err != nil {
		t.Fatalf("snapshot not consistent: %v", err)
	}
	return snap
}

func get[T proto.Message](t *testing.T, snap *cache.Snapshot, typ, name string) T {
	t.Helper()
	r, ok := snap.GetResources(typ)[name]
	if !ok {
		t.Fatalf("no %s %q; have %v", shortType(typ), name, keys(snap.GetResources(typ)))
	}
	return r.(T)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestTranslateLoadBalancer(t *testing.T) {
	tests := []struct {
		lb       string
		want     clusterv3.Cluster_LbPolicy
		hashHead string // the default route's hash policy header, for hashing policies
	}{
		{"", clusterv3.Cluster_ROUND_ROBIN, ""},
		{"{policy: round_robin}", clusterv3.Cluster_ROUND_ROBIN, ""},
		{"{policy: least_request}", clusterv3.Cluster_LEAST_REQUEST, ""},
		{"{policy: random}", clusterv3.Cluster_RANDOM, ""},
		{"{policy: ring_hash, hash: {header: X-User}}", clusterv3.Cluster_RING_HASH, "x-user"},
		{"{policy: maglev, hash: {header: x-session}}", clusterv3.Cluster_MAGLEV, "x-session"},
	}
	for _, tc := range tests {
		t.Run(tc.lb, func(t *testing.T) {
			lb := ""
			if tc.lb != "" {
				lb = "    loadBalancer: " + tc.lb + "\n"
			}
			snap := translate(t, load(t, "services:\n  - name: users\n    discovery: {service: users, namespace: shop}\n"+lb))
			c := get[*clusterv3.Cluster](t, snap, resource.ClusterType, "users")
			if c.GetLbPolicy() != tc.want {
				t.Errorf("lb policy = %v, want %v", c.GetLbPolicy(), tc.want)
			}
			if tc.want == clusterv3.Cluster_RING_HASH && c.GetRingHashLbConfig().GetHashFunction() != clusterv3.Cluster_RingHashLbConfig_XX_HASH {
				t.Errorf("ring hash config = %v", c.GetRingHashLbConfig())
			}
			rc := get[*routev3.RouteConfiguration](t, snap, resource.RouteType, "users.shop")
			routes := rc.GetVirtualHosts()[0].GetRoutes()
			def := routes[len(routes)-1].GetRoute()
			if def.GetCluster() != "users" {
				t.Errorf("default route cluster = %q", def.GetCluster())
			}
			got := ""
			if hp := def.GetHashPolicy(); len(hp) == 1 {
				got = hp[0].GetHeader().GetHeaderName()
			}
			if got != tc.hashHead {
				t.Errorf("hash policy header = %q, want %q", got, tc.hashHead)
			}
		})
	}
}

func TestTranslateMeshService(t *testing.T) {
	snap := translate(t, load(t, `
services:
  - name: users
    protocol: grpc
    discovery: {service: users, namespace: shop}
    pool: {connectTimeout: 750ms}
`))
	l := get[*listenerv3.Listener](t, snap, resource.ListenerType, "users.shop")
	hcm := &hcmv3.HttpConnectionManager{}
	if err := l.GetApiListener().GetApiListener().UnmarshalTo(hcm); err != nil {
		t.Fatalf("api listener: %v", err)
	}
	if hcm.GetRds().GetRouteConfigName() != "users.shop" || hcm.GetRds().GetConfigSource().GetAds() == nil {
		t.Errorf("rds = %v", hcm.GetRds())
	}
	if f := hcm.GetHttpFilters(); len(f) != 1 || f[0].GetName() != "envoy.filters.http.router" {
		t.Errorf("http filters = %v", f)
	}
	rc := get[*routev3.RouteConfiguration](t, snap, resource.RouteType, "users.shop")
	if d := rc.GetVirtualHosts()[0].GetDomains(); len(d) != 2 || d[0] != "users.shop" || d[1] != "users.shop:*" {
		t.Errorf("domains = %v", d)
	}
	c := get[*clusterv3.Cluster](t, snap, resource.ClusterType, "users")
	if c.GetType() != clusterv3.Cluster_EDS || c.GetEdsClusterConfig().GetEdsConfig().GetAds() == nil {
		t.Errorf("cluster discovery = %v %v", c.GetType(), c.GetEdsClusterConfig())
	}
	if c.GetConnectTimeout().AsDuration() != 750*time.Millisecond {
		t.Errorf("connect timeout = %v", c.GetConnectTimeout().AsDuration())
	}
	if _, ok := c.GetTypedExtensionProtocolOptions()[httpProtocolOptionsKey]; !ok {
		t.Errorf("a grpc service's cluster has no HTTP/2 protocol options")
	}
	cla := get[*endpointv3.ClusterLoadAssignment](t, snap, resource.EndpointType, "users")
	if len(cla.GetEndpoints()) != 0 {
		t.Errorf("no workloads, yet endpoints %v", cla.GetEndpoints())
	}
}

func TestTranslateNoMeshServices(t *testing.T) {
	snap := translate(t, load(t, `
services:
  - name: web
    endpoints: [{address: "10.0.0.1:80"}]
`))
	if n := len(snap.GetResources(resource.ListenerType)) + len(snap.GetResources(resource.RouteType)); n != 0 {
		t.Errorf("%d listeners and routes for a config without mesh services", n)
	}
	get[*clusterv3.Cluster](t, snap, resource.ClusterType, "web")
	get[*endpointv3.ClusterLoadAssignment](t, snap, resource.EndpointType, "web")

	empty := translate(t, &config.Config{Version: 1})
	for _, typ := range []string{resource.ListenerType, resource.RouteType, resource.ClusterType, resource.EndpointType} {
		if n := len(empty.GetResources(typ)); n != 0 {
			t.Errorf("empty config: %d %s", n, shortType(typ))
		}
	}
}

func TestTranslateEndpoints(t *testing.T) {
	cfg := load(t, `
services:
  - name: ips
    endpoints:
      - {address: "10.0.0.1:8080", weight: 3}
      - {address: "[fd00::2]:9090"}
  - name: dns
    endpoints: [{address: "db.internal:5432"}, {address: "db2.internal:5432"}]
  - name: onedns
    endpoints: [{address: "cache.internal:6379"}]
`)
	snap := translate(t, cfg)
	cla := get[*endpointv3.ClusterLoadAssignment](t, snap, resource.EndpointType, "ips")
	if len(cla.GetEndpoints()) != 1 || cla.GetEndpoints()[0].GetLoadBalancingWeight().GetValue() != 1 {
		t.Fatalf("localities = %v (want one, weight 1)", cla.GetEndpoints())
	}
	var got []string
	for _, e := range cla.GetEndpoints()[0].GetLbEndpoints() {
		sa := e.GetEndpoint().GetAddress().GetSocketAddress()
		got = append(got, sa.GetAddress()+"|"+itoa(sa.GetPortValue())+"|"+itoa(e.GetLoadBalancingWeight().GetValue()))
	}
	if strings.Join(got, " ") != "10.0.0.1|8080|3 fd00::2|9090|1" {
		t.Errorf("endpoints = %v", got)
	}
	if _, ok := snap.GetResources(resource.EndpointType)["dns"]; ok {
		t.Errorf("a host name service has an EDS assignment")
	}
	if c := get[*clusterv3.Cluster](t, snap, resource.ClusterType, "dns"); c.GetType() != clusterv3.Cluster_STRICT_DNS || len(c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()) != 2 {
		t.Errorf("dns cluster = %v", c)
	}
	if c := get[*clusterv3.Cluster](t, snap, resource.ClusterType, "onedns"); c.GetType() != clusterv3.Cluster_LOGICAL_DNS {
		t.Errorf("one host name: cluster type %v, want LOGICAL_DNS", c.GetType())
	}

	for _, bad := range []string{"10.0.0.1", "10.0.0.1:0", "10.0.0.1:99999", ":80", "10.0.0.1:http"} {
		cfg := &config.Config{Version: 1, Services: []config.Service{
			{Name: "ok", Endpoints: []config.Endpoint{{Address: "10.0.0.9:80"}}},
			{Name: "broken", Endpoints: []config.Endpoint{{Address: bad}}},
		}}
		_, err := Translate("v", cfg)
		if err == nil || !strings.Contains(err.Error(), `service "broken"`) || !strings.Contains(err.Error(), "endpoints[0]") {
			t.Errorf("address %q: error %v, want one naming service \"broken\" endpoints[0]", bad, err)
		}
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func TestTranslateResilience(t *testing.T) {
	snap := translate(t, load(t, `
services:
  - name: users
    discovery: {service: users, namespace: shop}
    circuitBreaker: {maxConnections: 100, maxPendingRequests: 50, maxRequests: 200, maxRetries: 4}
    outlierDetection:
      consecutive5xx: 7
      consecutiveGatewayErrors: 3
      interval: 2s
      baseEjectionTime: 15s
      maxEjectionTime: 2m
      maxEjectionPercent: 30
      panicThreshold: 40
      successRate: {minimumHosts: 3, requestVolume: 50, stdevFactor: 1.9}
    healthCheck: {http: {path: /healthz, expectedStatuses: [200, 204]}, interval: 3s, timeout: 1s}
  - name: quiet
    discovery: {service: quiet}
    outlierDetection: {consecutive5xx: 0}
`))
	c := get[*clusterv3.Cluster](t, snap, resource.ClusterType, "users")
	th := c.GetCircuitBreakers().GetThresholds()
	if len(th) != 1 || th[0].GetMaxConnections().GetValue() != 100 || th[0].GetMaxPendingRequests().GetValue() != 50 ||
		th[0].GetMaxRequests().GetValue() != 200 || th[0].GetMaxRetries().GetValue() != 4 {
		t.Errorf("circuit breakers = %v", th)
	}
	od := c.GetOutlierDetection()
	checks := []struct {
		name      string
		got, want uint32
	}{
		{"consecutive_5xx", od.GetConsecutive_5Xx().GetValue(), 7},
		{"enforcing_consecutive_5xx", od.GetEnforcingConsecutive_5Xx().GetValue(), 100},
		{"consecutive_gateway_failure", od.GetConsecutiveGatewayFailure().GetValue(), 3},
		{"enforcing_consecutive_gateway_failure", od.GetEnforcingConsecutiveGatewayFailure().GetValue(), 100},
		{"max_ejection_percent", od.GetMaxEjectionPercent().GetValue(), 30},
		{"enforcing_success_rate", od.GetEnforcingSuccessRate().GetValue(), 100},
		{"success_rate_minimum_hosts", od.GetSuccessRateMinimumHosts().GetValue(), 3},
		{"success_rate_request_volume", od.GetSuccessRateRequestVolume().GetValue(), 50},
		{"success_rate_stdev_factor", od.GetSuccessRateStdevFactor().GetValue(), 1900},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %d, want %d", ck.name, ck.got, ck.want)
		}
	}
	if od.GetInterval().AsDuration() != 2*time.Second || od.GetBaseEjectionTime().AsDuration() != 15*time.Second || od.GetMaxEjectionTime().AsDuration() != 2*time.Minute {
		t.Errorf("outlier durations = %v %v %v", od.GetInterval(), od.GetBaseEjectionTime(), od.GetMaxEjectionTime())
	}
	if p := c.GetCommonLbConfig().GetHealthyPanicThreshold().GetValue(); p != 40 {
		t.Errorf("panic threshold = %v", p)
	}
	hc := c.GetHealthChecks()
	if len(hc) != 1 || hc[0].GetHttpHealthCheck().GetPath() != "/healthz" || len(hc[0].GetHttpHealthCheck().GetExpectedStatuses()) != 2 ||
		hc[0].GetInterval().AsDuration() != 3*time.Second || hc[0].GetTimeout().AsDuration() != time.Second {
		t.Errorf("health checks = %v", hc)
	}

	q := get[*clusterv3.Cluster](t, snap, resource.ClusterType, "quiet").GetOutlierDetection()
	if q.GetEnforcingConsecutive_5Xx().GetValue() != 0 || q.GetEnforcingSuccessRate().GetValue() != 0 {
		t.Errorf("consecutive5xx 0 should turn every rule off: %v", q)
	}
	if get[*listenerv3.Listener](t, snap, resource.ListenerType, "quiet.default") == nil {
		t.Errorf("namespace should default to \"default\"")
	}
}

func TestTranslateRoutes(t *testing.T) {
	cfg := load(t, `
routes:
  - name: catch-all-canary
    service: users
    match: [{headers: [{name: X-Canary, value: "yes"}]}]
    backends: [{service: users, weight: 90}, {service: users-canary, weight: 10}]
    timeout: 3s
    retry: {attempts: 3, on: [5xx, retriable_grpc], grpcStatuses: [unavailable, "4", not_found], perTryTimeout: 1s, backoff: {base: 10ms, max: 100ms}}
  - name: admin
    service: users
    match:
      - {path: {prefix: /admin}, method: POST}
      - {path: {exact: /login}}
      - {path: {regex: "/users/[0-9]+"}, query: [{name: debug, present: true}]}
    backends: [{service: users-canary}]
  - name: edge
    backends: [{service: users}]
services:
  - name: users
    discovery: {service: users, namespace: shop}
  - name: users-canary
    endpoints: [{address: "10.0.0.5:80"}]
`)
	snap := translate(t, cfg)
	rc := get[*routev3.RouteConfiguration](t, snap, resource.RouteType, "users.shop")
	routes := rc.GetVirtualHosts()[0].GetRoutes()
	var got []string
	for _, r := range routes {
		got = append(got, r.GetName()+" "+matchString(r.GetMatch()))
	}
	want := []string{
		"admin path=/login",
		"admin regex=/users/[0-9]+ query=debug",
		"admin path=/admin h=:method",
		"admin prefix=/admin/ h=:method",
		"catch-all-canary prefix=/ h=x-canary",
		"default prefix=/",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("routes in order:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(routes) != len(want) {
		t.FailNow()
	}
	if c := routes[0].GetRoute().GetCluster(); c != "users-canary" {
		t.Errorf("admin cluster = %q", c)
	}
	canary := routes[4].GetRoute()
	wc := canary.GetWeightedClusters().GetClusters()
	if len(wc) != 2 || wc[0].GetName() != "users" || wc[0].GetWeight().GetValue() != 90 || wc[1].GetName() != "users-canary" || wc[1].GetWeight().GetValue() != 10 {
		t.Errorf("weighted clusters = %v", wc)
	}
	if canary.GetTimeout().AsDuration() != 3*time.Second || canary.GetMaxStreamDuration().GetMaxStreamDuration().AsDuration() != 3*time.Second {
		t.Errorf("timeout = %v, max stream duration = %v", canary.GetTimeout(), canary.GetMaxStreamDuration())
	}
	rp := canary.GetRetryPolicy()
	if rp.GetRetryOn() != "5xx,unavailable,deadline-exceeded" || rp.GetNumRetries().GetValue() != 2 ||
		rp.GetPerTryTimeout().AsDuration() != time.Second || rp.GetRetryBackOff().GetBaseInterval().AsDuration() != 10*time.Millisecond ||
		rp.GetRetryBackOff().GetMaxInterval().AsDuration() != 100*time.Millisecond {
		t.Errorf("retry policy = %v", rp)
	}
	hm := routes[4].GetMatch().GetHeaders()[0]
	if hm.GetStringMatch().GetExact() != "yes" {
		t.Errorf("header match = %v", hm)
	}
	if _, ok := snap.GetResources(resource.RouteType)["edge"]; ok {
		t.Errorf("an edge route became a route configuration")
	}
}

// matchString renders a route match compactly for comparisons.
func matchString(m *routev3.RouteMatch) string {
	var b strings.Builder
	switch {
	case m.GetPath() != "":
		b.WriteString("path=" + m.GetPath())
	case m.GetSafeRegex() != nil:
		b.WriteString("regex=" + m.GetSafeRegex().GetRegex())
	default:
		b.WriteString("prefix=" + m.GetPrefix())
	}
	for _, h := range m.GetHeaders() {
		b.WriteString(" h=" + h.GetName())
	}
	for _, q := range m.GetQueryParameters() {
		b.WriteString(" query=" + q.GetName())
	}
	return b.String()
}

func TestTranslateErrors(t *testing.T) {
	tests := []struct {
		desc string
		cfg  *config.Config
		want string
	}{
		{"two services serve one mesh host", &config.Config{Version: 1, Services: []config.Service{
			{Name: "a", Discovery: &config.ServiceDiscovery{Service: "x", Namespace: "ns"}},
			{Name: "b", Discovery: &config.ServiceDiscovery{Service: "x", Namespace: "ns"}},
		}}, `service "b": mesh host "x.ns" is already served by service "a"`},
		{"unknown lb policy", &config.Config{Version: 1, Services: []config.Service{
			{Name: "a", LoadBalancer: config.LoadBalancer{Policy: "fastest"}, Endpoints: []config.Endpoint{{Address: "10.0.0.1:1"}}},
		}}, `service "a": unknown load-balancing policy "fastest"`},
		{"bad route regex", &config.Config{Version: 1,
			Services: []config.Service{{Name: "a", Discovery: &config.ServiceDiscovery{}}},
			Routes: []config.Route{{Name: "r", Service: "a", Match: []config.RouteMatch{{Path: &config.PathMatch{Regex: "("}}},
				Backends: []config.Backend{{Service: "a"}}}},
		}, `service "a": route "r": path regex`},
		{"nil config", nil, "nil config"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Translate("v", tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestUpdateKeepsPreviousSnapshot(t *testing.T) {
	s := New(Options{Log: testLog(t)})
	good := load(t, "services:\n  - name: users\n    discovery: {service: users, namespace: shop}\n")
	if err := s.Update("1", good); err != nil {
		t.Fatal(err)
	}
	bad := &config.Config{Version: 1, Services: []config.Service{{Name: "x", Endpoints: []config.Endpoint{{Address: "nope"}}}}}
	if err := s.Update("2", bad); err == nil || !strings.Contains(err.Error(), `service "x"`) {
		t.Fatalf("bad update: %v", err)
	}
	if s.Version() != "1" {
		t.Errorf("version after a failed update = %q", s.Version())
	}
	snap, err := s.cache.GetSnapshot(snapshotKey)
	if err != nil || snap.GetVersion(resource.ClusterType) != "1" {
		t.Fatalf("cached snapshot: %v, %v", snap, err)
	}
	b, _ := protojson.Marshal(snap.(*cache.Snapshot).GetResources(resource.ClusterType)["users"].(*clusterv3.Cluster))
	if !strings.Contains(string(b), `"name":"users"`) {
		t.Errorf("cached cluster = %s", b)
	}
}
