package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func service(policy string, addrs ...string) *config.Service {
	svc := &config.Service{Name: "users", Protocol: config.UpstreamHTTP1, LoadBalancer: config.LoadBalancer{Policy: policy}}
	for _, a := range addrs {
		svc.Endpoints = append(svc.Endpoints, config.Endpoint{Address: a, Weight: 1})
	}
	return svc
}

func mustNew(t testing.TB, svc *config.Service, opts Options) *Cluster {
	t.Helper()
	c, err := New(svc, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestNewErrors(t *testing.T) {
	badPolicy := service("fastest", "10.0.0.1:80")
	badCheck := service(config.LBRoundRobin, "10.0.0.1:80")
	badCheck.HealthCheck = &config.HealthCheck{}
	tests := []struct {
		desc string
		svc  *config.Service
	}{
		{desc: "nil service"},
		{desc: "unknown policy", svc: badPolicy},
		{desc: "health check without a probe", svc: badCheck},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if c, err := New(tt.svc, Options{}); err == nil {
				c.Close()
				t.Fatal("New succeeded, want an error")
			}
		})
	}
}

func TestPickRoundRobin(t *testing.T) {
	svc := service(config.LBRoundRobin, "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80")
	svc.Endpoints[0].Weight = 5
	c := mustNew(t, svc, Options{})
	if c.Name() != "users" || len(c.Endpoints()) != 3 || c.HealthyCount() != 3 {
		t.Fatalf("Name %q, %d endpoints, %d healthy", c.Name(), len(c.Endpoints()), c.HealthyCount())
	}
	var got []int
	for range 7 {
		ep, err := c.Pick(0, false)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ep.Index())
	}
	if want := []int{0, 0, 1, 0, 2, 0, 0}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("picks %v, want %v", got, want)
	}
	for i, ep := range c.Endpoints() {
		if ep.Address != svc.Endpoints[i].Address || ep.Index() != i || !ep.Healthy() {
			t.Fatalf("endpoint %d = %+v", i, ep)
		}
	}
}

func TestEndpointInflight(t *testing.T) {
	c := mustNew(t, service(config.LBLeastRequest, "10.0.0.1:80", "10.0.0.2:80"), Options{})
	busy := c.Endpoints()[0]
	for range 3 {
		busy.Begin()
	}
	busy.End()
	if busy.Inflight() != 2 {
		t.Fatalf("Inflight = %d, want 2", busy.Inflight())
	}
	for range 100 {
		ep, err := c.Pick(0, false)
		if err != nil {
			t.Fatal(err)
		}
		if ep == busy {
			t.Fatal("least_request picked the busy endpoint of two")
		}
	}
}

func TestPickNoHealthyEndpoint(t *testing.T) {
	c := mustNew(t, service(config.LBRandom, "10.0.0.1:80", "10.0.0.2:80"), Options{})
	c.setHealthAt(0, false)
	c.setHealthAt(1, false)
	ep, err := c.Pick(0, false)
	if ep != nil || !errors.Is(err, ErrNoHealthyEndpoint) {
		t.Fatalf("Pick = %v, %v; want ErrNoHealthyEndpoint", ep, err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = c.Pick(0, false) }); n != 0 {
		t.Fatalf("failing Pick allocates %v times", n)
	}
	c.setHealthAt(1, true)
	if ep, err := c.Pick(0, false); err != nil || ep.Index() != 1 {
		t.Fatalf("Pick = %v, %v; want endpoint 1", ep, err)
	}
}

func TestHealthTransitionsRebuildBalancer(t *testing.T) {
	for _, policy := range []string{config.LBRoundRobin, config.LBLeastRequest, config.LBRandom, config.LBRingHash, config.LBMaglev} {
		t.Run(policy, func(t *testing.T) {
			var hooks []string
			c := mustNew(t, service(policy, "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"), Options{
				OnHealthChange: func(svc string, ep *Endpoint, healthy bool) {
					hooks = append(hooks, fmt.Sprintf("%s %s %v", svc, ep.Address, healthy))
				},
			})
			c.setHealthAt(1, false)
			c.setHealthAt(1, false) // no change, no hook
			if c.HealthyCount() != 2 || c.Endpoints()[1].Healthy() {
				t.Fatalf("%d healthy after one failure", c.HealthyCount())
			}
			for i := range 300 {
				ep, err := c.Pick(uint64(i)*0x9e3779b97f4a7c15, i%2 == 0)
				if err != nil {
					t.Fatal(err)
				}
				if ep.Index() == 1 {
					t.Fatal("picked the unhealthy endpoint")
				}
			}
			c.setHealthAt(1, true)
			seen := false
			for i := 0; i < 3000 && !seen; i++ {
				ep, _ := c.Pick(uint64(i)*0x9e3779b97f4a7c15, i%2 == 0)
				seen = ep.Index() == 1
			}
			if !seen {
				t.Fatal("the recovered endpoint is never picked")
			}
			want := "[users 10.0.0.2:80 false users 10.0.0.2:80 true]"
			if fmt.Sprint(hooks) != want {
				t.Fatalf("hooks %v, want %v", hooks, want)
			}
		})
	}
}

