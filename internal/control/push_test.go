package control

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control/push"
	"github.com/meshgate/meshgate/internal/mesh/agent"
)

// recorder is a proxy's Apply that keeps the configs it accepted and refuses, while refuse is
// set, any config with a route named "bad".
type recorder struct {
	mu     sync.Mutex
	last   *config.Config
	count  int
	refuse atomic.Bool
}

func (r *recorder) apply(s *push.Snapshot) error {
	cfg, err := s.Config()
	if err != nil {
		return err
	}
	if r.refuse.Load() && slices.ContainsFunc(cfg.Routes, func(rt config.Route) bool { return rt.Name == "bad" }) {
		return errors.New("route bad refused on purpose")
	}
	r.mu.Lock()
	r.last, r.count = cfg, r.count+1
	r.mu.Unlock()
	return nil
}

func (r *recorder) config() *config.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *recorder) has(pred func(*config.Config) bool) func() bool {
	return func() bool {
		c := r.config()
		return c != nil && pred(c)
	}
}

func service(c *config.Config, name string) *config.Service {
	for i := range c.Services {
		if c.Services[i].Name == name {
			return &c.Services[i]
		}
	}
	return nil
}

func route(c *config.Config, name string) bool {
	return slices.ContainsFunc(c.Routes, func(r config.Route) bool { return r.Name == name })
}

// startAgent runs a gateway-role agent against p (or addr, when p is nil) with data dir dir.
func startAgent(t *testing.T, addr, caFile, tok, dir string, rec *recorder) (*agent.Agent, context.CancelFunc) {
	t.Helper()
	ag, err := agent.New(agent.Options{
		ControlAddress: addr, ControlCA: caFile, JoinToken: tok, DataDir: dir, Apply: rec.apply,
		Node: &controlv1.Node{Id: "gw-1", Role: "gateway", Service: "gateway", Namespace: "default"},
		Log:  testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := ag.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	stop := func() {
		cancel()
		ag.Wait()
	}
	t.Cleanup(stop)
	return ag, stop
}

func TestProxyFollowsConfigAndRegistry(t *testing.T) {
	p := startPlane(t, nil)
	if code, body := p.admin(t, "PUT", "/v1/config", meshV1); code != 200 {
		t.Fatalf("apply: %d %s", code, body)
	}
	rec := &recorder{}
	dir := t.TempDir()
	ag, stop := startAgent(t, p.GRPCAddr().String(), filepath.Join(p.dir, BundleFile), p.token, dir, rec)
	eventually(t, 10*time.Second, "the first config", rec.has(func(c *config.Config) bool {
		return route(c, "users-api") && service(c, "users") != nil
	}))
	if ag.ID().String() != "spiffe://mesh.local/ns/default/sa/gateway" {
		t.Errorf("agent identity %s", ag.ID())
	}

	// A workload registers: its endpoint reaches the proxy.
	users := controlv1.NewRegistryClient(p.dial(t, p.mustSign(t, "spiffe://mesh.local/ns/shop/sa/users")))
	w := workload("users-1", "users", "shop")
	w.Addresses = []string{"10.0.0.7"}
	if _, err := users.Register(context.Background(), &controlv1.RegisterRequest{Workload: w}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the registered endpoint", rec.has(func(c *config.Config) bool {
		s := service(c, "users")
		return s != nil && len(s.Endpoints) == 1 && s.Endpoints[0].Address == "10.0.0.7:8080"
	}))

	// A config the proxy refuses is NACKed: the proxy keeps its config, the status shows why.
	rec.refuse.Store(true)
	bad := strings.Replace(meshV1, "users-api,", "bad,", 1)
	if code, body := p.admin(t, "PUT", "/v1/config", bad); code != 200 {
		t.Fatalf("apply: %d %s", code, body)
	}
	eventually(t, 10*time.Second, "the NACK on the status", func() bool {
		for _, ps := range p.push.Status() {
			if ps.ID == "gw-1" && ps.LastNACK != nil && strings.Contains(ps.LastNACK.Error, "refused on purpose") {
				return true
			}
		}
		return false
	})
	if c := rec.config(); route(c, "bad") || !route(c, "users-api") {
		t.Errorf("after a NACK the proxy runs %v", c.Routes)
	}
	_, status := p.admin(t, "GET", "/v1/status", "")
	if !strings.Contains(status, "refused on purpose") {
		t.Errorf("the admin status does not show the NACK: %s", status)
	}
	// A good config afterwards is applied and ACKed.
	if code, body := p.admin(t, "PUT", "/v1/config", meshV2); code != 200 {
		t.Fatalf("apply: %d %s", code, body)
	}
	eventually(t, 10*time.Second, "the good config", rec.has(func(c *config.Config) bool { return route(c, "orders-api") }))
	eventually(t, 10*time.Second, "the ACK", func() bool {
		for _, ps := range p.push.Status() {
			if ps.ID == "gw-1" && ps.VersionAcked == ps.VersionSent && ps.VersionAcked != "" {
				return true
			}
		}
		return false
	})

	// Static stability: with the control plane gone, a restarted proxy starts from its last good
	// config at once.
	stop()
	addr := p.GRPCAddr().String()
	_ = p.Close()
	rec2 := &recorder{}
	ag2, _ := startAgent(t, addr, filepath.Join(p.dir, BundleFile), p.token, dir, rec2)
	select {
	case <-ag2.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("the restarted proxy did not start from its cached config")
	}
	c := rec2.config()
	if !route(c, "orders-api") || len(service(c, "users").Endpoints) != 1 {
		t.Errorf("cached config: routes %v, users %+v", c.Routes, service(c, "users"))
	}
}
