package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/meshgate/meshgate/internal/config"
)

// setHealthAt moves the endpoint at position i into or out of rotation, as its health check would.
func (c *Cluster) setHealthAt(i int, healthy bool) {
	c.setHealth(c.Endpoints()[i].Address, healthy)
}

// weighted returns a service whose endpoints are "addr=weight" pairs (weight 1 without "=").
func weighted(policy string, specs ...string) *config.Service {
	svc := service(policy)
	for _, s := range specs {
		addr, w, _ := strings.Cut(s, "=")
		weight := 1
		if w != "" {
			fmt.Sscan(w, &weight)
		}
		svc.Endpoints = append(svc.Endpoints, config.Endpoint{Address: addr, Weight: weight})
	}
	return svc
}

// addrsOf returns the addresses of eps.
func addrsOf(eps []*Endpoint) []string {
	out := make([]string, len(eps))
	for i, ep := range eps {
		out[i] = ep.Address
	}
	slices.Sort(out)
	return out
}

func TestUpdateEndpoints(t *testing.T) {
	tests := []struct {
		desc          string
		before, after []string
		added         []string
		removed       []string
	}{
		{desc: "add one", before: []string{"a:1", "b:1"}, after: []string{"a:1", "b:1", "c:1"}, added: []string{"c:1"}},
		{desc: "remove one", before: []string{"a:1", "b:1", "c:1"}, after: []string{"a:1", "c:1"}, removed: []string{"b:1"}},
		{desc: "replace one", before: []string{"a:1", "b:1"}, after: []string{"a:1", "c:1"}, added: []string{"c:1"}, removed: []string{"b:1"}},
		{desc: "reorder", before: []string{"a:1", "b:1", "c:1"}, after: []string{"c:1", "a:1", "b:1"}},
		{desc: "weights only", before: []string{"a:1", "b:1"}, after: []string{"a:1=3", "b:1=2"}},
		{desc: "to empty", before: []string{"a:1", "b:1"}, after: nil, removed: []string{"a:1", "b:1"}},
		{desc: "from empty", before: nil, after: []string{"a:1", "b:1"}, added: []string{"a:1", "b:1"}},
		{desc: "duplicate address shrinks", before: []string{"a:1", "a:1", "b:1"}, after: []string{"a:1", "b:1"}},
		{desc: "duplicate address grows", before: []string{"a:1", "b:1"}, after: []string{"a:1", "b:1", "a:1"}},
		{desc: "everything replaced", before: []string{"a:1", "b:1"}, after: []string{"c:1", "d:1"}, added: []string{"c:1", "d:1"}, removed: []string{"a:1", "b:1"}},
	}
	for _, policy := range lbPolicies {
		for _, tt := range tests {
			t.Run(policy+"/"+tt.desc, func(t *testing.T) {
				svc := weighted(policy, tt.before...)
				svc.OutlierDetection = &config.OutlierDetection{Consecutive5xx: intp(2), PanicThreshold: intp(0)}
				var hooked [][]string
				c := mustNew(t, svc, Options{OnEndpointsChange: func(name string, added, removed []*Endpoint) {
					hooked = append(hooked, addrsOf(added), addrsOf(removed))
				}})
				before := map[string]*Endpoint{}
				for _, ep := range c.Endpoints() {
					if before[ep.Address] == nil {
						before[ep.Address] = ep
					}
					ep.Begin() // an in-flight request that must survive the update
					ep.stats.multiplier = 7
				}
				// The first endpoint, when it stays, is unhealthy and must stay so.
				var sick string
				if len(tt.before) > 0 {
					sick = c.Endpoints()[0].Address
					c.setHealth(sick, false)
				}
				next := weighted(policy, tt.after...)
				next.OutlierDetection = svc.OutlierDetection
				added, removed, err := c.UpdateEndpoints(next)
				if err != nil {
					t.Fatal(err)
				}
				if got := addrsOf(added); !slices.Equal(got, sortedCopy(tt.added)) {
					t.Errorf("added %v, want %v", got, tt.added)
				}
				if got := addrsOf(removed); !slices.Equal(got, sortedCopy(tt.removed)) {
					t.Errorf("removed %v, want %v", got, tt.removed)
				}
				if len(tt.added)+len(tt.removed) > 0 && len(hooked) != 2 {
					t.Errorf("OnEndpointsChange called %d times, want once", len(hooked)/2)
				}
				eps := c.Endpoints()
				if len(eps) != len(tt.after) {
					t.Fatalf("%d endpoints, want %d", len(eps), len(tt.after))
				}
				for i, ep := range eps {
					want := next.Endpoints[i]
					if ep.Address != want.Address || ep.Weight() != max(want.Weight, 1) || ep.Index() != i || ep.Removed() {
						t.Errorf("endpoint %d = %s weight %d index %d removed %v, want %s weight %d",
							i, ep.Address, ep.Weight(), ep.Index(), ep.Removed(), want.Address, want.Weight)
					}
					old := before[ep.Address]
					switch {
					case old == ep:
						if ep.Inflight() != 1 || ep.stats.multiplier != 7 {
							t.Errorf("%s lost its state: inflight %d, multiplier %d", ep.Address, ep.Inflight(), ep.stats.multiplier)
						}
						if ep.Healthy() == (ep.Address == sick) {
							t.Errorf("%s healthy %v after the update", ep.Address, ep.Healthy())
						}
					case old == nil:
						if !ep.Healthy() || ep.Ejected() || ep.Inflight() != 0 || ep.stats == nil || ep.stats.multiplier != 0 {
							t.Errorf("added %s does not start fresh", ep.Address)
						}
					}
				}
				for _, ep := range before {
					if ep.Removed() {
						if ep.Index() != -1 {
							t.Errorf("removed %s has index %d", ep.Address, ep.Index())
						}
						ep.End() // the in-flight request finishes on the removed endpoint
					}
				}
				// The balancer covers exactly the healthy endpoints of the new list.
				healthy := map[string]bool{}
				for _, ep := range eps {
					if ep.Healthy() {
						healthy[ep.Address] = true
					}
				}
				for i := range 2000 {
					ep, err := c.Pick(uint64(i)*0x9e3779b97f4a7c15, i%2 == 0)
					if len(healthy) == 0 {
						if !errors.Is(err, ErrNoHealthyEndpoint) {
							t.Fatalf("Pick on no healthy endpoint: %v, %v", ep, err)
						}
						continue
					}
					if err != nil {
						t.Fatal(err)
					}
					if ep.Removed() || !healthy[ep.Address] {
						t.Fatalf("picked %s (removed %v)", ep.Address, ep.Removed())
					}
				}
			})
		}
	}
}