func TestConsistentHashAcrossHealthChange(t *testing.T) {
	for _, policy := range []string{config.LBRingHash, config.LBMaglev} {
		t.Run(policy, func(t *testing.T) {
			svc := service(policy)
			for i := range 10 {
				svc.Endpoints = append(svc.Endpoints, config.Endpoint{Address: fmt.Sprintf("10.0.0.%d:80", i+1), Weight: 1})
			}
			svc.LoadBalancer.Hash = &config.HashOn{Header: "X-User"}
			c := mustNew(t, svc, Options{})
			const keys = 10000
			pick := func(k int) *Endpoint {
				h, ok := c.HashKey(httpmsg.Header{{Name: "x-user", Value: fmt.Sprint("user-", k)}}, netip.Addr{})
				if !ok {
					t.Fatal("HashKey found no header")
				}
				ep, err := c.Pick(h, ok)
				if err != nil {
					t.Fatal(err)
				}
				return ep
			}
			before := make([]*Endpoint, keys)
			for k := range keys {
				before[k] = pick(k)
			}
			c.setHealthAt(4, false)
			moved, needless := 0, 0
			for k := range keys {
				if ep := pick(k); ep != before[k] {
					moved++
					if before[k].Index() != 4 {
						needless++
					}
				}
			}
			if moved > keys*15/100 || moved < keys*5/100 || needless > keys*3/100 {
				t.Fatalf("%d of %d keys moved (%d needlessly), want about 10%%", moved, keys, needless)
			}
			c.setHealthAt(4, true)
			for k := range keys {
				if ep := pick(k); ep != before[k] {
					t.Fatalf("key %d did not return to its endpoint after recovery", k)
				}
			}
		})
	}
}

func TestHashKeyPerPolicy(t *testing.T) {
	h := httpmsg.Header{{Name: "X-User", Value: "alice"}}
	rr := mustNew(t, service(config.LBRoundRobin, "10.0.0.1:80"), Options{})
	if _, ok := rr.HashKey(h, netip.Addr{}); ok {
		t.Fatal("round_robin cluster returned a hash key")
	}
	svc := service(config.LBMaglev, "10.0.0.1:80")
	svc.LoadBalancer.Hash = &config.HashOn{Header: "X-User"}
	mg := mustNew(t, svc, Options{})
	got, ok := mg.HashKey(h, netip.Addr{})
	want, _ := HashKey(svc.LoadBalancer.Hash, h, netip.Addr{})
	if !ok || got != want {
		t.Fatalf("HashKey = %#x, %v; want %#x", got, ok, want)
	}
}

// TestConcurrentPickDuringTransitions: picks racing with endpoints flipping between healthy and
// unhealthy always find the endpoint that stays healthy, and leave no request counted in flight.
func TestConcurrentPickDuringTransitions(t *testing.T) {
	for _, policy := range []string{config.LBRoundRobin, config.LBLeastRequest, config.LBRandom, config.LBRingHash, config.LBMaglev} {
		t.Run(policy, func(t *testing.T) {
			c := mustNew(t, service(policy, "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"), Options{})
			stop := make(chan struct{})
			var flips sync.WaitGroup
			flips.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					c.setHealthAt(i%3, i%6 >= 3) // endpoint 3 stays healthy throughout
				}
			})
			var wg sync.WaitGroup
			var picks, none atomic.Int64
			for g := range 4 {
				wg.Go(func() {
					for i := range 3000 {
						ep, err := c.Pick(uint64(g*3000+i)*0x9e3779b97f4a7c15, true)
						if err != nil {
							none.Add(1)
							continue
						}
						ep.Begin()
						_ = ep.Pool
						ep.End()
						picks.Add(1)
					}
				})
			}
			wg.Wait()
			close(stop)
			flips.Wait()
			if n := none.Load(); n != 0 || picks.Load() == 0 {
				t.Fatalf("%d picks failed and %d succeeded; with one endpoint healthy throughout every pick must succeed", n, picks.Load())
			}
			for _, ep := range c.Endpoints() {
				if ep.Inflight() != 0 {
					t.Fatalf("endpoint %s has %d in flight after all ended", ep.Address, ep.Inflight())
				}
			}
		})
	}
}

// flakyServer answers 200 or 500 on demand.
type flakyServer struct {
	*httptest.Server
	fail atomic.Bool
}

