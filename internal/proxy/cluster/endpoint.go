package cluster

import "sync/atomic"

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
	// Weight is the endpoint's share of traffic relative to its peers, at least 1.
	Weight int
	// Pool is a slot for whatever the engine uses to reach this endpoint, typically its upstream
	// connection pool. The cluster never reads it. Set it once, after New and before the cluster is
	// shared with the goroutines that serve requests; reading it concurrently afterwards is safe.
	Pool any

	index     int
	unhealthy atomic.Bool // the zero value is healthy: endpoints start in rotation
	ejected   atomic.Bool // set by outlier detection while the endpoint is ejected
}

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

// Index returns the endpoint's position in the service's endpoint list.
func (e *Endpoint) Index() int { return e.index }