var lbPolicies = []string{config.LBRoundRobin, config.LBLeastRequest, config.LBRandom, config.LBRingHash, config.LBMaglev}

func sortedCopy(s []string) []string {
	out := append([]string{}, s...)
	slices.Sort(out)
	if out == nil {
		out = []string{}
	}
	return out
}

func TestUpdateEndpointsDistribution(t *testing.T) {
	// After each update the traffic split follows the new weights, whatever the policy.
	steps := [][]string{
		{"10.0.0.1:80", "10.0.0.2:80"},
		{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80=2"},
		{"10.0.0.2:80=3", "10.0.0.3:80"},
		{"10.0.0.4:80", "10.0.0.2:80", "10.0.0.5:80", "10.0.0.6:80"},
	}
	tolerance := map[string]float64{
		config.LBRoundRobin: 0.001, config.LBLeastRequest: 0.05, config.LBRandom: 0.05,
		config.LBRingHash: 0.1, config.LBMaglev: 0.05,
	}
	for _, policy := range lbPolicies {
		t.Run(policy, func(t *testing.T) {
			c := mustNew(t, weighted(policy, steps[0]...), Options{})
			for s, step := range steps {
				if s > 0 {
					if _, _, err := c.UpdateEndpoints(weighted(policy, step...)); err != nil {
						t.Fatal(err)
					}
				}
				total := 0
				for _, ep := range c.Endpoints() {
					total += ep.Weight()
				}
				const n = 120000 // a multiple of every weight total above
				counts := map[*Endpoint]int{}
				for i := range n {
					ep, err := c.Pick(uint64(i+1)*0x9e3779b97f4a7c15^uint64(s), true)
					if err != nil {
						t.Fatal(err)
					}
					counts[ep]++
				}
				for _, ep := range c.Endpoints() {
					want := float64(ep.Weight()) / float64(total)
					got := float64(counts[ep]) / n
					if math.Abs(got-want) > tolerance[policy]*want+1e-9 {
						t.Errorf("step %d: %s share %.4f, want %.4f", s, ep.Address, got, want)
					}
				}
				if len(counts) != len(c.Endpoints()) {
					t.Errorf("step %d: picked %d distinct endpoints, want %d", s, len(counts), len(c.Endpoints()))
				}
			}
		})
	}
}

func TestUpdateEndpointsConsistentHashMovesFewKeys(t *testing.T) {
	// Adding a fifth endpoint to a hashing cluster moves only the keys it takes over.
	for _, policy := range []string{config.LBRingHash, config.LBMaglev} {
		t.Run(policy, func(t *testing.T) {
			c := mustNew(t, weighted(policy, endpoints(4)...), Options{})
			const keys = 20000
			before := make([]string, keys)
			for i := range keys {
				ep, _ := c.Pick(uint64(i)*0x9e3779b97f4a7c15, true)
				before[i] = ep.Address
			}
			if _, _, err := c.UpdateEndpoints(weighted(policy, endpoints(5)...)); err != nil {
				t.Fatal(err)
			}
			needless := 0
			for i := range keys {
				ep, _ := c.Pick(uint64(i)*0x9e3779b97f4a7c15, true)
				if ep.Address != before[i] && ep.Address != "10.0.0.5:80" {
					needless++
				}
			}
			if frac := float64(needless) / keys; frac > 0.02 {
				t.Fatalf("%.1f%% of keys moved between endpoints that both stayed", 100*frac)
			}
		})
	}
}

func TestUpdateEndpointsRefusesOtherChanges(t *testing.T) {
	c := mustNew(t, service(config.LBRoundRobin, "10.0.0.1:80"), Options{})
	tests := []struct {
		desc   string
		change func(*config.Service)
	}{
		{desc: "policy", change: func(s *config.Service) { s.LoadBalancer.Policy = config.LBRandom }},
		{desc: "name", change: func(s *config.Service) { s.Name = "orders" }},
		{desc: "health check", change: func(s *config.Service) {
			s.HealthCheck = &config.HealthCheck{TCP: &config.TCPHealthCheck{}}
		}},
		{desc: "pool", change: func(s *config.Service) { s.Pool.MaxIdlePerEndpoint = 3 }},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			next := service(config.LBRoundRobin, "10.0.0.2:80")
			tt.change(next)
			if _, _, err := c.UpdateEndpoints(next); !errors.Is(err, ErrSettingsChanged) {
				t.Fatalf("UpdateEndpoints = %v, want ErrSettingsChanged", err)
			}
			if got := c.Endpoints(); len(got) != 1 || got[0].Address != "10.0.0.1:80" {
				t.Fatalf("endpoints changed to %v", addrsOf(got))
			}
		})
	}
	if _, _, err := c.UpdateEndpoints(nil); err == nil {
		t.Fatal("UpdateEndpoints(nil) succeeded")
	}
}

