package control

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
)

func workload(id, svc, ns string) *controlv1.Workload {
	return &controlv1.Workload{
		Id: id, Service: svc, Namespace: ns, Addresses: []string{"127.0.0.1"},
		Ports: []*controlv1.Port{{Name: "http", Port: 8080, Protocol: "http1"}},
	}
}

func TestRegistry(t *testing.T) {
	p := startPlane(t, nil)
	users := controlv1.NewRegistryClient(p.dial(t, p.mustSign(t, "spiffe://mesh.local/ns/shop/sa/users")))
	orders := controlv1.NewRegistryClient(p.dial(t, p.mustSign(t, "spiffe://mesh.local/ns/shop/sa/orders")))
	anon := controlv1.NewRegistryClient(p.dial(t, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	resp, err := users.Register(ctx, &controlv1.RegisterRequest{Workload: workload("users-1", "users", "shop")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetTtl().AsDuration() != 5*time.Second || resp.GetHeartbeatInterval().AsDuration() >= 5*time.Second {
		t.Errorf("ttl %v, heartbeat %v", resp.GetTtl().AsDuration(), resp.GetHeartbeatInterval().AsDuration())
	}
	ws, err := p.store.Workloads(ctx)
	if err != nil || len(ws) != 1 || ws[0].Identity != "spiffe://mesh.local/ns/shop/sa/users" || ws[0].Ports[0].Port != 8080 {
		t.Fatalf("stored workloads %+v, %v", ws, err)
	}

	refusals := []struct {
		desc string
		call func() error
		code codes.Code
		msg  string
	}{
		{"registering another service", func() error {
			_, err := users.Register(ctx, &controlv1.RegisterRequest{Workload: workload("x", "orders", "shop")})
			return err
		}, codes.PermissionDenied, `may only register service "users" in namespace "shop"`},
		{"without a certificate", func() error {
			_, err := anon.Register(ctx, &controlv1.RegisterRequest{Workload: workload("x", "users", "shop")})
			return err
		}, codes.Unauthenticated, "no client certificate"},
		{"heartbeating another identity's workload", func() error {
			_, err := orders.Heartbeat(ctx, &controlv1.HeartbeatRequest{Id: "users-1"})
			return err
		}, codes.PermissionDenied, "belongs to spiffe://mesh.local/ns/shop/sa/users"},
		{"heartbeating an unknown workload", func() error {
			_, err := users.Heartbeat(ctx, &controlv1.HeartbeatRequest{Id: "nope"})
			return err
		}, codes.NotFound, "register again"},
		{"a bad port protocol", func() error {
			w := workload("users-2", "users", "shop")
			w.Ports[0].Protocol = "http3"
			_, err := users.Register(ctx, &controlv1.RegisterRequest{Workload: w})
			return err
		}, codes.InvalidArgument, `protocol "http3"`},
		{"a bad address", func() error {
			w := workload("users-2", "users", "shop")
			w.Addresses = []string{"users.local"}
			_, err := users.Register(ctx, &controlv1.RegisterRequest{Workload: w})
			return err
		}, codes.InvalidArgument, "is not an IP address"},
		{"a bad health", func() error {
			_, err := users.Heartbeat(ctx, &controlv1.HeartbeatRequest{Id: "users-1", Health: "sleepy"})
			return err
		}, codes.InvalidArgument, "expected healthy, unhealthy or draining"},
	}
	for _, tc := range refusals {
		t.Run(tc.desc, func(t *testing.T) {
			err := tc.call()
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Errorf("got %v, want %s containing %q", err, tc.code, tc.msg)
			}
		})
	}

	if _, err := users.Heartbeat(ctx, &controlv1.HeartbeatRequest{Id: "users-1", Health: "draining"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the status to aggregate the service's health", func() bool {
		_, body := p.admin(t, "GET", "/v1/status", "")
		return strings.Contains(body, `"service": "shop/users"`) && strings.Contains(body, `"draining": 1`)
	})
	ws, _ = p.store.Workloads(ctx)
	if len(ws) != 1 || ws[0].Health != "draining" {
		t.Errorf("after a draining heartbeat: %+v", ws)
	}
	if _, err := users.Deregister(ctx, &controlv1.DeregisterRequest{Id: "users-1"}); err != nil {
		t.Fatal(err)
	}
	if ws, _ = p.store.Workloads(ctx); len(ws) != 0 {
		t.Errorf("after deregistering: %+v", ws)
	}
}

func TestRegistrationExpires(t *testing.T) {
	p := startPlane(t, func(o *Options) { o.WorkloadTTL = 3 * time.Second })
	users := controlv1.NewRegistryClient(p.dial(t, p.mustSign(t, "spiffe://mesh.local/ns/shop/sa/users")))
	ctx := context.Background()
	if _, err := users.Register(ctx, &controlv1.RegisterRequest{Workload: workload("users-1", "users", "shop")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the registration to expire without heartbeats", func() bool {
		ws, err := p.store.Workloads(ctx)
		return err == nil && len(ws) == 0
	})
	_, err := users.Heartbeat(ctx, &controlv1.HeartbeatRequest{Id: "users-1"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("heartbeat after expiry: %v, want NotFound", err)
	}
}
