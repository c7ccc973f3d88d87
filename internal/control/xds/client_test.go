package xds

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	grpcxds "google.golang.org/grpc/xds"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control/state"
)

// testWriter sends log output to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// serveGRPC serves g on a fresh 127.0.0.1 port and stops it when the test ends.
func serveGRPC(t *testing.T, g *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = g.Serve(lis)
	}()
	t.Cleanup(func() {
		g.Stop()
		wg.Wait()
	})
	return lis.Addr().String()
}

// backend starts a gRPC server with the standard health service (status SERVING).
func backend(t *testing.T) (addr string, port int) {
	t.Helper()
	g := grpc.NewServer()
	healthpb.RegisterHealthServer(g, health.NewServer())
	addr = serveGRPC(t, g)
	_, p, _ := net.SplitHostPort(addr)
	fmt.Sscan(p, &port)
	return addr, port
}

// meshConfig resolves a config with one mesh service, greeter.shop, whose workloads are the
// given ports on 127.0.0.1, and a route attached to it sending calls with "x-canary: yes" to
// the static service canary at canaryAddr.
func meshConfig(t *testing.T, lb, canaryAddr string, ports ...int) *config.Config {
	t.Helper()
	hash := ""
	if lb == config.LBMaglev || lb == config.LBRingHash {
		hash = ", hash: {header: x-user}"
	}
	cfg, err := config.LoadBytes("mesh.yaml", []byte(fmt.Sprintf(`
version: 1
routes:
  - name: canary
    service: greeter
    match: [{path: {prefix: /grpc.health.v1.Health}, headers: [{name: x-canary, value: "yes"}]}]
    backends: [{service: canary}]
services:
  - name: greeter
    discovery: {service: greeter, namespace: shop}
    loadBalancer: {policy: %s%s}
  - name: canary
    protocol: grpc
    endpoints: [{address: %q}]
`, lb, hash, canaryAddr)))
	if err != nil {
		t.Fatal(err)
	}
	st := &state.State{Config: cfg}
	for i, p := range ports {
		st.Workloads = append(st.Workloads, state.Workload{
			ID: fmt.Sprintf("greeter-%d", i), Service: "greeter", Namespace: "shop",
			Addresses: []string{"127.0.0.1"},
			Ports:     []state.Port{{Name: "grpc", Port: p, Protocol: state.PortGRPC}},
			Health:    state.HealthHealthy,
		})
	}
	resolved, problems := st.Resolve()
	if len(problems) != 0 {
		t.Fatalf("resolve: %v", problems)
	}
	return resolved
}

// callPeers makes n health checks and returns how many each backend address answered.
func callPeers(ctx context.Context, c healthpb.HealthClient, n int) (map[string]int, error) {
	seen := make(map[string]int)
	for range n {
		var p peer.Peer
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.Check(cctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p))
		cancel()
		if err != nil {
			return seen, err
		}
		seen[p.Addr.String()]++
	}
	return seen, nil
}

// eventually polls cond every 20ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for time.Now().Before(deadline) {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %s", what, d, last)
}

// statusOf returns the status of the client's stream for typeURL.
func statusOf(s *Server, node, typeURL string) (ClientStatus, bool) {
	for _, cs := range s.Status() {
		if cs.NodeID == node && cs.TypeURL == typeURL {
			return cs, true
		}
	}
	return ClientStatus{}, false
}