func TestFingerprintFollowsUpdate(t *testing.T) {
	c := mustNew(t, service(config.LBRoundRobin, "10.0.0.1:80"), Options{})
	next := service(config.LBRoundRobin, "10.0.0.1:80", "10.0.0.2:80")
	if SettingsFingerprint(next) != SettingsFingerprint(service(config.LBRoundRobin, "10.0.0.1:80")) {
		t.Fatal("settings fingerprints differ for services that differ only in endpoints")
	}
	if _, _, err := c.UpdateEndpoints(next); err != nil {
		t.Fatal(err)
	}
	if c.Fingerprint() != Fingerprint(next) {
		t.Fatal("Fingerprint does not follow the update")
	}
	if !c.HasAddress("10.0.0.2:80") || c.HasAddress("10.0.0.3:80") {
		t.Fatal("HasAddress does not follow the update")
	}
}

func TestZeroEndpoints(t *testing.T) {
	// A service with no endpoints builds, fails Pick without panicking or spinning, and serves
	// once an update brings endpoints, with every optional part configured.
	for _, policy := range lbPolicies {
		t.Run(policy, func(t *testing.T) {
			svc := service(policy)
			svc.OutlierDetection = &config.OutlierDetection{Consecutive5xx: intp(1), Interval: 10 * time.Millisecond,
				SuccessRate: &config.SuccessRateOutlier{MinimumHosts: 1, RequestVolume: 1, StdevFactor: 1}}
			svc.HealthCheck = fastCheck()
			svc.HealthCheck.TCP = &config.TCPHealthCheck{}
			svc.CircuitBreaker = &config.CircuitBreaker{MaxRequests: 10}
			if policy == config.LBRingHash || policy == config.LBMaglev {
				svc.LoadBalancer.Hash = &config.HashOn{Header: "x-user"}
			}
			reg := prometheus.NewRegistry()
			m, err := NewMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			c := mustNew(t, svc, Options{Metrics: m})
			c.Start(context.Background())
			for range 3 {
				ep, err := c.Pick(1, true)
				if ep != nil || !errors.Is(err, ErrNoHealthyEndpoint) {
					t.Fatalf("Pick = %v, %v; want ErrNoHealthyEndpoint", ep, err)
				}
			}
			if c.HealthyCount() != 0 || len(c.Endpoints()) != 0 || c.Panicking() {
				t.Fatalf("healthy %d, endpoints %d, panicking %v", c.HealthyCount(), len(c.Endpoints()), c.Panicking())
			}
			c.review(time.Now()) // the outlier review of an empty service does nothing
			srv := newFlakyServer(t)
			next := service(policy, srv.Listener.Addr().String())
			next.OutlierDetection, next.HealthCheck, next.CircuitBreaker, next.LoadBalancer = svc.OutlierDetection, svc.HealthCheck, svc.CircuitBreaker, svc.LoadBalancer
			if _, _, err := c.UpdateEndpoints(next); err != nil {
				t.Fatal(err)
			}
			if ep, err := c.Pick(1, true); err != nil || ep.Address != srv.Listener.Addr().String() {
				t.Fatalf("Pick after the update = %v, %v", ep, err)
			}
			// And back to none.
			if _, _, err := c.UpdateEndpoints(svc); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Pick(1, true); !errors.Is(err, ErrNoHealthyEndpoint) {
				t.Fatalf("Pick after emptying = %v", err)
			}
			if n := countSeries(t, reg, "meshgate_outlier_ejected"); n != 0 {
				t.Fatalf("%d ejected series left for a service with no endpoints", n)
			}
		})
	}
}

