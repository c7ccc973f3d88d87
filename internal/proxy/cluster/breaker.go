package cluster

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
)

// Breaker states.
const (
	breakerClosed int32 = iota
	breakerOpen
	breakerHalfOpen
)

// threshold indexes, for the per-threshold errors and counters.
const (
	thMaxRequests = iota
	thMaxRetries
	thMaxPending
	thMaxConnections
	thOpen
	thHalfOpen
	numThresholds
)

var thresholdNames = [numThresholds]string{
	ThresholdMaxRequests, ThresholdMaxRetries, ThresholdMaxPendingRequests, ThresholdMaxConnections,
	ThresholdOpen, ThresholdHalfOpen,
}

// Breaker is a service's circuit breaker, with Envoy's thresholds: requests in flight, retries in
// flight, requests waiting for a connection and open connections. Beyond the first three a request
// fails at once with 503 and reason circuit_open; with MaxConnections open, a request waits for a
// connection as a pending request, and fails the same way if its deadline comes first. The
// breaker also opens after ConsecutiveFailures failed attempts in a row (a connect failure, reset,
// timeout or 5xx answer), rejects everything for OpenFor, then half-opens: HalfOpenRequests probes
// go through and the rest are rejected; when all probes succeed it closes, when one fails it opens
// again.
//
// Admit and Done are lock-free while the breaker is closed and do not allocate. The connection
// methods (AcquireConn, ReleaseConn, BeginPending, EndPending, ConnOverflow) are what the HTTP/1
// transport's pools call; a Breaker implements upstream.ConnLimiter.
type Breaker struct {
	service string
	log     *slog.Logger
	now     func() time.Time

	maxRequests, maxRetries, maxPending, maxConns int64
	requests, retries, pending, conns             atomic.Int64

	trip     int64 // consecutive failures that open the breaker; 0: never
	openFor  time.Duration
	probes   int // probes a half-open breaker admits
	failures atomic.Int64
	state    atomic.Int32
	epoch    atomic.Uint64 // grows at every state change; results from an older epoch are ignored

	mu        sync.Mutex // serialises state changes; guards the fields below
	openedAt  time.Time
	probesOut int // probes admitted in this half-open epoch whose result is not in
	probesOK  int // probes of this epoch that succeeded

	errs     [numThresholds]*proxy.Error
	rejected [numThresholds]prometheus.Counter // nil without metrics
	open     prometheus.Gauge                  // nil without metrics
}

// Ticket is an admitted attempt's hold on a breaker; give it back to Done.
type Ticket struct {
	retry bool
	probe bool
	epoch uint64
}

// newBreaker returns the breaker cb configures for service; unset fields take the config's defaults.
func newBreaker(service string, cb *config.CircuitBreaker, log *slog.Logger, m *Metrics) *Breaker {
	d := cb.WithDefaults()
	b := &Breaker{
		service:     service,
		log:         log,
		now:         time.Now,
		maxRequests: int64(d.MaxRequests),
		maxRetries:  int64(d.MaxRetries),
		maxPending:  int64(d.MaxPendingRequests),
		maxConns:    int64(d.MaxConnections),
		trip:        int64(max(d.ConsecutiveFailures, 0)),
		openFor:     d.OpenFor,
		probes:      d.HalfOpenRequests,
	}
	limits := [numThresholds]string{
		thMaxRequests:    fmt.Sprintf("maxRequests (%d) requests in flight", b.maxRequests),
		thMaxRetries:     fmt.Sprintf("maxRetries (%d) retries in flight", b.maxRetries),
		thMaxPending:     fmt.Sprintf("maxPendingRequests (%d) requests waiting for a connection", b.maxPending),
		thMaxConnections: fmt.Sprintf("maxConnections (%d) connections open until the deadline", b.maxConns),
		thOpen:           fmt.Sprintf("open after consecutiveFailures (%d) failures in a row", b.trip),
		thHalfOpen:       fmt.Sprintf("half-open with halfOpenRequests (%d) probes out", b.probes),
	}
	for i := range b.errs {
		b.errs[i] = proxy.Fail(503, ReasonCircuitOpen,
			fmt.Errorf("cluster: service %q: circuit breaker: %s", service, limits[i]))
		if m != nil {
			b.rejected[i] = m.BreakerRejected.WithLabelValues(service, thresholdNames[i])
		}
	}
	if m != nil {
		b.open = m.BreakerOpen.WithLabelValues(service)
		b.open.Set(0)
	}
	return b
}

// Admit asks to send one attempt (retry: a retry of a request sent before). It returns a ticket
// to give back to Done when the attempt is over, or, when a threshold is reached or the breaker is
// open, an error to fail the request with: a *proxy.Error with status 503, reason circuit_open,
// that names the threshold.
func (b *Breaker) Admit(retry bool) (Ticket, error) {
	if b.requests.Add(1) > b.maxRequests {
		b.requests.Add(-1)
		return Ticket{}, b.reject(thMaxRequests)
	}
	if retry && b.retries.Add(1) > b.maxRetries {
		b.retries.Add(-1)
		b.requests.Add(-1)
		return Ticket{}, b.reject(thMaxRetries)
	}
	t := Ticket{retry: retry, epoch: b.epoch.Load()}
	if b.trip > 0 && b.state.Load() != breakerClosed {
		probe, epoch, th := b.admitProbe()
		if th >= 0 {
			if retry {
				b.retries.Add(-1)
			}
			b.requests.Add(-1)
			return Ticket{}, b.reject(th)
		}
		t.probe, t.epoch = probe, epoch
	}
	return t, nil
}

