// Package health runs active health checks: it probes every endpoint of a service at a fixed
// interval and reports when an endpoint crosses its healthy or unhealthy threshold. The set of
// endpoints may change while probing runs (Update): endpoints that stay keep their state.
//
// Endpoints start healthy, so that traffic flows as soon as a service is configured; an endpoint
// leaves rotation only after UnhealthyThreshold consecutive failed probes and returns after
// HealthyThreshold consecutive passed ones.
package health

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/config"
)

// Defaults applied when a field of config.HealthCheck is zero.
const (
	DefaultInterval           = 5 * time.Second
	DefaultTimeout            = 2 * time.Second
	DefaultUnhealthyThreshold = 3
	DefaultHealthyThreshold   = 2
)

// maxInitialDelay caps the random delay before an endpoint's first probe.
const maxInitialDelay = time.Second

// Options configures a Checker.
type Options struct {
	// Check is the health check to run. Required; exactly one of its HTTP and TCP must be set.
	Check *config.HealthCheck
	// Protocol is the service protocol (config.UpstreamHTTP1, UpstreamHTTP2 or UpstreamGRPC). HTTP
	// probes of "http2" and "grpc" services speak cleartext HTTP/2 with prior knowledge, like the
	// traffic; others speak HTTP/1.1. Default "http1".
	Protocol string
	// Addresses are the host:port addresses of the endpoints to probe at first; Update changes
	// them later. An address listed twice is probed once. May be empty.
	Addresses []string
	// OnChange is called when the endpoint at addr becomes healthy or unhealthy. Calls for one
	// address are sequential and in order; calls for different addresses may run concurrently. It
	// runs on the probing goroutine, so it must not block for long. It is never called for an
	// address after Update removed it (a call in progress when Update runs finishes before Update
	// returns). Optional.
	OnChange func(addr string, healthy bool)
	// Logger receives transitions (Info when an endpoint recovers, Warn when it fails) and failed
	// probes (Debug). Optional; nil discards.
	Logger *slog.Logger
}

