package cluster

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// cacheLine is the CPU cache-line size the hot counter is padded to, so that requests to one
// endpoint do not slow down reads of its neighbours' fields.
const cacheLine = 64

// Endpoint is one instance of a service together with the state the data plane keeps for it. The
// state is lock-free: every method is safe for concurrent use and does not allocate.
type Endpoint struct {
	inflight atomic.Int64
	_        [cacheLine - 8]byte

	// Address is the endpoint's host:port, as configured.
	Address string
	// Pool is a slot for whatever the engine uses to reach this endpoint, typically its upstream
	// connection pool. The cluster never reads it. Set it once, before the endpoint is shared with
	// the goroutines that serve requests; reading it concurrently afterwards is safe.
	Pool any

	weight    atomic.Int64 // at least 1; UpdateEndpoints may change it
	index     atomic.Int64 // position in the current endpoint list; -1 once removed
	removed   atomic.Bool  // UpdateEndpoints took the endpoint out of the service
	unhealthy atomic.Bool  // the zero value is healthy: endpoints start in rotation
	ejected   atomic.Bool  // set by outlier detection while the endpoint is ejected

	stats       *hostStats       // outlier-detection counters; nil without outlier detection
	ejectedSeen prometheus.Gauge // meshgate_outlier_ejected of the endpoint; nil without metrics
}

// newEndpoint returns a healthy endpoint at position index.
func newEndpoint(addr string, weight, index int) *Endpoint {
	ep := &Endpoint{Address: addr}
	ep.weight.Store(int64(max(weight, 1)))
	ep.index.Store(int64(index))
	return ep
}

// Weight returns the endpoint's share of traffic relative to its peers, at least 1. An endpoint
// update may change it.
func (e *Endpoint) Weight() int { return int(e.weight.Load()) }

// Removed reports whether an endpoint update took the endpoint out of its service. A removed
// endpoint is never picked again; requests already sent to it finish normally.
func (e *Endpoint) Removed() bool { return e.removed.Load() }

// Begin records the start of a request to the endpoint. Call it once the endpoint has been picked,
// and End when the exchange is over; least_request balances on the difference.
func (e *Endpoint) Begin() { e.inflight.Add(1) }

// End records the end of a request started with Begin.
func (e *Endpoint) End() { e.inflight.Add(-1) }

// Inflight returns how many requests to the endpoint have begun and not yet ended.
func (e *Endpoint) Inflight() int64 { return e.inflight.Load() }

// Healthy reports whether the endpoint passes the service's active health check. Endpoints start
// healthy and change only through that check.
func (e *Endpoint) Healthy() bool { return !e.unhealthy.Load() }

// Ejected reports whether outlier detection keeps the endpoint out of rotation. An endpoint is
// in rotation when it is healthy and not ejected, or when the service is in panic mode.
func (e *Endpoint) Ejected() bool { return e.ejected.Load() }

// Index returns the endpoint's position in the service's current endpoint list, or -1 once the
// endpoint has been removed. An endpoint update may change it.
func (e *Endpoint) Index() int { return int(e.index.Load()) }