// admitProbe decides about an attempt while the breaker is not closed: th is the threshold that
// refuses it, or -1 when it may go (as a probe, when the breaker is half-open).
func (b *Breaker) admitProbe() (probe bool, epoch uint64, th int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state.Load() {
	case breakerClosed: // closed in the meantime
		return false, b.epoch.Load(), -1
	case breakerOpen:
		if b.now().Sub(b.openedAt) < b.openFor {
			return false, 0, thOpen
		}
		b.setState(breakerHalfOpen)
		b.probesOut, b.probesOK = 0, 0
		b.log.Info("circuit breaker half-open: sending probes", "probes", b.probes)
	}
	if b.probesOut+b.probesOK >= b.probes {
		return false, 0, thHalfOpen
	}
	b.probesOut++
	return true, b.epoch.Load(), -1
}

// Done gives back the ticket of an attempt and records its outcome: status is the upstream's
// answer and localFailure reports a connect failure, reset or timeout. A failure is a local
// failure or a 5xx; status 0 without localFailure (the attempt ended for a reason that says
// nothing about the upstream, such as the client going away) counts neither way.
func (b *Breaker) Done(t Ticket, status int, localFailure bool) {
	if t.retry {
		b.retries.Add(-1)
	}
	b.requests.Add(-1)
	if b.trip == 0 {
		return
	}
	neutral := status == 0 && !localFailure
	failed := localFailure || status >= 500
	if t.probe {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.state.Load() != breakerHalfOpen || t.epoch != b.epoch.Load() {
			return
		}
		b.probesOut--
		switch {
		case neutral: // the probe told nothing: its slot goes to another
		case failed:
			b.openLocked("a half-open probe failed")
		default:
			b.probesOK++
			if b.probesOK >= b.probes {
				b.failures.Store(0)
				b.setState(breakerClosed)
				b.log.Info("circuit breaker closed: the probes succeeded", "probes", b.probes)
			}
		}
		return
	}
	if neutral || t.epoch != b.epoch.Load() {
		return
	}
	if !failed {
		if b.failures.Load() != 0 {
			b.failures.Store(0)
		}
		return
	}
	if b.failures.Add(1) >= b.trip && b.state.Load() == breakerClosed {
		b.mu.Lock()
		if b.state.Load() == breakerClosed && t.epoch == b.epoch.Load() {
			b.openLocked("consecutive failures")
		}
		b.mu.Unlock()
	}
}

// openLocked opens the breaker. b.mu is held.
func (b *Breaker) openLocked(why string) {
	b.openedAt = b.now()
	b.failures.Store(0)
	b.setState(breakerOpen)
	b.log.Warn("circuit breaker opened", "why", why, "open_for", b.openFor)
}

// setState moves to state s and starts a new epoch. b.mu is held.
func (b *Breaker) setState(s int32) {
	b.epoch.Add(1)
	b.state.Store(s)
	if b.open != nil {
		if s == breakerClosed {
			b.open.Set(0)
		} else {
			b.open.Set(1)
		}
	}
}

// reject counts a rejection by threshold th and returns its error.
func (b *Breaker) reject(th int) error {
	if c := b.rejected[th]; c != nil {
		c.Inc()
	}
	return b.errs[th]
}

// State returns "closed", "open" or "half_open". An open breaker whose OpenFor has passed reports
// "open" until the next request half-opens it.
func (b *Breaker) State() string {
	switch b.state.Load() {
	case breakerOpen:
		return "open"
	case breakerHalfOpen:
		return "half_open"
	}
	return "closed"
}

// InFlight returns the attempts admitted and not yet done, and how many of them are retries.
func (b *Breaker) InFlight() (requests, retries int64) {
	return b.requests.Load(), b.retries.Load()
}

// AcquireConn reserves one of the service's MaxConnections connections; it reports false when
// they are all open.
func (b *Breaker) AcquireConn() bool {
	if b.conns.Add(1) > b.maxConns {
		b.conns.Add(-1)
		return false
	}
	return true
}

// ReleaseConn gives back a connection reserved with AcquireConn, once it is closed.
func (b *Breaker) ReleaseConn() { b.conns.Add(-1) }

// BeginPending records a request that starts waiting for a connection. When MaxPendingRequests
// wait already it returns the error to fail the request with instead.
func (b *Breaker) BeginPending() error {
	if b.pending.Add(1) > b.maxPending {
		b.pending.Add(-1)
		return b.reject(thMaxPending)
	}
	return nil
}

// EndPending records that a request admitted by BeginPending stopped waiting.
func (b *Breaker) EndPending() { b.pending.Add(-1) }

// ConnOverflow returns the error for a request that waited for a connection until its deadline
// because the service had MaxConnections open, and counts it.
func (b *Breaker) ConnOverflow() error { return b.reject(thMaxConnections) }

// Conns returns the connections open (or being opened) to the service, and the requests waiting
// for one.
func (b *Breaker) Conns() (open, pending int64) { return b.conns.Load(), b.pending.Load() }