func newFlakyServer(t *testing.T) *flakyServer {
	s := &flakyServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.fail.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func fastCheck() *config.HealthCheck {
	return &config.HealthCheck{
		Interval:           20 * time.Millisecond,
		Timeout:            200 * time.Millisecond,
		UnhealthyThreshold: 3,
		HealthyThreshold:   2,
	}
}

// eventually polls cond for up to five seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// picked reports whether n picks include endpoint i.
func picked(c *Cluster, i, n int) bool {
	for range n {
		if ep, err := c.Pick(0, false); err == nil && ep.Index() == i {
			return true
		}
	}
	return false
}

func TestHTTPHealthCheckedCluster(t *testing.T) {
	servers := []*flakyServer{newFlakyServer(t), newFlakyServer(t), newFlakyServer(t)}
	svc := service(config.LBRoundRobin)
	for _, s := range servers {
		svc.Endpoints = append(svc.Endpoints, config.Endpoint{Address: s.Listener.Addr().String(), Weight: 1})
	}
	svc.HealthCheck = fastCheck()
	svc.HealthCheck.HTTP = &config.HTTPHealthCheck{Path: "/healthz"}
	var mu sync.Mutex
	var events []string
	c := mustNew(t, svc, Options{OnHealthChange: func(name string, ep *Endpoint, healthy bool) {
		mu.Lock()
		events = append(events, fmt.Sprintf("%s %d %v", name, ep.Index(), healthy))
		mu.Unlock()
	}})
	c.Start(context.Background())
	c.Start(context.Background())

	servers[1].fail.Store(true)
	eventually(t, "the failing endpoint leaves rotation", func() bool { return !picked(c, 1, 30) })
	if c.Endpoints()[1].Healthy() || c.HealthyCount() != 2 {
		t.Fatalf("endpoint 1 healthy %v, %d healthy", c.Endpoints()[1].Healthy(), c.HealthyCount())
	}

	servers[1].fail.Store(false)
	eventually(t, "the healed endpoint returns", func() bool { return picked(c, 1, 30) })

	for _, s := range servers {
		s.fail.Store(true)
	}
	eventually(t, "no endpoint is healthy", func() bool {
		_, err := c.Pick(0, false)
		return errors.Is(err, ErrNoHealthyEndpoint)
	})
	servers[2].fail.Store(false)
	eventually(t, "one endpoint is back", func() bool { return picked(c, 2, 10) })

	c.Close()
	c.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(events) < 6 || events[0] != "users 1 false" || events[1] != "users 1 true" {
		t.Fatalf("events %v", events)
	}
}

func TestTCPHealthCheckedCluster(t *testing.T) {
	var lns []net.Listener
	svc := service(config.LBRandom)
	var wg sync.WaitGroup
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		svc.Endpoints = append(svc.Endpoints, config.Endpoint{Address: ln.Addr().String(), Weight: 1})
		wg.Go(func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				_ = conn.Close()
			}
		})
	}
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
		wg.Wait()
	}()
	svc.HealthCheck = fastCheck()
	svc.HealthCheck.TCP = &config.TCPHealthCheck{}
	c := mustNew(t, svc, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.Start(ctx)
	_ = lns[0].Close()
	eventually(t, "the closed endpoint leaves rotation", func() bool { return c.HealthyCount() == 1 && !picked(c, 0, 30) })
}

func TestStartWithoutHealthCheckAndCloseBeforeStart(t *testing.T) {
	c := mustNew(t, service(config.LBRoundRobin, "10.0.0.1:80"), Options{})
	c.Start(context.Background())
	c.Close()
	if _, err := c.Pick(0, false); err != nil {
		t.Fatalf("Pick after Close: %v", err)
	}

	svc := service(config.LBRoundRobin, "127.0.0.1:1")
	svc.HealthCheck = fastCheck()
	svc.HealthCheck.TCP = &config.TCPHealthCheck{}
	c = mustNew(t, svc, Options{})
	c.Close()
	c.Start(context.Background()) // ignored after Close: no goroutines leak
}

func BenchmarkClusterPick(b *testing.B) {
	for _, policy := range []string{config.LBRoundRobin, config.LBLeastRequest, config.LBRandom, config.LBRingHash, config.LBMaglev} {
		svc := service(policy)
		for i := range 10 {
			svc.Endpoints = append(svc.Endpoints, config.Endpoint{Address: fmt.Sprintf("10.0.0.%d:80", i+1), Weight: 1})
		}
		svc.LoadBalancer.Hash = &config.HashOn{Header: "X-User"}
		c := mustNew(b, svc, Options{})
		h := httpmsg.Header{{Name: "Accept", Value: "*/*"}, {Name: "X-User", Value: "alice@example.com"}}
		b.Run(policy, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					key, ok := c.HashKey(h, netip.Addr{})
					ep, err := c.Pick(key, ok)
					if err != nil {
						b.Fatal(err)
					}
					ep.Begin()
					ep.End()
				}
			})
		})
	}
}
