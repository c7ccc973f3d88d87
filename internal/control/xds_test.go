package control

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	grpcxds "google.golang.org/grpc/xds"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
)

// healthBackend serves gRPC's health service on a loopback port until the test ends.
func healthBackend(t *testing.T) (string, uint32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	healthpb.RegisterHealthServer(g, health.NewServer())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = g.Serve(ln) }()
	t.Cleanup(func() { g.Stop(); wg.Wait() })
	return ln.Addr().String(), uint32(ln.Addr().(*net.TCPAddr).Port)
}

// TestProxylessGRPCClient registers two gRPC workloads with the control plane and calls their
// service with grpc-go's xds resolver pointed at the control plane's xDS port: the client
// resolves "xds:///greeter.shop", reaches both workloads, and follows a deregistration.
func TestProxylessGRPCClient(t *testing.T) {
	p := startPlane(t, nil)
	addr1, port1 := healthBackend(t)
	addr2, port2 := healthBackend(t)
	reg := controlv1.NewRegistryClient(p.dial(t, p.mustSign(t, "spiffe://mesh.local/ns/shop/sa/greeter")))
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	for i, port := range []uint32{port1, port2} {
		w := &controlv1.Workload{Id: fmt.Sprintf("greeter-%d", i), Service: "greeter", Namespace: "shop",
			Addresses: []string{"127.0.0.1"}, Ports: []*controlv1.Port{{Name: "grpc", Port: port, Protocol: "grpc"}}}
		if _, err := reg.Register(ctx, &controlv1.RegisterRequest{Workload: w}); err != nil {
			t.Fatal(err)
		}
	}
	bootstrap := fmt.Sprintf(`{"xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}],
		"server_features": ["xds_v3"]}], "node": {"id": "proxyless-1"}}`, p.XDSAddr().String())
	builder, err := grpcxds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///greeter.shop", grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(builder))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	calls := func(n int) map[string]int {
		seen := map[string]int{}
		for range n {
			var pr peer.Peer
			cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := client.Check(cctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&pr))
			ccancel()
			if err != nil {
				seen["error"]++
				continue
			}
			seen[pr.Addr.String()]++
		}
		return seen
	}
	eventually(t, 20*time.Second, "calls through xDS reaching both workloads", func() bool {
		s := calls(10)
		return s[addr1] > 0 && s[addr2] > 0
	})
	if _, err := reg.Deregister(ctx, &controlv1.DeregisterRequest{Id: "greeter-0"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "calls only to the remaining workload", func() bool {
		s := calls(10)
		return s[addr2] == 10
	})
	eventually(t, 10*time.Second, "the xDS client's ACKs on the status", func() bool {
		st := p.xds.Status()
		return len(st) > 0
	})
}
