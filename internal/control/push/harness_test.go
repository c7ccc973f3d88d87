package push

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control/state"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// meshYAML is the config most tests push: a gateway part (listener, edge route with a mirror,
// authenticator, consumer, plan) and a mesh part (discovered services, routes attached to them).
const meshYAML = `
version: 1
listeners:
  - {name: public, address: 127.0.0.1:8080, protocol: http}
plans:
  - {name: standard, rateLimit: {rate: 50, burst: 100}}
consumers:
  - {name: web, plan: standard}
authenticators:
  - name: policy
    extAuthz: {url: "http://127.0.0.1:19100/authz", consumerHeader: X-Consumer}
routes:
  - name: users-api
    match: [{path: {prefix: /users}}]
    backends: [{service: users}]
    mirror: {service: shadow}
    auth: {authenticators: [policy]}
  - name: users-canary
    service: users
    match: [{headers: [{name: x-canary, value: "1"}]}]
    backends: [{service: users-v2}]
  - name: orders-split
    service: orders
    backends: [{service: orders}]
services:
  - {name: users, discovery: {service: users, namespace: shop, port: http}}
  - {name: users-v2, discovery: {service: users-v2, namespace: shop, port: http}}
  - {name: orders, discovery: {service: orders, namespace: shop}}
  - {name: shadow, endpoints: [{address: "10.9.9.9:80"}]}
  - {name: unused, endpoints: [{address: "10.9.9.8:80"}]}
`

const bundlePEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func mustConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	c, err := config.LoadBytes("mesh.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// users returns n healthy workloads of users.shop at 10.1.0.1.. on port 8080.
func users(n int) []state.Workload {
	var ws []state.Workload
	for i := range n {
		ws = append(ws, state.Workload{
			ID: "users-" + string(rune('a'+i)), Service: "users", Namespace: "shop",
			Addresses: []string{net.IPv4(10, 1, 0, byte(1+i)).String()},
			Ports:     []state.Port{{Name: "http", Port: 8080, Protocol: state.PortHTTP1}},
			Health:    state.HealthHealthy,
		})
	}
	return ws
}

func mkState(t *testing.T, version uint64, cfg *config.Config, ws []state.Workload) *state.State {
	t.Helper()
	return &state.State{Version: version, ConfigVersion: 1, Config: cfg, Workloads: ws, TrustBundle: []byte(bundlePEM), TrustDomain: "mesh.local"}
}

// plane is a push server served on a loopback gRPC server.
type plane struct {
	srv  *Server
	g    *grpc.Server
	addr string
	reg  *prometheus.Registry
	once sync.Once
}

func startPlane(t *testing.T, opts ServerOptions) *plane {
	return startPlaneAt(t, "127.0.0.1:0", opts)
}

func startPlaneAt(t *testing.T, addr string, opts ServerOptions) *plane {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &plane{reg: prometheus.NewRegistry(), addr: ln.Addr().String()}
	if opts.Log == nil {
		opts.Log = testLog(t)
	}
	if opts.Debounce == 0 {
		opts.Debounce = 5 * time.Millisecond
	}
	opts.Registerer = p.reg
	p.srv = NewServer(opts)
	p.g = grpc.NewServer()
	p.srv.Register(p.g)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.g.Serve(ln)
	}()
	t.Cleanup(func() {
		p.stop()
		<-done
	})
	return p
}

// stop ends the streams and the gRPC server.
func (p *plane) stop() {
	p.once.Do(func() {
		p.srv.Close()
		p.g.Stop()
	})
}

func (p *plane) counter(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// raw is a proxy speaking the protocol by hand, to check exactly what the server sends.
type raw struct {
	t      *testing.T
	stream controlv1.Discovery_StreamClient
	resps  chan *controlv1.DiscoveryResponse
	errc   chan error
	cancel context.CancelFunc
}

func openRaw(t *testing.T, addr string, first *controlv1.DiscoveryRequest) *raw {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := controlv1.NewDiscoveryClient(dial(t, addr)).Stream(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &raw{t: t, stream: stream, resps: make(chan *controlv1.DiscoveryResponse, 64), errc: make(chan error, 1), cancel: cancel}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			resp, err := stream.Recv()
			if err != nil {
				r.errc <- err
				return
			}
			r.resps <- resp
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	if err := stream.Send(first); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return r
}

// recv waits for the next response.
func (r *raw) recv() *controlv1.DiscoveryResponse {
	r.t.Helper()
	select {
	case resp := <-r.resps:
		return resp
	case err := <-r.errc:
		r.t.Fatalf("stream ended: %v", err)
	case <-time.After(10 * time.Second):
		r.t.Fatal("no response within 10s")
	}
	return nil
}

// none checks that no response arrives for d.
func (r *raw) none(d time.Duration) {
	r.t.Helper()
	select {
	case resp := <-r.resps:
		r.t.Fatalf("unexpected response: version %s, %d resources %v, removed %v", resp.GetVersionInfo(), len(resp.GetResources()), keys(resp), resp.GetRemoved())
	case err := <-r.errc:
		r.t.Fatalf("stream ended: %v", err)
	case <-time.After(d):
	}
}

// end waits for the stream to end and returns its error.
func (r *raw) end() error {
	r.t.Helper()
	select {
	case err := <-r.errc:
		return err
	case resp := <-r.resps:
		r.t.Fatalf("a response instead of the end: %v", keys(resp))
	case <-time.After(10 * time.Second):
		r.t.Fatal("the stream did not end within 10s")
	}
	return nil
}

func (r *raw) ack(resp *controlv1.DiscoveryResponse) {
	r.t.Helper()
	if err := r.stream.Send(&controlv1.DiscoveryRequest{VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *raw) nack(resp *controlv1.DiscoveryResponse, why string) {
	r.t.Helper()
	if err := r.stream.Send(&controlv1.DiscoveryRequest{ResponseNonce: resp.GetNonce(), ErrorDetail: why}); err != nil {
		r.t.Fatal(err)
	}
}

// keys lists a response's resources as "type/name".
func keys(resp *controlv1.DiscoveryResponse) []string {
	var out []string
	for _, r := range resp.GetResources() {
		out = append(out, Key(r.GetType(), r.GetName()))
	}
	return out
}

func versions(resp *controlv1.DiscoveryResponse) map[string]string {
	m := map[string]string{}
	for _, r := range resp.GetResources() {
		m[Key(r.GetType(), r.GetName())] = r.GetVersion()
	}
	return m
}

// eventually polls cond every 10ms for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func gatewayNode(id string) *controlv1.Node {
	return &controlv1.Node{Id: id, Role: RoleGateway, Service: "gateway", Namespace: "default"}
}
