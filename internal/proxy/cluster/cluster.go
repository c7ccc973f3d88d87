// Package cluster is the runtime form of a configured service: its endpoints with their live state,
// the load balancer that chooses among the usable ones, the active health check and the outlier
// detection that decide which ones are usable, and the service's circuit breaker.
//
// The request path calls Pick (and HashKey for the consistent-hashing policies); both are lock-free
// and allocation-free. Health transitions and outlier ejections are rare: each one rebuilds the
// balancer over the usable endpoints (healthy and not ejected) and swaps it in atomically, so Pick
// never waits. Every service has outlier detection: the configured one, or
// config.DefaultOutlierDetection, which ejects endpoints that refuse connections but never the
// last usable one. With a panic threshold, a service whose usable endpoints fall below it
// balances over all of its endpoints instead.
//
// A Cluster is meant to outlive config reloads while its service is unchanged (see Fingerprint), so
// that its endpoints' pools, in-flight counts and health carry over. A reload that changes only the
// service's endpoints (see SettingsFingerprint) keeps the Cluster too and calls UpdateEndpoints:
// endpoints that stay keep all of their state, removed ones leave rotation, added ones join it.
// A service may have no endpoints at all (a mesh service with no registered workload): Pick then
// fails with ErrNoHealthyEndpoint until an update brings some.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy/cluster/health"
	"github.com/meshgate/meshgate/internal/proxy/cluster/lb"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// ErrNoHealthyEndpoint is returned by Pick when every endpoint of the service is unhealthy, or the
// service has none. Pick wraps it with the service name; test for it with errors.Is.
var ErrNoHealthyEndpoint = errors.New("cluster: no healthy endpoint")

// Options carries a cluster's dependencies.
type Options struct {
	// Logger receives health transitions and build errors. Optional; nil discards.
	Logger *slog.Logger
	// OnHealthChange, when set, is called after an endpoint of service svc enters (healthy true)
	// or leaves rotation, for metrics and events. It runs on a health-check goroutine and must not
	// block for long; calls for one endpoint are in order.
	OnHealthChange func(svc string, ep *Endpoint, healthy bool)
	// OnEndpointsChange, when set, is called by UpdateEndpoints with the endpoints whose address
	// the service did not have before (added) and those whose address it no longer has (removed),
	// for metrics. It runs after the new list is in force and the health checks of removed
	// addresses stopped reporting, and before the health checks of added ones start, so that
	// OnHealthChange never reports an address before OnEndpointsChange added it or after it
	// removed it.
	OnEndpointsChange func(svc string, added, removed []*Endpoint)
	// Metrics receives circuit-breaker and outlier-detection metrics. Optional; nil records none.
	Metrics *Metrics
}

// Cluster is a service's endpoints, balancer, health check, outlier detection and circuit breaker.
// Create it with New, Start it to begin health checking and outlier reviews, and Close it when no
// config refers to it any more. Its methods are safe for concurrent use.
type Cluster struct {
	name        string
	policy      string
	hashOn      *config.HashOn // nil unless the policy hashes
	fingerprint atomic.Pointer[string]
	settings    string          // SettingsFingerprint of the service
	checker     *health.Checker // nil without a health check
	log         *slog.Logger
	onChange    func(svc string, ep *Endpoint, healthy bool)
	onEndpoints func(svc string, added, removed []*Endpoint)
	errNone     error    // ErrNoHealthyEndpoint wrapped with the name, built once
	outlier     *outlier // the configured or default outlier detection; nil only in tests
	breaker     *Breaker // nil without a circuit breaker
	panicAt     int      // panic threshold in percent; 0: no panic mode
	now         func() time.Time

	current   atomic.Pointer[picker]
	buildMu   sync.Mutex  // serialises rebuilds of current, ejections and their bookkeeping
	endpoints []*Endpoint // every endpoint, in config order; replaced (never modified) under buildMu
	panicking bool        // the balancer covers every endpoint; guarded by buildMu

	updateMu sync.Mutex // serialises UpdateEndpoints

	lifeMu  sync.Mutex
	started bool
	closed  bool
	stop    chan struct{} // closed by Close to end the outlier review loop
	wg      sync.WaitGroup
}

