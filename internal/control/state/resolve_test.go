package state

import (
	"reflect"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
)

func mustConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	c, err := config.LoadBytes("mesh.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestResolve(t *testing.T) {
	cfg := mustConfig(t, `
version: 1
routes:
  - {name: edge, backends: [{service: users}]}
services:
  - name: users
    discovery: {service: users, namespace: shop, port: http}
    loadBalancer: {policy: least_request}
  - name: static
    endpoints: [{address: "10.0.0.9:80"}]
  - name: mixed
    endpoints: [{address: "10.0.0.8:80"}]
    discovery: {}
`)
	http := []Port{{Name: "http", Port: 8080, Protocol: PortHTTP1}, {Name: "admin", Port: 9000, Protocol: PortHTTP1}}
	ws := []Workload{
		{ID: "u1", Service: "users", Namespace: "shop", Addresses: []string{"10.1.0.1"}, Ports: http, Health: HealthHealthy},
		{ID: "u2", Service: "users", Namespace: "shop", Addresses: []string{"fd00::2"}, Ports: http, Health: HealthHealthy},
		{ID: "u3", Service: "users", Namespace: "shop", Addresses: []string{"10.1.0.3"}, Ports: http, Health: HealthDraining},
		{ID: "u4", Service: "users", Namespace: "shop", Addresses: []string{"10.1.0.4"}, Ports: http[1:], Health: HealthHealthy},
		{ID: "m1", Service: "mixed", Namespace: "default", Addresses: []string{"10.2.0.1"}, Ports: []Port{{Name: "web", Port: 81, Protocol: PortHTTP1}}, Health: HealthHealthy},
		{ID: "g1", Service: "greeter", Namespace: "shop", Addresses: []string{"10.3.0.1"}, Ports: []Port{{Name: "grpc", Port: 50051, Protocol: PortGRPC}}, Health: HealthHealthy},
		{ID: "t1", Service: "two", Namespace: "default", Addresses: []string{"10.4.0.1"}, Ports: http, Health: HealthHealthy},
	}
	st := &State{Config: cfg, Workloads: ws}
	got, problems := st.Resolve()

	byName := map[string]config.Service{}
	for _, s := range got.Services {
		byName[s.Name] = s
	}
	tests := []struct {
		desc, service string
		endpoints     []config.Endpoint
		protocol      string
	}{
		{"healthy workloads on the named port; draining and portless ones left out", "users",
			[]config.Endpoint{{Address: "10.1.0.1:8080", Weight: 1}, {Address: "[fd00::2]:8080", Weight: 1}}, config.UpstreamHTTP1},
		{"static endpoints untouched", "static", []config.Endpoint{{Address: "10.0.0.9:80", Weight: 1}}, config.UpstreamHTTP1},
		{"static endpoints kept beside registered ones", "mixed",
			[]config.Endpoint{{Address: "10.0.0.8:80", Weight: 1}, {Address: "10.2.0.1:81", Weight: 1}}, config.UpstreamHTTP1},
		{"an undiscovered mesh service gets an implicit service with its declared protocol", "greeter.shop",
			[]config.Endpoint{{Address: "10.3.0.1:50051", Weight: 1}}, config.UpstreamGRPC},
		{"an implicit service whose workloads have two ports has no endpoints", "two.default", nil, config.UpstreamHTTP1},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			s, ok := byName[tc.service]
			if !ok {
				t.Fatalf("service %q missing; have %v", tc.service, got.Services)
			}
			if !reflect.DeepEqual(s.Endpoints, tc.endpoints) {
				t.Errorf("endpoints = %v, want %v", s.Endpoints, tc.endpoints)
			}
			if s.Protocol != tc.protocol {
				t.Errorf("protocol = %q, want %q", s.Protocol, tc.protocol)
			}
		})
	}
	want := []string{
		`workload u4 of service "users": it has no port named "http"`,
		`workload t1 of service "two.default": it has 2 ports and the service names none (discovery.port)`,
	}
	var gotP []string
	for _, p := range problems {
		gotP = append(gotP, p.String())
	}
	if !reflect.DeepEqual(gotP, want) {
		t.Errorf("problems:\n%q\nwant\n%q", gotP, want)
	}
	if err := config.Validate(got); err != nil {
		t.Errorf("the resolved config does not validate: %v", err)
	}
	if len(cfg.Services) != 3 || len(cfg.Services[0].Endpoints) != 0 {
		t.Errorf("Resolve changed the stored config: %+v", cfg.Services)
	}
}

func TestResolveSidecars(t *testing.T) {
	cfg := mustConfig(t, `
version: 1
services:
  - name: orders
    discovery: {service: orders, namespace: shop}
`)
	const id = "spiffe://mesh.local/ns/shop/sa/orders"
	web := []Port{{Name: "web", Port: 8080, Protocol: PortHTTP1}}
	s := &State{Config: cfg, TrustDomain: "mesh.local", Workloads: []Workload{
		{ID: "o1", Service: "orders", Namespace: "shop", Addresses: []string{"10.1.0.1"}, Ports: web, Health: HealthHealthy, Identity: id, SidecarPort: 15006},
		{ID: "o2", Service: "orders", Namespace: "shop", Addresses: []string{"10.1.0.2"}, Ports: web, Health: HealthHealthy, Identity: id},
		{ID: "t1", Service: "ledger", Namespace: "shop", Addresses: []string{"10.1.0.3"}, Ports: []Port{{Name: "pg", Port: 5432, Protocol: PortTCP}},
			Health: HealthHealthy, Identity: "spiffe://mesh.local/ns/shop/sa/ledger", SidecarPort: 15006},
	}}
	c, problems := s.Resolve()
	byName := map[string]config.Service{}
	for _, svc := range c.Services {
		byName[svc.Name] = svc
	}
	orders := byName["orders"]
	if want := []config.Endpoint{{Address: "10.1.0.1:15006", Weight: 1}}; !reflect.DeepEqual(orders.Endpoints, want) {
		t.Errorf("orders endpoints %+v, want %+v (the sidecar's inbound port only)", orders.Endpoints, want)
	}
	if want := (&config.ServiceMesh{Identity: id, Port: "web", AppProtocol: PortHTTP1}); !reflect.DeepEqual(orders.Mesh, want) {
		t.Errorf("orders mesh %+v, want %+v", orders.Mesh, want)
	}
	if orders.Protocol != config.UpstreamHTTP1 {
		t.Errorf("orders protocol %q: calls between sidecars keep the workload's protocol", orders.Protocol)
	}
	if len(problems) != 1 || problems[0].Workload != "o2" {
		t.Errorf("problems %v: want the workload without a sidecar left out", problems)
	}
	ledger := byName["ledger.shop"]
	if ledger.Mesh == nil || ledger.Mesh.AppProtocol != config.AppTCP {
		t.Errorf("ledger mesh %+v, want opaque tcp", ledger.Mesh)
	}
	if err := config.Validate(c); err != nil {
		t.Errorf("the resolved config is invalid: %v", err)
	}
}