// TestGRPCClient drives a real proxyless grpc-go client (the xds resolver and balancers) against
// the server: calls reach both backends, a header route attached to the service picks its
// backend, an endpoint removal takes effect, a cluster the client
// refuses is NACKed (and not resent in a loop) while the previous config keeps working, and a
// good config after it is ACKed.
func TestGRPCClient(t *testing.T) {
	// Registered first, so it runs after every other cleanup has stopped the servers.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })

	reg := prometheus.NewRegistry()
	xs := New(Options{Log: testLog(t), Registerer: reg})
	cp := grpc.NewServer()
	xs.Register(cp)
	cpAddr := serveGRPC(t, cp)

	addr1, port1 := backend(t)
	addr2, port2 := backend(t)
	addr3, _ := backend(t)
	if err := xs.Update("1", meshConfig(t, "round_robin", addr3, port1, port2)); err != nil {
		t.Fatal(err)
	}

	const node = "proxyless-test"
	bootstrap := fmt.Sprintf(`{
		"xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
		"node": {"id": %q}
	}`, cpAddr, node)
	builder, err := grpcxds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///greeter.shop",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(builder))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	// Both backends answer.
	eventually(t, 15*time.Second, "calls reach both backends", func() (bool, string) {
		seen, err := callPeers(ctx, client, 10)
		if err != nil {
			return false, err.Error()
		}
		return seen[addr1] > 0 && seen[addr2] > 0, fmt.Sprint(seen)
	})
	// The route attached to the service sends canary calls to the canary service only.
	canaryCtx := metadata.AppendToOutgoingContext(ctx, "x-canary", "yes")
	if seen, err := callPeers(canaryCtx, client, 10); err != nil || seen[addr3] != 10 {
		t.Errorf("canary calls: %v, %v; want all 10 at %s", seen, err, addr3)
	}
	if seen, err := callPeers(ctx, client, 10); err != nil || seen[addr3] != 0 {
		t.Errorf("plain calls: %v, %v; want none at the canary %s", seen, err, addr3)
	}
	for _, typ := range []string{resource.ListenerType, resource.RouteType, resource.ClusterType, resource.EndpointType} {
		eventually(t, 5*time.Second, "version 1 ACKed for "+shortType(typ), func() (bool, string) {
			cs, ok := statusOf(xs, node, typ)
			return ok && cs.AckedVersion == "1", fmt.Sprintf("%+v", cs)
		})
	}

	// One endpoint removed: calls go only to the other one.
	if err := xs.Update("2", meshConfig(t, "round_robin", addr3, port2)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "calls reach only the remaining backend", func() (bool, string) {
		seen, err := callPeers(ctx, client, 20)
		if err != nil {
			return false, err.Error()
		}
		return len(seen) == 1 && seen[addr2] == 20, fmt.Sprint(seen)
	})
	eventually(t, 5*time.Second, "endpoints version 2 ACKed", func() (bool, string) {
		cs, _ := statusOf(xs, node, resource.EndpointType)
		return cs.AckedVersion == "2", fmt.Sprintf("%+v", cs)
	})

	// Maglev is Envoy's: gRPC refuses the cluster. The NACK is tracked and not answered with the
	// same snapshot again; calls keep working on the accepted config.
	if err := xs.Update("3", meshConfig(t, "maglev", addr3, port2)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "cluster version 3 NACKed", func() (bool, string) {
		cs, _ := statusOf(xs, node, resource.ClusterType)
		return cs.NACKs > 0 && cs.LastNACKVersion == "3", fmt.Sprintf("%+v", cs)
	})
	cs, _ := statusOf(xs, node, resource.ClusterType)
	if cs.AckedVersion != "2" || !strings.Contains(cs.LastNACK, "lbPolicy") || cs.LastNACKAt.IsZero() {
		t.Errorf("cluster status after NACK = %+v, want acked 2 and an lbPolicy error", cs)
	}
	if seen, err := callPeers(ctx, client, 5); err != nil || seen[addr2] != 5 {
		t.Errorf("calls after NACK: %v, %v", seen, err)
	}
	// A resend loop would NACK many times within a fraction of a second.
	time.Sleep(300 * time.Millisecond)
	if cs, _ := statusOf(xs, node, resource.ClusterType); cs.NACKs > 2 {
		t.Errorf("refused cluster was sent %d times; want it parked until the next snapshot", cs.NACKs)
	}
	if n := testutil.ToFloat64(xs.streams.metrics.nacks.WithLabelValues("cluster")); n < 1 {
		t.Errorf("meshgate_control_xds_nacks_total{type=cluster} = %v", n)
	}
	if n := testutil.ToFloat64(xs.streams.metrics.streams); n != 1 {
		t.Errorf("meshgate_control_xds_streams = %v, want 1 (one ADS stream)", n)
	}

	// A good config after the bad one is accepted and both backends come back.
	if err := xs.Update("4", meshConfig(t, "round_robin", addr3, port1, port2)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "cluster version 4 ACKed", func() (bool, string) {
		cs, _ := statusOf(xs, node, resource.ClusterType)
		return cs.AckedVersion == "4", fmt.Sprintf("%+v", cs)
	})
	eventually(t, 10*time.Second, "calls reach both backends again", func() (bool, string) {
		seen, err := callPeers(ctx, client, 10)
		if err != nil {
			return false, err.Error()
		}
		return seen[addr1] > 0 && seen[addr2] > 0, fmt.Sprint(seen)
	})

	conn.Close()
	eventually(t, 5*time.Second, "stream closed", func() (bool, string) {
		return len(xs.Status()) == 0, fmt.Sprint(xs.Status())
	})
}
