package push

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/config"
)

// proxySide runs a Client the way a proxy does and records what it applied.
type proxySide struct {
	c      *Client
	mu     sync.Mutex
	cfgs   []*config.Config
	refuse func(*config.Config) error
	cancel context.CancelFunc
	done   chan struct{}
}

func startClient(t *testing.T, addr string, node *controlv1.Node, cacheFile string, refuse func(*config.Config) error) *proxySide {
	t.Helper()
	ps := &proxySide{refuse: refuse, done: make(chan struct{})}
	ps.c = NewClient(ClientOptions{
		Node: node, Conn: dial(t, addr), CacheFile: cacheFile, Log: testLog(t).With("proxy", node.GetId()),
		Backoff: Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond},
		Apply:   ps.apply,
	})
	ctx, cancel := context.WithCancel(context.Background())
	ps.cancel = cancel
	go func() {
		defer close(ps.done)
		if err := ps.c.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(ps.stop)
	return ps
}

func (ps *proxySide) stop() {
	ps.cancel()
	<-ps.done
}

func (ps *proxySide) apply(s *Snapshot) error {
	cfg, err := s.Config()
	if err != nil {
		return err
	}
	if ps.refuse != nil {
		if err := ps.refuse(cfg); err != nil {
			return err
		}
	}
	ps.mu.Lock()
	ps.cfgs = append(ps.cfgs, cfg)
	ps.mu.Unlock()
	return nil
}

func (ps *proxySide) applied() []*config.Config {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return slices.Clone(ps.cfgs)
}

func endpoints(c *config.Config, service string) int {
	for _, s := range c.Services {
		if s.Name == service {
			return len(s.Endpoints)
		}
	}
	return -1
}

func TestClientAppliesAndACKs(t *testing.T) {
	p := startPlane(t, ServerOptions{})
	cfg := mustConfig(t, meshYAML)
	p.srv.Update(mkState(t, 1, cfg, users(1)))
	gw := startClient(t, p.addr, gatewayNode("gw"), "", nil)
	sc := startClient(t, p.addr, &controlv1.Node{Id: "sc", Role: RoleSidecar, Service: "orders", Namespace: "shop", Calls: []string{"users"}}, "", nil)

	for _, ps := range []*proxySide{gw, sc} {
		eventually(t, 5*time.Second, "the first config", func() bool { return len(ps.applied()) == 1 })
	}
	got := gw.applied()[0]
	config.ApplyDefaults(got)
	if err := config.Validate(got); err != nil {
		t.Fatalf("the gateway's pushed config does not validate: %v", err)
	}
	if len(got.Listeners) != 1 || len(got.Routes) != 1 || len(got.Services) != 2 || len(got.Plans) != 1 {
		t.Errorf("gateway config: %d listeners, %d routes, %d services, %d plans", len(got.Listeners), len(got.Routes), len(got.Services), len(got.Plans))
	}
	if string(gw.c.Current().Bundle()) != bundlePEM {
		t.Errorf("bundle %q", gw.c.Current().Bundle())
	}
	if !gw.c.Connected() {
		t.Error("not connected")
	}

	p.srv.Update(mkState(t, 2, cfg, users(3)))
	for _, ps := range []*proxySide{gw, sc} {
		eventually(t, 5*time.Second, "the new endpoints", func() bool {
			a := ps.applied()
			return len(a) == 2 && endpoints(a[1], "users") == 3
		})
	}
	if c := sc.applied()[1]; endpoints(c, "orders") != 0 || len(c.Routes) != 1 || len(c.Listeners) != 0 {
		t.Errorf("sidecar config: services %v, %d routes, %d listeners", c.Services, len(c.Routes), len(c.Listeners))
	}
	eventually(t, 5*time.Second, "both ACKs", func() bool {
		st := p.srv.Status()
		return len(st) == 2 && st[0].VersionAcked == "2" && st[1].VersionAcked == "2"
	})
}