// picker is the balancer over the endpoints that were usable when it was built (all of them in
// panic mode), with the whole endpoint list it was built from.
type picker struct {
	bal lb.Balancer // nil when no endpoint is usable
	eps []*Endpoint // bal's target i is eps[i]
	all []*Endpoint // every endpoint of the service, in config order
}

// New builds the cluster of svc. It expects a validated, defaulted service (zero fields of its
// circuit breaker and outlier detection take their defaults); it keeps no reference to svc. All
// endpoints start healthy and none ejected. svc may have no endpoints.
func New(svc *config.Service, opts Options) (*Cluster, error) {
	if svc == nil {
		return nil, errors.New("cluster: nil service")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("service", svc.Name)
	c := &Cluster{
		name:        svc.Name,
		policy:      svc.LoadBalancer.Policy,
		endpoints:   make([]*Endpoint, len(svc.Endpoints)),
		log:         log,
		onChange:    opts.OnHealthChange,
		onEndpoints: opts.OnEndpointsChange,
		errNone:     fmt.Errorf("%w (service %q)", ErrNoHealthyEndpoint, svc.Name),
		now:         time.Now,
		stop:        make(chan struct{}),
	}
	fp := Fingerprint(svc)
	c.fingerprint.Store(&fp)
	c.settings = SettingsFingerprint(svc)
	if c.policy == "" {
		c.policy = config.LBRoundRobin
	}
	if (c.policy == config.LBRingHash || c.policy == config.LBMaglev) && svc.LoadBalancer.Hash != nil {
		h := *svc.LoadBalancer.Hash
		c.hashOn = &h
	}
	addrs := make([]string, len(svc.Endpoints))
	for i, e := range svc.Endpoints {
		c.endpoints[i] = newEndpoint(e.Address, e.Weight, i)
		addrs[i] = e.Address
	}
	od := config.DefaultOutlierDetection() // connect failures only, when the service sets none
	if svc.OutlierDetection != nil {
		od = svc.OutlierDetection.WithDefaults()
	}
	c.outlier = newOutlier(svc.Name, &od, svc.OutlierDetection == nil, c.endpoints, opts.Metrics)
	c.panicAt = *od.PanicThreshold
	if cb := svc.CircuitBreaker; cb != nil {
		c.breaker = newBreaker(svc.Name, cb, log, opts.Metrics)
	}
	if err := c.rebuild(); err != nil {
		return nil, fmt.Errorf("cluster %q: %w", svc.Name, err)
	}
	if svc.HealthCheck != nil {
		chk, err := health.New(health.Options{
			Check:     svc.HealthCheck,
			Protocol:  svc.Protocol,
			Addresses: addrs,
			OnChange:  c.setHealth,
			Logger:    log,
		})
		if err != nil {
			return nil, fmt.Errorf("cluster %q: %w", svc.Name, err)
		}
		c.checker = chk
	}
	return c, nil
}

// Name returns the service name.
func (c *Cluster) Name() string { return c.name }

// Fingerprint returns Fingerprint of the service the cluster was built from, as last updated by
// UpdateEndpoints.
func (c *Cluster) Fingerprint() string { return *c.fingerprint.Load() }

// Endpoints returns every endpoint of the service, healthy or not, in config order, as of the
// latest endpoint update. The slice is shared: do not modify it.
func (c *Cluster) Endpoints() []*Endpoint { return c.current.Load().all }

// HasAddress reports whether an endpoint of the service has the address addr.
func (c *Cluster) HasAddress(addr string) bool {
	for _, ep := range c.current.Load().all {
		if ep.Address == addr {
			return true
		}
	}
	return false
}

// HealthyCount returns how many endpoints are in rotation: the usable ones (healthy and not
// ejected), or all of them while the service is in panic mode.
func (c *Cluster) HealthyCount() int { return len(c.current.Load().eps) }

// Breaker returns the service's circuit breaker, or nil when it has none.
func (c *Cluster) Breaker() *Breaker { return c.breaker }

// Panicking reports whether the service is in panic mode: too few endpoints are usable, so the
// balancer covers all of them.
func (c *Cluster) Panicking() bool {
	c.buildMu.Lock()
	defer c.buildMu.Unlock()
	return c.panicking
}

// Pick chooses an endpoint in rotation for a request. hash and hasHash are the request's hash
// key, from HashKey; only ring_hash and maglev read them, and pick at random without one. When no
// endpoint is in rotation Pick returns an error that wraps ErrNoHealthyEndpoint. Pick does not
// allocate.
//
// The caller should call Begin on the endpoint before sending the request and End when the
// exchange is over.
func (c *Cluster) Pick(hash uint64, hasHash bool) (*Endpoint, error) {
	p := c.current.Load()
	if p.bal == nil {
		return nil, c.errNone
	}
	return p.eps[p.bal.Pick(hash, hasHash)], nil
}

// HashKey returns the request's hash key under the service's load-balancer hash setting. It
// returns false when the policy does not hash or the request lacks the hashed property.
func (c *Cluster) HashKey(h httpmsg.Header, clientIP netip.Addr) (uint64, bool) {
	if c.hashOn == nil {
		return 0, false
	}
	return HashKey(c.hashOn, h, clientIP)
}

// Start begins active health checking, when the service configures it, and the outlier review
// loop; both end when ctx is cancelled or Close is called. Start after Start or Close does nothing.
func (c *Cluster) Start(ctx context.Context) {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.started || c.closed {
		return
	}
	c.started = true
	if c.checker != nil {
		c.checker.Start(ctx)
	}
	if c.outlier != nil {
		c.wg.Add(1)
		go c.runOutlier(ctx)
	}
}

// Close stops health checking and outlier reviews and waits for them to finish. Endpoints keep
// their last health and ejections and Pick keeps working, so requests still in flight on an old
// config are unaffected. Close is idempotent.
func (c *Cluster) Close() {
	c.lifeMu.Lock()
	if !c.closed {
		c.closed = true
		close(c.stop)
	}
	c.lifeMu.Unlock()
	if c.checker != nil {
		c.checker.Stop()
	}
	c.wg.Wait()
}

// setHealth moves the endpoints at addr into or out of rotation.
func (c *Cluster) setHealth(addr string, healthy bool) {
	var changed []*Endpoint
	c.buildMu.Lock()
	before := c.healthyCount()
	for _, ep := range c.endpoints {
		if ep.Address == addr && ep.Healthy() != healthy {
			ep.unhealthy.Store(!healthy)
			changed = append(changed, ep)
		}
	}
	if len(changed) == 0 {
		c.buildMu.Unlock()
		return
	}
	err := c.rebuild()
	after := c.healthyCount()
	c.buildMu.Unlock()
	switch {
	case err != nil:
		c.log.Error("cannot rebuild load balancer; keeping the previous one", "error", err)
	case after == 0:
		c.log.Error("no healthy endpoint left")
	case before == 0:
		c.log.Info("service has a healthy endpoint again", "healthy", after)
	}
	if c.onChange != nil {
		for _, ep := range changed {
			c.onChange(c.name, ep, healthy)
		}
	}
}

// healthyCount returns how many endpoints pass their health check. Callers hold buildMu.
func (c *Cluster) healthyCount() int {
	n := 0
	for _, ep := range c.endpoints {
		if ep.Healthy() {
			n++
		}
	}
	return n
}

// rebuild builds the balancer over the usable endpoints (healthy and not ejected), or over all
// endpoints when fewer than the panic threshold are usable, and swaps it in. Callers other than New
// hold buildMu.
func (c *Cluster) rebuild() error {
	eps := make([]*Endpoint, 0, len(c.endpoints))
	for _, ep := range c.endpoints {
		if ep.Healthy() && !ep.Ejected() {
			eps = append(eps, ep)
		}
	}
	panicking := c.panicAt > 0 && 100*len(eps) < c.panicAt*len(c.endpoints)
	if panicking {
		eps = append(eps[:0], c.endpoints...)
	}
	if panicking != c.panicking {
		c.panicking = panicking
		if panicking {
			c.log.Warn("panic mode: too few usable endpoints; balancing over all of them", "panic_threshold_percent", c.panicAt)
		} else {
			c.log.Info("panic mode over: enough usable endpoints again")
		}
	}
	targets := make([]lb.Target, 0, len(eps))
	for _, ep := range eps {
		targets = append(targets, lb.Target{Key: ep.Address, Weight: ep.Weight(), Inflight: &ep.inflight})
	}
	if len(eps) == 0 {
		c.current.Store(&picker{all: c.endpoints})
		return nil
	}
	bal, err := lb.New(c.policy, targets)
	if err != nil {
		return err
	}
	c.current.Store(&picker{bal: bal, eps: eps, all: c.endpoints})
	return nil
}