// countSeries returns how many series of the named family reg holds.
func countSeries(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// labelValue returns the value of label name on m.
func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestUpdateEndpointsMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := outlierCluster(t, 3, &config.OutlierDetection{Consecutive5xx: intp(1), MaxEjectionPercent: 100}, m)
	c.Report(c.Endpoints()[1], 500, false) // 10.0.0.2 ejected: its gauge is 1
	third := c.Endpoints()[2]
	next := service(config.LBRoundRobin, "10.0.0.1:80", "10.0.0.9:80")
	next.OutlierDetection = &config.OutlierDetection{Consecutive5xx: intp(1), MaxEjectionPercent: 100}
	if _, _, err := c.UpdateEndpoints(next); err != nil {
		t.Fatal(err)
	}
	// A failure reported for a request that was in flight on a removed endpoint ejects nothing
	// and brings no series back.
	c.Report(third, 500, false)
	if third.Ejected() {
		t.Fatal("a removed endpoint was ejected")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		if mf.GetName() == "meshgate_outlier_ejected" {
			for _, x := range mf.GetMetric() {
				got = append(got, fmt.Sprintf("%s=%v", labelValue(x, "endpoint"), x.GetGauge().GetValue()))
			}
		}
	}
	slices.Sort(got)
	if want := []string{"10.0.0.1:80=0", "10.0.0.9:80=0"}; !slices.Equal(got, want) {
		t.Fatalf("ejected series %v, want %v", got, want)
	}
}

