// Package cluster is the runtime form of a configured service: its endpoints with their live state,
// the load balancer that chooses among the healthy ones, and the active health check that decides
// which ones are healthy.
//
// The request path calls Pick (and HashKey for the consistent-hashing policies); both are lock-free
// and allocation-free. Health transitions are rare: each one rebuilds the balancer over the healthy
// endpoints and swaps it in atomically, so Pick never waits.
//
// A Cluster is meant to outlive config reloads while its service is unchanged (see Fingerprint), so
// that its endpoints' pools, in-flight counts and health carry over.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy/cluster/health"
	"github.com/meshgate/meshgate/internal/proxy/cluster/lb"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// ErrNoHealthyEndpoint is returned by Pick when every endpoint of the service is unhealthy. Pick
// wraps it with the service name; test for it with errors.Is.
var ErrNoHealthyEndpoint = errors.New("cluster: no healthy endpoint")

// Options carries a cluster's dependencies.
type Options struct {
	// Logger receives health transitions and build errors. Optional; nil discards.
	Logger *slog.Logger
	// OnHealthChange, when set, is called after an endpoint of service svc enters (healthy true)
	// or leaves rotation, for metrics and events. It runs on a health-check goroutine and must not
	// block for long; calls for one endpoint are in order.
	OnHealthChange func(svc string, ep *Endpoint, healthy bool)
}

// Cluster is a service's endpoints, balancer and health check. Create it with New, Start it to
// begin health checking, and Close it when no config refers to it any more. Its methods are safe
// for concurrent use.
type Cluster struct {
	name        string
	policy      string
	hashOn      *config.HashOn // nil unless the policy hashes
	endpoints   []*Endpoint
	fingerprint string
	checker     *health.Checker // nil without a health check
	log         *slog.Logger
	onChange    func(svc string, ep *Endpoint, healthy bool)
	errNone     error // ErrNoHealthyEndpoint wrapped with the name, built once

	current atomic.Pointer[picker]
	buildMu sync.Mutex // serialises rebuilds of current

	lifeMu  sync.Mutex
	started bool
	closed  bool
}

// picker is the balancer over the endpoints that were healthy when it was built.
type picker struct {
	bal lb.Balancer // nil when no endpoint is healthy
	eps []*Endpoint // bal's target i is eps[i]
}

// New builds the cluster of svc. It expects a validated, defaulted service; it keeps no reference
// to svc. All endpoints start healthy.
func New(svc *config.Service, opts Options) (*Cluster, error) {
	if svc == nil {
		return nil, errors.New("cluster: nil service")
	}
	if len(svc.Endpoints) == 0 {
		return nil, fmt.Errorf("cluster %q: no endpoints", svc.Name)
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
		fingerprint: Fingerprint(svc),
		log:         log,
		onChange:    opts.OnHealthChange,
		errNone:     fmt.Errorf("%w (service %q)", ErrNoHealthyEndpoint, svc.Name),
	}
	if c.policy == "" {
		c.policy = config.LBRoundRobin
	}
	if (c.policy == config.LBRingHash || c.policy == config.LBMaglev) && svc.LoadBalancer.Hash != nil {
		h := *svc.LoadBalancer.Hash
		c.hashOn = &h
	}
	addrs := make([]string, len(svc.Endpoints))
	for i, e := range svc.Endpoints {
		c.endpoints[i] = &Endpoint{Address: e.Address, Weight: max(e.Weight, 1), index: i}
		addrs[i] = e.Address
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

// Fingerprint returns Fingerprint of the service the cluster was built from.
func (c *Cluster) Fingerprint() string { return c.fingerprint }

// Endpoints returns every endpoint of the service, healthy or not, in config order. The slice is
// shared: do not modify it.
func (c *Cluster) Endpoints() []*Endpoint { return c.endpoints }

// HealthyCount returns how many endpoints are in rotation.
func (c *Cluster) HealthyCount() int { return len(c.current.Load().eps) }

// Pick chooses a healthy endpoint for a request. hash and hasHash are the request's hash key, from
// HashKey; only ring_hash and maglev read them, and pick at random without one. When no endpoint is
// healthy Pick returns an error that wraps ErrNoHealthyEndpoint. Pick does not allocate.
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

// Start begins active health checking, when the service configures it; checking ends when ctx is
// cancelled or Close is called. Start after Start or Close does nothing.
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
}

// Close stops health checking and waits for it to finish. Endpoints keep their last health and Pick
// keeps working, so requests still in flight on an old config are unaffected. Close is idempotent.
func (c *Cluster) Close() {
	c.lifeMu.Lock()
	c.closed = true
	c.lifeMu.Unlock()
	if c.checker != nil {
		c.checker.Stop()
	}
}

// setHealth moves endpoint i into or out of rotation.
func (c *Cluster) setHealth(i int, healthy bool) {
	ep := c.endpoints[i]
	c.buildMu.Lock()
	if ep.Healthy() == healthy {
		c.buildMu.Unlock()
		return
	}
	before := c.HealthyCount()
	ep.unhealthy.Store(!healthy)
	err := c.rebuild()
	after := c.HealthyCount()
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
		c.onChange(c.name, ep, healthy)
	}
}

// rebuild builds the balancer over the healthy endpoints and swaps it in. Callers other than New
// hold buildMu.
func (c *Cluster) rebuild() error {
	eps := make([]*Endpoint, 0, len(c.endpoints))
	targets := make([]lb.Target, 0, len(c.endpoints))
	for _, ep := range c.endpoints {
		if ep.Healthy() {
			eps = append(eps, ep)
			targets = append(targets, lb.Target{Key: ep.Address, Weight: ep.Weight, Inflight: &ep.inflight})
		}
	}
	if len(eps) == 0 {
		c.current.Store(&picker{})
		return nil
	}
	bal, err := lb.New(c.policy, targets)
	if err != nil {
		return err
	}
	c.current.Store(&picker{bal: bal, eps: eps})
	return nil
}