func TestClientNACK(t *testing.T) {
	p := startPlane(t, ServerOptions{})
	refuse := func(c *config.Config) error {
		for _, r := range c.Routes {
			if r.Name == "bad" {
				return errors.New("route bad refused on purpose")
			}
		}
		return nil
	}
	good := mustConfig(t, meshYAML)
	p.srv.Update(mkState(t, 1, good, users(1)))
	ps := startClient(t, p.addr, gatewayNode("gw"), filepath.Join(t.TempDir(), "config.snapshot"), refuse)
	eventually(t, 5*time.Second, "the first config", func() bool { return len(ps.applied()) == 1 })

	bad := mustConfig(t, strings.Replace(meshYAML, "name: users-api", "name: bad", 1))
	p.srv.Update(mkState(t, 2, bad, users(1)))
	eventually(t, 5*time.Second, "the NACK", func() bool {
		st := p.srv.Status()
		return len(st) == 1 && st[0].LastNACK != nil
	})
	if n := st0(p).LastNACK; n.Version != "2" || !strings.Contains(n.Error, "refused on purpose") {
		t.Errorf("NACK %+v", n)
	}
	if cur := ps.c.Current(); cur.Version != "1" || cur.Resources["route/users-api"] == nil {
		t.Errorf("after a NACK the client holds version %s", cur.Version)
	}
	if cached, err := ps.c.LoadCache(); err != nil || cached.Version != "1" {
		t.Errorf("cache after a NACK: %v, %v", cached, err)
	}
	if n := p.counter(t, "meshgate_control_push_nacks_total"); n != 1 {
		t.Errorf("nacks_total = %v", n)
	}

	// A good state afterwards is applied and ACKed.
	p.srv.Update(mkState(t, 3, good, users(2)))
	eventually(t, 5*time.Second, "the good config", func() bool {
		a := ps.applied()
		return len(a) == 2 && endpoints(a[1], "users") == 2
	})
	eventually(t, 5*time.Second, "the ACK", func() bool { return st0(p).VersionAcked == "3" })
	if len(ps.applied()) != 2 {
		t.Errorf("applied %d configs", len(ps.applied()))
	}
}

func st0(p *plane) ProxyStatus { return p.srv.Status()[0] }

func TestClientStaticStability(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "config.snapshot")
	cfg := mustConfig(t, meshYAML)
	p := startPlane(t, ServerOptions{})
	addr := p.addr
	p.srv.Update(mkState(t, 1, cfg, users(1)))
	first := startClient(t, addr, gatewayNode("gw"), cache, nil)
	eventually(t, 5*time.Second, "the first config", func() bool { return len(first.applied()) == 1 })
	first.stop()
	p.stop()

	info, err := os.Stat(cache)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("cache mode %v", info.Mode().Perm())
	}

	// The proxy restarts while the control plane is down: it serves from the cache.
	ps := startClient(t, addr, gatewayNode("gw"), cache, nil)
	cached, err := ps.c.LoadCache()
	if err != nil {
		t.Fatal(err)
	}
	if cached.Version != "1" || len(cached.Resources) != len(gatewayKeys) {
		t.Fatalf("cached version %s with %d resources", cached.Version, len(cached.Resources))
	}
	if c, err := cached.Config(); err != nil || endpoints(c, "users") != 1 {
		t.Fatalf("cached config: %v", err)
	}
	eventually(t, 5*time.Second, "the cache held", func() bool { return ps.c.Current() != nil })
	time.Sleep(100 * time.Millisecond) // a few failed connection attempts
	if ps.c.Connected() || len(ps.applied()) != 0 || ps.c.Current().Version != "1" {
		t.Fatalf("control plane down: connected %v, applied %d", ps.c.Connected(), len(ps.applied()))
	}

	// The control plane comes back with new endpoints: the proxy catches up with a difference.
	p2 := startPlaneAt(t, addr, ServerOptions{})
	p2.srv.Update(mkState(t, 7, cfg, users(2)))
	eventually(t, 10*time.Second, "the catch-up", func() bool {
		a := ps.applied()
		return len(a) == 1 && endpoints(a[0], "users") == 2
	})
	if !ps.c.Connected() || ps.c.Current().Version != "7" {
		t.Errorf("connected %v, version %s", ps.c.Connected(), ps.c.Current().Version)
	}
	if n := p2.counter(t, "meshgate_control_push_responses_total"); n != 1 {
		t.Errorf("responses %v", n)
	}
	eventually(t, 5*time.Second, "the ACK", func() bool { return len(p2.srv.Status()) == 1 && st0(p2).VersionAcked == "7" })
	if cached, err := ps.c.LoadCache(); err != nil || cached.Version != "7" {
		t.Errorf("cache after catching up: %v", err)
	}
}

func TestClientResumesAfterServerRestartWithNothingNew(t *testing.T) {
	cfg := mustConfig(t, meshYAML)
	p := startPlane(t, ServerOptions{})
	addr := p.addr
	p.srv.Update(mkState(t, 1, cfg, users(1)))
	ps := startClient(t, addr, gatewayNode("gw"), "", nil)
	eventually(t, 5*time.Second, "the first config", func() bool { return len(ps.applied()) == 1 })
	p.stop()
	eventually(t, 5*time.Second, "the disconnection", func() bool { return !ps.c.Connected() })

	p2 := startPlaneAt(t, addr, ServerOptions{})
	p2.srv.Update(mkState(t, 1, cfg, users(1)))
	eventually(t, 10*time.Second, "the resumed stream", func() bool {
		st := p2.srv.Status()
		return len(st) == 1 && st[0].VersionAcked == "1"
	})
	time.Sleep(100 * time.Millisecond)
	if n := p2.counter(t, "meshgate_control_push_responses_total"); n != 0 || len(ps.applied()) != 1 {
		t.Errorf("nothing changed, yet %v responses and %d applies", n, len(ps.applied()))
	}
}