func TestUpdateEndpointsHealthChecks(t *testing.T) {
	// Endpoints that stay keep their probe state; added ones are probed from the update on;
	// removed ones are never reported again.
	servers := []*flakyServer{newFlakyServer(t), newFlakyServer(t), newFlakyServer(t)}
	addr := func(i int) string { return servers[i].Listener.Addr().String() }
	svc := service(config.LBRoundRobin, addr(0), addr(1))
	svc.HealthCheck = fastCheck()
	svc.HealthCheck.HTTP = &config.HTTPHealthCheck{Path: "/healthz"}
	var mu sync.Mutex
	var events []string
	removedAt := map[string]int{} // address → number of events when it was removed
	c := mustNew(t, svc, Options{
		OnHealthChange: func(name string, ep *Endpoint, healthy bool) {
			mu.Lock()
			events = append(events, fmt.Sprintf("%s %v", ep.Address, healthy))
			mu.Unlock()
		},
		OnEndpointsChange: func(name string, added, removed []*Endpoint) {
			mu.Lock()
			for _, ep := range removed {
				removedAt[ep.Address] = len(events)
			}
			mu.Unlock()
		},
	})
	c.Start(context.Background())

	servers[0].fail.Store(true)
	servers[1].fail.Store(true)
	eventually(t, "both endpoints are unhealthy", func() bool { return c.HealthyCount() == 0 })

	// Keep 0 (unhealthy), drop 1 (unhealthy, still failing), add 2 (healthy).
	next := service(config.LBRoundRobin, addr(0), addr(2))
	next.HealthCheck = svc.HealthCheck
	if _, _, err := c.UpdateEndpoints(next); err != nil {
		t.Fatal(err)
	}
	if c.Endpoints()[0].Healthy() || !c.Endpoints()[1].Healthy() || c.HealthyCount() != 1 {
		t.Fatalf("after the update: 0 healthy %v, 2 healthy %v", c.Endpoints()[0].Healthy(), c.Endpoints()[1].Healthy())
	}
	// The added endpoint is probed: make it fail and see it leave.
	servers[2].fail.Store(true)
	eventually(t, "the added endpoint is probed", func() bool { return c.HealthyCount() == 0 })
	// The kept endpoint recovers through its probes.
	servers[0].fail.Store(false)
	servers[1].fail.Store(false) // would recover too, were it still probed
	eventually(t, "the kept endpoint recovers", func() bool { return c.Endpoints()[0].Healthy() })
	time.Sleep(150 * time.Millisecond) // several probe intervals for the removed endpoint
	c.Close()

	mu.Lock()
	defer mu.Unlock()
	for _, e := range events[removedAt[addr(1)]:] {
		if strings.HasPrefix(e, addr(1)+" ") {
			t.Fatalf("event %q after the endpoint was removed; events %v", e, events)
		}
	}
}

func TestConcurrentPickDuringUpdates(t *testing.T) {
	// Pickers never see a removed endpoint once the update returned, never fail while one
	// endpoint stays throughout, and the race detector sees the update as atomic.
	for _, policy := range lbPolicies {
		t.Run(policy, func(t *testing.T) {
			sets := [][]string{
				{"10.0.0.1:80", "10.0.0.2:80"},
				{"10.0.0.1:80", "10.0.0.3:80=3"},
				{"10.0.0.4:80", "10.0.0.1:80"},
				{"10.0.0.1:80=2"},
			}
			// A threshold no run reaches: with round robin, one picker alternating 200 and 500
			// can send every 500 to the same endpoint, which must not be ejected here.
			od := &config.OutlierDetection{Consecutive5xx: intp(1 << 30), PanicThreshold: intp(0),
				SuccessRate: &config.SuccessRateOutlier{MinimumHosts: 100, RequestVolume: 1}}
			svc := weighted(policy, sets[0]...)
			svc.OutlierDetection = od
			m, err := NewMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			c := mustNew(t, svc, Options{Metrics: m})
			var stop atomic.Bool
			var failures atomic.Int64
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for i := 0; !stop.Load() && i < 1_000_000; i++ {
						ep, err := c.Pick(uint64(g*1_000_003+i)*0x9e3779b97f4a7c15, i%2 == 0)
						if err != nil {
							failures.Add(1)
							continue
						}
						ep.Begin()
						_ = ep.Weight() + ep.Index()
						ep.End()
						c.Report(ep, 200+300*(i%2), false) // outlier counters of endpoints old and new
					}
				})
			}
			for i := range 200 {
				next := weighted(policy, sets[i%len(sets)]...)
				next.OutlierDetection = od
				if _, _, err := c.UpdateEndpoints(next); err != nil {
					t.Error(err)
					break
				}
				for _, ep := range c.Endpoints() {
					if ep.Removed() {
						t.Errorf("endpoint list holds removed %s", ep.Address)
					}
				}
			}
			stop.Store(true)
			wg.Wait()
			if n := failures.Load(); n != 0 {
				t.Fatalf("%d picks failed", n)
			}
		})
	}
}
