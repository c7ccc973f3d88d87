// Package health runs active health checks: it probes every endpoint of a service at a fixed
// interval and reports when an endpoint crosses its healthy or unhealthy threshold.
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
	// Addresses are the host:port addresses of the endpoints to probe. An endpoint is named by its
	// index in Addresses when reported to OnChange.
	Addresses []string
	// OnChange is called when endpoint ep becomes healthy or unhealthy. Calls for one endpoint are
	// sequential and in order; calls for different endpoints may run concurrently. It runs on the
	// probing goroutine, so it must not block for long. Optional.
	OnChange func(ep int, healthy bool)
	// Logger receives transitions (Info when an endpoint recovers, Warn when it fails) and failed
	// probes (Debug). Optional; nil discards.
	Logger *slog.Logger
}

// Checker probes a fixed list of endpoints. Create one with New, then Start it; Stop ends the
// probing. Its methods are safe for concurrent use.
type Checker struct {
	check    config.HealthCheck
	addrs    []string
	onChange func(ep int, healthy bool)
	log      *slog.Logger
	prober   prober
	healthy  []atomic.Bool

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
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
		addrs:    append([]string(nil), opts.Addresses...),
		onChange: opts.OnChange,
		log:      log,
		prober:   p,
		healthy:  make([]atomic.Bool, len(opts.Addresses)),
	}
	for i := range c.healthy {
		c.healthy[i].Store(true)
	}
	return c, nil
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
	ctx, c.cancel = context.WithCancel(ctx)
	for i := range c.addrs {
		c.wg.Add(1)
		go c.run(ctx, i)
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

// Healthy reports whether endpoint ep is currently considered healthy.
func (c *Checker) Healthy(ep int) bool {
	return c.healthy[ep].Load()
}

// run probes endpoint i until ctx is done.
func (c *Checker) run(ctx context.Context, i int) {
	defer c.wg.Done()
	addr := c.addrs[i]
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
		err := c.prober.probe(pctx, addr)
		cancel()
		if ctx.Err() != nil {
			return // cut short by Stop: not the endpoint's fault
		}
		healthy := c.healthy[i].Load()
		if err == nil {
			fails = 0
			passes++
			if !healthy && passes >= c.check.HealthyThreshold {
				c.transition(i, true, nil)
			}
		} else {
			passes = 0
			fails++
			c.log.Debug("health probe failed", "endpoint", addr, "consecutive_failures", fails, "error", err)
			if healthy && fails >= c.check.UnhealthyThreshold {
				c.transition(i, false, err)
			}
		}
		timer.Reset(jitter(c.check.Interval))
	}
}

func (c *Checker) transition(i int, healthy bool, err error) {
	c.healthy[i].Store(healthy)
	if healthy {
		c.log.Info("endpoint healthy", "endpoint", c.addrs[i], "passes", c.check.HealthyThreshold)
	} else {
		c.log.Warn("endpoint unhealthy", "endpoint", c.addrs[i], "failures", c.check.UnhealthyThreshold, "error", err)
	}
	if c.onChange != nil {
		c.onChange(i, healthy)
	}
}

// jitter returns d scaled by a random factor in [0.9, 1.1).
func jitter(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}