// Checker probes a set of endpoints, which Update may change while it runs. Create one with New,
// then Start it; Stop ends the probing. Its methods are safe for concurrent use.
type Checker struct {
	check    config.HealthCheck
	onChange func(addr string, healthy bool)
	log      *slog.Logger
	prober   prober

	mu      sync.Mutex
	targets map[string]*target // by address
	started bool
	stopped bool
	ctx     context.Context // the probing context, set by Start
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// target is one probed address.
type target struct {
	addr    string
	healthy atomic.Bool
	cancel  context.CancelFunc // ends this target's probing; nil until it starts

	// reportMu is held while a transition is reported, so that Update can wait out a report in
	// progress before it returns; removed (guarded by reportMu) silences the target for good.
	reportMu sync.Mutex
	removed  bool
}

// prober runs one probe against an endpoint and reports why it failed.
type prober interface {
	probe(ctx context.Context, addr string) error
	close()
}

// New returns a Checker for opts. Zero fields of opts.Check take the package defaults.
func New(opts Options) (*Checker, error) {
	if opts.Check == nil {
		return nil, errors.New("health: no health check configured")
	}
	hc := *opts.Check
	if hc.Interval <= 0 {
		hc.Interval = DefaultInterval
	}
	if hc.Timeout <= 0 {
		hc.Timeout = DefaultTimeout
	}
	if hc.UnhealthyThreshold <= 0 {
		hc.UnhealthyThreshold = DefaultUnhealthyThreshold
	}
	if hc.HealthyThreshold <= 0 {
		hc.HealthyThreshold = DefaultHealthyThreshold
	}
	var p prober
	switch {
	case hc.HTTP != nil && hc.TCP != nil:
		return nil, errors.New("health: both http and tcp probes configured")
	case hc.HTTP != nil:
		hp, err := newHTTPProber(hc.HTTP, opts.Protocol, hc.Timeout)
		if err != nil {
			return nil, err
		}
		p = hp
	case hc.TCP != nil:
		p = newTCPProber(hc.Timeout)
	default:
		return nil, errors.New("health: neither http nor tcp probe configured")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Checker{
		check:    hc,
		onChange: opts.OnChange,
		log:      log,
		prober:   p,
		targets:  make(map[string]*target, len(opts.Addresses)),
	}
	for _, a := range opts.Addresses {
		if c.targets[a] == nil {
			c.targets[a] = newTarget(a)
		}
	}
	return c, nil
}

// newTarget returns a target that starts healthy.
func newTarget(addr string) *target {
	t := &target{addr: addr}
	t.healthy.Store(true)
	return t
}

// Start begins probing every endpoint, each on its own goroutine. The first probe of each endpoint
// runs after a random delay of up to one interval (at most a second), and later probes follow at
// the interval with ±10% jitter, so that endpoints are not probed in lockstep. Probing ends when ctx
// is cancelled or Stop is called. Start after Start or Stop does nothing.
func (c *Checker) Start(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.stopped {
		return
	}
	c.started = true
	c.ctx, c.cancel = context.WithCancel(ctx)
	for _, t := range c.targets {
		c.launch(t)
	}
}

// launch starts probing t. Callers hold c.mu, after Start and before Stop.
func (c *Checker) launch(t *target) {
	ctx, cancel := context.WithCancel(c.ctx)
	t.cancel = cancel
	c.wg.Add(1)
	go c.run(ctx, t)
}

// Update makes addrs the set of probed endpoints. Endpoints that stay keep their state and their
// probing rhythm; new ones start healthy (and, once the checker is started, are probed like the
// first ones: after a random delay, then every interval); removed ones stop being probed, and
// OnChange is not called for them any more: Update waits for a report in progress to finish. So
// Update must not be called while holding a lock that OnChange takes. Update after Stop only
// records the set.
func (c *Checker) Update(addrs []string) {
	want := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		want[a] = true
	}
	var gone []*target
	c.mu.Lock()
	for a, t := range c.targets {
		if !want[a] {
			delete(c.targets, a)
			gone = append(gone, t)
		}
	}
	for _, a := range addrs {
		if c.targets[a] != nil {
			continue
		}
		t := newTarget(a)
		c.targets[a] = t
		if c.started && !c.stopped {
			c.launch(t)
		}
	}
	c.mu.Unlock()
	for _, t := range gone {
		if t.cancel != nil {
			t.cancel()
		}
		t.reportMu.Lock()
		t.removed = true
		t.reportMu.Unlock()
	}
}

// Stop ends probing and waits for every probing goroutine to return. It is idempotent; a Checker
// cannot be restarted.
func (c *Checker) Stop() {
	c.mu.Lock()
	c.stopped = true
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	c.wg.Wait()
	c.prober.close()
}

// Healthy reports whether the endpoint at addr is currently considered healthy. It reports false
// for an address the checker does not probe.
func (c *Checker) Healthy(addr string) bool {
	c.mu.Lock()
	t := c.targets[addr]
	c.mu.Unlock()
	return t != nil && t.healthy.Load()
}

// run probes t until ctx is done.
func (c *Checker) run(ctx context.Context, t *target) {
	defer c.wg.Done()
	var passes, fails int
	timer := time.NewTimer(rand.N(min(c.check.Interval, maxInitialDelay)) + 1)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		pctx, cancel := context.WithTimeout(ctx, c.check.Timeout)
		err := c.prober.probe(pctx, t.addr)
		cancel()
		if ctx.Err() != nil {
			return // cut short by Stop or Update: not the endpoint's fault
		}
		healthy := t.healthy.Load()
		if err == nil {
			fails = 0
			passes++
			if !healthy && passes >= c.check.HealthyThreshold {
				c.transition(t, true, nil)
			}
		} else {
			passes = 0
			fails++
			c.log.Debug("health probe failed", "endpoint", t.addr, "consecutive_failures", fails, "error", err)
			if healthy && fails >= c.check.UnhealthyThreshold {
				c.transition(t, false, err)
			}
		}
		timer.Reset(jitter(c.check.Interval))
	}
}

func (c *Checker) transition(t *target, healthy bool, err error) {
	t.reportMu.Lock()
	defer t.reportMu.Unlock()
	if t.removed {
		return
	}
	t.healthy.Store(healthy)
	if healthy {
		c.log.Info("endpoint healthy", "endpoint", t.addr, "passes", c.check.HealthyThreshold)
	} else {
		c.log.Warn("endpoint unhealthy", "endpoint", t.addr, "failures", c.check.UnhealthyThreshold, "error", err)
	}
	if c.onChange != nil {
		c.onChange(t.addr, healthy)
	}
}

// jitter returns d scaled by a random factor in [0.9, 1.1).
func jitter(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}
